"""The consumer: the processing order of a poll, the offsets it commits, and the loop's order of deciding, storing
and committing (with fakes for the broker, the pool and the processor)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

import pytest
from aiokafka import TopicPartition

from services.runtime.consumer import consume, merge, next_offsets, split
from services.runtime.outbox import Message
from services.runtime.processor import Decided
from services.runtime.settings import Settings


def m(topic: str, offset: int, ts: int, partition: int = 0) -> Message:
    return Message(topic, partition, offset, None, b"", ts)


def test_merge_keeps_each_partition_in_offset_order_and_interleaves_by_timestamp() -> None:
    a = [m("a", 0, 10), m("a", 1, 30), m("a", 2, 20)]  # timestamps out of order within a partition
    b = [m("b", 5, 15), m("b", 6, 25)]
    merged = merge({"a-0": a, "b-0": b})
    assert [(x.topic, x.offset) for x in merged if x.topic == "a"] == [("a", 0), ("a", 1), ("a", 2)]
    assert [(x.topic, x.offset) for x in merged if x.topic == "b"] == [("b", 5), ("b", 6)]
    assert [(x.topic, x.offset) for x in merged][:2] == [("a", 0), ("b", 5)]


def test_next_offsets_is_one_past_the_last_record_per_partition() -> None:
    msgs = [m("a", 3, 0), m("a", 4, 0), m("a", 0, 0, partition=1), m("b", 9, 0)]
    assert next_offsets(msgs) == {
        TopicPartition("a", 0): 5, TopicPartition("a", 1): 1, TopicPartition("b", 0): 10,
    }


def test_split_cuts_a_poll_into_runs_of_at_most_max_bytes_in_order() -> None:
    sizes = [3, 3, 3, 10, 1, 1, 4]
    msgs = [Message("t", 0, i, None, b"x" * n, 0) for i, n in enumerate(sizes)]
    runs = [[m.offset for m in run] for run in split(msgs, 6)]
    assert runs == [[0, 1], [2], [3], [4, 5, 6]]  # a message larger than the limit is a run of its own
    assert [m.offset for run in split(msgs, 6) for m in run] == list(range(len(sizes)))
    assert list(split([], 6)) == []


# -- the loop: deciding ahead, storing in order ---------------------------------------------------------------

class FakeRecord:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset, self.key, self.value, self.timestamp = "t", 0, offset, None, b"", 0


class FakeConsumer:
    """Hands out one record per poll, `total` of them, then nothing; records the commits, each of which takes
    `commit_seconds` (the broker's round trip) and, from the `fail_commit`-th on, fails."""

    def __init__(self, total: int, commit_seconds: float = 0.0, fail_commit: int | None = None,
                 log: list[tuple[str, tuple[int, ...]]] | None = None) -> None:
        self.next, self.total = 0, total
        self.commit_seconds, self.fail_commit = commit_seconds, fail_commit
        self.commits: list[int] = []
        self.log = log if log is not None else []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[FakeRecord]]:
        await asyncio.sleep(0)
        if self.next >= self.total:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        self.next += 1
        return {TopicPartition("t", 0): [FakeRecord(self.next - 1)]}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        offset = offsets[TopicPartition("t", 0)]
        self.log.append(("commit", (offset,)))
        await asyncio.sleep(self.commit_seconds)
        if self.fail_commit is not None and len(self.commits) + 1 >= self.fail_commit:
            raise ConnectionError("the coordinator went away")
        self.commits.append(offset)
        self.log.append(("committed", (offset,)))


class FakePool:
    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[None]:
        yield None


class FakeConnection:
    async def close(self) -> None:
        pass


async def fake_connect() -> FakeConnection:
    return FakeConnection()


