"""The relay's producer path against a real broker: hand-built batches keep each partition's order and put
every key where Kafka's default partitioner puts it, across several partitions and full batches."""

from __future__ import annotations

import secrets
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from services.runtime.kafka import CachedPartitioner, Record, create_topics, new_producer, send_in_order

pytestmark = pytest.mark.integration


async def test_records_keep_their_order_per_partition(kafka_bootstrap: str) -> None:
    topic = f"order{secrets.token_hex(3)}"
    await create_topics(kafka_bootstrap, [topic], partitions=3)
    keys = [f"key-{i}".encode() for i in range(7)]
    # 3,000 records of ~1 KB: several full batches per partition (batches of at most 16 KB here).
    records: list[Record] = [
        (topic, keys[i % 7], f"{i:06d}".encode() + b"x" * 1000, [("n", str(i).encode())] if i % 5 == 0 else [])
        for i in range(3_000)
    ]
    producer = new_producer(kafka_bootstrap, max_batch_size=16 * 1024)
    await producer.start()
    try:
        await send_in_order(producer, CachedPartitioner(), records)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got: dict[int, list[tuple[bytes, bytes, list[tuple[str, bytes]]]]] = defaultdict(list)
        while sum(len(v) for v in got.values()) < len(records):
            polled = await consumer.getmany(timeout_ms=2_000)
            assert polled, "the broker returned fewer records than were sent"
            for tp, rs in polled.items():
                got[tp.partition].extend((r.key or b"", r.value or b"", list(r.headers)) for r in rs)
    finally:
        await consumer.stop()

    default = DefaultPartitioner()
    expected: dict[int, list[tuple[bytes, bytes, list[tuple[str, bytes]]]]] = defaultdict(list)
    for _, key, value, headers in records:
        expected[default(key, [0, 1, 2], [0, 1, 2])].append((key or b"", value, list(headers)))
    assert dict(got) == dict(expected)
    assert len(expected) > 1  # the keys really spread over several partitions
