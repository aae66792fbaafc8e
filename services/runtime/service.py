"""THE wiring point of a service process: `await run(spec)`.

Start-up, in order: settings and logging; the pool and the migrations (shared tables + the service's SQL, in
the service's schema); the single-writer lock; the topics; a fresh core re-folded from the inbox; then, side
by side until one of them fails or the process is stopped: the consumer loop, the outbox relay, the HTTP API
and the spec's extra background tasks. Any failure ends `run` with the exception (the process dies); a
restart rebuilds everything from PostgreSQL and resumes at the committed offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import uvicorn
from fastapi import APIRouter

from schemas.topics import ALL_TOPICS, ROUTES
from services.core import Core
from services.runtime import logging as rlog
from services.runtime.api import create_app
from services.runtime.collector import REPLAY_YOUNG, SERVICE_YOUNG, IdleCollections, quiet_collector
from services.runtime.consumer import consume, new_consumer
from services.runtime.db import connect as db_connect
from services.runtime.db import create_pool, hold_writer_lock, migrate, schema_name
from services.runtime.kafka import create_topics, new_producer
from services.runtime.metrics import REBUILT
from services.runtime.processor import Processor, ProjectHook, rebuild
from services.runtime.projection import Projection
from services.runtime.relay import Relay
from services.runtime.settings import Settings


@dataclass(frozen=True)
class RuntimeContext:
    """What an extra background task gets: settings, the pool (service schema), and a relay nudge.

    A task that decides events writes them with `services.runtime.outbox.write_events(conn, events,
    ctx.settings.topic_prefix)` inside its own transaction, then calls `ctx.wake_relay()`.
    """

    settings: Settings
    pool: asyncpg.Pool
    wake_relay: Callable[[], None]
    log: Any


BackgroundTask = Callable[[RuntimeContext], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    core_factory: Callable[[], Core]
    migrations: Sequence[str] = ()
    project: ProjectHook | None = None  # per event: async def project(conn, event, derived) -> None
    projection: Projection[Any] | None = None  # or prepared in the decide step, written per batch (projection.py)
    router: APIRouter | None = None
    tasks: Sequence[BackgroundTask] = ()
    api_port: int = 8150
    topics: Sequence[str] | None = field(default=None)  # consumed topics; default: where the core's reads travel


def consumed_topics(spec: ServiceSpec, core: Core, prefix: str = "") -> list[str]:
    names = spec.topics if spec.topics is not None else sorted({ROUTES[t].topic for t in core.reads})
    return [prefix + t for t in names]


async def run(spec: ServiceSpec, settings: Settings | None = None) -> None:
    settings = (settings or Settings()).model_copy(update={"service": spec.name})
    rlog.configure(settings.log_level)
    sys.setswitchinterval(settings.gil_switch_seconds)  # see `writer.py`
    log = rlog.get_logger(spec.name)
    pool = await create_pool(settings.database_url, spec.name, settings.pool_size)
    lock_conn = await asyncpg.connect(settings.database_url)
    consumer = producer = None
    try:
        async with pool.acquire() as conn:
            applied = await migrate(conn, spec.name, spec.migrations)
        log.info("migrated", schema=schema_name(spec.name), applied=applied)
        await hold_writer_lock(
            lock_conn, spec.name, on_wait=lambda: log.warning("another process is the writer of this service; waiting")
        )
        await create_topics(
            settings.kafka_bootstrap, [settings.topic(t) for t in ALL_TOPICS], settings.topic_partitions
        )
        core = spec.core_factory()
        quiet_collector(REPLAY_YOUNG)  # rebuilding is replaying the inbox
        async with pool.acquire() as conn:
            folded = await rebuild(conn, core)
        REBUILT.labels(spec.name).set(folded)
        log.info("core rebuilt from the inbox", events=folded)
        quiet_collector(SERVICE_YOUNG)  # the rebuilt state out of the collector's sight

        processor = Processor(
            spec.name, core, spec.project, projection=spec.projection, topic_prefix=settings.topic_prefix
        )
        producer = new_producer(settings.kafka_bootstrap)
        await producer.start()
        relay = Relay(spec.name, pool, producer, batch=settings.relay_batch, idle_seconds=settings.relay_idle_seconds)
        topics = consumed_topics(spec, core, settings.topic_prefix)
        consumer = new_consumer(settings, topics)
        await consumer.start()
        log.info("consuming", topics=topics, group=settings.group)

        ctx = RuntimeContext(settings, pool, relay.wake, log)
        async with asyncio.TaskGroup() as tg:
            connect = functools.partial(db_connect, settings.database_url, spec.name)
            idle = IdleCollections(settings.full_collection_seconds)

            def collect_when_idle() -> None:
                began = time.perf_counter()
                found = idle.on_idle()
                if found is not None:
                    log.info("full collection", unreachable=found, seconds=round(time.perf_counter() - began, 3))

            tg.create_task(consume(consumer, pool, processor, settings, connect, relay.wake, collect_when_idle),
                           name="consumer")
            tg.create_task(relay.run(), name="relay")
            if settings.api_enabled:
                app = create_app(spec.name, spec.router, pool)
                app.state.ready = True
                port = settings.api_port if settings.api_port is not None else spec.api_port
                config = uvicorn.Config(
                    app, host=settings.api_host, port=port, log_config=None, access_log=False, lifespan="off"
                )
                tg.create_task(uvicorn.Server(config).serve(), name="api")
            for task in spec.tasks:
                tg.create_task(task(ctx), name=getattr(task, "__name__", "task"))
    finally:
        with contextlib.suppress(Exception):
            if consumer is not None:
                await consumer.stop()
        with contextlib.suppress(Exception):
            if producer is not None:
                await producer.stop()
        with contextlib.suppress(Exception):
            await lock_conn.close()
        with contextlib.suppress(Exception):
            await pool.close()
