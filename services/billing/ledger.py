"""The double-entry ledger underneath billing: every entry moves a positive amount of one unit from a debit
account to a credit account and names the event that caused it (its `kind` says why).

Accounts: `emission` (the subnet's miner emission, rao), `burn`, `renter_charges` (renters' debt, micro-USD),
`provider:<hotkey>`, and `platform` (SPEC 3.4: its fee share, forfeits and sub-rao remainders stay with it; a
day's USD → alpha conversion moves a provider's USD to the platform and alpha back). A day's entries are
hashed in canonical JSON, chained to the previous day's hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from schemas.envelope import canonical_bytes

GENESIS_HASH = "0" * 64
PLATFORM = "platform"


def provider(hotkey: str) -> str:
    return f"provider:{hotkey}"


class Entry(NamedTuple):
    """One movement. A named tuple, not a frozen dataclass: a busy day books one per node and epoch, and a
    tuple is built several times faster. Its fields are in the canonical order (kind, unit, debit, credit,
    executor_id, cause_id, day, amount), so entries sort as tuples in it, a third faster than by a key."""

    kind: str
    unit: str  # "rao" | "usd_micros"
    debit: str
    credit: str
    executor_id: str
    cause_id: str
    day: str
    amount: int

    @staticmethod
    def move(day: str, src: str, dst: str, amount: int, unit: str, kind: str, cause_id: str,
             executor_id: str = "") -> Entry | None:
        """`amount` from `src` to `dst`; a negative amount moves the other way; zero books nothing."""
        if amount == 0:
            return None
        if amount < 0:
            src, dst, amount = dst, src, -amount
        return Entry(kind, unit, src, dst, executor_id, cause_id, day, amount)

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def canonical_order(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    """A day's entries in the order its hash covers and its rows are numbered: as tuples (see `Entry`)."""
    return tuple(sorted(entries))


def day_hash(previous: str, entries: Iterable[Entry]) -> str:
    return ordered_day_hash(previous, canonical_order(entries))


def ordered_day_hash(previous: str, ordered: Sequence[Entry]) -> str:
    """`day_hash` of entries already in `canonical_order`: each entry as the JSON object of its fields
    (`to_dict`), each dict built from the unpacked tuple, in 60 % of `_asdict`'s time (a day holds tens of
    thousands of entries; a field added to `Entry` fails the unpacking loudly, and a test holds the two
    together)."""
    body = canonical_bytes([
        {"kind": kind, "unit": unit, "debit": debit, "credit": credit, "executor_id": executor_id,
         "cause_id": cause_id, "day": day, "amount": amount}
        for kind, unit, debit, credit, executor_id, cause_id, day, amount in ordered
    ])
    return hashlib.sha256(previous.encode() + body).hexdigest()


def balances(entries: list[Entry]) -> dict[tuple[str, str], int]:
    """Net balance per (account, unit): credits minus debits. Over any set of entries they sum to zero."""
    out: dict[tuple[str, str], int] = {}
    for e in entries:
        out[(e.credit, e.unit)] = out.get((e.credit, e.unit), 0) + e.amount
        out[(e.debit, e.unit)] = out.get((e.debit, e.unit), 0) - e.amount
    return out
