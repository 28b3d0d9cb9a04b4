"""The one exception the records layer raises for bytes that do not form valid record batches."""

from __future__ import annotations

from riel.errors import KafkaApiError


class InvalidRecordError(KafkaApiError):
    """A record batch failed validation; ``code`` is the Kafka error code to answer with.

    It subclasses ``KafkaApiError`` so a produce handler that already turns API errors into a
    per-partition ``error_code`` needs no extra case for it.
    """
