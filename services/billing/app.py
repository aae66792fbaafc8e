"""The billing service process: `sn51 service billing` runs `SPEC` with the shared runtime.

The projection needs the live core (a closed day's ledger entries are in `BillingCore.closed_entries`, not in
the `day.closed` event), so `make_spec` binds a `Projection` to the core the runtime creates through
`core_factory`. Each spec has its own projection: build one spec per service run (`make_spec()`), as the
module-level `SPEC` is for the one process `sn51 service billing` starts.
"""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from schemas.envelope import Event
from schemas.events import DayClosed
from services.billing.api import router
from services.billing.core import BillingCore
from services.billing.ledger import GENESIS_HASH
from services.billing.store import MIGRATIONS, last_hash, store_day, store_earnings
from services.runtime.service import ServiceSpec

API_PORT = 8152


class Projection:
    """Writes billing's read model from the derived events of each accepted event (same transaction)."""

    def __init__(self) -> None:
        self.core: BillingCore | None = None

    def new_core(self) -> BillingCore:
        self.core = BillingCore()
        return self.core

    async def project(self, conn: asyncpg.Connection, event: Event, derived: list[Event]) -> None:
        if not derived:
            return
        earnings = [e for e in derived if e.type == "earnings.accrued"]
        if earnings:
            await store_earnings(conn, earnings)
        days = [e for e in derived if e.type == "day.closed"]
        if not days:
            return
        core = self.core
        if core is None:
            raise RuntimeError("the billing projection runs without its core")
        previous = await last_hash(conn)
        for closed in days:
            statement = closed.data
            assert isinstance(statement, DayClosed)
            day = date.fromisoformat(statement.billing_day)
            entries = core.closed_entries.get(day)
            if entries is None:
                raise RuntimeError(f"the core closed {day} without its ledger entries")
            before = core.statements.get(day - timedelta(days=1))
            chained_from = before.ledger_hash if before is not None else GENESIS_HASH
            if chained_from != previous:  # the database's chain is the core's: no day missing or stored twice
                raise RuntimeError(f"{day}: the core chains from {chained_from}, the database ends at {previous}")
            await store_day(conn, closed, previous, entries)
            previous = statement.ledger_hash


def make_spec(name: str = "billing") -> ServiceSpec:
    projection = Projection()
    return ServiceSpec(
        name=name,
        core_factory=projection.new_core,
        migrations=MIGRATIONS,
        project=projection.project,
        router=router,
        api_port=API_PORT,
    )


SPEC = make_spec()
