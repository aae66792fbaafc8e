"""The pure decision of the processor: what one consumed message does."""

from __future__ import annotations

import json

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


def test_an_event_on_another_topic_than_its_type_s_is_refused() -> None:
    core, known = CountingCore(), dict[str, str]()
    m = Message("sn51.scoring", 0, 0, None, encode_obj(listing("a", "hk1")))  # an input type, on scoring's topic
    out = decide(core, known, m, decode_message(m))
    assert isinstance(out, DeadLetter) and out.code == "wrong_topic"
    assert core.listings == {} and known == {}
    prefixed = Message("t1.sn51.input", 0, 1, None, encode_obj(listing("a", "hk1")))
    assert isinstance(decide(core, known, prefixed, decode_message(prefixed), "t1."), Accepted)


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


def test_skipping_unread_types_before_decoding_changes_no_outcome() -> None:
    """With the service's `reads`, messages of other types are ignored before decoding; every outcome (and
    the core's state) is what the full decode gives, on a simulated log with every kind of fault."""
    from services.billing.core import BillingCore
    from sn51.sim import Faults, lines

    values = [line.text.encode() for line in lines(
        3, 5, 2, faults=Faults(duplicates=0.05, out_of_order=0.2, malformed=0.05), benchmark_interval_minutes=30)]
    values += [encode_obj({**listing("x1", "hk1"), "type": "benchmark.completed"}),  # wrong type for its data
               encode_obj({**listing("x2", "hk2"), "data": {"type": "benchmark.completed"}})]  # a crafted key
    full, fast = BillingCore(), BillingCore()
    known_full: dict[str, str] = {}
    known_fast: dict[str, str] = {}
    skipped = 0
    for offset, value in enumerate(values):
        m = msg(value, offset)
        a = decide(full, known_full, m, decode_message(m))
        pre = decode_message(m, fast.reads)
        skipped += isinstance(pre, Ignored)
        b = decide(fast, known_fast, m, pre)
        assert type(a) is type(b), (offset, a, b)
        assert getattr(a, "code", None) == getattr(b, "code", None)
        assert [e.to_json() for e in getattr(a, "derived", [])] == [e.to_json() for e in getattr(b, "derived", [])]
    assert skipped > len(values) // 2  # most of the input topic is benchmarks, never decoded by billing


def test_json_nested_past_the_interpreter_s_depth_is_a_dead_letter_and_the_next_message_goes_on() -> None:
    """A poison message (json.loads raises RecursionError on it) must not stop the service: it is malformed."""
    core, known = CountingCore(), dict[str, str]()
    deep = b'{"id":"x","type":"executor.listed","data":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    for value in (deep, b"[" * 200_000 + b"]" * 200_000):
        out = run(core, known, value)
        assert isinstance(out, DeadLetter) and out.code == "malformed" and "nested too deeply" in out.reason
        assert out.event_id is None
    assert isinstance(run(core, known, encode_obj(listing("a", "hk1")), offset=2), Accepted)


def test_a_message_whose_strings_no_text_column_can_store_is_a_dead_letter_without_its_id() -> None:
    core, known = CountingCore(), dict[str, str]()
    value = json.dumps(listing("a\u0000", "hk\ud800")).encode()  # ASCII: both travel as \u escapes
    out = run(core, known, value)
    assert isinstance(out, DeadLetter) and out.code == "malformed"
    assert out.event_id is None  # the dead letter's row stores its id as text
    assert core.listings == {} and known == {}
