"""Billing's read model in PostgreSQL: the double-entry ledger, the daily statements, the earnings.

Written by billing's `Projection` inside the processing transaction of the event that caused it (the inbox row commits
with it or not at all), so the tables are always exactly the fold of the inbox:
- each derived `earnings.accrued` → added to its provider's, day's and kind's row of `earning_day` (migration 4;
  the event itself is in the outbox, as published);
- each derived `day.closed` → one `day_statement` row, one `provider_day` row per provider of the
  statement, and that day's ledger entries (carried by its `ClosedDayEvent`), numbered in the canonical order
  the ledger hash is computed over (`services.billing.ledger.canonical_order`).

What the constraints make impossible:
- an unbalanced posting: every row is one movement with a debit and a credit account (different ones) and a
  positive amount in one unit, so Σ debits = Σ credits per unit by construction (`trial_balance` shows it);
- a double-counted entry: the cause key (kind, cause_id, executor_id, debit, credit, unit, day, part) is
  UNIQUE. `part` numbers entries that share every other field, which happens only when one late event
  corrects several closed days of one rental (one adjustment per corrected day, all booked on the same open
  day): then they are 0, 1, 2 ... in canonical order;
- a day stored twice or a forked hash chain: `day_statement` is keyed by the day and `previous_hash` is
  UNIQUE (each hash has at most one successor);
- a negative payable: `provider_day` CHECKs payable_rao >= 0 and carried_rao <= 0, never both non-zero;
- an entry or provider row without its day's statement (checked once per statement, migration 3), and any
  change to a closed day: `day_statement`, `provider_day` and `ledger_entry` are append-only (UPDATE, DELETE
  and TRUNCATE raise).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from schemas.envelope import Event
from schemas.events import DayClosed, EarningsAccrued
from services.billing.core import ClosedDayEvent
from services.billing.ledger import GENESIS_HASH, Entry
from services.runtime.db import lz4_or_uncompressed

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE day_statement (
        billing_day   date PRIMARY KEY,
        event_id      text NOT NULL UNIQUE,              -- the day.closed event
        closed_by     text NOT NULL,                     -- the epoch.closed that closed the day
        tao_usd       text NOT NULL,                     -- decimal strings, as in the statement
        alpha_tao     text NOT NULL,
        ledger_hash   text NOT NULL UNIQUE CHECK (ledger_hash ~ '^[0-9a-f]{64}$'),
        previous_hash text NOT NULL UNIQUE CHECK (previous_hash ~ '^[0-9a-f]{64}$'),
        entry_count   integer NOT NULL CHECK (entry_count >= 0),
        statement     jsonb NOT NULL,                    -- the day.closed data as published
        closed_at     timestamptz NOT NULL               -- event time of the day.closed
    );

    CREATE TABLE provider_day (
        billing_day            date NOT NULL REFERENCES day_statement (billing_day),
        hotkey                 text NOT NULL,
        coldkey                text NOT NULL,
        emission_rao           bigint NOT NULL CHECK (emission_rao >= 0),
        rental_fee_usd_micros  bigint NOT NULL CHECK (rental_fee_usd_micros >= 0),
        forfeited_rao          bigint NOT NULL CHECK (forfeited_rao >= 0),
        forfeited_usd_micros   bigint NOT NULL CHECK (forfeited_usd_micros >= 0),
        adjustment_rao         bigint NOT NULL,
        adjustment_usd_micros  bigint NOT NULL,
        payable_rao            bigint NOT NULL,
        carried_rao            bigint NOT NULL,
        slashed_wei            numeric(78, 0) NOT NULL CHECK (slashed_wei >= 0),
        PRIMARY KEY (billing_day, hotkey),
        CHECK (payable_rao >= 0 AND carried_rao <= 0),
        CHECK (payable_rao = 0 OR carried_rao = 0),
        CHECK (forfeited_rao <= emission_rao AND forfeited_usd_micros <= rental_fee_usd_micros)
    );
    CREATE INDEX provider_day_hotkey ON provider_day (hotkey, billing_day);

    CREATE TABLE ledger_entry (
        day          date NOT NULL REFERENCES day_statement (billing_day),
        seq          integer NOT NULL CHECK (seq >= 0),  -- position in the day's canonical (hashed) order
        debit        text NOT NULL,
        credit       text NOT NULL,
        amount       bigint NOT NULL CHECK (amount > 0),
        unit         text NOT NULL CHECK (unit IN ('rao', 'usd_micros')),
        kind         text NOT NULL,
        cause_id     text NOT NULL,
        executor_id  text NOT NULL DEFAULT '',
        part         smallint NOT NULL DEFAULT 0 CHECK (part >= 0),
        PRIMARY KEY (day, seq),
        CHECK (debit <> credit),
        CONSTRAINT ledger_entry_cause UNIQUE (kind, cause_id, executor_id, debit, credit, unit, day, part)
    );
    CREATE INDEX ledger_entry_debit ON ledger_entry (debit, day);
    CREATE INDEX ledger_entry_credit ON ledger_entry (credit, day);

    CREATE TABLE earning (
        event_id           text PRIMARY KEY,               -- the earnings.accrued event
        causation_id       text NOT NULL,
        event_time         timestamptz NOT NULL,
        hotkey             text NOT NULL,
        executor_id        text NOT NULL,
        billing_day        date NOT NULL,
        kind               text NOT NULL CHECK (kind IN ('emission', 'rental_fee', 'adjustment')),
        amount_rao         bigint,
        amount_usd_micros  bigint,
        cause_id           text NOT NULL,
        CHECK ((amount_rao IS NULL) <> (amount_usd_micros IS NULL))
    );
    CREATE INDEX earning_hotkey ON earning (hotkey, billing_day);

    -- Net balance per account and unit: credits minus debits.
    CREATE VIEW account_balance AS
    SELECT account, unit, sum(credited) AS credits, sum(debited) AS debits, sum(credited) - sum(debited) AS balance
    FROM (
        SELECT credit AS account, unit, amount AS credited, 0::bigint AS debited FROM ledger_entry
        UNION ALL
        SELECT debit AS account, unit, 0::bigint, amount FROM ledger_entry
    ) AS legs
    GROUP BY account, unit;

    -- The trial balance per unit: Σ debits = Σ credits and the account balances net to zero.
    CREATE VIEW trial_balance AS
    SELECT unit, sum(debits) AS total_debits, sum(credits) AS total_credits, sum(balance) AS net,
           sum(debits) = sum(credits) AND sum(balance) = 0 AS balanced
    FROM account_balance
    GROUP BY unit;
    """,
    # A day's entries are inserted in canonical order, days in order: the cause key leads with the day and
    # follows that order, so its index grows at the right edge. Every entry moves money to or from at most one
    # provider: one `provider` column (the hotkey) and one partial index serve a provider's entries, in place
    # of an index on each of debit and credit. The same uniqueness and checks as before.
    """
    ALTER TABLE ledger_entry DROP CONSTRAINT ledger_entry_cause;
    ALTER TABLE ledger_entry ADD CONSTRAINT ledger_entry_cause
        UNIQUE (day, kind, unit, debit, credit, executor_id, cause_id, part);
    DROP INDEX ledger_entry_debit;
    DROP INDEX ledger_entry_credit;
    ALTER TABLE ledger_entry ADD COLUMN provider text GENERATED ALWAYS AS (
        CASE WHEN credit LIKE 'provider:%' THEN substr(credit, 10)
             WHEN debit LIKE 'provider:%' THEN substr(debit, 10) END) STORED;
    CREATE INDEX ledger_entry_provider ON ledger_entry (provider, day) WHERE provider IS NOT NULL;
    """
    + lz4_or_uncompressed(("day_statement", "statement")),
    # "No entry without its day's statement" was a foreign key: PostgreSQL checks one row by one (an RI
    # trigger per copied row, half of the ledger's COPY time). Now one check per statement over the rows it
    # inserted (a transition table), with the same error code; and a closed day's rows are immutable (UPDATE,
    # DELETE and TRUNCATE refused), so a statement can never leave its entries behind, nor change after
    # its hash was published.
    """
    ALTER TABLE ledger_entry DROP CONSTRAINT ledger_entry_day_fkey;
    ALTER TABLE provider_day DROP CONSTRAINT provider_day_billing_day_fkey;

    CREATE FUNCTION refuse_orphan_days() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    DECLARE orphan date;  -- TG_ARGV[0]: the inserted rows' day column
    BEGIN
        EXECUTE format('SELECT n.%1$I FROM inserted n WHERE NOT EXISTS '
                       '(SELECT 1 FROM day_statement s WHERE s.billing_day = n.%1$I) LIMIT 1', TG_ARGV[0])
            INTO orphan;
        IF orphan IS NOT NULL THEN
            RAISE EXCEPTION '% row of %: no day_statement for that day', TG_TABLE_NAME, orphan
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER ledger_entry_has_day AFTER INSERT ON ledger_entry REFERENCING NEW TABLE AS inserted
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_orphan_days('day');
    CREATE TRIGGER provider_day_has_day AFTER INSERT ON provider_day REFERENCING NEW TABLE AS inserted
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_orphan_days('billing_day');

    CREATE FUNCTION refuse_closed_day_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: a closed day never changes (% refused)', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    CREATE TRIGGER day_statement_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON day_statement
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_closed_day_change();
    CREATE TRIGGER provider_day_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON provider_day
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_closed_day_change();
    CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_entry
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_closed_day_change();
    """,
    # The earnings read model holds what its one reader (a provider's balance: what is accruing on the open
    # days) asks for: sums per provider, day and kind, not one row per `earnings.accrued` (a row per paid node
    # and epoch, 77,000 in the billing bench, a quarter of PostgreSQL's work). Each event stays where it was
    # already: in the outbox (its published bytes) and on billing's topic; a closed day's detail is in its
    # ledger entries. Sums only grow by events of open days (the core books a late change to a closed day
    # on the oldest open day), so a closed day's sums never change.
    """
    CREATE TABLE earning_day (
        hotkey             text NOT NULL,
        billing_day        date NOT NULL,
        kind               text NOT NULL CHECK (kind IN ('emission', 'rental_fee', 'adjustment')),
        amount_rao         bigint NOT NULL,   -- Σ amount_rao of the day's earnings.accrued of this kind
        amount_usd_micros  bigint NOT NULL,   -- Σ amount_usd_micros
        events             integer NOT NULL CHECK (events > 0),  -- how many earnings.accrued
        PRIMARY KEY (hotkey, billing_day, kind)
    );
    INSERT INTO earning_day (hotkey, billing_day, kind, amount_rao, amount_usd_micros, events)
    SELECT hotkey, billing_day, kind, coalesce(sum(amount_rao), 0), coalesce(sum(amount_usd_micros), 0), count(*)
    FROM earning GROUP BY hotkey, billing_day, kind;
    DROP TABLE earning;
    """,
)


