"""Riel: an event log for Python people, embedded or as a Kafka-wire-compatible server."""

__version__ = "0.1.0"
