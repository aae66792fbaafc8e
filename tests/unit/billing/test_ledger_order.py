"""The canonical order of a day's entries and their numbering (what the ledger hash covers and the
`ledger_entry` rows carry)."""

from __future__ import annotations

import hashlib
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from schemas.envelope import canonical_json
from services.billing.ledger import GENESIS_HASH, Entry, canonical_order, ordered_day_hash
from services.billing.store import numbered

few = st.sampled_from
entries = st.lists(st.builds(
    Entry, kind=few(["emission", "rental_fee", "adjustment"]), unit=few(["rao", "usd_micros"]),
    debit=few(["emission", "provider:a", "platform"]), credit=few(["provider:a", "provider:b", "burn"]),
    executor_id=few(["", "ex-1", "ex-2"]), cause_id=few(["c1", "c2"]), day=few(["2026-11-01", "2026-11-02"]),
    amount=st.integers(1, 5),
), max_size=60)


@given(entries)
def test_canonical_order_is_kind_unit_debit_credit_executor_cause_day_amount(es: list[Entry]) -> None:
    key = lambda e: (e.kind, e.unit, e.debit, e.credit, e.executor_id, e.cause_id, e.day, e.amount)  # noqa: E731
    assert list(canonical_order(es)) == sorted(es, key=key)


@given(entries)
def test_parts_count_the_entries_that_share_a_cause_key(es: list[Entry]) -> None:
    seen: Counter[tuple[str, ...]] = Counter()
    for seq, (position, part, e) in enumerate(numbered(canonical_order(es))):
        cause = (e.kind, e.cause_id, e.executor_id, e.debit, e.credit, e.unit, e.day)
        assert (position, part) == (seq, seen[cause])
        seen[cause] += 1


@given(entries, st.sampled_from([GENESIS_HASH, "ab" * 32]))
def test_the_day_hash_is_sha256_of_the_chained_hash_and_the_entries_as_json_objects(es: list[Entry],
                                                                                    previous: str) -> None:
    """SPEC 3.4: "sha256 over the day's entries in canonical JSON, chained to the previous day's hash"; each
    entry is the object of all its fields (`to_dict`), whatever way `ordered_day_hash` builds it."""
    ordered = canonical_order(es)
    body = canonical_json([e.to_dict() for e in ordered])
    assert ordered_day_hash(previous, ordered) == hashlib.sha256((previous + body).encode()).hexdigest()
