"""The refusals that depend on what the log said before (SPEC section 2): `unknown_executor`,
`duplicate_epoch`, `bad_prices`, and a `params.updated` that does not fit the current model table.

Decided when an event arrives, against what has been admitted before it, so that a core may defer the money
work of an admitted event (billing waits for an epoch's split) and still refuse exactly what the replay
refuses. `admit` raises `Refused` and then changes nothing.
"""

from __future__ import annotations

from schemas.codec import Refused
from schemas.envelope import Event
from schemas.events import EpochClosed, ExecutorListed, ParamsUpdated, RentalIncident, RentalStarted, RentalStopped
from schemas.values import frac
from services.params import Params, apply_update


def check_epoch(d: EpochClosed, seen: set[tuple[int, int]]) -> None:
    if (d.netuid, d.epoch) in seen:
        raise Refused("duplicate_epoch", f"epoch {d.epoch} of netuid {d.netuid} was already closed")
    if frac(d.tao_usd) <= 0 or frac(d.alpha_tao) <= 0 or d.miner_emission_rao < 0:
        raise Refused("bad_prices", f"tao_usd {d.tao_usd}, alpha_tao {d.alpha_tao}, "
                                    f"miner_emission_rao {d.miner_emission_rao}")


class Admission:
    def __init__(self) -> None:
        self.listed: set[str] = set()  # executors ever listed
        self.epochs: set[tuple[int, int]] = set()
        self.params = Params()

    def admit(self, event: Event) -> None:
        d = event.data
        if isinstance(d, RentalStarted | RentalStopped | RentalIncident):
            if d.executor_id not in self.listed:
                raise Refused("unknown_executor", f"executor {d.executor_id} was never listed")
        elif isinstance(d, ExecutorListed):
            self.listed.add(d.executor_id)
        elif isinstance(d, EpochClosed):
            check_epoch(d, self.epochs)
            self.epochs.add((d.netuid, d.epoch))
        elif isinstance(d, ParamsUpdated):
            self.params = apply_update(self.params, d)[0]
