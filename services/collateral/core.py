"""The collateral core: a pure fold over the contract's confirmed logs and the platform's events.

It keeps the collateral of every executor as the `collateral.*` logs tell it (deposited, pending reclaims,
reclaimed, slashed, and its miner's EVM address) and decides, as trustee, what to slash (SPEC 3.6):

- the first `rental.incident` of a rental slashes one day of that rental's fee:
  price_per_gpu_usd × gpu_count × 24 h in USD, converted to wei at the latest `epoch.closed` tao_usd
  (1 TAO = 10**18 wei on the Bittensor EVM), exact, floored;
- a repeat incident on the same rental slashes the whole remaining collateral: `amount_wei` is the balance the
  log shows at that point, and `reason` "repeat_incident" tells the trustee to burn whatever is left on chain
  when it sends (the contract caps a slash at the balance).

Each incident gives exactly one `collateral.slash_requested` (deterministic id from the incident's id), also
when it arrives twice. An incident whose rental has not started yet, or that comes before any price, waits and
is decided when both are known (the derived event keeps the incident's id and time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar

from schemas.envelope import Event, derive
from schemas.events import CollateralLog, CollateralSlashRequested, EpochClosed, RentalIncident
from schemas.topics import READS
from schemas.values import frac
from services.rentals import Rental, RentalBook

WEI_PER_TAO = 10**18
HOURS_PER_DAY = 24
SLASH_REQUESTED = "collateral.slash_requested"
LOG_TYPES = frozenset({
    "collateral.deposited", "collateral.reclaim_started", "collateral.reclaimed", "collateral.reclaim_denied",
    "collateral.slashed",
})
FIRST_INCIDENT = "first_incident"
REPEAT_INCIDENT = "repeat_incident"


@dataclass(slots=True)
class ExecutorCollateral:
    """One executor's collateral as the confirmed logs tell it, in wei."""

    miner: str | None = None
    deposited_wei: int = 0
    reclaimed_wei: int = 0
    slashed_wei: int = 0
    pending: dict[int, int] = field(default_factory=dict)  # reclaim_request_id -> amount_wei

    @property
    def balance_wei(self) -> int:
        return self.deposited_wei - self.reclaimed_wei - self.slashed_wei

    @property
    def pending_reclaim_wei(self) -> int:
        return sum(self.pending.values())


def one_day_fee_wei(rental: Rental, tao_usd: Fraction) -> int:
    """One day of a rental's fee in wei: price_per_gpu_usd × gpu_count × 24 / tao_usd × 10**18, floored."""
    usd_per_day = rental.price * rental.listing.gpu_count * HOURS_PER_DAY
    wei = usd_per_day * WEI_PER_TAO / tao_usd
    return wei.numerator // wei.denominator


class CollateralCore:
    service: ClassVar[str] = "collateral"
    reads: ClassVar[frozenset[str]] = READS["collateral"] | LOG_TYPES

    def __init__(self, chain_id: int) -> None:
        self.chain_id = chain_id
        self.book = RentalBook()
        self.collateral: dict[str, ExecutorCollateral] = {}
        self.tao_usd: Fraction | None = None
        self.incidents_by_rental: dict[str, int] = {}
        self.decided: set[str] = set()  # incident ids already decided
        self.waiting: dict[str, Event] = {}  # incident id -> incident, in arrival order

    def handle(self, event: Event) -> list[Event]:
        d = event.data
        if isinstance(d, CollateralLog):
            self._fold_log(event.type, d)
            return []
        if isinstance(d, EpochClosed):
            price = frac(d.tao_usd)
            if price > 0:
                self.tao_usd = price
            return self._retry_waiting()
        if event.type.startswith(("executor.", "rental.")):
            self.book.check(event)  # refuses (unknown_executor) before anything changes
            if isinstance(d, RentalIncident):
                return self._incident(event, d)
            self.book.apply(event)
            return self._retry_waiting() if event.type == "rental.started" else []
        return []

    def executor(self, executor_id: str) -> ExecutorCollateral:
        return self.collateral.setdefault(executor_id, ExecutorCollateral())

    def _fold_log(self, type_: str, d: CollateralLog) -> None:
        c = self.executor(d.executor_id)
        if type_ == "collateral.deposited":
            c.deposited_wei += d.amount_wei
            c.miner = d.miner_evm_address
        elif type_ == "collateral.reclaim_started" and d.reclaim_request_id is not None:
            c.pending[d.reclaim_request_id] = d.amount_wei
        elif type_ == "collateral.reclaimed":
            if d.reclaim_request_id is not None:
                c.pending.pop(d.reclaim_request_id, None)
            c.reclaimed_wei += d.amount_wei
        elif type_ == "collateral.reclaim_denied" and d.reclaim_request_id is not None:
            c.pending.pop(d.reclaim_request_id, None)
        elif type_ == "collateral.slashed":
            c.slashed_wei += d.amount_wei

    def _incident(self, event: Event, d: RentalIncident) -> list[Event]:
        if event.id in self.decided or event.id in self.waiting:
            return []
        rental = self.book.rentals.get(d.rental_id)
        if rental is None or self.tao_usd is None:
            self.waiting[event.id] = event
            return []
        return [self._decide(event, d, rental, self.tao_usd)]

    def _retry_waiting(self) -> list[Event]:
        out: list[Event] = []
        for incident_id, event in list(self.waiting.items()):
            d = event.data
            assert isinstance(d, RentalIncident)
            rental = self.book.rentals.get(d.rental_id)
            if rental is not None and self.tao_usd is not None:
                del self.waiting[incident_id]
                out.append(self._decide(event, d, rental, self.tao_usd))
        return out

    def _decide(self, event: Event, d: RentalIncident, rental: Rental, tao_usd: Fraction) -> Event:
        self.decided.add(event.id)
        count = self.incidents_by_rental.get(d.rental_id, 0) + 1
        self.incidents_by_rental[d.rental_id] = count
        c = self.executor(rental.executor_id)
        if count == 1:
            amount, reason = one_day_fee_wei(rental, tao_usd), FIRST_INCIDENT
        else:
            amount, reason = max(c.balance_wei, 0), REPEAT_INCIDENT
        data = CollateralSlashRequested(
            executor_id=rental.executor_id, miner_evm_address=c.miner, amount_wei=amount,
            rental_id=d.rental_id, incident_id=event.id, reason=reason, chain_id=self.chain_id,
        )
        return derive(SLASH_REQUESTED, data, event, source="collateral", key=rental.executor_id)
