"""Access control lists in the data directory: ``acls.json``.

One entry per ACL binding (resource type, resource name, pattern type, principal, host, operation,
permission), with Kafka's numeric codes. The file is replaced atomically (tmp -> fsync -> rename ->
fsync dir), so after a crash it holds the old or the new set, never a mix. ``riel acl --data-dir`` may
edit it while a server runs: every read-modify-write holds an ``flock`` on ``acls.lock``, and a reader
notices changes by the file's identity (inode, size, mtime) and re-reads it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final

from riel.storage.atomic_file import write_file_atomically

ACLS_FILE: Final = "acls.json"
LOCK_FILE: Final = "acls.lock"
FORMAT_VERSION: Final = 1


class AclFileError(Exception):
    """``acls.json`` exists but cannot be read as an ACL file."""


@dataclass(frozen=True, order=True, slots=True)
class AclBinding:
    """One ACL, with Kafka's codes (see ``riel.broker.authorizer`` for their names)."""

    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission: int


_FIELDS: Final = frozenset(f.name for f in fields(AclBinding))


class AclStore:
    """Reads and edits ``acls.json`` of one data directory. Not thread-safe; one per process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / ACLS_FILE
        self._acls: frozenset[AclBinding] = frozenset()
        self._identity: tuple[int, int, int, int] | None = None

    def acls(self) -> frozenset[AclBinding]:
        """Every ACL, re-read first if the file changed since the last read."""
        self.refresh()
        return self._acls

    def refresh(self) -> bool:
        """Re-read the file if it changed; True if it did."""
        identity = self._stat()
        if identity == self._identity:
            return False
        self._acls = self._read() if identity is not None else frozenset()
        self._identity = identity
        return True

    def add(self, bindings: Iterable[AclBinding]) -> None:
        with self._locked() as acls:
            acls.update(bindings)

    def remove(self, bindings: Iterable[AclBinding]) -> None:
        with self._locked() as acls:
            acls.difference_update(bindings)

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _read(self) -> frozenset[AclBinding]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return frozenset()
        except (OSError, ValueError) as exc:
            raise AclFileError(f"cannot read {self.path}: {exc}") from exc
        return _parse(data, self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[set[AclBinding]]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            acls = set(self._read())
            yield acls
            document = {"version": FORMAT_VERSION, "acls": [asdict(b) for b in sorted(acls)]}
            write_file_atomically(self.path, json.dumps(document, indent=1).encode() + b"\n")
            self._identity = None  # re-read (and re-stat) on next use
            self.refresh()
        finally:
            os.close(fd)


def _parse(data: Any, path: Path) -> frozenset[AclBinding]:
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise AclFileError(f"{path}: not a version {FORMAT_VERSION} ACL file")
    entries = data.get("acls")
    if not isinstance(entries, list):
        raise AclFileError(f"{path}: 'acls' must be a list")
    out = set()
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != _FIELDS:
            raise AclFileError(f"{path}: bad ACL entry {entry!r}")
        for name, value in entry.items():
            wanted = str if name in ("resource_name", "principal", "host") else int
            if not isinstance(value, wanted) or isinstance(value, bool):
                raise AclFileError(f"{path}: bad {name} in ACL entry {entry!r}")
        out.add(AclBinding(**entry))
    return frozenset(out)
