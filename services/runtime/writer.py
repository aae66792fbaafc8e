"""The writer: stores decided batches in PostgreSQL, one transaction at a time, from a thread of its own with
its own event loop and connection.

Why a thread: the core's folding holds the consumer's event loop for as long as one message takes (an epoch
split ~12 ms, closing a day ~100 ms). A transaction is about ten round trips (BEGIN, the outbox lock, each
COPY's two, COMMIT, ...), and on the consumer's loop every one of them waited for the folding to let go: in
a traced billing bench run the writer was busy 93 % of the time, a third of it waiting so, and the core then
waited for the writer. On its own thread the writer waits on PostgreSQL only; when a reply arrives, the
interpreter hands it the GIL within its switch interval (`Settings.gil_switch_seconds`, 0.5 ms rather than
Python's 5 ms: a transaction is ten such hand-overs). Its own work (encoding the COPY rows) still takes turns
with the core's. Measured on the billing bench (6 alternating rounds against the writer on the consumer's
loop): +4.7 % billing events/s with Python's switch interval, +8.6 % with 0.5 ms.

Why not a process: tried twice, decided batches pickled to it over a pipe, and slower both times (the last:
3,790 against 4,169 billing events/s, 6 alternating rounds). Per bench drain, pickling cost the consumer's
process 0.27 s and unpickling the writer's 0.94 s, more than the writer's own Python work taken off the GIL
(~0.65 s), on two cores that PostgreSQL and the broker also use (`bench/BILLING.md`).

What crosses threads: decided batches in (`submit`, from the consumer's loop), and for each stored
transaction a call back on the consumer's loop (`on_stored`, with the batch and the rows its COPY queued),
where everything else happens: settling the ids, waking the relay, committing offsets. A failure in the
writer is raised by the next `submit` or `check`, and nothing is stored after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable

import asyncpg

from services.runtime.outbox import Queued
from services.runtime.processor import Decided, Processor

StoredHook = Callable[[Decided, Queued | None], None]


class Writer:
    """Up to `ahead` batches may wait for the writer besides the one it stores; it stores every batch waiting
    at once, in one transaction (`Decided.joined`), in the order submitted."""

    def __init__(self, processor: Processor, connect: Callable[[], Awaitable[asyncpg.Connection]],
                 on_stored: StoredHook, *, ahead: int) -> None:
        self.processor = processor
        self.connect = connect
        self.on_stored = on_stored
        self._room = asyncio.Semaphore(max(ahead, 1) + 1)  # batches submitted and not stored yet
        self._owner = asyncio.get_running_loop()
        self._failure: asyncio.Future[None] = self._owner.create_future()  # set with the writer's exception
        self._ready: asyncio.Future[None] = self._owner.create_future()  # its connection is open
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: asyncio.Queue[Decided | None] | None = None
        self._thread = threading.Thread(target=self._run, name="sn51-writer", daemon=True)

    async def start(self) -> None:
        """Start the thread; returns once its connection is open (raises what opening it raised)."""
        self._thread.start()
        await self._ready

    def check(self) -> None:
        """Raise what the writer failed with, if it did."""
        if self._failure.done():
            self._failure.result()

    async def submit(self, decided: Decided) -> None:
        """Hand a decided batch over, once there is room; raises what the writer failed with."""
        self.check()
        room = asyncio.ensure_future(self._room.acquire())
        try:
            await asyncio.wait((room, self._failure), return_when=asyncio.FIRST_COMPLETED)
        finally:
            room.cancel()  # the writer failed first (or the caller is cancelled): the batch stays out
        self.check()
        assert self._loop is not None and self._waiting is not None
        self._loop.call_soon_threadsafe(self._waiting.put_nowait, decided)

    async def stop(self) -> None:
        """Store what was submitted, then end the thread (at most 10 s)."""
        if self._loop is not None and self._waiting is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._waiting.put_nowait, None)
            await asyncio.to_thread(self._thread.join, 10)

    # -- on the writer's thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        with asyncio.Runner(loop_factory=type(self._owner)) as runner:  # the consumer's kind of loop (uvloop)
            runner.run(self._serve())

    def _report(self, callback: Callable[..., None], *args: object) -> None:
        """Call back on the consumer's loop (unless it is closed: the process is ending)."""
        with contextlib.suppress(RuntimeError):
            self._owner.call_soon_threadsafe(callback, *args)

    async def _serve(self) -> None:
        try:
            conn = await self.connect()
        except BaseException as error:
            self._report(self._failed_to_start, error)
            return
        self._loop, self._waiting = asyncio.get_running_loop(), asyncio.Queue()
        self._report(self._started)
        try:
            await self._store_all(self._waiting, conn)
        except BaseException as error:
            self._report(self._fail, error)
        finally:
            await conn.close()

    async def _store_all(self, waiting: asyncio.Queue[Decided | None], conn: asyncpg.Connection) -> None:
        while True:
            batches = [await waiting.get()]
            while not waiting.empty():
                batches.append(waiting.get_nowait())
            stop = None in batches
            decided = [b for b in batches if b is not None]
            if decided:
                joined = Decided.joined(decided)
                queued = await self.processor.write(conn, joined)
                self._report(self._stored, joined, queued, len(decided))
            if stop:
                return

    # -- back on the consumer's loop ------------------------------------------------------------------------------

    def _started(self) -> None:
        if not self._ready.done():
            self._ready.set_result(None)

    def _failed_to_start(self, error: BaseException) -> None:
        if not self._ready.done():
            self._ready.set_exception(error)

    def _stored(self, decided: Decided, queued: Queued | None, batches: int) -> None:
        if self._failure.done():
            return
        try:
            self.on_stored(decided, queued)
        except Exception as error:
            self._fail(error)
            return
        for _ in range(batches):
            self._room.release()

    def _fail(self, error: BaseException) -> None:
        if not self._failure.done():
            self._failure.set_exception(error)
