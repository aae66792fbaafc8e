"""Kafka helpers shared by the services, the tests, the simulator's `--publish` and the demo.

Topics are created explicitly: a topic Tansu auto-creates gets several partitions, and the order between
partitions is undefined. `sn51.input` (and, by default, every sn51 topic) gets ONE partition so that the live
order of the input equals its file order and every service folds the events in the order `sn51 replay` does.
Producers use acks=all and no idempotence/transactions (Tansu refuses aiokafka's InitProducerId v0).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from schemas.codec import encode
from schemas.envelope import Event
from schemas.topics import ALL_TOPICS, INPUT

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
"""A day's statement lists every provider (~230 bytes each): 10,000 providers is 2.3 MB, past Kafka's 1 MB
default. Producers may send up to this; topics are created with the same `max.message.bytes` (deploy/)."""


class CachedPartitioner:
    """Kafka's default key → partition choice (murmur2, as every Kafka client computes it), remembered per
    (key, partitions): aiokafka's murmur2 is pure Python (~20 µs a message) and a service's keys repeat
    (hotkeys, executors, coldkeys). Keyless messages keep the default's random choice."""

    def __init__(self, limit: int = 100_000) -> None:
        self._default = DefaultPartitioner()
        self._cache: dict[tuple[bytes, tuple[int, ...]], int] = {}
        self._limit = limit

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if len(all_partitions) == 1:  # the default's only choice too (every sn51 topic has one partition)
            return all_partitions[0]
        if key is None:
            return int(self._default(key, all_partitions, available))
        slot = (key, tuple(all_partitions))
        found = self._cache.get(slot)
        if found is None:
            if len(self._cache) >= self._limit:
                self._cache.clear()
            found = self._cache[slot] = int(self._default(key, all_partitions, available))
        return found


def new_producer(bootstrap: str, **options: Any) -> AIOKafkaProducer:
    """acks=all, no idempotence (Tansu refuses it), Kafka's own key partitioning (cached), large messages;
    any of these can be overridden by `options`."""
    settings: dict[str, Any] = {
        "acks": "all", "enable_idempotence": False, "linger_ms": 2, "partitioner": CachedPartitioner(),
        "max_request_size": MAX_MESSAGE_BYTES, "max_batch_size": 1024 * 1024,
    }
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **(settings | options))


Record = tuple[str, bytes | None, bytes, Sequence[tuple[str, bytes]]]
"""topic, key, value, headers"""


async def send_in_order(producer: AIOKafkaProducer, partitioner: CachedPartitioner, records: Sequence[Record]) -> None:
    """Publish `records` and wait until every one is acknowledged; each partition receives its records in the
    given order. The batches are built here (`create_batch`) rather than by `send`, which costs several times
    as much per message (metadata wait, partitioning, a future each): this is the outbox relay's hot path."""
    partitions: dict[str, list[int]] = {}
    batches: dict[tuple[str, int], Any] = {}
    futures = []
    for topic, key, value, headers in records:
        parts = partitions.get(topic)
        if parts is None:
            parts = partitions[topic] = sorted(await producer.partitions_for(topic))
        tp = (topic, partitioner(key, parts, parts))
        batch = batches.get(tp)
        if batch is None:
            batch = batches[tp] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:  # full: send it
            futures.append(await producer.send_batch(batch, topic, partition=tp[1]))
            batch = batches[tp] = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=headers)  # an empty batch takes any one
    for (topic, partition), batch in batches.items():
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    for future in futures:
        await future


async def create_topics(bootstrap: str, topics: Iterable[str], partitions: int | Mapping[str, int] = 1) -> None:
    """Create the topics that do not exist yet (idempotent). `partitions`: one number, or per topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in dict.fromkeys(topics) if t not in existing]
        if not wanted:
            return
        def count(topic: str) -> int:
            return partitions.get(topic, 1) if isinstance(partitions, Mapping) else partitions

        new = [NewTopic(name=t, num_partitions=count(t), replication_factor=1,
                        topic_configs={"max.message.bytes": str(MAX_MESSAGE_BYTES)}) for t in wanted]
        with contextlib.suppress(TopicAlreadyExistsError):  # created by another process meanwhile
            await admin.create_topics(new)
    finally:
        await admin.close()


async def create_all_topics(bootstrap: str, prefix: str = "", partitions: int = 1) -> None:
    await create_topics(bootstrap, [prefix + t for t in ALL_TOPICS], partitions)


def _key_of(value: bytes) -> bytes | None:
    try:
        obj = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    key = obj.get("key") if isinstance(obj, dict) else None
    return key.encode() if isinstance(key, str) else None


async def produce(bootstrap: str, messages: Iterable[bytes | str | Event], topic: str = INPUT) -> int:
    """Publish raw envelopes (or events) in order, keyed by their `key`; malformed bytes go as they are,
    without a key. Waits until every message is acknowledged; returns how many were sent."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        futures = []
        for m in messages:
            value = encode(m) if isinstance(m, Event) else (m.encode() if isinstance(m, str) else m)
            futures.append(await producer.send(topic, value=value, key=_key_of(value)))
        for f in futures:
            await f
        return len(futures)
    finally:
        await producer.stop()


async def committed_offsets(bootstrap: str, group: str, topics: Sequence[str]) -> dict[str, int]:
    """The group's committed offset on partition 0 of each topic (-1 where none). Read through a consumer's
    OffsetFetch: Tansu answers the admin client's list_consumer_group_offsets in a form it cannot decode."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        out: dict[str, int] = {}
        for topic in topics:
            offset = await consumer.committed(TopicPartition(topic, 0))
            out[topic] = -1 if offset is None else offset
        return out
    finally:
        await consumer.stop()
