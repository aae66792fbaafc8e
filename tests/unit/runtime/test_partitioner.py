"""The cached partitioner chooses exactly what Kafka's default (murmur2) partitioner chooses."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from services.runtime.kafka import CachedPartitioner

cached = CachedPartitioner(limit=50)


@given(st.binary(min_size=0, max_size=64), st.integers(1, 24))
def test_same_choice_as_the_default_partitioner(key: bytes, n: int) -> None:
    partitions = list(range(n))
    want = DefaultPartitioner()(key, partitions, partitions)
    assert cached(key, partitions, partitions) == want
    assert cached(key, partitions, partitions) == want  # from the cache
