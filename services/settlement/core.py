"""Settlement planning core (SPEC 3.5): which coldkeys are paid how much for which days, as a pure fold over
`day.closed`, `epoch.closed` and `params.updated`.

At the first `epoch.closed` at or after `payout_hour_utc` of each UTC day T, every closed day
D ≤ T − payout_delay_days not yet paid is paid, summed per coldkey with what was carried forward; a sum under
`min_payout_rao` is carried forward (`payout.deferred`). Planned payouts are numbered into batches of
`max_batch` in coldkey order. Holds (`payout.held`) need the chain and are the executor's business.

Decisions where the spec is open (also in the README):
- "At or after payout_hour_utc of day T" is an instant: the run of T happens at the first epoch at or after
  T at that hour, whatever day that epoch falls on. Days T start at the day of the first accepted input of the
  log (billing's first day): settlement `awaits_origin` as billing does. When epochs pause past several such
  instants, the next epoch is the first for each of them and runs them one after another, in day order (each
  with its own minimum check and payout ids).
- The days a run pays are the closed days D ≤ T − delay that the triggering epoch closes or had closed
  (D + 1 00:00 + grace ≤ its closed_at). In `sn51 replay` billing handles an epoch before settlement, so
  they have all arrived; live, `day.closed` can arrive after the epoch, so the run waits (`pending`) until
  billing has closed every such day, and is then planned from the triggering epoch exactly as replay does
  (same ids, same time).
- A coldkey whose sum is 0 gets no event; `billing_days` of a payout are the days that contributed a positive
  payable to it (deferred days included); `hotkeys` the hotkeys it pays for, for the owner check.
- payout_id = uuid5 over the coldkey and the run day T: one payout per coldkey per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import ClassVar

from schemas.envelope import Event, derive, derived_id
from schemas.events import DayClosed, EpochClosed, ParamsUpdated, PayoutDeferred, PayoutPlanned
from schemas.topics import INPUT_TYPES, READS
from schemas.values import day_of, day_start
from services.admission import check_epoch
from services.params import Params, apply_update

SOURCE = "settlement"
ONE_DAY = timedelta(days=1)


@dataclass
class Carry:
    amount: int = 0
    days: set[str] = field(default_factory=set)
    hotkeys: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class PendingRun:
    day: date  # T
    limit: date  # the last day this run may pay
    trigger: Event


class SettlementCore:
    service: ClassVar[str] = "settlement"
    reads: ClassVar[frozenset[str]] = READS["settlement"]

    def __init__(self) -> None:
        self.params = Params()
        self.epochs: set[tuple[int, int]] = set()
        self.unpaid: dict[date, DayClosed] = {}
        self.last_closed: date | None = None
        self.carried: dict[str, Carry] = {}
        self.origin: date | None = None  # the day of the first accepted input of the log: the first day T
        self.next_run: date | None = None  # the next day T whose run is due
        self.closable: date | None = None  # the last day billing has closed, as the epochs so far tell
        self.pending: list[PendingRun] = []

    @property
    def awaits_origin(self) -> bool:
        """No input accepted yet: the next one, of any type, is the first day T with a run (`services.core.takes`)."""
        return self.origin is None

    def handle(self, event: Event) -> list[Event]:
        d = event.data
        if isinstance(d, ParamsUpdated):
            self.params = apply_update(self.params, d)[0]  # refuses (bad_params) before anything changes
            self._note_origin(event)
            return []
        if isinstance(d, EpochClosed):
            check_epoch(d, self.epochs)
            self._note_origin(event)
            return self._epoch_closed(event, d)
        if event.type in INPUT_TYPES:  # the first input of the log, of a type settlement does not read
            self._note_origin(event)
            return []
        if isinstance(d, DayClosed):
            day = date.fromisoformat(d.billing_day)
            self.unpaid[day] = d
            self.last_closed = day if self.last_closed is None else max(self.last_closed, day)
            return self._run_ready()
        return []

    def _note_origin(self, event: Event) -> None:
        """Days T are counted from the day of the first accepted input, as billing counts its days. A rental
        start or stop is never that one (it is refused until a listing precedes it), so it does not count."""
        if self.origin is None and event.type not in ("rental.started", "rental.stopped"):
            self.origin = self.next_run = day_of(event.time)

    def _epoch_closed(self, event: Event, d: EpochClosed) -> list[Event]:
        self.epochs.add((d.netuid, d.epoch))
        assert self.next_run is not None  # the origin is noted before any epoch is handled
        # The last day billing has closed by now, by its own rule (D closes at the first epoch with closed_at ≥
        # D + 1 00:00 + the grace then in force; days never reopen, whatever the grace becomes later).
        closable = (d.closed_at - timedelta(seconds=self.params.day_close_grace_seconds)).date() - ONE_DAY
        self.closable = closable if self.closable is None else max(self.closable, closable)
        due = timedelta(hours=self.params.payout_hour_utc)
        while day_start(self.next_run) + due <= d.closed_at:  # this epoch is the first at or after T's hour
            t = self.next_run
            limit = min(t - timedelta(days=self.params.payout_delay_days), self.closable)
            self.pending.append(PendingRun(t, limit, event))
            self.next_run = t + ONE_DAY
        return self._run_ready()

    def _run_ready(self) -> list[Event]:
        out: list[Event] = []
        while self.pending and self.last_closed is not None and self.last_closed >= self.pending[0].limit:
            out.extend(self._run(self.pending.pop(0)))
        return out

    def _run(self, run: PendingRun) -> list[Event]:
        days = sorted(day for day in self.unpaid if day <= run.limit)
        for day in days:
            for p in self.unpaid.pop(day).providers:
                if p.payable_rao <= 0:
                    continue
                carry = self.carried.setdefault(p.coldkey, Carry())
                carry.amount += p.payable_rao
                carry.days.add(day.isoformat())
                carry.hotkeys.add(p.hotkey)
        planned: list[Event] = []
        deferred: list[Event] = []
        for coldkey in sorted(self.carried):
            carry = self.carried[coldkey]
            if carry.amount <= 0:
                del self.carried[coldkey]
                continue
            payout_id = derived_id("payout", coldkey, run.day.isoformat())
            base = dict(payout_id=payout_id, coldkey=coldkey, billing_days=sorted(carry.days),
                        amount_rao=carry.amount)
            if carry.amount < self.params.min_payout_rao:
                data_d = PayoutDeferred(**base, reason="below_min_payout")  # type: ignore[arg-type]
                deferred.append(derive("payout.deferred", data_d, run.trigger, source=SOURCE, key=coldkey,
                                       discriminator=f"{coldkey}:{run.day.isoformat()}"))
                continue
            batch = len(planned) // self.params.max_batch
            data_p = PayoutPlanned(**base, hotkeys=sorted(carry.hotkeys), batch=batch)  # type: ignore[arg-type]
            planned.append(derive("payout.planned", data_p, run.trigger, source=SOURCE, key=coldkey,
                                  discriminator=f"{coldkey}:{run.day.isoformat()}"))
            del self.carried[coldkey]
        return sorted(planned + deferred, key=lambda e: (e.key, e.type))
