"""The writer's thread (with a fake processor and connection): start-up, hand-over, stopping and failures."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.runtime.outbox import Message, Queued
from services.runtime.processor import Decided
from services.runtime.writer import Writer


class Connection:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class Processor:
    """Writes take 10 ms; records on which thread each ran."""

    def __init__(self) -> None:
        self.written: list[int] = []
        self.threads: set[int] = set()

    async def write(self, conn: Connection, decided: Decided) -> Queued | None:
        await asyncio.sleep(0.01)
        self.threads.add(threading.get_ident())
        self.written.extend(m.offset for m in decided.messages)
        return None


def batch(offset: int) -> Decided:
    return Decided([Message("t", 0, offset, None, b"")], [], 0.0)


async def test_batches_are_written_on_the_writers_thread_and_reported_on_the_callers_loop() -> None:
    processor, conn = Processor(), Connection()
    reported: list[tuple[int, ...]] = []
    here = threading.get_ident()

    def stored(decided: Decided, queued: Queued | None) -> None:
        assert threading.get_ident() == here
        reported.append(tuple(m.offset for m in decided.messages))

    async def connect() -> Connection:
        return conn

    writer = Writer(processor, connect, stored, ahead=2)  # type: ignore[arg-type]
    await writer.start()
    for offset in range(6):
        await writer.submit(batch(offset))
    await writer.stop()  # stores what was submitted first
    assert processor.written == list(range(6))
    assert [o for offsets in reported for o in offsets] == list(range(6))
    assert processor.threads and here not in processor.threads
    assert conn.closed


async def test_a_connection_that_cannot_be_opened_fails_the_start() -> None:
    async def connect() -> Connection:
        raise ConnectionRefusedError("no database")

    writer = Writer(Processor(), connect, lambda d, q: None, ahead=1)  # type: ignore[arg-type]
    with pytest.raises(ConnectionRefusedError):
        await writer.start()


async def test_a_failure_is_raised_by_the_next_submit_and_nothing_is_submitted_after_it() -> None:
    processor = Processor()

    def stored(decided: Decided, queued: Queued | None) -> None:
        if 5 in (m.offset for m in decided.messages):
            raise RuntimeError("settling failed")

    async def connect() -> Connection:
        return Connection()

    writer = Writer(processor, connect, stored, ahead=1)  # type: ignore[arg-type]
    await writer.start()
    with pytest.raises(RuntimeError, match="settling failed"):
        for offset in range(50):
            await writer.submit(batch(offset))
    with pytest.raises(RuntimeError, match="settling failed"):
        writer.check()
    await writer.stop()
    # Room for two batches (`ahead` and the one being stored) is given back only by reports that went well:
    # when batch 5's report failed, batch 6 at most had been submitted besides it.
    assert 5 in processor.written and max(processor.written) <= 6
