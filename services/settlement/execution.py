"""The payout execution state machine: pure records and transitions, no I/O.

A payout goes planned → submitting (a batch intent with its signed extrinsic hash is stored) → confirmed, or
is held by a guard, or failed after its per-recipient retries. A batch goes intent → landed | failed.
Every transition is a `Change` (records to upsert, events to publish) that the shell commits atomically
*before* it acts on the chain, so what is sent is always stored first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas.envelope import Event, derived_id
from schemas.events import (
    Data,
    PayoutConfirmed,
    PayoutFailed,
    PayoutHeld,
    PayoutPlanned,
    PayoutSubmitted,
)
from schemas.values import day_of
from services.settlement.chain import Landing, SignedBatch, Transfer

SOURCE = "settlement"


class PayoutState(StrEnum):
    PLANNED = "planned"
    SUBMITTING = "submitting"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    HELD = "held"


class BatchState(StrEnum):
    INTENT = "intent"
    LANDED = "landed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PlannedPayout:
    """A `payout.planned` as the executor needs it: the run is the event that caused the plan."""

    payout_id: str
    coldkey: str
    billing_days: tuple[str, ...]
    amount_rao: int
    hotkeys: tuple[str, ...]
    batch: int
    run_id: str
    run_day: str
    event_id: str
    time: datetime

    @classmethod
    def from_event(cls, event: Event) -> PlannedPayout:
        data = event.data
        if not isinstance(data, PayoutPlanned):
            raise TypeError(f"not a payout.planned: {event.type}")
        return cls(
            payout_id=data.payout_id,
            coldkey=data.coldkey,
            billing_days=tuple(data.billing_days),
            amount_rao=data.amount_rao,
            hotkeys=tuple(data.hotkeys),
            batch=data.batch,
            run_id=event.causation_id or event.id,
            run_day=day_of(event.time).isoformat(),
            event_id=event.id,
            time=event.time,
        )


@dataclass(frozen=True, slots=True)
class PayoutRecord:
    planned: PlannedPayout
    state: PayoutState = PayoutState.PLANNED
    batch_id: str | None = None
    isolated: bool = False  # after a failed batch it is paid alone
    failures: int = 0  # failed single-recipient attempts
    extrinsic_hash: str | None = None
    block_hash: str | None = None
    block_number: int | None = None
    reason: str | None = None

    @property
    def payout_id(self) -> str:
        return self.planned.payout_id

    @property
    def transfer(self) -> Transfer:
        return Transfer(self.planned.coldkey, self.planned.amount_rao)


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One batch extrinsic and every signed attempt of it (all attempts share `nonce` until the chain has
    used that nonce for something else, so at most one of them can ever land)."""

    batch_id: str
    run_id: str
    payout_ids: tuple[str, ...]
    transfers: tuple[Transfer, ...]
    nonce: int
    from_block: int
    hashes: tuple[str, ...]
    state: BatchState = BatchState.INTENT
    extrinsic_hash: str | None = None
    block_hash: str | None = None
    block_number: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """What one transition writes, atomically: records to upsert and events for the outbox."""

    payouts: tuple[PayoutRecord, ...] = ()
    batches: tuple[BatchRecord, ...] = ()
    events: tuple[Event, ...] = ()


# --- events --------------------------------------------------------------------------------------------------


def _event(type_: str, data: Data, p: PlannedPayout, discriminator: str = "") -> Event:
    return Event(
        id=derived_id(type_, p.event_id, discriminator),
        type=type_,
        source=SOURCE,
        time=p.time,
        key=p.coldkey,
        causation_id=p.event_id,
        data=data,
    )


def _base(p: PlannedPayout) -> dict[str, Any]:
    return {
        "payout_id": p.payout_id,
        "coldkey": p.coldkey,
        "billing_days": list(p.billing_days),
        "amount_rao": p.amount_rao,
    }


# --- guards --------------------------------------------------------------------------------------------------


