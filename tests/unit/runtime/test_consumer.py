"""The consumer's pure helpers: the processing order of a poll and the offsets it commits."""

from __future__ import annotations

from aiokafka import TopicPartition

from services.runtime.consumer import merge, next_offsets
from services.runtime.outbox import Message


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