def numbered(ordered: Sequence[Entry]) -> list[tuple[int, int, Entry]]:
    """(seq, part, entry) of entries in canonical order (`ClosedDayEvent.entries` holds them so): seq is
    the position, part the ordinal among entries that share the cause key. The cause key is every field but
    the amount, which is an entry's last (`Entry`): in canonical order, entries that share it are neighbours."""
    out: list[tuple[int, int, Entry]] = []
    previous: tuple[object, ...] = ()
    part = 0
    for seq, e in enumerate(ordered):
        key = e[:-1]
        part = part + 1 if key == previous else 0
        previous = key
        out.append((seq, part, e))
    return out


PROVIDER_COLUMNS = ("billing_day", "hotkey", "coldkey", "emission_rao", "rental_fee_usd_micros", "forfeited_rao",
                    "forfeited_usd_micros", "adjustment_rao", "adjustment_usd_micros", "payable_rao", "carried_rao",
                    "slashed_wei")
LEDGER_COLUMNS = ("day", "seq", "debit", "credit", "amount", "unit", "kind", "cause_id", "executor_id", "part")


@dataclass(frozen=True, slots=True)
class DayRows:
    """One closed day as rows: its statement, its providers, its ledger entries, and the hash it chains from."""

    billing_day: str
    previous_hash: str
    ledger_hash: str
    statement: tuple[Any, ...]
    providers: list[tuple[Any, ...]]
    entries: list[tuple[Any, ...]]


