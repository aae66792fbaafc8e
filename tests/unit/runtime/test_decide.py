"""The pure decision of the processor: what one consumed message does."""

from __future__ import annotations

from schemas.codec import encode_obj
from schemas.envelope import derived_id
from services.runtime.outbox import Message
from services.runtime.processor import Accepted, DeadLetter, Duplicate, Ignored, decide, decode_message, peek
from tests.factories import envelope
from tests.unit.runtime.cores import REFUSED_HOTKEY, CountingCore, listing


def msg(value: bytes, offset: int = 0) -> Message:
    return Message("sn51.input", 0, offset, None, value)


def run(core: CountingCore, known: dict[str, str], value: bytes, offset: int = 0) -> object:
    m = msg(value, offset)
    return decide(core, known, m, decode_message(m))


def test_accepted_folds_and_remembers_the_hash() -> None:
    core, known = CountingCore(), dict[str, str]()
    out = run(core, known, encode_obj(listing("a", "hk1")))
    assert isinstance(out, Accepted)
    assert core.listings["hk1"] == 1
    assert known == {"a": out.content_hash}
    assert [e.id for e in out.derived] == [derived_id("score.updated", "a", "")]


def test_same_id_same_content_is_a_duplicate() -> None:
    core, known = CountingCore(), dict[str, str]()
    value = encode_obj(listing("a", "hk1"))
    run(core, known, value)
    out = run(core, known, value, offset=1)
    assert isinstance(out, Duplicate)
    assert core.listings["hk1"] == 1


def test_same_id_other_content_is_an_id_conflict_and_changes_nothing() -> None:
    core, known = CountingCore(), dict[str, str]()
    run(core, known, encode_obj(listing("a", "hk1")))
    out = run(core, known, encode_obj(listing("a", "hk1", price="1.00")))
    assert isinstance(out, DeadLetter)
    assert (out.code, out.event_id, out.event_type) == ("id_conflict", "a", "executor.listed")
    assert core.listings["hk1"] == 1


def test_core_refusal_is_a_dead_letter_and_is_not_remembered() -> None:
    core, known = CountingCore(), dict[str, str]()
    out = run(core, known, encode_obj(listing("r", REFUSED_HOTKEY)))
    assert isinstance(out, DeadLetter)
    assert out.code == "bad_listing"
    assert known == {}
    assert core.handled == []


def test_malformed_bytes_are_a_dead_letter() -> None:
    out = run(CountingCore(), {}, b"{not json")
    assert isinstance(out, DeadLetter)
    assert out.code == "malformed"
    assert (out.event_id, out.event_type) == (None, None)


def test_bad_time_of_a_read_type_is_a_dead_letter_with_its_id() -> None:
    bad = listing("t", "hk1")
    bad["time"] = "2026-11-21T17:00:00"
    out = run(CountingCore(), {}, encode_obj(bad))
    assert isinstance(out, DeadLetter)
    assert (out.code, out.event_id) == ("bad_time", "t")


def test_types_the_service_does_not_read_are_ignored_even_when_invalid() -> None:
    core = CountingCore()
    ok = envelope("executor.delisted", "2026-11-21T17:00:00Z", {"executor_id": "e"})
    bad = envelope("executor.delisted", "2026-11-21T17:00:00", {"executor_id": "e"})
    assert isinstance(run(core, {}, encode_obj(ok)), Ignored)
    assert isinstance(run(core, {}, encode_obj(bad)), Ignored)


def test_an_unknown_type_is_a_dead_letter() -> None:
    obj = listing("u", "hk1")
    obj["type"] = "executor.painted"
    out = run(CountingCore(), {}, encode_obj(obj))
    assert isinstance(out, DeadLetter)
    assert out.code == "unknown_type"


def test_peek_reads_id_and_type_only_from_objects() -> None:
    assert peek(b'{"id": "x", "type": "t"}') == ("x", "t")
    assert peek(b'{"id": 3}') == (None, None)
    assert peek(b"[1]") == (None, None)
    assert peek(b"\xff") == (None, None)
