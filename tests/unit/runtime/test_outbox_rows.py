"""Outbox rows: derived events to their routed topic, dead letters with headers and the original bytes."""

from __future__ import annotations

import json

from schemas.codec import decode, encode_obj
from schemas.topics import DEAD_LETTER, SCORING
from services.runtime.outbox import OUTBOX_COLUMNS, Message, OutboxRow, dead_letter_row, event_row
from tests.unit.runtime.cores import CountingCore, listing


def test_event_row_uses_the_route_topic_the_event_key_and_canonical_bytes() -> None:
    [derived] = CountingCore().handle(decode(encode_obj(listing("a", "hk1", executor="ex-9"))))
    row = event_row(derived, "t1.")
    assert (row.topic, row.key, row.event_id) == ("t1." + SCORING, b"ex-9", derived.id)
    assert decode(row.value) == derived


def test_dead_letter_row_keeps_the_original_bytes_and_says_why_in_headers() -> None:
    message = Message("sn51.input", 0, 42, b"k", b"\x00garbage")
    row = dead_letter_row("billing", message, "malformed", "not JSON", None)
    assert row.topic == DEAD_LETTER
    assert row.value == b"\x00garbage"
    assert row.key == b"k"
    assert dict(json.loads(row.headers)) == {
        "code": "malformed", "reason": "not JSON", "service": "billing", "source_topic": "sn51.input",
        "source_partition": "0", "source_offset": "42",
    }
    assert row.event_id == dead_letter_row("billing", message, "x", "y", None).event_id  # keyed by position


def test_a_row_is_the_tables_columns_in_order() -> None:
    """COPY takes the rows as they are (`copy_rows`)."""
    assert OutboxRow._fields == OUTBOX_COLUMNS
