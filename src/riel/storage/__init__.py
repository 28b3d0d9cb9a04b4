"""The durable log: segments, indexes, recovery, producer state, topic catalogue.

Plain synchronous file I/O: no asyncio, no sockets. Nothing here is thread-safe; the broker calls it
from its single event-loop thread.
"""

from riel.storage.file_slice import FileSlice
from riel.storage.log_config import LogConfig
from riel.storage.log_manager import LogManager, TopicInfo
from riel.storage.partition_log import AppendResult, PartitionLog

__all__ = ["AppendResult", "FileSlice", "LogConfig", "LogManager", "PartitionLog", "TopicInfo"]
