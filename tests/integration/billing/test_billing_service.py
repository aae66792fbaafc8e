"""The billing service through a real broker and PostgreSQL, with a simulated log.

The input lines go to the input topic and what scoring derives from them (epoch.scored ...) to scoring's topic,
as in production; the service interleaves the two topics as it polls them. Its inbox records the order it
processed: a fresh `BillingCore` folded offline over that order must give exactly the database's ledger,
statements and earnings, and the day.closed events it published; and so must the core folded in the replay's
order (billing handles each epoch's split with its epoch.closed whatever the interleaving). Then the read API
over the same tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import secrets
from collections import Counter

import asyncpg
import httpx
import pytest
from billing_harness import (
    Reference,
    assert_ledger_equals,
    consumed_all,
    expected_earning_days,
    publish,
    published_statements,
    reference,
    simulated_log,
)

from schemas.codec import encode
from schemas.events import ProviderStatement
from schemas.topics import BILLING, INPUT, SCORING
from services.billing.app import make_spec
from services.billing.ledger import balances, provider
from services.runtime.kafka import create_all_topics
from services.runtime.service import run
from services.runtime.settings import Settings
from sn51.localinfra.procs import free_port
from tests.integration.kit import eventually, read_topic

pytestmark = pytest.mark.integration


async def test_simulated_log_gives_the_core_s_ledger(kafka_bootstrap: str, database_url: str) -> None:
    tag = secrets.token_hex(4)
    spec = make_spec(f"billing_{tag}")
    port = free_port()
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, database_url=database_url, topic_prefix=f"bil{tag}.",
        session_timeout_ms=2000, heartbeat_interval_ms=200, poll_timeout_ms=100, relay_idle_seconds=0.1,
        api_port=port, consumer_group=f"billing-{tag}",
    )
    log = simulated_log(seed=5, providers=6, days=4)
    counts = Counter(settings.topic(r.topic) for r in log)
    assert set(counts) == {settings.topic(INPUT), settings.topic(SCORING)}
    await create_all_topics(kafka_bootstrap, settings.topic_prefix)
    await publish(kafka_bootstrap, settings.topic_prefix, log)

    runtime = asyncio.create_task(run(spec, settings))
    conn = await asyncpg.connect(database_url)
    try:
        await eventually(lambda: schema_ready(conn, spec.name), "the service's schema")
        await conn.execute(f'SET search_path TO "{spec.name}"')
        await eventually(lambda: consumed_all(conn, kafka_bootstrap, settings.group, dict(counts)),
                         "the whole log to be consumed and the outbox published")
        assert not runtime.done()

        inbox = [r["raw"] for r in await conn.fetch("SELECT raw FROM inbox ORDER BY seq")]
        ref = reference(inbox)
        assert len(ref.accepted) == len(inbox)  # a fresh core takes every stored event, in the stored order
        clean = reference(r.value for r in log)  # the replay order: the same events are taken, none lost
        assert sorted(ref.accepted) == sorted(clean.accepted)
        assert len(ref.statements) == 3

        await assert_ledger_equals(conn, ref)
        await assert_ledger_equals(conn, clean)
        published = published_statements(r.value for r in await read_topic(kafka_bootstrap, settings.topic(BILLING)))
        assert published == {e.id: encode(e) for e in ref.of_type("day.closed")}
        codes = [r["code"] for r in await conn.fetch("SELECT code FROM dead_letter ORDER BY id")]
        assert sorted(codes) == sorted(clean.dead_letters) and codes  # the simulator's malformed lines

        await check_api(port, ref)
    finally:
        runtime.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runtime
        await conn.close()


async def schema_ready(conn: asyncpg.Connection, schema: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.trial_balance"))


async def check_api(port: int, ref: Reference) -> None:
    statements = ref.statements
    per_hotkey: dict[str, list[tuple[str, ProviderStatement]]] = {}
    for s in statements:
        for p in s.providers:
            per_hotkey.setdefault(p.hotkey, []).append((s.billing_day, p))
    hotkey = max(per_hotkey, key=lambda hk: sum(p.payable_rao for _, p in per_hotkey[hk]))
    lines = per_hotkey[hotkey]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        async def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return (await http.get("/health")).status_code == 200
            return False

        await eventually(up, "the API")
        balance = (await http.get(f"/providers/{hotkey}/balance")).json()
        assert balance["payable_rao"] == sum(p.payable_rao for _, p in lines)
        assert balance["carried_rao"] == lines[-1][1].carried_rao
        assert balance["statements"] == len(lines)
        assert balance["closed_through"] == statements[-1].billing_day
        accruing: dict[str, dict[str, int]] = {}  # the reference's earnings on the days still open, by kind
        for (hk, day, kind), (rao, usd, _) in expected_earning_days(ref).items():
            if hk == hotkey and day > statements[-1].billing_day:
                sums = accruing.setdefault(kind, {"amount_rao": 0, "amount_usd_micros": 0})
                sums["amount_rao"] += rao
                sums["amount_usd_micros"] += usd
        assert accruing, "the log leaves nothing accruing: nothing to compare"
        assert balance["accruing"] == accruing
        assert (await http.get("/providers/nobody/balance")).status_code == 404

        as_csv = await http.get(f"/providers/{hotkey}/statements", params={"format": "csv"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert [(r["billing_day"], int(r["payable_rao"]), int(r["emission_rao"])) for r in rows] == [
            (day, p.payable_rao, p.emission_rao) for day, p in lines
        ]
        one_day = lines[-1][0]
        as_json = (await http.get(f"/providers/{hotkey}/statements",
                                  params={"from": one_day, "to": one_day})).json()
        assert [s["billing_day"] for s in as_json["statements"]] == [one_day]

        account = provider(hotkey)
        want = {unit: amount for (acc, unit), amount in
                balances([e for es in ref.entries.values() for e in es]).items() if acc == account}
        got: dict[str, int] = {}
        entries = (await http.get(f"/providers/{hotkey}/entries", params={"limit": 10_000})).json()["entries"]
        for e in entries:
            got[e["unit"]] = got.get(e["unit"], 0) + e["signed_amount"]
        assert got == want and entries

        totals = (await http.get("/platform/totals")).json()
        assert totals["days_closed"] == len(statements)
        assert totals["last_hash"] == statements[-1].ledger_hash
        assert totals["statements"]["payable_rao"] == sum(p.payable_rao for s in statements for p in s.providers)
        assert all(t["balanced"] for t in totals["trial_balance"]) and len(totals["trial_balance"]) == 2
        assert sum(a["balance"] for a in totals["accounts"] if a["unit"] == "rao") == 0

        day = (await http.get(f"/days/{statements[0].billing_day}")).json()
        assert day["ledger_hash"] == statements[0].ledger_hash
        assert day["statement"] == statements[0].model_dump(mode="json")
        assert (await http.get("/days/2031-01-01")).status_code == 404
