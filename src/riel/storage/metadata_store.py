"""The data directory's catalogue of topics: names, topic ids, partition counts and explicit configs.

One JSON file, ``<data_dir>/metadata.json``, always replaced atomically (tmp -> fsync -> rename ->
fsync dir), so after a crash it holds either the state before or after the last change.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from riel.errors import StorageError
from riel.storage.atomic_file import write_file_atomically

METADATA_FILE: Final = "metadata.json"
FORMAT_VERSION: Final = 1


@dataclass(frozen=True)
class TopicInfo:
    """A topic as the log manager knows it. ``configs`` holds only the explicitly set configs."""

    name: str
    topic_id: uuid.UUID
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def load_topics(data_dir: Path) -> dict[str, TopicInfo] | None:
    """The stored topics, or None if the file does not exist yet; ``StorageError`` if it is damaged
    (atomic replacement means that should never happen, so it is not papered over)."""
    path = data_dir / METADATA_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        document: Any = json.loads(raw)
        if document.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported format version {document.get('version')!r}")
        topics: dict[str, TopicInfo] = {}
        for entry in document["topics"]:
            info = TopicInfo(
                name=str(entry["name"]),
                topic_id=uuid.UUID(entry["topic_id"]),
                partitions=int(entry["partitions"]),
                configs={str(k): str(v) for k, v in entry.get("configs", {}).items()},
            )
            topics[info.name] = info
        return topics
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StorageError(f"{path} is damaged ({exc}); restore it from a backup or remove it") from None


def save_topics(data_dir: Path, topics: dict[str, TopicInfo]) -> None:
    document = {
        "version": FORMAT_VERSION,
        "topics": [
            {
                "name": info.name,
                "topic_id": str(info.topic_id),
                "partitions": info.partitions,
                "configs": info.configs,
            }
            for info in sorted(topics.values(), key=lambda t: t.name)
        ],
    }
    write_file_atomically(data_dir / METADATA_FILE, json.dumps(document, indent=1).encode())
