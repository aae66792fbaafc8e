"""The replay with its benchmark lines decoded in a second process (`services.benchmark_lines`) writes what the
sequential replay writes, byte for byte, and reports the same refusals: on a faulty simulated log, and on
crafted lines at the seams (a benchmark that opens the log and sets billing's origin, refused benchmarks,
duplicates and conflicts across types, a line that only looks like a benchmark, another spelling, blank lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.codec import encode_obj
from services.benchmark_lines import BenchmarkLines, is_benchmark
from sn51.replay import replay_file
from sn51.sim import Faults, lines
from tests.factories import benchmark, envelope, epoch, listed, started


def replayed(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], parallel: bool) -> tuple[bytes, str]:
    out = tmp_path / f"out-{parallel}.jsonl"
    replay_file(log, out, progress=False, parallel=parallel)
    return out.read_bytes(), capsys.readouterr().err


def assert_same_replay(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[bytes, str]:
    sequential = replayed(log, tmp_path, capsys, parallel=False)
    assert replayed(log, tmp_path, capsys, parallel=True) == sequential
    return sequential


def test_a_faulty_simulated_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.jsonl"
    faults = Faults(duplicates=0.05, out_of_order=0.1, malformed=0.02)
    log.write_text("".join(line.text + "\n" for line in lines(4, 6, 3, faults=faults, benchmark_interval_minutes=20)))
    out, err = assert_same_replay(log, tmp_path, capsys)
    assert b'"type":"score.updated"' in out and b'"type":"day.closed"' in out
    assert "line " in err  # the malformed lines were reported


def test_crafted_lines_at_the_seams(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = "2026-11-01T10:00:00Z"
    first = benchmark("ex1", "hk1", "2026-10-31T09:00:00.123456Z").to_dict()  # opens the log: billing's origin
    good = benchmark("ex1", "hk1", t, download="80").to_dict()
    listing = listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z").to_dict()
    clash = {**good, "id": listing["id"]}  # a benchmark under a listing's id: id_conflict
    lookalike = listed("ex2", "hk2", "ck2", t).to_dict()
    lookalike["data"]["hotkey"] = '"type":"benchmark.completed"'  # picked by the worker, decoded here
    bad_schema = {**good, "id": "b-bad", "data": {**good["data"], "gpu_count": "1"}}
    no_offset = {**good, "id": "b-time", "time": "2026-11-01T10:00:00"}
    spaced = json.dumps({**good, "id": "b-spaced"}).encode()  # '"type": "benchmark.completed"': not picked
    log_lines = [
        encode_obj(first), encode_obj(listing), b"\n", encode_obj(good), encode_obj(good), encode_obj(clash),
        encode_obj(lookalike), encode_obj(bad_schema), encode_obj(no_offset), b"{not json", spaced,
        started("r1", "ex1", "2026-11-01T11:00:00Z").to_bytes(),
        *(benchmark("ex1", "hk1", f"2026-11-01T1{h}:30:00Z", download=d).to_bytes()  # the EMA goes below 100
          for h, d in ((2, "20"), (3, "20"), (4, "20"), (5, "900"))),  # and back: two score changes
        epoch(1, "2026-11-02T03:00:00Z", emission=10**12).to_bytes(),
        encode_obj({**envelope("benchmark.completed", t, good["data"]), "id": "b-extra", "extra": 1}),
    ]
    assert sum(is_benchmark(line) for line in log_lines) >= 10
    log = tmp_path / "crafted.jsonl"
    log.write_bytes(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in log_lines))
    out, err = assert_same_replay(log, tmp_path, capsys)
    codes = [line.split(": ")[1] for line in err.splitlines() if line.startswith("line ")]
    assert codes == ["id_conflict", "bad_schema", "bad_time", "malformed", "bad_schema"], err
    assert b'"billing_day":"2026-10-31"' in out  # the first benchmark opened the days
    assert out.count(b'"type":"score.updated"') >= 3


def test_a_worker_that_fails_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "gone.jsonl"
    with BenchmarkLines(missing) as worker, pytest.raises(RuntimeError, match="benchmark worker failed"):
        worker.take(1)