EarningKey = tuple[str, str, str]
"""hotkey, billing_day (ISO), kind"""

EarningSums = dict[EarningKey, list[int]]
"""per key: [Σ amount_rao, Σ amount_usd_micros, events]"""


@dataclass(frozen=True, slots=True)
class Rows:
    """What one accepted event adds to the read model."""

    earnings: EarningSums
    days: list[DayRows]


def _add(sums: EarningSums, key: EarningKey, rao: int, usd: int, events: int) -> None:
    acc = sums.get(key)
    if acc is None:
        sums[key] = [rao, usd, events]
    else:
        acc[0] += rao
        acc[1] += usd
        acc[2] += events


def add_earnings(sums: EarningSums, events: Iterable[Event]) -> EarningSums:
    """Add the `earnings.accrued` among `events` to `sums` (in place; returned)."""
    for e in events:
        d = e.data
        if isinstance(d, EarningsAccrued):
            _add(sums, (d.hotkey, d.billing_day, d.kind), d.amount_rao or 0, d.amount_usd_micros or 0, 1)
    return sums


def day_rows(closed: ClosedDayEvent) -> DayRows:
    d = closed.data
    assert isinstance(d, DayClosed)
    day = date.fromisoformat(d.billing_day)
    entries = closed.entries
    return DayRows(
        billing_day=d.billing_day,
        previous_hash=closed.previous_hash,
        ledger_hash=d.ledger_hash,
        statement=(day, closed.id, closed.causation_id or "", d.prices.tao_usd, d.prices.alpha_tao, d.ledger_hash,
                   closed.previous_hash, len(entries), json.dumps(d.model_dump(mode="json")), closed.time),
        providers=[(day, p.hotkey, p.coldkey, p.emission_rao, p.rental_fee_usd_micros, p.forfeited_rao,
                    p.forfeited_usd_micros, p.adjustment_rao, p.adjustment_usd_micros, p.payable_rao, p.carried_rao,
                    p.slashed_wei) for p in d.providers],
        entries=[(day, seq, debit, credit, amount, unit, kind, cause_id, executor_id, part)  # unpacked: ~2x
                 for seq, part, (kind, unit, debit, credit, executor_id, cause_id, _, amount) in numbered(entries)],
    )


