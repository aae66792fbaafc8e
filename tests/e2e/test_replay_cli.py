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
