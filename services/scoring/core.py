"""The scoring core: a pure fold over executor.*, rental.*, benchmark.completed, revenue.reported,
params.updated, epoch.closed and collateral.* (SPEC 3.1 to 3.3). It writes score.updated,
gpu_portion.updated and epoch.scored. No I/O, no wall clock, no randomness; exact arithmetic.

Rules where the spec is open (the lead's interpretations):
- Refusals: `unknown_executor` (via `RentalBook.check`) for a rental.started or rental.stopped of an executor
  never listed (an incident is not refused); `bad_params` (via `apply_update`; the range checks are the codec's); on
  `epoch.closed` (`services.admission.check_epoch`): `duplicate_epoch` first (a (netuid, epoch) already accepted), then
  `bad_prices` (tao_usd ≤ 0, alpha_tao ≤ 0 or miner_emission_rao < 0). A refused event changes nothing; a
  refused epoch is not recorded as seen. `bad_netuid` and the other stateless codes belong to the codec.
- Scores: an executor has no score until first computed, and the first computation always emits
  `score.updated`; afterwards it is emitted only when score or reasons change (a new hotkey alone does not).
  Recomputed on `executor.listed` (that executor), on `benchmark.completed` (that executor when it has ever
  been listed; a benchmark of an executor never listed is stored and its download EMA updated, nothing is
  emitted) and on `params.updated` (every executor ever listed, emitted in executor_id order).
  Model, GPU count and listed price from the latest listing; VRAM, matmul, download EMA (over every
  benchmark of the executor) and sysbox from the latest benchmark. data: executor_id, the listing's hotkey,
  score, reasons; key executor_id.
- gpu_portion: see `services.scoring.portions`. A `params.updated` adding a model keeps its `portion`, else
  what revenue reports gave it, else 0. `gpu_portion.updated` {portions: every kept model} is emitted only on
  a revenue report whose total T > 0 (key "gpu_portion").
- Epoch split: see `services.scoring.split`, on an accepted `epoch.closed`, with the state as of that point in
  the log. Taking part: currently listed and score 1. Rented: an active rental (start processed, stop not)
  priced ≥ min_rented_price_rate × the table price of the listing's model. `epoch.scored` (key "netuid-51")
  lists the nodes sorted by executor_id; incentives and shares are rendered with `fmt_decimal` (18 places).
- `collateral.*` is read and changes nothing; `rental.incident` is checked and otherwise ignored.
- Derived ids: `derive(type, data, cause, source="scoring", key, discriminator)`, the discriminator being
  the executor_id for score.updated and "" otherwise. The derived events of one input come in a
  deterministic order (score.updated by executor_id).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import ClassVar, Literal, cast

from schemas.envelope import Cause, Event, derive
from schemas.events import (
    BenchmarkCompleted,
    EpochClosed,
    EpochScored,
    ExecutorListed,
    GpuPortionUpdated,
    ParamsUpdated,
    RevenueReported,
    ScoredNode,
    ScoreUpdated,
    Shares,
)
from schemas.topics import READS
from schemas.values import fmt_decimal, frac
from services.admission import check_epoch
from services.params import DEFAULT_PORTIONS, Params, apply_update
from services.rentals import Listing, RentalBook
from services.scoring.portions import after_revenue, with_models
from services.scoring.scores import Benchmark, BenchmarkFacts, ListingCheck, next_benchmark, reasons
from services.scoring.split import Award, Split, is_rented, rented_floors, split

SOURCE = "scoring"
EPOCH_KEY = "netuid-51"
PORTION_KEY = "gpu_portion"

Score = tuple[Literal[0, 1], tuple[str, ...]]


class ScoringCore:
    service: ClassVar[str] = "scoring"
    reads: ClassVar[frozenset[str]] = READS["scoring"]

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else Params()
        self.book = RentalBook()
        self.portions: dict[str, Fraction] = with_models(DEFAULT_PORTIONS, self.params.models)
        self.benchmarks: dict[str, Benchmark] = {}
        self.scores: dict[str, Score] = {}
        self.epochs: set[tuple[int, int]] = set()
        self.last_split: EpochScored | None = None
        self._checks: dict[str, ListingCheck] = {}  # per executor: what its listing decides

    # --- the fold ------------------------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Event]:
        handler = _HANDLERS.get(event.type)
        return handler(self, event) if handler is not None else []

    def _on_book(self, event: Event) -> list[Event]:
        self.book.check(event)
        self.book.apply(event)
        return []

    def _on_incident(self, event: Event) -> list[Event]:
        self.book.check(event)
        return []

    def _on_listed(self, event: Event) -> list[Event]:
        d = cast(ExecutorListed, event.data)
        self.book.apply(event)
        self._checks.pop(d.executor_id, None)
        out = self._rescore(d.executor_id, event)
        return [out] if out is not None else []

    def _on_benchmark(self, event: Event) -> list[Event]:
        d = cast(BenchmarkCompleted, event.data)
        return self.benchmarked(event, d.executor_id, d)

    def benchmarked(self, cause: Cause, executor_id: str, facts: BenchmarkFacts) -> list[Event]:
        """A `benchmark.completed` of `executor_id`: its facts and the event it is (`cause`). `sn51 replay` calls
        this with facts validated in a second process (`services.benchmark_lines`), without an `Event`."""
        self.benchmarks[executor_id] = next_benchmark(self.benchmarks.get(executor_id), facts)
        if executor_id not in self.book.listings:
            return []
        out = self._rescore(executor_id, cause)
        return [out] if out is not None else []

    def _on_revenue(self, event: Event) -> list[Event]:
        d = cast(RevenueReported, event.data)
        revenue = {name: frac(amount) for name, amount in d.revenue_usd_by_model.items()}
        self.portions, moved = after_revenue(self.portions, revenue, self.params.gpu_portion_alpha)
        if not moved:
            return []
        data = GpuPortionUpdated(portions={m: fmt_decimal(p) for m, p in sorted(self.portions.items())})
        return [derive("gpu_portion.updated", data, event, source=SOURCE, key=PORTION_KEY)]

    def _on_params(self, event: Event) -> list[Event]:
        d = cast(ParamsUpdated, event.data)
        params, given = apply_update(self.params, d)  # raises bad_params before anything changes
        new_models = [m for m in (d.models or {}) if m not in self.params.models]
        self.params = params
        self._checks = {}
        portions = with_models(self.portions, new_models)
        portions.update(given)
        self.portions = portions
        out: list[Event] = []
        for eid in sorted(self.book.listings):  # every executor with a listing, delisted ones too (as benchmarks do)
            ev = self._rescore(eid, event)
            if ev is not None:
                out.append(ev)
        return out

    def _on_epoch(self, event: Event) -> list[Event]:
        d = cast(EpochClosed, event.data)
        check_epoch(d, self.epochs)
        tao_usd, alpha_tao = frac(d.tao_usd), frac(d.alpha_tao)
        self.epochs.add((d.netuid, d.epoch))
        result = split(self.participants(), self.params, self.portions, d.miner_emission_rao,
                       tao_usd, alpha_tao)
        data = epoch_scored(d, result)
        self.last_split = data
        return [derive("epoch.scored", data, event, source=SOURCE, key=EPOCH_KEY)]

    # --- helpers -------------------------------------------------------------------------------------------

    def _rescore(self, eid: str, cause: Cause) -> Event | None:
        listing = self.book.listings[eid]
        check = self._checks.get(eid)
        if check is None:
            check = self._checks[eid] = ListingCheck.of(listing, self.params)
        codes = reasons(check, self.benchmarks.get(eid))
        score: Score = (0 if codes else 1, codes)
        if self.scores.get(eid) == score:
            return None
        self.scores[eid] = score
        data = ScoreUpdated(executor_id=eid, hotkey=listing.hotkey, score=score[0], reasons=list(codes))
        return derive("score.updated", data, cause, source=SOURCE, key=eid, discriminator=eid)

    def participants(self) -> list[tuple[Listing, bool]]:
        """Every executor taking part now (listed, score 1) with whether it is rented."""
        book, scores, floors = self.book, self.scores, rented_floors(self.params)
        out: list[tuple[Listing, bool]] = []
        for eid in book.listed:
            score = scores.get(eid)
            if score is None or score[0] != 1:
                continue
            listing = book.listings[eid]
            active = book.active_by_executor.get(eid)
            rented = bool(active) and is_rented(listing, (book.rentals[r] for r in active or ()), floors)
            out.append((listing, rented))
        return out


_HANDLERS: dict[str, Callable[[ScoringCore, Event], list[Event]]] = {
    "executor.listed": ScoringCore._on_listed,
    "executor.delisted": ScoringCore._on_book,
    "rental.started": ScoringCore._on_book,
    "rental.stopped": ScoringCore._on_book,
    "rental.incident": ScoringCore._on_incident,
    "benchmark.completed": ScoringCore._on_benchmark,
    "revenue.reported": ScoringCore._on_revenue,
    "params.updated": ScoringCore._on_params,
    "epoch.closed": ScoringCore._on_epoch,
}
"""Per event type, what the core does; every other type it reads (collateral.*) changes nothing."""


def epoch_scored(d: EpochClosed, result: Split) -> EpochScored:
    """The `epoch.scored` data of a split: decimals with `fmt_decimal`, nodes by executor_id."""
    rendered: dict[Award, str] = {}
    nodes: list[ScoredNode] = []
    for node in result.nodes:
        award = node.award
        inc = rendered.get(award)
        if inc is None:
            inc = rendered[award] = fmt_decimal(award.incentive)
        nodes.append(ScoredNode(
            executor_id=node.listing.executor_id, hotkey=node.listing.hotkey, pool=award.pool,
            incentive=inc, alpha_rao=award.alpha_rao, reason=award.reason,
        ))
    shares = Shares(rented=fmt_decimal(result.rented), unrented=fmt_decimal(result.unrented),
                    burn=fmt_decimal(result.burn))
    return EpochScored(netuid=d.netuid, epoch=d.epoch, closed_at=d.closed_at,
                       miner_emission_rao=d.miner_emission_rao, shares=shares, nodes=nodes,
                       burn_rao=result.burn_rao)
