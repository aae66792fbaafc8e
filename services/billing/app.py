"""The billing service process: `sn51 service billing` runs `SPEC` with the shared runtime.

The projection is a function of the accepted event and what the core derived from it, never of the core's
state: a closed day's ledger entries travel on its `ClosedDayEvent`, so the runtime may store a batch while
the core already decides the next one.
"""

from __future__ import annotations

import asyncpg

from schemas.envelope import Event
from services.billing.api import router
from services.billing.core import BillingCore, ClosedDayEvent
from services.billing.store import MIGRATIONS, Rows, add_earnings, day_rows, store
from services.runtime.service import ServiceSpec

API_PORT = 8152


class Projection:
    """Billing's read model (`services.runtime.projection`): the earnings, and each closed day with the
    ledger entries its `ClosedDayEvent` carries."""

    def prepare(self, event: Event, derived: list[Event]) -> Rows | None:
        if not derived:
            return None
        return Rows(earnings=add_earnings({}, derived),
                    days=[day_rows(e) for e in derived if isinstance(e, ClosedDayEvent)])

    async def write(self, conn: asyncpg.Connection, prepared: list[Rows]) -> None:
        await store(conn, prepared)


def make_spec(name: str = "billing") -> ServiceSpec:
    return ServiceSpec(
        name=name,
        core_factory=BillingCore,
        migrations=MIGRATIONS,
        projection=Projection(),
        router=router,
        api_port=API_PORT,
    )


SPEC = make_spec()
