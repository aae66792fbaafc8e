"""The event contract: JSON Schemas in step with the models, strictness, refusal codes, upcasters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.codec import Refused, decode, decode_obj
from schemas.events import EVENT_MODELS
from schemas.export import OUT, schema_files
from schemas.topics import READS, ROUTES
from schemas.values import MAX_TEXT_CHARS
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
                {"rental_fees_rate": "-0.1"}, {"gpu_portion_alpha": "2"}, {"tempo": 0}, {"seconds_per_block": 0},
                {"max_batch": 0}, {"payout_hour_utc": 24}, {"day_close_grace_seconds": -1},
                {"models": {"X": {"price": "1", "caps": {"1": 1}, "vram_mib": 1, "portion": "-0.1"}}},
                {"models": {"X": {"price": "1", "caps": {"01": 1}, "vram_mib": 1}}},
                {"models": {"X": {"price": "1", "caps": {"\uff11": 1}, "vram_mib": 1}}},
                {"models": {"X": {"price": "\uff11", "caps": {"1": 1}, "vram_mib": 1}}}):
        with pytest.raises(Refused) as info:
            decode_obj(envelope("params.updated", "2026-11-01T00:00:00Z", bad))
        assert info.value.code == "bad_params", bad


@pytest.mark.parametrize("update", [
    {"vram_window": ["1.05", "0.90"]},  # empty: every benchmark outside it (vram_mismatch)
    {"models": {"X": {"price": "1", "caps": {"0": 1, "8": -1}, "vram_mib": 1}}},  # "a cap key ... with cap > 0"
    {"models": {"NVIDIA H200": {"price": "-1"}}},  # "a model price > 0"
    {"payout_delay_days": -1}, {"min_payout_rao": -1},
    {"rental_fees_rate": "0"}, {"rental_fees_rate": "1"}, {"total_burn_emission": "1"}, {"payout_hour_utc": 0},
])
def test_params_the_spec_rules_take_as_they_are_are_accepted(update: dict[str, Any]) -> None:
    """Only the spec's list and values that would break the money's invariants or stop the system are refused
    (`check_params_ranges`); what the spec's own rules handle is taken."""
    assert decode_obj(envelope("params.updated", "2026-11-01T00:00:00Z", update)).type == "params.updated"


@pytest.mark.parametrize("time", [
    "2026-11-01T00:00:00",  # no offset
    "\uff12026-11-01T00:00:00Z",  # a full-width digit: RFC 3339 is ASCII
    "2026-11-01T00:00:00+24:00", "2026-11-01T00:00:00+25:00", "2026-11-01T00:00:00+00:60",  # no such offset
    "2026-11-01T24:00:00Z", "2026-11-31T00:00:00Z",
])
def test_bad_times(time: str) -> None:
    raw = listing()
    raw["time"] = time
    with pytest.raises(Refused) as info:
        decode_obj(raw)
    assert info.value.code == "bad_time"
    with pytest.raises(Refused) as again:  # the same from the bytes (the fast path hands it to the slow one)
        decode(json.dumps(raw).encode())
    assert again.value.code == "bad_time"


def test_decimal_strings_are_ascii() -> None:
    raw = listing(price_per_gpu_usd="\uff12.85")
    with pytest.raises(Refused) as info:
        decode_obj(raw)
    assert info.value.code == "bad_schema"
    assert decode_obj(listing(price_per_gpu_usd="2.85")).type == "executor.listed"


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


@pytest.mark.parametrize(("where", "text"), [
    ("hotkey", "hk\x00"), ("hotkey", "hk\ud800"), ("id", "a\x00"), ("key", "\udfff"), ("extra", "x"),
])
def test_strings_no_text_field_can_store_are_malformed(where: str, text: str) -> None:
    """U+0000 (PostgreSQL refuses it in text and jsonb) and unpaired surrogates (no UTF-8 for them), which
    JSON escapes can spell: taken, they would stop a service at its next write, after every restart."""
    raw = listing()
    if where == "hotkey":
        raw["data"]["hotkey"] = text
    elif where == "extra":
        raw["data"]["sur\ud800"] = text  # a key, not a value
    else:
        raw[where] = text
    value = json.dumps(raw).encode()  # ASCII: the characters travel as \\u escapes
    with pytest.raises(Refused) as info:
        decode(value)
    assert info.value.code == "malformed"


def test_escaped_text_that_is_unicode_is_taken() -> None:
    raw = listing(hotkey="hk\u00e9\U0001f600", coldkey="back\\u0000slash")  # é, an emoji (a surrogate pair)
    event = decode(json.dumps(raw).encode())
    assert (event.data.hotkey, event.data.coldkey) == ("hk\u00e9\U0001f600", "back\\u0000slash")


