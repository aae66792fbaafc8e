"""The outbox relay in a process of its own, beside the service process that writes the outbox.

Why a process: publishing was a quarter of a busy service's CPU (reading the rows back, building the producer
batches, the producer's own work), and a Python process is one core. In its own process the relay runs on
another core while the service decides and stores (billing bench: see the README's Measured section). It
needs nothing from the service but the database: it reads `outbox_pending` and moves `relay_position`.

Wake-ups: every writer of outbox rows takes the outbox lock (`outbox.lock_outbox`), which also queues a
notification on the channel `<schema>.outbox` (`outbox_channel`); PostgreSQL delivers it at commit, and the
relay LISTENs on it. It still polls every `relay_idle_seconds`, so a lost notification only delays.

Lifetime: the relay ends when its parent does (it watches the parent's sentinel, so a SIGKILLed service leaves
no relay behind), and the service ends when its relay does (`watch` raises). Either failing takes both down;
a restart starts both, and the relay resumes at its position.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from multiprocessing.process import BaseProcess

import asyncpg

from services.runtime import logging as rlog
from services.runtime.db import create_pool
from services.runtime.kafka import new_producer
from services.runtime.outbox import outbox_channel
from services.runtime.relay import Relay
from services.runtime.settings import Settings


def start(service: str, settings: Settings) -> BaseProcess:
    """Spawn the relay of `service` (a fresh interpreter: the parent's event loop and sockets are not
    inherited). The settings travel through the spawn pipe, never on a command line. Spawning imports the
    parent's main module again, so it must be import-safe (the `sn51` script and `python -c` are)."""
    process = multiprocessing.get_context("spawn").Process(
        target=main, args=(service, settings.model_dump_json()), name=f"sn51-{service}-relay", daemon=True
    )
    process.start()
    return process


async def watch(process: BaseProcess) -> None:
    """Return never: raise as soon as the relay process has exited, whatever the reason."""
    exited = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(process.sentinel, exited.set)
    try:
        await exited.wait()
    finally:
        loop.remove_reader(process.sentinel)
    process.join(1)
    raise RuntimeError(f"the outbox relay process exited (exit code {process.exitcode})")


def stop(process: BaseProcess, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`. A relay stopped between publishing and moving its position
    publishes those rows again when it restarts (at-least-once; readers drop them as duplicates)."""
    if process.is_alive():
        process.terminate()
        process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join(timeout)


def main(service: str, settings_json: str) -> None:
    """The relay process: publish until the parent is gone or something fails (then exit non-zero)."""
    settings = Settings.model_validate_json(settings_json)
    rlog.configure(settings.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(service, settings))


async def run(service: str, settings: Settings) -> None:
    log = rlog.get_logger(service).bind(task="relay")
    pool = await create_pool(settings.database_url, service, size=2)
    listener: asyncpg.Connection | None = None
    producer = new_producer(settings.kafka_bootstrap)
    try:
        await producer.start()
        relay = Relay(service, pool, producer, batch=settings.relay_batch, idle_seconds=settings.relay_idle_seconds)
        listener = await asyncpg.connect(settings.database_url)
        await listener.add_listener(outbox_channel(service), lambda *_: relay.wake())
        parent_gone = asyncio.Event()
        parent = multiprocessing.parent_process()
        if parent is not None:
            asyncio.get_running_loop().add_reader(parent.sentinel, parent_gone.set)
        log.info("relay started", channel=outbox_channel(service))
        publishing = asyncio.create_task(relay.run(), name="relay")
        waiting = asyncio.create_task(parent_gone.wait(), name="parent")
        done, pending = await asyncio.wait({publishing, waiting}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if publishing in done:
            publishing.result()  # raises what the relay raised
        log.info("relay stopped: the service process is gone")
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()
        with contextlib.suppress(Exception):
            await pool.close()
