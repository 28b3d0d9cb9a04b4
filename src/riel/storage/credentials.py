"""Users' SASL/SCRAM credentials in the data directory: ``credentials.json``.

Per user and mechanism the file holds salt, iterations, StoredKey and ServerKey (base64): never a
password or a salted password. It is replaced atomically (tmp -> fsync -> rename) and created with mode
0600. ``riel user`` edits it while a server may be running, so every read-modify-write holds an
``flock`` on ``credentials.lock``, and a reader notices changes by the file's identity (inode, size,
mtime) and re-reads it: a server picks up ``riel user add`` at the next login without a restart.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from riel.storage.atomic_file import TMP_SUFFIX, write_file_atomically

CREDENTIALS_FILE: Final = "credentials.json"
LOCK_FILE: Final = "credentials.lock"
FORMAT_VERSION: Final = 1


class CredentialsFileError(Exception):
    """``credentials.json`` exists but cannot be read as a credentials file."""


@dataclass(frozen=True)
class StoredCredential:
    mechanism: str  # "SCRAM-SHA-256" or "SCRAM-SHA-512"
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


Users = dict[str, dict[str, StoredCredential]]  # user -> mechanism -> credential


class CredentialStore:
    """Reads and edits ``credentials.json`` of one data directory. Not thread-safe; one per process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / CREDENTIALS_FILE
        self._users: Users = {}
        self._identity: tuple[int, int, int, int] | None = None

    # --- reading ----------------------------------------------------------------------------------
    def users(self) -> Users:
        """Every user's credentials, re-read first if the file changed since the last read."""
        self.refresh()
        return self._users

    def get(self, user: str, mechanism: str) -> StoredCredential | None:
        return self.users().get(user, {}).get(mechanism)

    def refresh(self) -> None:
        identity = self._stat()
        if identity == self._identity:
            return
        self._users = self._read() if identity is not None else {}
        self._identity = identity

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _read(self) -> Users:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CredentialsFileError(f"cannot read {self.path}: {exc}") from exc
        return _parse(data, self.path)

    # --- editing ----------------------------------------------------------------------------------
    def upsert(self, user: str, credential: StoredCredential) -> None:
        with self._locked() as users:
            users.setdefault(user, {})[credential.mechanism] = credential

    def delete(self, user: str, mechanism: str | None = None) -> bool:
        """Remove one mechanism of ``user`` (or all with None); False if there was nothing to remove."""
        with self._locked() as users:
            mechanisms = users.get(user)
            if not mechanisms or (mechanism is not None and mechanism not in mechanisms):
                return False
            if mechanism is None:
                del users[user]
            else:
                del mechanisms[mechanism]
                if not mechanisms:
                    del users[user]
            return True

    def apply(self, upserts: list[tuple[str, StoredCredential]], deletions: list[tuple[str, str]]) -> None:
        """Several changes in one write (AlterUserScramCredentials)."""
        with self._locked() as users:
            for user, mechanism in deletions:
                users.get(user, {}).pop(mechanism, None)
                if user in users and not users[user]:
                    del users[user]
            for user, credential in upserts:
                users.setdefault(user, {})[credential.mechanism] = credential

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Users]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            users = {user: dict(mechs) for user, mechs in self._read().items()}
            yield users
            self._write(users)
        finally:
            os.close(fd)  # releases the flock
        self._identity = None
        self.refresh()

    def _write(self, users: Users) -> None:
        document = {
            "version": FORMAT_VERSION,
            "users": {
                user: {mechanism: _encode(credential) for mechanism, credential in sorted(mechs.items())}
                for user, mechs in sorted(users.items())
            },
        }
        # write_file_atomically keeps the mode of an existing tmp file (O_TRUNC): create it 0600 first,
        # so the hashes are never readable by others, not even for a moment.
        tmp = self.path.with_name(self.path.name + TMP_SUFFIX)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(tmp, 0o600)
        write_file_atomically(self.path, (json.dumps(document, indent=2) + "\n").encode())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _encode(credential: StoredCredential) -> dict[str, Any]:
    return {
        "salt": _b64(credential.salt),
        "iterations": credential.iterations,
        "stored_key": _b64(credential.stored_key),
        "server_key": _b64(credential.server_key),
    }


def _parse(data: Any, path: Path) -> Users:
    try:
        if data.get("version") != FORMAT_VERSION:
            raise CredentialsFileError(f"{path}: unknown format version {data.get('version')!r}")
        users: Users = {}
        for user, mechs in data["users"].items():
            users[str(user)] = {
                str(mechanism): StoredCredential(
                    mechanism=str(mechanism),
                    salt=base64.b64decode(fields["salt"], validate=True),
                    iterations=int(fields["iterations"]),
                    stored_key=base64.b64decode(fields["stored_key"], validate=True),
                    server_key=base64.b64decode(fields["server_key"], validate=True),
                )
                for mechanism, fields in mechs.items()
            }
        return users
    except CredentialsFileError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CredentialsFileError(f"{path} is damaged: {exc!r}") from exc
