"""The simulator: valid, deterministic, realistic input logs, and faults that are refused as they should be."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from schemas.codec import Refused, decode
from schemas.envelope import canonical_json
from schemas.topics import ROUTES, key_for
from schemas.values import frac, parse_time
from services.params import DEFAULT_MODELS
from sn51.sim import Faults, generate, lines
from sn51.simulate import register

SEED, PROVIDERS, DAYS = 5, 24, 1.5


@cache
def run() -> tuple[dict[str, Any], ...]:
    return tuple(generate(SEED, PROVIDERS, DAYS, params_update=True))


@cache
def faulty(rate: float) -> tuple[tuple[str, str | None, str | None], ...]:
    faults = Faults(duplicates=rate, out_of_order=min(1.0, 6 * rate), malformed=rate)
    return tuple((ln.text, ln.fault, ln.code) for ln in lines(SEED, 6, 1.0, faults=faults))


def of_type(type_: str) -> list[dict[str, Any]]:
    return [e for e in run() if e["type"] == type_]


def test_every_line_decodes_and_is_canonical() -> None:
    for env in run():
        text = canonical_json(env)
        event = decode(text)  # raises Refused on any refusal
        assert event.to_json() == text
        assert env["source"] == ROUTES[env["type"]].sources[0]
        assert env["key"] == key_for(env["type"], env["data"])
        assert env["causation_id"] is None and env["schema_version"] == 1


def test_lines_match_canonical_json_and_ids_are_unique() -> None:
    texts = [ln.text for ln in lines(SEED, 4, 0.5)]
    assert texts == [canonical_json(e) for e in generate(SEED, 4, 0.5)]
    assert len({json.loads(t)["id"] for t in texts}) == len(texts)


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def text(seed: int) -> str:
        return "\n".join(ln.text for ln in lines(seed, 5, 0.5, faults=Faults(0.05, 0.05, 0.05)))

    assert text(11) == text(11)
    assert text(11) != text(12)


def test_times_do_not_decrease_and_start_at_the_start() -> None:
    times = [parse_time(e["time"]) for e in run()]
    assert times == sorted(times)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    assert start <= times[0] < start + timedelta(hours=1)
    assert times[-1] < start + timedelta(days=DAYS)
    other = datetime(2027, 3, 5, 6, 7, 8, tzinfo=UTC)
    first = next(iter(generate(SEED, 2, 0.1, start=other)))
    assert other <= parse_time(first["time"]) < other + timedelta(hours=1)


def test_executors_are_listed_before_their_rentals_and_benchmarks() -> None:
    listed: set[str] = set()
    seen: set[str] = set()
    for e in run():
        ex = e["data"].get("executor_id")
        if e["type"] == "executor.listed":
            listed.add(ex)
            seen.add(ex)
        elif e["type"] == "executor.delisted":
            assert ex in listed
            listed.discard(ex)
        elif e["type"] in ("rental.started", "benchmark.completed"):
            assert ex in listed, e
        elif e["type"] in ("rental.stopped", "rental.incident"):
            assert ex in seen, e
    assert listed


def test_rentals_stop_after_they_start_and_incidents_fall_inside() -> None:
    started: dict[str, datetime] = {}
    stopped: dict[str, datetime] = {}
    for e in run():
        d = e["data"]
        if e["type"] == "rental.started":
            assert d["rental_id"] not in started
            started[d["rental_id"]] = parse_time(d["started_at"])
            assert parse_time(e["time"]) == started[d["rental_id"]]
        elif e["type"] == "rental.stopped":
            assert d["rental_id"] in started and d["rental_id"] not in stopped
            stopped[d["rental_id"]] = parse_time(d["stopped_at"])
            assert stopped[d["rental_id"]] > started[d["rental_id"]]
        elif e["type"] == "rental.incident":
            assert d["rental_id"] in started and d["rental_id"] not in stopped
            assert parse_time(d["at"]) >= started[d["rental_id"]]
    assert len(started) > 20 and len(stopped) > 10
    hours = [(stopped[r] - started[r]).total_seconds() / 3600 for r in stopped]
    assert max(hours) <= 30


def test_periodic_events() -> None:
    epochs = of_type("epoch.closed")
    assert len(epochs) == pytest.approx(DAYS * 20, abs=1)
    for a, b in itertools.pairwise(epochs):
        assert b["data"]["epoch"] == a["data"]["epoch"] + 1
        gap = parse_time(b["data"]["closed_at"]) - parse_time(a["data"]["closed_at"])
        assert gap == timedelta(minutes=72)
    for e in epochs:
        d = e["data"]
        assert d["netuid"] == 51 and d["epoch"] == d["start_block"] // 360 == d["end_block"] // 360
        assert d["end_block"] - d["start_block"] == 359
        assert d["closed_at"] == e["time"]
        assert 10**11 < d["miner_emission_rao"] < 2 * 10**11
        assert frac(d["tao_usd"]) > 0 and 0 < frac(d["alpha_tao"]) < 1
        assert len(d["tao_usd"]) <= 10 and len(d["alpha_tao"]) <= 8
    reports = of_type("revenue.reported")
    assert len(reports) == DAYS * 144 - 1  # every 10 minutes, the first at 00:10
    benchmarks = Counter(e["key"] for e in of_type("benchmark.completed"))
    assert max(benchmarks.values()) <= DAYS * 96


def test_revenue_is_what_the_rentals_earned() -> None:
    gpus: dict[str, tuple[str, int]] = {}
    rentals: dict[str, tuple[str, Fraction, datetime, datetime | None]] = {}
    for e in run():
        d = e["data"]
        if e["type"] == "executor.listed":
            gpus[d["executor_id"]] = (d["gpu_model"], d["gpu_count"])
        elif e["type"] == "rental.started":
            model, count = gpus[d["executor_id"]]
            rentals[d["rental_id"]] = (model, frac(d["price_per_gpu_usd"]) * count, parse_time(d["started_at"]), None)
        elif e["type"] == "rental.stopped":
            model, rate, began, _ = rentals[d["rental_id"]]
            rentals[d["rental_id"]] = (model, rate, began, parse_time(d["stopped_at"]))
        elif e["type"] == "revenue.reported":
            w0, w1 = parse_time(d["window_start"]), parse_time(d["window_end"])
            expected: Counter[str] = Counter()
            for model, rate, began, ended in rentals.values():
                end = min(ended or w1, w1)
                seconds = (end - max(began, w0)).total_seconds()
                if seconds > 0:
                    expected[model] += rate * Fraction(int(seconds), 3600)  # type: ignore[assignment]
            for model in set(expected) | set(d["revenue_usd_by_model"]):
                got = frac(d["revenue_usd_by_model"].get(model, "0"))
                assert abs(got - expected[model]) <= Fraction(1, 10**6), (model, e["time"])
    assert sum(frac(v) for e in of_type("revenue.reported") for v in e["data"]["revenue_usd_by_model"].values())


def test_the_world_has_the_cases_the_rules_care_about() -> None:
    listings = [e["data"] for e in of_type("executor.listed")]
    ratios = [
        frac(d["price_per_gpu_usd"]) / DEFAULT_MODELS[d["gpu_model"]].price
        for d in listings if d["gpu_model"] in DEFAULT_MODELS
    ]
    assert any(r > 3 for r in ratios) and any(Fraction(11, 10) < r <= 3 for r in ratios)
    assert sum(r <= Fraction(11, 10) for r in ratios) > len(ratios) / 2
    assert {d["gpu_count"] for d in listings} >= {1, 8}
    assert any(d["gpu_model"] not in DEFAULT_MODELS for d in listings)
    assert len({d["gpu_model"] for d in listings} & set(DEFAULT_MODELS)) >= 5
    count = {d["executor_id"]: d["gpu_count"] for d in listings}
    model = {d["executor_id"]: d["gpu_model"] for d in listings}
    relisted = Counter(d["executor_id"] for d in listings)
    assert of_type("executor.delisted") and max(relisted.values()) > 1

    benched = {e["key"] for e in of_type("benchmark.completed")}
    assert set(count) - benched  # some executors are never benchmarked
    faults: Counter[str] = Counter()
    for e in of_type("benchmark.completed"):
        d = e["data"]
        nominal = DEFAULT_MODELS[d["gpu_model"]].vram_mib if d["gpu_model"] in DEFAULT_MODELS else None
        faults["matmul"] += not d["matmul_passed"]
        faults["gpu_count"] += d["gpu_count"] != count[d["executor_id"]]
        faults["vram"] += nominal is not None and d["vram_mb_per_gpu"] < nominal * 0.9
        faults["network"] += frac(d["download_mbps"]) < 100
        faults["sysbox"] += not d["sysbox"]
        assert (d["matmul_tflops"] is None) == (not d["matmul_passed"])
    assert all(faults[k] for k in ("matmul", "gpu_count", "vram", "network", "sysbox")), faults

    cheap = [
        e for e in of_type("rental.started")
        if model[e["key"]] in DEFAULT_MODELS
        and frac(e["data"]["price_per_gpu_usd"]) < DEFAULT_MODELS[model[e["key"]]].price / 2
    ]
    assert cheap
    assert {e["data"]["kind"] for e in of_type("rental.incident")} >= {"ssh_refused", "container_crash"}
    assert len(of_type("params.updated")) == 1
    assert not any(e["type"] == "params.updated" for e in generate(SEED, 3, 1.0))


def test_malformed_lines_are_refused_with_their_code() -> None:
    codes: Counter[str] = Counter()
    for text, fault, code in faulty(0.05):
        if code is None:
            decode(text)
            continue
        with pytest.raises(Refused) as refused:
            decode(text)
        assert refused.value.code == code, (fault, text)
        codes[code] += 1
    assert set(codes) == {"malformed", "bad_time", "bad_schema", "bad_listing", "bad_revenue", "bad_netuid"}


def test_duplicates_repeat_earlier_lines_and_late_lines_keep_their_key() -> None:
    out = faulty(0.05)
    clean = [ln.text for ln in lines(SEED, 6, 1.0)]
    delivered = [text for text, _, code in out if code is None]
    assert sorted(set(delivered)) == sorted(clean)  # nothing lost, nothing invented
    seen: set[str] = set()
    for text, fault, _ in out:
        if fault == "duplicate":
            assert text in seen
        seen.add(text)
    assert Counter(f for _, f, _ in out)["duplicate"] > 10
    # Out of order: some rental is stopped (or has an incident) before it starts, or a key's times go back.
    started: set[str] = set()
    early = 0
    for text, fault, _ in out:
        e = json.loads(text) if fault is None or fault in ("duplicate", "out_of_order") else None
        if e is None or not e["type"].startswith("rental."):
            continue
        if e["type"] == "rental.started":
            started.add(e["data"]["rental_id"])
        elif e["data"]["rental_id"] not in started:
            early += 1
    assert early > 0


def test_no_faults_no_refusals_even_with_duplicates_and_reordering() -> None:
    for ln in lines(SEED, 4, 0.5, faults=Faults(duplicates=0.1, out_of_order=0.1)):
        decode(ln.text)
        assert ln.code is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate(1, 0, 1.0)
    with pytest.raises(ValueError):
        generate(1, 1, 0)
    with pytest.raises(ValueError):
        Faults(malformed=1.5)


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keeps `simulate` a subcommand, as in `sn51`
        pass

    return app


def test_cli_writes_the_log(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    args = ["simulate", "--seed", "3", "--providers", "3", "--days", "0.5", "--output", str(out)]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    assert out.read_text() == "".join(ln.text + "\n" for ln in lines(3, 3, 0.5))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "--days"),
        (["--start", "2026-11-01T00:00:00"], "--start"),
        (["--publish"], "--bootstrap"),
        ([], "nothing to do"),
        (["--days", "inf"], "--days"), (["--days", "nan"], "--days"),
        (["--providers", "99999999999999999999"], "--providers"),
        (["--benchmark-interval-minutes", "1e308"], "--benchmark-interval-minutes"),
        (["--start", "9999-12-31T23:00:00Z", "--days", "1"], "in 2000..2099"),
        (["--start", "2099-12-31T00:00:00Z", "--days", "2"], "runs past 2099"),
    ],
)
def test_cli_refuses_bad_arguments_in_one_line(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP", raising=False)
    out = ["--output", str(tmp_path / "x")] if args else []
    result = CliRunner().invoke(_cli(), ["simulate", *args, *out])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_cli_reports_an_unwritable_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(_cli(), ["simulate", "--output", str(tmp_path / "no" / "such" / "file")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = CliRunner().invoke(_cli(), ["simulate", "--output", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output
    assert list(tmp_path.iterdir()) == []  # no partial file left behind
