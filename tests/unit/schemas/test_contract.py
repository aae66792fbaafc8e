"""The event contract: JSON Schemas in step with the models, strictness, refusal codes, upcasters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.codec import Refused, decode, decode_obj
from schemas.events import EVENT_MODELS
from schemas.export import OUT, schema_files
from schemas.topics import READS, ROUTES
from tests.factories import envelope


def test_exported_json_schemas_are_current() -> None:
    wanted = schema_files()
    on_disk = {p.name: p.read_text() for p in OUT.glob("*.json")}
    assert on_disk == wanted, "schemas/json is stale: run `python -m schemas.export`"


def test_every_type_is_routed_and_read_types_exist() -> None:
    assert set(ROUTES) == set(EVENT_MODELS)
    for types in READS.values():
        assert types <= set(EVENT_MODELS)


def listing(**over: Any) -> dict[str, Any]:
    data = {"executor_id": "ex1", "hotkey": "hk", "coldkey": "ck", "gpu_model": "NVIDIA H200", "gpu_count": 1,
            "price_per_gpu_usd": "2.85", "sysbox": True}
    data.update(over)
    return envelope("executor.listed", "2026-11-01T00:00:00Z", data)


@pytest.mark.parametrize(("mutate", "code"), [
    (lambda e: e.update(time="2026-11-01T00:00:00"), "bad_time"),
    (lambda e: e["data"].update(gpu_count=0), "bad_listing"),
    (lambda e: e["data"].update(extra_field=1), "bad_schema"),
    (lambda e: e["data"].update(price_per_gpu_usd=2.85), "bad_schema"),
    (lambda e: e["data"].update(gpu_count="1"), "bad_schema"),
    (lambda e: e.update(type="no.such"), "unknown_type"),
    (lambda e: e.update(schema_version=9), "bad_schema"),
    (lambda e: e.update(surprise=True), "bad_schema"),
])
def test_refusal_codes(mutate: Any, code: str) -> None:
    raw = listing()
    mutate(raw)
    with pytest.raises(Refused) as info:
        decode_obj(raw)
    assert info.value.code == code


def test_times_are_normalised_to_utc_and_truncated_to_the_microsecond() -> None:
    raw = listing()
    raw["time"] = "2026-11-01T02:00:00.123456789+02:00"
    assert decode_obj(raw).to_dict()["time"] == "2026-11-01T00:00:00.123456Z"


@pytest.mark.parametrize(("data", "code"), [
    ({"netuid": 52, "epoch": 1, "start_block": 0, "end_block": 1, "closed_at": "2026-11-01T00:00:00Z",
      "miner_emission_rao": 1, "tao_usd": "1", "alpha_tao": "1"}, "bad_netuid"),
])
def test_epoch_netuid(data: dict[str, Any], code: str) -> None:
    with pytest.raises(Refused) as info:
        decode_obj(envelope("epoch.closed", "2026-11-01T00:00:00Z", data))
    assert info.value.code == code


def test_revenue_and_params_refusals() -> None:
    with pytest.raises(Refused, match="bad_revenue"):
        decode_obj(envelope("revenue.reported", "2026-11-01T00:00:00Z", {
            "window_start": "2026-11-01T00:00:00Z", "window_end": "2026-11-01T00:10:00Z",
            "revenue_usd_by_model": {"NVIDIA H200": "-1"}}))
    for bad in ({"tempo": "360"}, {"max_price_rate": 3}, {"nope": "1"}, {"rented_normalization": "all"},
                {"models": {"X": {"price": "1", "colour": "red"}}}, {"total_burn_emission": "1.5"},
                {"tempo": 0}, {"payout_hour_utc": 24}, {"vram_window": ["1.05", "0.90"]},
                {"models": {"X": {"price": "1", "caps": {"0": 1}, "vram_mib": 1}}}):
        with pytest.raises(Refused) as info:
            decode_obj(envelope("params.updated", "2026-11-01T00:00:00Z", bad))
        assert info.value.code == "bad_params"


def test_malformed_bytes() -> None:
    with pytest.raises(Refused) as info:
        decode(b"{not json")
    assert info.value.code == "malformed"


def test_upcaster_reads_an_old_listing() -> None:
    raw = listing()
    del raw["data"]["price_per_gpu_usd"], raw["data"]["sysbox"]
    raw["data"]["price_usd"] = "1.5"
    raw["schema_version"] = 0
    event = decode(json.dumps(raw))
    assert event.data.model_dump() == {**listing()["data"], "price_per_gpu_usd": "1.5", "sysbox": False}
