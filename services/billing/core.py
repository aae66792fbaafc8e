"""Billing core (SPEC 3.4): a pure fold from rentals and epoch splits to each provider's earnings, day by day.

Decisions where the spec is open (also in the README):
- "The first accepted event in the log" is the first input event accepted, of any type: billing `awaits_origin`
  until it has one, and the pipeline and the runtime hand it that event even when it is of a type billing does
  not read (a benchmark, a revenue report); it sets the day origin and nothing else, and the live service
  keeps it in its inbox, so a rebuild finds the same origin.
- Refusals: `unknown_executor` for a rental.started or rental.stopped of an executor never listed (SPEC: "a
  rental (or stop)"; an incident is taken and forfeits its executor's day);
  `duplicate_epoch` then `bad_prices` on epoch.closed, as scoring does; `bad_params` (`services/admission.py`).
- Order: billing handles an epoch's `epoch.scored` right before its `epoch.closed`, as the replay does. Live, the
  two come from different topics in either order, so (with `await_scores`, the default) an `epoch.closed`
  waits for its split and the inputs after it wait with it; a split that comes first waits for its epoch.
  Refusals are still decided on arrival. The statements are then the replay's, whatever the interleaving.
- An open rental (no stop yet) is charged to the end of the day being closed.
- A `collateral.slashed` counts on the day of its event time (the oldest open day if that one is closed),
  for the hotkey of its executor's latest listing; one for an executor never listed is shown on no statement.
- Adjustments are not forfeited by an incident on the open day they are booked on: they correct an earlier
  day, they are not earnings of the open day.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import ClassVar

from schemas.envelope import EVENT_FIELDS, Event, derive
from schemas.events import (
    CollateralLog,
    DayClosed,
    DayPrices,
    EpochClosed,
    EpochScored,
    ExecutorListed,
    ParamsUpdated,
    ProviderStatement,
    RentalIncident,
)
from schemas.plain import PlainDeriver
from schemas.topics import INPUT_TYPES, READS
from schemas.values import day_of, day_start, fmt_decimal, frac
from services.admission import Admission
from services.billing.fees import ONE_DAY, charge_usd_micros, days_touched, provider_part
from services.billing.ledger import GENESIS_HASH, PLATFORM, Entry, canonical_order, ordered_day_hash, provider
from services.billing.prices import PriceBook
from services.params import Params, apply_update
from services.rentals import Rental, RentalBook, RentalChange

SOURCE = "billing"

_ACCRUED = PlainDeriver("earnings.accrued")
"""`earnings.accrued`, one per paid node and epoch (the most frequent event), validated from a dict and written
from it (`schemas.plain`): the same validation and bytes as `derive` with the model's constructor, a quarter
fewer instructions (no constructor frame and keywords, no model serialized again)."""

ExecutorDay = tuple[str, date]


class ClosedDayEvent(Event, frozen=True):
    """A derived `day.closed` with what its statement stands on but does not publish: the day's ledger entries
    in canonical order and the hash they are chained from. The projection stores them with the statement,
    from the event alone (it may write a batch while the core has moved on to the next one); `encode` writes
    only the envelope fields, so the published event is an ordinary `day.closed`."""

    entries: tuple[Entry, ...] = ()
    previous_hash: str = GENESIS_HASH


@dataclass
class OpenDay:
    """What has been booked on a day that has not closed yet."""

    emission: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))  # (hk, ex)
    adjustment_rao: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # hotkey -> rao
    adjustment_usd: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # hotkey -> µUSD
    slashed_wei: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    entries: list[Entry] = field(default_factory=list)


@dataclass
class ClosedDay:
    """What a closed day paid, per executor, kept so that late events can be turned into adjustments."""

    rate: Fraction
    emission: dict[str, dict[str, int]] = field(default_factory=dict)  # ex -> hk -> rao
    fees: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)  # ex -> rental -> (hk, part)


class BillingCore:
    service: ClassVar[str] = "billing"
    reads: ClassVar[frozenset[str]] = READS["billing"]

    def __init__(self, *, await_scores: bool = True) -> None:
        self.await_scores = await_scores
        self.admission = Admission()
        self.blocked: tuple[tuple[int, int], Event] | None = None  # an epoch.closed waiting for its split
        self.queue: list[Event] = []  # admitted inputs after it, in order
        self.early_scores: dict[tuple[int, int], Event] = {}  # splits that came before their epoch.closed
        self.params = Params()
        self.book = RentalBook()
        self.first_day: date | None = None
        self.next_day: date | None = None  # the oldest open day
        self.prices = PriceBook()
        self.coldkeys: dict[str, str] = {}  # hotkey -> coldkey of its latest listing
        self.open: dict[date, OpenDay] = {}
        self.closed: dict[date, ClosedDay] = {}
        self.forfeited: set[ExecutorDay] = set()
        self.carried: dict[str, int] = {}
        self.live_rentals: set[str] = set()  # rentals that may still overlap an open day
        self.last_hash = GENESIS_HASH
        self.statements: dict[date, DayClosed] = {}

    # -- the fold -------------------------------------------------------------------------------------------

    @property
    def awaits_origin(self) -> bool:
        """No input event accepted yet: the next one, of any type, sets the day origin (`services.core.takes`)."""
        return self.first_day is None

    def handle(self, event: Event) -> list[Event]:
        read = event.type in self.reads
        if read:
            self.admission.admit(event)  # refusals: raises, and then nothing has changed
        if self.first_day is None and event.type in INPUT_TYPES:  # the log's first accepted input: the day origin
            self.first_day = self.next_day = day_of(event.time)
        if not read:
            return []  # an input of a type billing does not read, handed over for the origin alone
        if not self.await_scores:
            return self._process(event)
        d = event.data
        if isinstance(d, EpochScored):
            key = (d.netuid, d.epoch)
            if self.blocked is None or self.blocked[0] != key:
                self.early_scores[key] = event  # its epoch.closed has not been reached in the input yet
                return []
            closed, queued = self.blocked[1], self.queue
            self.blocked, self.queue = None, []
            out = self._process(event) + self._process(closed)
            for i, waiting in enumerate(queued):
                if self.blocked is not None:
                    self.queue.extend(queued[i:])
                    break
                out += self._dispatch(waiting)
            return out
        if self.blocked is not None:
            self.queue.append(event)
            return []
        return self._dispatch(event)

    def _dispatch(self, event: Event) -> list[Event]:
        """An admitted input event, in input order: an epoch.closed waits for its split (`epoch.scored`), which
        billing handles right before it, as the replay does; the inputs after it wait with it."""
        d = event.data
        if isinstance(d, EpochClosed):
            scored = self.early_scores.pop((d.netuid, d.epoch), None)
            if scored is None:
                self.blocked = ((d.netuid, d.epoch), event)
                return []
            return self._process(scored) + self._process(event)
        return self._process(event)

    def _process(self, event: Event) -> list[Event]:
        d = event.data
        if self.first_day is None:
            self.first_day = self.next_day = day_of(event.time)
        if isinstance(d, ParamsUpdated):
            self.params = apply_update(self.params, d)[0]
            return []
        if isinstance(d, EpochClosed):
            return self._epoch_closed(event, d)
        if isinstance(d, EpochScored):
            return self._epoch_scored(event, d)
        if isinstance(d, RentalIncident):
            return self._incident(event, d)
        if isinstance(d, CollateralLog):
            if event.type == "collateral.slashed":
                self._slashed(event, d)
            return []
        if isinstance(d, ExecutorListed):
            self.coldkeys[d.hotkey] = d.coldkey
        change = self.book.apply(event)
        return self._rental_changed(event, change) if change is not None else []

    # -- epochs and days ------------------------------------------------------------------------------------

    def _epoch_closed(self, event: Event, d: EpochClosed) -> list[Event]:
        self.prices.add(d.closed_at, frac(d.tao_usd), frac(d.alpha_tao))
        out: list[Event] = []
        grace = timedelta(seconds=self.params.day_close_grace_seconds)
        assert self.next_day is not None
        while d.closed_at >= day_start(self.next_day) + ONE_DAY + grace:
            out.extend(self._close_day(event, d))
        return out

    def _epoch_scored(self, event: Event, d: EpochScored) -> list[Event]:
        assert self.next_day is not None
        day = max(d.closed_at.date(), self.next_day)
        book = self._open_day(day)
        iso = day.isoformat()
        out: list[Event] = []
        for node in d.nodes:
            if node.alpha_rao <= 0:
                continue
            book.emission[(node.hotkey, node.executor_id)] += node.alpha_rao
            book.entries.append(Entry("emission", "rao", "emission", provider(node.hotkey), node.executor_id,
                                      event.id, iso, node.alpha_rao))  # alpha_rao > 0: `Entry.move`'s direction
            out.append(self._accrued(event, node.hotkey, node.executor_id, iso, "emission", event.id,
                                     rao=node.alpha_rao))
        burn = Entry.move(iso, "emission", "burn", d.burn_rao, "rao", "burn", event.id)
        if burn is not None:
            book.entries.append(burn)
        return out

    def _open_day(self, day: date) -> OpenDay:
        book = self.open.get(day)
        if book is None:
            book = self.open[day] = OpenDay()
        return book

    def _close_day(self, cause: Event, epoch: EpochClosed) -> list[Event]:
        assert self.next_day is not None
        day = self.next_day
        iso = day.isoformat()
        rate = self.params.rental_fees_rate
        book = self.open.pop(day, None) or OpenDay()
        closed = ClosedDay(rate)
        out: list[Event] = []
        entries = list(book.entries)
        fee: dict[str, int] = defaultdict(int)
        emission: dict[str, int] = defaultdict(int)
        f_rao: dict[str, int] = defaultdict(int)
        f_usd: dict[str, int] = defaultdict(int)

        for rental_id in sorted(self.live_rentals):
            rental = self.book.rentals[rental_id]
            charge = charge_usd_micros(rental, day)
            if charge == 0:
                continue
            part = provider_part(charge, rate)
            hk, ex = rental.listing.hotkey, rental.executor_id
            forfeited = (ex, day) in self.forfeited
            if not forfeited:  # what the day pays, for late changes; a forfeited executor-day pays nothing
                closed.fees.setdefault(ex, {})[rental_id] = (hk, part)
            fee[hk] += part
            for e in (Entry.move(iso, "renter_charges", provider(hk), part, "usd_micros", "rental_fee",
                                 rental.start_event_id, ex),
                      Entry.move(iso, "renter_charges", PLATFORM, charge - part, "usd_micros",
                                 "platform_fee", rental.start_event_id, ex)):
                if e is not None:
                    entries.append(e)
            if part:
                out.append(self._accrued(cause, hk, ex, iso, "rental_fee", rental.start_event_id,
                                         usd=part, tag=rental_id))
            if forfeited:
                f_usd[hk] += part
                forfeit = Entry.move(iso, provider(hk), PLATFORM, part, "usd_micros", "forfeit",
                                     rental.start_event_id, ex)
                if forfeit is not None:
                    entries.append(forfeit)
        self._prune_live(day + ONE_DAY)

        for (hk, ex), rao in sorted(book.emission.items()):
            emission[hk] += rao
            if (ex, day) in self.forfeited:
                f_rao[hk] += rao
                forfeit = Entry.move(iso, provider(hk), PLATFORM, rao, "rao", "forfeit", cause.id, ex)
                assert forfeit is not None
                entries.append(forfeit)
            else:
                paid = closed.emission.setdefault(ex, {})
                paid[hk] = paid.get(hk, 0) + rao
        adj_rao, adj_usd = book.adjustment_rao, book.adjustment_usd

        tao_usd, alpha_tao = self.prices.for_day(day, fallback=(frac(epoch.tao_usd), frac(epoch.alpha_tao)))
        hotkeys = sorted(set(fee) | set(emission) | set(adj_rao) | set(adj_usd)
                         | {hk for hk, c in self.carried.items() if c})
        providers: list[ProviderStatement] = []
        for hk in hotkeys:
            carried_in = self.carried.get(hk, 0)
            usd = fee[hk] - f_usd[hk] + adj_usd[hk]
            usd_rao = math.floor(Fraction(usd * 1000) / (tao_usd * alpha_tao))
            rao = emission[hk] - f_rao[hk] + adj_rao[hk] + carried_in + usd_rao
            payable, carried = max(rao, 0), min(rao, 0)
            figures = (emission[hk], fee[hk], f_rao[hk], f_usd[hk], adj_rao[hk], adj_usd[hk], carried_in,
                       payable, carried)
            if carried:
                self.carried[hk] = carried
            else:
                self.carried.pop(hk, None)
            if not any(figures):
                continue
            for e in (Entry.move(iso, provider(hk), PLATFORM, usd, "usd_micros", "conversion", cause.id),
                      Entry.move(iso, PLATFORM, provider(hk), usd_rao, "rao", "conversion", cause.id)):
                if e is not None:
                    entries.append(e)
            providers.append(ProviderStatement(
                hotkey=hk, coldkey=self.coldkeys.get(hk, ""), emission_rao=emission[hk],
                rental_fee_usd_micros=fee[hk], forfeited_rao=f_rao[hk], forfeited_usd_micros=f_usd[hk],
                adjustment_rao=adj_rao[hk], adjustment_usd_micros=adj_usd[hk], payable_rao=payable,
                carried_rao=carried, slashed_wei=book.slashed_wei.get(hk, 0),
            ))

        ordered = canonical_order(entries)
        previous_hash, self.last_hash = self.last_hash, ordered_day_hash(self.last_hash, ordered)
        statement = DayClosed(
            billing_day=iso,
            prices=DayPrices(tao_usd=fmt_decimal(tao_usd), alpha_tao=fmt_decimal(alpha_tao)),
            providers=providers,
            ledger_hash=self.last_hash,
        )
        self.closed[day] = closed
        self.statements[day] = statement
        self.next_day = day + ONE_DAY
        closed_event = derive("day.closed", statement, cause, source=SOURCE, key="billing", discriminator=iso)
        out.append(ClosedDayEvent(**{f: getattr(closed_event, f) for f in EVENT_FIELDS},
                                  entries=ordered, previous_hash=previous_hash))
        return out

    def _prune_live(self, open_from: date) -> None:
        start = day_start(open_from)
        for rental_id in list(self.live_rentals):
            stop = self.book.rentals[rental_id].stopped_at
            if stop is not None and stop <= start:
                self.live_rentals.discard(rental_id)

    # -- late and out-of-order events -----------------------------------------------------------------------

    def _rental_changed(self, event: Event, change: RentalChange) -> list[Event]:
        after = change.after
        assert self.next_day is not None and self.first_day is not None
        if after.stopped_at is None or after.stopped_at > day_start(self.next_day):
            self.live_rentals.add(after.rental_id)
        if not self.closed:
            return []
        last_closed = self.next_day - ONE_DAY
        days: set[date] = set(days_touched(after.started_at, after.stopped_at, self.first_day, last_closed))
        if change.before is not None:
            b = change.before
            days |= set(days_touched(b.started_at, b.stopped_at, self.first_day, last_closed))
        out: list[Event] = []
        for day in sorted(days):
            out.extend(self._reprice(event, after, day))
        return out

    def _reprice(self, event: Event, rental: Rental, day: date) -> list[Event]:
        ex = rental.executor_id
        if (ex, day) in self.forfeited:
            return []  # a change to a forfeited executor-day is 0
        closed = self.closed[day]
        hk = rental.listing.hotkey
        old = closed.fees.get(ex, {}).get(rental.rental_id, (hk, 0))[1]
        new = provider_part(charge_usd_micros(rental, day), closed.rate)
        if new == old:
            return []
        closed.fees.setdefault(ex, {})[rental.rental_id] = (hk, new)
        return [self._adjust(event, hk, ex, usd=new - old, tag=f"{rental.rental_id}:{day.isoformat()}")]

    def _incident(self, event: Event, d: RentalIncident) -> list[Event]:
        day = d.at.date()
        assert self.next_day is not None and self.first_day is not None
        ex = d.executor_id
        if day < self.first_day or (ex, day) in self.forfeited:
            return []
        self.forfeited.add((ex, day))
        if day >= self.next_day:
            return []  # forfeited when the day closes
        closed = self.closed[day]
        out: list[Event] = []
        for hk, rao in sorted(closed.emission.pop(ex, {}).items()):
            if rao:
                out.append(self._adjust(event, hk, ex, rao=-rao, tag=f"emission:{day.isoformat()}"))
        usd_by_hk: dict[str, int] = defaultdict(int)
        for hk, part in closed.fees.pop(ex, {}).values():
            usd_by_hk[hk] += part
        for hk, usd in sorted(usd_by_hk.items()):
            if usd:
                out.append(self._adjust(event, hk, ex, usd=-usd, tag=f"fees:{day.isoformat()}"))
        return out

    def _adjust(self, event: Event, hk: str, ex: str, *, rao: int = 0, usd: int = 0, tag: str) -> Event:
        assert self.next_day is not None
        day = self.next_day
        book = self._open_day(day)
        iso = day.isoformat()
        if rao:
            book.adjustment_rao[hk] += rao
            entry = Entry.move(iso, PLATFORM, provider(hk), rao, "rao", "adjustment", event.id, ex)
        else:
            book.adjustment_usd[hk] += usd
            entry = Entry.move(iso, "renter_charges", provider(hk), usd, "usd_micros", "adjustment",
                               event.id, ex)
        assert entry is not None
        book.entries.append(entry)
        return self._accrued(event, hk, ex, iso, "adjustment", event.id,
                             rao=rao if rao else None, usd=usd if not rao else None, tag=tag)

    def _slashed(self, event: Event, d: CollateralLog) -> None:
        listing = self.book.listings.get(d.executor_id)
        if listing is None:
            return
        assert self.next_day is not None
        day = max(day_of(event.time), self.next_day)
        book = self._open_day(day)
        book.slashed_wei[listing.hotkey] += d.amount_wei

    # -- derived events -------------------------------------------------------------------------------------

    def _accrued(self, cause: Event, hk: str, ex: str, day: str, kind: str, cause_id: str, *,
                 rao: int | None = None, usd: int | None = None, tag: str = "") -> Event:
        fields: dict[str, object] = {"hotkey": hk, "executor_id": ex, "billing_day": day, "kind": kind,
                                     "cause_id": cause_id}
        if rao is not None:
            fields["amount_rao"] = rao
        if usd is not None:
            fields["amount_usd_micros"] = usd
        return _ACCRUED.derive(fields, cause, SOURCE, hk, f"{kind}:{ex}:{day}:{tag}")


