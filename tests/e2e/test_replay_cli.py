"""`sn51 simulate` then `sn51 replay` twice, in separate processes: byte-identical output; refused lines are
reported with their line number and code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SN51 = [sys.executable, "-c", "from sn51.cli import main; main()"]


def sn51(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SN51, *args], capture_output=True, text=True, timeout=300, check=False)


def test_replay_is_byte_identical_and_reports_refusals(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    done = sn51("simulate", "--seed", "3", "--providers", "4", "--days", "3", "--malformed", "0.002",
                "--duplicates", "0.01", "--output", str(log))
    assert done.returncode == 0, done.stderr
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run1 = sn51("replay", "--input", str(log), "--output", str(first))
    run2 = sn51("replay", "--input", str(log), "--output", str(second))
    third = tmp_path / "c.jsonl"
    run3 = sn51("replay", "--input", str(log), "--output", str(third), "--sequential")
    assert run1.returncode == 0 and run2.returncode == 0 and run3.returncode == 0, run1.stderr
    assert first.read_bytes() == second.read_bytes() == third.read_bytes()
    assert run3.stderr == run1.stderr
    assert first.stat().st_size > 0
    assert b'"type":"day.closed"' in first.read_bytes()
    refusals = [line for line in run1.stderr.splitlines() if line.startswith("line ")]
    assert refusals, "the injected malformed lines must be reported"
    assert all(": " in line for line in refusals)


def test_replay_bad_arguments_get_one_line(tmp_path: Path) -> None:
    done = sn51("replay", "--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o.jsonl"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "no such input file" in done.stderr


def test_replay_never_writes_over_its_input_or_leaves_half_an_output(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    assert sn51("simulate", "--seed", "5", "--providers", "2", "--days", "0.5", "--output", str(log)).returncode == 0
    before = log.read_bytes()
    done = sn51("replay", "--input", str(log), "--output", str(log))
    assert done.returncode == 2 and "is the input" in done.stderr and "Traceback" not in done.stderr
    assert log.read_bytes() == before
    done = sn51("replay", "--input", str(log), "--output", str(tmp_path))
    assert done.returncode == 2 and "is a directory" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    # a line nested past the interpreter's depth is refused like any malformed line, and the rest is replayed
    deep = tmp_path / "deep.jsonl"
    deep.write_bytes(before + b"[" * 200_000 + b"]" * 200_000 + b"\n")
    out = tmp_path / "out.jsonl"
    done = sn51("replay", "--input", str(deep), "--output", str(out))
    assert done.returncode == 0, done.stderr
    deep_line = len(before.splitlines()) + 1
    assert f"line {deep_line}: malformed: not JSON: nested too deeply" in done.stderr
    assert out.stat().st_size > 0 and sorted(p.name for p in tmp_path.iterdir()) == ["deep.jsonl", "log.jsonl",
                                                                                    "out.jsonl"]
