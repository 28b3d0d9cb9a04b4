"""Kafka's default partitioning, so a key lands on the same partition whichever client wrote it.

Keyed messages: ``(murmur2(key) & 0x7fffffff) % partitions``, as the Java client's
``BuiltInPartitioner`` and librdkafka's ``murmur2_random`` do. Unkeyed messages stick to one partition
until a batch is sent, then move on (the sticky partitioner of KIP-480); that choice is free in Kafka.

murmur2 is written out here: it is ~15 lines, has no maintained PyPI package with Kafka's exact seed
and tail handling, and must match the Java client bit for bit (a test checks it against kafka-python).
"""

from __future__ import annotations

from typing import Final

_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of ``data`` as an unsigned int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - (length & 3)
    for i in range(0, whole, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's clients pick for ``key`` among ``partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