def owner_mismatches(
    records: Iterable[PayoutRecord], owners: Mapping[str, str | None]
) -> list[tuple[PayoutRecord, str]]:
    """Payouts whose coldkey is not the on-chain owner of every hotkey they pay for (or that name no hotkey,
    or no positive amount), with the reason."""
    out: list[tuple[PayoutRecord, str]] = []
    for r in records:
        if r.planned.amount_rao <= 0:
            out.append((r, f"bad_amount: {r.planned.amount_rao} rao"))
            continue
        if not r.planned.hotkeys:
            out.append((r, "owner_unknown: the payout names no hotkey"))
            continue
        for hk in r.planned.hotkeys:
            owner = owners.get(hk)
            if owner != r.planned.coldkey:
                out.append((r, f"owner_mismatch: hotkey {hk} is owned by {owner or 'nobody'} on chain"))
                break
    return out


def run_refusal(total_rao: int, available_rao: int, committed_today_rao: int, ceiling_rao: int | None) -> str | None:
    """Why a whole run must not be sent, or None."""
    if total_rao > available_rao:
        return f"insufficient_stake: run total {total_rao} rao > {available_rao} rao on the payout hotkey"
    if ceiling_rao is not None and committed_today_rao + total_rao > ceiling_rao:
        return (
            f"daily_ceiling: {committed_today_rao} rao already sent today + run total {total_rao} rao"
            f" > ceiling {ceiling_rao} rao"
        )
    return None


def hold(records: Iterable[tuple[PayoutRecord, str]]) -> Change:
    held: list[PayoutRecord] = []
    events: list[Event] = []
    for r, reason in records:
        held.append(replace(r, state=PayoutState.HELD, reason=reason))
        events.append(_event("payout.held", PayoutHeld(**_base(r.planned), reason=reason), r.planned))
    return Change(payouts=tuple(held), events=tuple(events))


# --- batching ------------------------------------------------------------------------------------------------


def batch_id_of(records: Sequence[PayoutRecord]) -> str:
    """Deterministic and unique per attempt group: the payouts it carries and their failure counts."""
    parts = [f"{r.payout_id}#{r.failures}" for r in records]
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]
    return f"{records[0].planned.run_id}:{digest}"


def schedule(records: Iterable[PayoutRecord], max_batch: int) -> list[list[PayoutRecord]]:
    """Planned payouts in batches: the planner's batches, cut at max_batch; isolated payouts alone."""
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    ordered = sorted(records, key=lambda r: (r.planned.run_id, r.planned.batch, r.payout_id))
    groups: dict[tuple[str, int], list[PayoutRecord]] = {}
    singles: list[list[PayoutRecord]] = []
    for r in ordered:
        if r.isolated:
            singles.append([r])
        else:
            groups.setdefault((r.planned.run_id, r.planned.batch), []).append(r)
    out: list[list[PayoutRecord]] = []
    for members in groups.values():
        out.extend(members[i : i + max_batch] for i in range(0, len(members), max_batch))
    return out + singles


# --- batch transitions ---------------------------------------------------------------------------------------


def intend(records: Sequence[PayoutRecord], signed: SignedBatch, from_block: int) -> Change:
    """Record the intent to send `signed` (its hash and nonce) before it is sent."""
    batch = BatchRecord(
        batch_id=batch_id_of(records),
        run_id=records[0].planned.run_id,
        payout_ids=tuple(r.payout_id for r in records),
        transfers=tuple(r.transfer for r in records),
        nonce=signed.nonce,
        from_block=from_block,
        hashes=(signed.extrinsic_hash,),
    )
    payouts = tuple(
        replace(r, state=PayoutState.SUBMITTING, batch_id=batch.batch_id, extrinsic_hash=signed.extrinsic_hash)
        for r in records
    )
    return Change(payouts=payouts, batches=(batch,), events=_submitted(records, signed.extrinsic_hash))


