"""The refusals that depend on what the log said before (SPEC section 2): `unknown_executor`,
`duplicate_epoch`, `bad_prices`, and a `params.updated` that does not fit the current model table.

Decided when an event arrives, against what has been admitted before it, so that a core may defer the money
work of an admitted event (billing waits for an epoch's split) and still refuse exactly what the replay
refuses. `admit` raises `Refused` and then changes nothing.
"""

from __future__ import annotations

from collections.abc import Container

from schemas.codec import Refused
from schemas.envelope import Event
from schemas.events import EpochClosed, ExecutorListed, ParamsUpdated
from schemas.values import frac
from services.params import Params, apply_update
from services.rentals import require_listed

ALPHA_SUPPLY_RAO = 21_000_000 * 10**9
"""A subnet's alpha is capped at 21 million, as TAO is: no epoch emits more. Beyond the spec's `bad_prices`
(a refusal rather than a ledger whose day sums outgrow PostgreSQL's bigint and stop billing at its write)."""


def check_epoch(d: EpochClosed, seen: Container[tuple[int, int]]) -> None:
    """SPEC 3.3: one epoch.closed per (netuid, epoch) (`duplicate_epoch`), with positive prices and a
    non-negative emission (`bad_prices`). Every core that reads epoch.closed refuses through this."""
    if (d.netuid, d.epoch) in seen:
        raise Refused("duplicate_epoch", f"epoch {d.epoch} of netuid {d.netuid} was already closed")
    if frac(d.tao_usd) <= 0 or frac(d.alpha_tao) <= 0 or d.miner_emission_rao < 0:
        raise Refused("bad_prices", f"tao_usd {d.tao_usd}, alpha_tao {d.alpha_tao}, "
                                    f"miner_emission_rao {d.miner_emission_rao}")
    if d.miner_emission_rao > ALPHA_SUPPLY_RAO:
        raise Refused("bad_prices", f"miner_emission_rao {d.miner_emission_rao} is more than alpha's whole supply "
                                    f"({ALPHA_SUPPLY_RAO} rao)")


class Admission:
    def __init__(self) -> None:
        self.listed: set[str] = set()  # executors ever listed
        self.epochs: set[tuple[int, int]] = set()
        self.params = Params()

    def admit(self, event: Event) -> None:
        require_listed(event, self.listed)
        d = event.data
        if isinstance(d, ExecutorListed):
            self.listed.add(d.executor_id)
        elif isinstance(d, EpochClosed):
            check_epoch(d, self.epochs)
            self.epochs.add((d.netuid, d.epoch))
        elif isinstance(d, ParamsUpdated):
            self.params = apply_update(self.params, d)[0]
