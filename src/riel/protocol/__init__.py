"""Kafka wire protocol, sans-I/O: bytes in, messages out. No sockets, files, clocks or asyncio here."""