def reattempt(batch: BatchRecord, records: Sequence[PayoutRecord], signed: SignedBatch) -> Change:
    """A new signed attempt of an unresolved batch, recorded before it is sent."""
    if signed.extrinsic_hash in batch.hashes:
        return Change(batches=(replace(batch, nonce=signed.nonce),))
    updated = replace(batch, nonce=signed.nonce, hashes=(*batch.hashes, signed.extrinsic_hash))
    payouts = tuple(replace(r, extrinsic_hash=signed.extrinsic_hash) for r in records)
    return Change(payouts=payouts, batches=(updated,), events=_submitted(records, signed.extrinsic_hash))


def _submitted(records: Sequence[PayoutRecord], extrinsic_hash: str) -> tuple[Event, ...]:
    return tuple(
        _event(
            "payout.submitted",
            PayoutSubmitted(**_base(r.planned), extrinsic_hash=extrinsic_hash),
            r.planned,
            extrinsic_hash,
        )
        for r in records
    )


def land(batch: BatchRecord, records: Sequence[PayoutRecord], landing: Landing) -> Change:
    """The batch is included with a successful dispatch: every payout of it is confirmed."""
    done = replace(
        batch,
        state=BatchState.LANDED,
        extrinsic_hash=landing.extrinsic_hash,
        block_hash=landing.block_hash,
        block_number=landing.block_number,
    )
    payouts: list[PayoutRecord] = []
    events: list[Event] = []
    for r in records:
        payouts.append(
            replace(
                r,
                state=PayoutState.CONFIRMED,
                extrinsic_hash=landing.extrinsic_hash,
                block_hash=landing.block_hash,
                block_number=landing.block_number,
            )
        )
        data = PayoutConfirmed(
            **_base(r.planned),
            extrinsic_hash=landing.extrinsic_hash,
            block_hash=landing.block_hash,
            block_number=landing.block_number,
        )
        events.append(_event("payout.confirmed", data, r.planned))
    return Change(payouts=tuple(payouts), batches=(done,), events=tuple(events))


def fail(
    batch: BatchRecord,
    records: Sequence[PayoutRecord],
    reason: str,
    max_attempts: int,
    landing: Landing | None = None,
) -> Change:
    """The batch paid no one. A multi-recipient batch splits: each payout is retried alone. A single payout
    counts a failure, and after `max_attempts` of them it fails with the reason."""
    done = replace(
        batch,
        state=BatchState.FAILED,
        reason=reason,
        extrinsic_hash=landing.extrinsic_hash if landing else None,
        block_hash=landing.block_hash if landing else None,
        block_number=landing.block_number if landing else None,
    )
    payouts: list[PayoutRecord] = []
    events: list[Event] = []
    for r in records:
        if len(records) > 1:
            payouts.append(replace(r, state=PayoutState.PLANNED, isolated=True, batch_id=None))
            continue
        failures = r.failures + 1
        if failures >= max_attempts:
            why = f"batch_failed after {failures} attempts: {reason}"
            payouts.append(replace(r, state=PayoutState.FAILED, failures=failures, reason=why))
            events.append(_event("payout.failed", PayoutFailed(**_base(r.planned), reason=why), r.planned))
        else:
            payouts.append(replace(r, state=PayoutState.PLANNED, isolated=True, failures=failures, batch_id=None))
    return Change(payouts=tuple(payouts), batches=(done,), events=tuple(events))


# --- reading the chain after a timeout or a crash ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Landed:
    landing: Landing


@dataclass(frozen=True, slots=True)
class Reverted:
    landing: Landing


@dataclass(frozen=True, slots=True)
class Resend:
    """Not landed: send again with `nonce` (the batch's own while unused, so that at most one attempt can
    land; a fresh one once the chain used the batch's nonce for another extrinsic)."""

    nonce: int


def decide(batch: BatchRecord, landing: Landing | None, chain_nonce: int) -> Landed | Reverted | Resend:
    """What the chain says about an unresolved batch. `chain_nonce` must be read before the block search."""
    if landing is not None:
        return Landed(landing) if landing.success else Reverted(landing)
    if chain_nonce <= batch.nonce:
        return Resend(batch.nonce)
    return Resend(chain_nonce)