async def store(conn: asyncpg.Connection, batch: Sequence[Rows]) -> None:
    """A batch's rows: its earnings added to the sums in one statement, then each closed day, checked to extend
    the stored chain."""
    await add_earning_days(conn, batch)
    days = [d for rows in batch for d in rows.days]
    if not days:
        return
    previous = await last_hash(conn)
    for day in days:
        if day.previous_hash != previous:  # the database's chain is the core's: no day missing or stored twice
            raise RuntimeError(f"{day.billing_day}: the core chains from {day.previous_hash}, "
                               f"the database ends at {previous}")
        await store_day(conn, day)
        previous = day.ledger_hash


async def add_earning_days(conn: asyncpg.Connection, batch: Sequence[Rows]) -> None:
    """Add a batch's earnings to `earning_day`: one row per (hotkey, day, kind), created or added to."""
    sums: EarningSums = {}
    for rows in batch:
        for key, (rao, usd, n) in rows.earnings.items():
            _add(sums, key, rao, usd, n)
    if not sums:
        return
    keys = sorted(sums)
    await conn.execute(
        """INSERT INTO earning_day AS e (hotkey, billing_day, kind, amount_rao, amount_usd_micros, events)
           SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::bigint[], $5::bigint[], $6::integer[])
           ON CONFLICT (hotkey, billing_day, kind) DO UPDATE
           SET amount_rao = e.amount_rao + excluded.amount_rao,
               amount_usd_micros = e.amount_usd_micros + excluded.amount_usd_micros,
               events = e.events + excluded.events""",
        [k[0] for k in keys], [date.fromisoformat(k[1]) for k in keys], [k[2] for k in keys],
        [sums[k][0] for k in keys], [sums[k][1] for k in keys], [sums[k][2] for k in keys],
    )


async def store_day(conn: asyncpg.Connection, day: DayRows) -> None:
    """One closed day: its statement, its provider rows and its ledger entries."""
    await conn.execute(
        """INSERT INTO day_statement (billing_day, event_id, closed_by, tao_usd, alpha_tao, ledger_hash,
                                      previous_hash, entry_count, statement, closed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)""",
        *day.statement,
    )
    if day.providers:  # COPY: one statement, so the orphan check (a statement trigger) runs once, not per row
        await conn.copy_records_to_table("provider_day", records=day.providers, columns=PROVIDER_COLUMNS)
    if day.entries:
        await conn.copy_records_to_table("ledger_entry", records=day.entries, columns=LEDGER_COLUMNS)


async def last_hash(conn: asyncpg.Connection) -> str:
    value = await conn.fetchval("SELECT ledger_hash FROM day_statement ORDER BY billing_day DESC LIMIT 1")
    return GENESIS_HASH if value is None else str(value)


async def stored_entries(conn: asyncpg.Connection, day: date) -> list[Entry]:
    """A closed day's ledger entries as stored, in canonical order (what its ledger hash covers)."""
    rows = await conn.fetch(
        """SELECT day, debit, credit, amount, unit, kind, cause_id, executor_id FROM ledger_entry
           WHERE day = $1 ORDER BY seq""",
        day,
    )
    return [Entry(kind=r["kind"], unit=r["unit"], debit=r["debit"], credit=r["credit"], executor_id=r["executor_id"],
                  cause_id=r["cause_id"], day=r["day"].isoformat(), amount=r["amount"]) for r in rows]