@pytest.mark.parametrize(("make", "code"), [
    # read exactly, "1e-99999999" is a number of a hundred million digits: the service would hang on it
    (lambda: listing(price_per_gpu_usd="1e-99999999"), "bad_schema"),
    (lambda: listing(price_per_gpu_usd="0." + "1" * 5000), "bad_schema"),  # past Python's 4,300 digits
    (lambda: listing(gpu_count=2**31), "bad_listing"),  # scoring's gpu_count column
    (lambda: listing(gpu_count=2**63), "bad_schema"),  # no bigint holds it
    (lambda: envelope("epoch.closed", "2026-11-01T00:00:00Z", {
        "netuid": 51, "epoch": 2**63, "start_block": 0, "end_block": 1, "closed_at": "2026-11-01T00:00:00Z",
        "miner_emission_rao": 1, "tao_usd": "1", "alpha_tao": "1"}), "bad_schema"),
    (lambda: envelope("params.updated", "2026-11-01T00:00:00Z", {"day_close_grace_seconds": 10**20}), "bad_params"),
    (lambda: envelope("params.updated", "2026-11-01T00:00:00Z", {"day_close_grace_seconds": 10**10}), "bad_params"),
    (lambda: envelope("params.updated", "2026-11-01T00:00:00Z", {"payout_delay_days": 10**6}), "bad_params"),
])
def test_values_that_would_hang_or_overflow_a_service_are_refused(make: Any, code: str) -> None:
    with pytest.raises(Refused) as info:
        decode(json.dumps(make()).encode())
    assert info.value.code == code


def test_decimal_exponents_of_up_to_three_digits_are_read() -> None:
    assert decode(json.dumps(listing(price_per_gpu_usd="2.85e0")).encode()).type == "executor.listed"
    assert decode(json.dumps(listing(price_per_gpu_usd="285e-2")).encode()).type == "executor.listed"


@pytest.mark.parametrize("where", ["id", "key", "source", "causation_id", "hotkey", "executor_id"])
def test_identifiers_longer_than_a_database_index_can_hold_are_refused(where: str) -> None:
    """A 4,000-byte id outgrows a PostgreSQL index entry (2,704 bytes) and stopped the service at its write."""
    raw = listing()
    for length, refused in ((MAX_TEXT_CHARS, False), (MAX_TEXT_CHARS + 1, True)):
        value = "\U0001f600" * length  # four bytes each in UTF-8
        if where in ("hotkey", "executor_id"):
            raw["data"][where] = value
        else:
            raw[where] = value
        if refused:
            with pytest.raises(Refused) as info:
                decode(json.dumps(raw).encode())
            assert info.value.code == "bad_schema"
        else:
            assert decode(json.dumps(raw).encode()).type == "executor.listed"


def test_a_cap_key_of_more_digits_than_python_reads_is_refused() -> None:
    update = {"models": {"X": {"price": "1", "caps": {"1" * 5000: 1}, "vram_mib": 1}}}
    with pytest.raises(Refused) as info:
        decode(json.dumps(envelope("params.updated", "2026-11-01T00:00:00Z", update)).encode())
    assert info.value.code == "bad_params"


@pytest.mark.parametrize("time", [
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: astimezone overflowed and stopped the services
    "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z", "9999-12-30T00:00:00Z",
    "1999-12-31T23:59:59.999999Z", "2100-01-01T00:00:00Z",
])
def test_times_outside_this_century_are_bad_times(time: str) -> None:
    raw = listing()
    raw["time"] = time
    with pytest.raises(Refused) as info:
        decode(json.dumps(raw).encode())
    assert info.value.code == "bad_time"
    rental = envelope("rental.started", "2026-11-01T00:00:00Z", {
        "rental_id": "r", "executor_id": "ex1", "renter_id": "u", "price_per_gpu_usd": "1", "started_at": time})
    with pytest.raises(Refused) as info:
        decode(json.dumps(rental).encode())
    assert info.value.code == "bad_time"


def test_the_century_s_ends_are_taken() -> None:
    for time in ("2000-01-01T00:00:00Z", "2099-12-31T23:59:59.999999Z", "2000-01-01T01:00:00+01:00"):
        raw = listing()
        raw["time"] = time
        assert decode(json.dumps(raw).encode()).type == "executor.listed"


@pytest.mark.parametrize(("make", "code"), [
    (lambda: listing(price_per_gpu_usd="-1"), "bad_listing"),
    (lambda: envelope("rental.started", "2026-11-01T00:00:00Z", {
        "rental_id": "r", "executor_id": "ex1", "renter_id": "u", "price_per_gpu_usd": "-1000",
        "started_at": "2026-11-01T00:00:00Z"}), "bad_schema"),
    (lambda: envelope("params.updated", "2026-11-01T00:00:00Z", {"payout_delay_days": -1_000_000_000}),
     "bad_params"),
])
def test_negative_prices_and_delays_past_the_clock_are_refused(make: Any, code: str) -> None:
    with pytest.raises(Refused) as info:
        decode(json.dumps(make()).encode())
    assert info.value.code == code
    assert decode(json.dumps(listing(price_per_gpu_usd="-0")).encode()).type == "executor.listed"