class FakeProcessor:
    """Stores take 20 ms each (PostgreSQL; on the writer's thread); deciding is instant. A store that holds
    offset `fail_at` fails. Settling happens back on the consumer's loop."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.log: list[tuple[str, tuple[int, ...]]] = []

    async def decide(self, conn: object, messages: list[Message]) -> Decided:
        self.log.append(("decide", tuple(m.offset for m in messages)))
        return Decided(messages, [], 0.0)

    async def write(self, conn: object, decided: Decided) -> None:
        assert threading.current_thread() is not threading.main_thread()
        offsets = tuple(m.offset for m in decided.messages)
        self.log.append(("store", offsets))
        await asyncio.sleep(0.02)
        if self.fail_at in offsets:
            raise RuntimeError(f"store of {offsets} failed")
        self.log.append(("stored", offsets))

    def settle(self, decided: Decided) -> None:
        assert threading.current_thread() is threading.main_thread()
        self.log.append(("settled", tuple(m.offset for m in decided.messages)))

    def steps(self, step: str) -> list[tuple[int, ...]]:
        return [offsets for s, offsets in self.log if s == step]


async def run_loop(processor: FakeProcessor, consumer: FakeConsumer, ahead: int) -> None:
    """Run the loop until every record is committed (then stop it) or it ends by itself; at most 10 s."""
    settings = Settings(decided_ahead=ahead, poll_timeout_ms=5)
    task = asyncio.create_task(
        consume(consumer, FakePool(), processor, settings, fake_connect)  # type: ignore[arg-type]
    )
    deadline = asyncio.get_running_loop().time() + 10
    while not task.done() and consumer.commits[-1:] != [consumer.total]:
        assert asyncio.get_running_loop().time() < deadline, "the loop neither finished nor failed"
        await asyncio.sleep(0.01)
    if task.done():
        task.result()  # the loop ended by itself: raises what it raised
    else:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def committed_only_what_was_stored(log: list[tuple[str, tuple[int, ...]]]) -> bool:
    """Every commit, when it was sent, covered only offsets whose transaction had committed."""
    stored = 0
    for step, offsets in log:
        if step == "stored":
            stored = offsets[-1] + 1
        elif step == "commit" and offsets[0] > stored:
            return False
    return True


async def test_the_core_decides_ahead_and_the_writer_stores_what_waits_in_one_transaction_in_order() -> None:
    processor = FakeProcessor()
    consumer = FakeConsumer(8, log=processor.log)
    await run_loop(processor, consumer, ahead=3)
    stored = processor.steps("stored")
    assert [o for offsets in stored for o in offsets] == list(range(8))  # each once, in order
    assert processor.steps("settled") == stored  # each settled, after it was stored
    assert consumer.commits[-1] == 8 and consumer.commits == sorted(set(consumer.commits))
    assert committed_only_what_was_stored(processor.log)
    # The core went on deciding while the writer stored (a store takes 20 ms, deciding nothing), up to four
    # batches not stored yet (one being stored, three waiting) ...
    first_stored = processor.log.index(("stored", stored[0]))
    decided_meanwhile = [o for step, o in processor.log[:first_stored] if step == "decide"]
    assert 2 <= len(decided_meanwhile) <= len(stored[0]) + 4
    # ... and the writer took the waiting ones at once.
    assert max(len(offsets) for offsets in stored) > 1
    # Each store begins only after the one before it has finished.
    starts = [i for i, (step, _) in enumerate(processor.log) if step == "store"]
    ends = [i for i, (step, _) in enumerate(processor.log) if step == "stored"]
    assert all(end < start for end, start in zip(ends, starts[1:], strict=False))


async def test_a_failed_store_ends_the_loop_and_nothing_after_it_is_stored_or_committed() -> None:
    processor = FakeProcessor(fail_at=2)
    consumer = FakeConsumer(8, log=processor.log)
    with pytest.raises(RuntimeError, match=r"store of \(.*2.*\) failed"):
        await run_loop(processor, consumer, ahead=3)
    stored = [o for offsets in processor.steps("stored") for o in offsets]
    assert stored == list(range(len(stored))) and 2 not in stored  # nothing stored after the failed one
    assert processor.steps("store")[-1][0] == len(stored)  # the failed one was the last store
    assert all(c <= len(stored) for c in consumer.commits)
    assert committed_only_what_was_stored(processor.log)


async def test_the_writer_does_not_wait_for_the_offset_commit() -> None:
    processor = FakeProcessor()
    consumer = FakeConsumer(6, commit_seconds=0.1, log=processor.log)  # a commit: five stores' time
    await run_loop(processor, consumer, ahead=1)
    log = processor.log
    first_commit = next(i for i, (step, _) in enumerate(log) if step == "commit")
    first_committed = next(i for i, (step, _) in enumerate(log) if step == "committed")
    assert any(step == "stored" for step, _ in log[first_commit:first_committed])  # the writer went on meanwhile
    assert committed_only_what_was_stored(log)
    assert consumer.commits[-1] == 6 and consumer.commits == sorted(consumer.commits)
    assert len(consumer.commits) < len(processor.steps("stored"))  # the latest offsets at each round


async def test_a_failed_offset_commit_ends_the_loop() -> None:
    processor, consumer = FakeProcessor(), FakeConsumer(8, commit_seconds=0.005, fail_commit=2)
    with pytest.raises(ConnectionError, match="the coordinator went away"):
        await run_loop(processor, consumer, ahead=1)
    assert len(consumer.commits) == 1  # the first went through, the second failed and ended the loop


async def test_only_a_poll_that_finds_nothing_calls_on_idle() -> None:
    processor, consumer = FakeProcessor(), FakeConsumer(3)
    idle_after: list[int] = []  # how many records had been handed out at each idle call
    task = asyncio.create_task(consume(
        consumer, FakePool(), processor, Settings(poll_timeout_ms=5), fake_connect,  # type: ignore[arg-type]
        on_idle=lambda: idle_after.append(consumer.next),
    ))
    deadline = asyncio.get_running_loop().time() + 10
    while len(idle_after) < 2:
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert idle_after[:2] == [3, 3]  # none while records came, then one per empty poll
