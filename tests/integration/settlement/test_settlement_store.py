"""Settlement's PostgreSQL store on its own: `PgExecutionStore` drives the executor exactly as the in-memory store
does (same records, same events, same chain), a (coldkey, day) cannot be planned into two payouts, and the
persisted in-memory chain keeps what landed across a restart."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from settlement_harness import scenario

from schemas.codec import decode
from services.settlement.chain import Transfer
from services.settlement.chain_memory import MemoryChain
from services.settlement.chain_memory_pg import MemoryChainSettings, PersistentMemoryChain
from services.settlement.execution import PayoutState, PlannedPayout
from services.settlement.execution_store import MemoryExecutionStore
from services.settlement.executor import Executor, ExecutorConfig
from services.settlement.store import MIGRATIONS, PgExecutionStore, store_planned
from tests.integration.kit import migrated_pool

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url, f"settlement_store_{secrets.token_hex(4)}", MIGRATIONS) as pool:
        yield pool


def planned_payouts() -> list[PlannedPayout]:
    return [PlannedPayout.from_event(e) for e in scenario().planned]


def faulty_chain(payouts: list[PlannedPayout]) -> MemoryChain:
    chain = MemoryChain()
    chain.fund(10**15)
    for p in payouts:
        for hk in p.hotkeys:
            chain.set_owner(hk, p.coldkey)
    chain.owners["hk3"] = "5SomeoneElse"
    chain.timeouts_after_landing = 1
    chain.failing_dests = {"ck1": 1, "ck5": 2}
    return chain


async def no_sleep(_: float) -> None:
    return None


async def test_pg_store_drives_the_executor_like_the_memory_store(pool: asyncpg.Pool) -> None:
    payouts = planned_payouts()
    config = ExecutorConfig(max_batch=3, max_attempts=3, backoff_seconds=0)
    reference_chain, reference_store = faulty_chain(payouts), MemoryExecutionStore()
    await Executor(reference_chain, reference_store, config, sleep=no_sleep).run(payouts)

    woken: list[int] = []
    chain, store = faulty_chain(payouts), PgExecutionStore(pool, "t.", lambda: woken.append(1))
    async with pool.acquire() as conn, conn.transaction():
        await store_planned(conn, payouts)  # as the projection does
    report = await Executor(chain, store, config, sleep=no_sleep).run(payouts)

    assert report.confirmed == len(payouts) - 4 and report.held == 4 and report.failed == 0
    assert chain.stakes == reference_chain.stakes and chain.included == reference_chain.included
    ids = [p.payout_id for p in payouts]
    assert await store.payouts(ids) == await reference_store.payouts(ids)
    assert sorted(await store.open_batches(), key=lambda b: b.batch_id) == []
    assert await store.payouts_in(PayoutState.PLANNED) == []
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT event_id, topic, value FROM outbox ORDER BY seq")
        batches = await conn.fetch("SELECT batch_id, state FROM payout_batch")
    assert [r["event_id"] for r in rows] == [e.id for e in reference_store.events]
    assert [decode(r["value"]) for r in rows] == reference_store.events
    assert {r["topic"] for r in rows} == {"t.sn51.settlement"}
    assert {(r["batch_id"], r["state"]) for r in batches} == {
        (b.batch_id, b.state.value) for b in reference_store.batches.values()}
    assert woken  # the relay is nudged after commits with events
    confirmed = [r for r in await store.payouts(ids) if r.state is PayoutState.CONFIRMED]
    assert await store.amount_committed(payouts[0].run_day) == sum(
        r.planned.amount_rao for r in confirmed if r.planned.run_day == payouts[0].run_day)


async def test_a_provider_day_cannot_be_planned_into_two_payouts(pool: asyncpg.Pool) -> None:
    first = planned_payouts()[0]
    async with pool.acquire() as conn:
        async with conn.transaction():
            await store_planned(conn, [first])
            await store_planned(conn, [first])  # the same payout again: nothing new
        again = replace(first, payout_id="another", event_id="another", run_day="2026-11-09")
        with pytest.raises(RuntimeError, match="already pays"):
            async with conn.transaction():
                await store_planned(conn, [again])
        assert await conn.fetchval("SELECT count(*) FROM payout") == 1  # rolled back whole
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """INSERT INTO payout (payout_id, coldkey, run_id, run_day, billing_days, amount_rao, hotkeys, batch,
                                       event_id, planned_at, state)
                   VALUES ('zero', 'ckz', 'r', '2026-11-09', '{2026-11-08}', 0, '{}', 0, 'e', now(), 'planned')"""
            )


async def test_the_persisted_memory_chain_keeps_what_landed(pool: asyncpg.Pool) -> None:
    settings = MemoryChainSettings(stake_rao=1_000_000_000)
    chain = await PersistentMemoryChain(pool, settings).load()
    signed = await chain.sign_batch([Transfer("ck1", 400_000_000), Transfer("ck2", 1)], nonce=0)
    landed = await chain.submit_batch(signed)

    again = await PersistentMemoryChain(pool, settings).load()  # a restart: not funded twice
    assert again.stakes == chain.stakes and again.nonce == 1 and again.included == 1
    assert again.stake_of("ck1") == 400_000_000 and again.stake_of(again.payout_coldkey) == 599_999_999
    found = await again.find_extrinsic([signed.extrinsic_hash], 0, (await again.head()).number)
    assert found is not None and (found.block_hash, found.block_number, found.success) == (
        landed.block_hash, landed.block_number, True)
