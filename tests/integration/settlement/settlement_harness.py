"""What the settlement integration tests share: a few days of billing statements with the epochs that trigger
the payout runs, the offline reference (the planning core over the same events), the ledger side computed
straight from the statements, publishing, the service started in this process, and reading back the database
and the persisted in-memory chain.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from schemas.codec import encode
from schemas.envelope import Event
from schemas.events import Payout, PayoutPlanned
from schemas.topics import ROUTES
from services.runtime.kafka import create_all_topics, new_producer
from services.runtime.service import run
from services.runtime.settings import Settings
from services.settlement.app import PayoutSettings, make_spec
from services.settlement.chain_memory_pg import MemoryChainSettings, stakes_on, stored_state
from services.settlement.core import SettlementCore
from tests.factories import day_closed, epoch, params
from tests.integration.kit import FAST

PAYOUT_HOTKEY = "5PayoutHotkey"
PAYOUT_COLDKEY = "5PayoutColdkey"
FUNDED_RAO = 10**15
MEMORY_PAYOUTS = PayoutSettings(chain="memory", payout_interval_seconds=0.2, payout_backoff_seconds=0.05)

Line = tuple[str, str, int]  # hotkey, coldkey, payable_rao


@dataclass(frozen=True)
class Scenario:
    events: list[Event]
    statements: dict[str, list[Line]]  # billing day -> its lines (the ledger side)

    @property
    def planned(self) -> list[Event]:
        """The payout.planned of the planning core over the events, in order (the reference)."""
        core = SettlementCore()
        return [d for e in self.events for d in core.handle(e) if d.type == "payout.planned"]

    def ledger(self, coldkey: str, days: Sequence[str]) -> int:
        """Σ payable_rao of `coldkey` over `days`, straight from the statements."""
        return sum(rao for d in days for _, ck, rao in self.statements[d] if ck == coldkey)


def scenario(providers: int = 7, max_batch: int = 3, tag: str = "") -> Scenario:
    """Four closed days, four runs (T = 11-03 .. 11-06 pay 11-01 .. 11-04). Coldkey ck0 has two hotkeys;
    `ck_small` earns 4,000,000 rao a day, under min_payout_rao: deferred, carried, paid at the third run."""
    days = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    statements: dict[str, list[Line]] = {}
    for n, day in enumerate(days):
        rows: list[Line] = [(f"hk{i}{tag}", f"ck{i}{tag}", 10_000_000 + 1_234_567 * i + 1_001 * n)
                            for i in range(providers)]
        rows.append((f"hk0b{tag}", f"ck0{tag}", 3_000_000 + n))
        rows.append((f"hksmall{tag}", f"cksmall{tag}", 4_000_000))
        statements[day] = rows
    events = [params("2026-11-01T00:00:00Z", max_batch=max_batch, min_payout_rao=10_000_000)]
    events.append(day_closed(days[0], statements[days[0]], "2026-11-02T02:00:00Z"))
    events.append(day_closed(days[1], statements[days[1]], "2026-11-03T02:00:00Z"))
    events.append(epoch(1, "2026-11-03T17:00:00Z"))
    events.append(day_closed(days[2], statements[days[2]], "2026-11-04T02:00:00Z"))
    events.append(epoch(2, "2026-11-04T17:00:00Z"))
    events.append(day_closed(days[3], statements[days[3]], "2026-11-05T02:00:00Z"))
    events.append(epoch(3, "2026-11-05T17:00:00Z"))
    events.append(epoch(4, "2026-11-06T17:00:00Z"))
    return Scenario(events, statements)


async def publish(bootstrap: str, prefix: str, events: Sequence[Event]) -> None:
    """Every event on its type's topic (billing's statements on billing's), in order, each acknowledged before the
    next: the service merges its topics by timestamp, and its runs wait for statements that come late anyway."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(prefix + ROUTES[e.type].topic, value=encode(e), key=e.key.encode())
    finally:
        await producer.stop()


async def start_in_process(bootstrap: str, database_url: str, sc: Scenario, label: str,
                           memory: MemoryChainSettings | None = None, payouts: PayoutSettings = MEMORY_PAYOUTS,
                           ) -> tuple[asyncpg.Connection, asyncio.Task[None], str, str]:
    """The scenario published on fresh topics `<label><hex>.*`, the service running in this process on a fresh
    schema `settlement_<hex>`, and a connection there: (connection, runtime task, schema, topic prefix)."""
    tag = secrets.token_hex(4)
    name, prefix = f"settlement_{tag}", f"{label}{tag}."
    settings = Settings(kafka_bootstrap=bootstrap, database_url=database_url, topic_prefix=prefix,
                        consumer_group=f"settlement-{tag}", **FAST)
    await create_all_topics(bootstrap, prefix)
    await publish(bootstrap, prefix, sc.events)
    runtime = asyncio.create_task(run(make_spec(name, payouts, memory), settings))
    conn = await asyncpg.connect(database_url, server_settings={"search_path": name})
    return conn, runtime, name, prefix


async def settled(conn: asyncpg.Connection, expected_payouts: int) -> bool:
    """Every expected payout stored and final (confirmed, held or failed), nothing left to publish."""
    if not await conn.fetchval("SELECT to_regclass('payout') IS NOT NULL"):
        return False
    final = await conn.fetchval("SELECT count(*) FROM payout WHERE state IN ('confirmed', 'held', 'failed')")
    total = await conn.fetchval("SELECT count(*) FROM payout")
    backlog = await conn.fetchval("SELECT count(*) FROM outbox_pending")
    return bool(total == expected_payouts and final == total and backlog == 0)


async def chain_stakes(conn: asyncpg.Connection) -> tuple[dict[str, int], dict[str, Any]]:
    """Alpha rao per coldkey on the payout hotkey, from the persisted in-memory chain, and the whole state."""
    state = await stored_state(conn)
    assert state is not None, "the in-memory chain was never created"
    return stakes_on(state, PAYOUT_HOTKEY), state


def paid_by_coldkey(planned: Sequence[Event], sc: Scenario, skip: Collection[str] = ()) -> dict[str, int]:
    """What each coldkey must have received: the ledger (statement lines) of the days its payouts cover —
    checked against the planned amounts too."""
    out: dict[str, int] = defaultdict(int)
    for e in planned:
        d = e.data
        assert isinstance(d, PayoutPlanned)
        assert d.amount_rao == sc.ledger(d.coldkey, d.billing_days), d
        if d.coldkey not in skip:
            out[d.coldkey] += sc.ledger(d.coldkey, d.billing_days)
    return dict(out)


def confirmed_once(published: Sequence[Event], planned: Sequence[Event]) -> dict[str, Event]:
    """The payout.confirmed events by payout_id; a republished one must be the same event."""
    out: dict[str, Event] = {}
    for e in published:
        if e.type != "payout.confirmed":
            continue
        assert isinstance(e.data, Payout)
        pid = e.data.payout_id
        assert out.setdefault(pid, e).id == e.id, f"payout {pid} confirmed twice with different events"
    assert set(out) <= {p.data.payout_id for p in planned if isinstance(p.data, Payout)}
    return out
