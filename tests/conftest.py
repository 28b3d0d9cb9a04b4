"""Shared fixtures: a real ``riel serve`` subprocess on a free loopback port.

``riel`` is one server per test module (cheap tests share it); ``riel_factory`` starts fresh servers for
tests that kill, restart or tamper with the data directory. Each server's stdout+stderr goes to a log
file in its tmp dir; a failing test gets the tail of every running server's log attached to its report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 20.0
LOG_TAIL_BYTES = 20_000

_live_servers: list[RielServer] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RielServer:
    """One ``python -m riel serve`` process; restartable on the same data dir and port."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        port: int | None = None,
        flush: str = "always",
        num_partitions: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = port or free_port()
        self.http_port = free_port()  # the console's port: never the default 8080 in tests
        self.flush = flush
        self.num_partitions = num_partitions
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        """Base URL of the web console, /metrics and /health."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "riel", "serve",
            "--data-dir", str(self.data_dir),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--flush", self.flush,
            "--http-port", str(self.http_port),
        ]  # fmt: skip
        if self.num_partitions is not None:
            cmd += ["--num-partitions", str(self.num_partitions)]
        return cmd + list(self.extra_args)

    def start(self, timeout: float = READY_TIMEOUT_S) -> RielServer:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
            )
        if self not in _live_servers:
            _live_servers.append(self)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                pytest.fail(f"riel serve exited with {code} before accepting connections:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.5):
                return
            time.sleep(0.05)
        self.kill9()
        pytest.fail(f"riel serve did not accept connections within {timeout}s:\n{self.log_tail()}")

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait; returns the exit code. A hang is killed and reported as a failure."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                pytest.fail(f"riel serve ignored SIGTERM for {timeout}s (killed):\n{self.log_tail()}")
        return int(self.proc.returncode)

    def kill9(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, *, graceful: bool = True, timeout: float = READY_TIMEOUT_S) -> RielServer:
        if graceful:
            self.stop()
        else:
            self.kill9()
        return self.start(timeout)

    def rss_bytes(self) -> int:
        """Resident set size of the broker process (VmRSS from /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line in /proc/PID/status")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, nbytes: int = LOG_TAIL_BYTES) -> str:
        text = self.log_text()
        return text if len(text) <= nbytes else "...\n" + text[-nbytes:]

    def close(self) -> None:
        """Teardown: graceful stop if still running, then forget the server."""
        try:
            if self.is_running():
                code = self.stop()
                if code != 0:
                    pytest.fail(f"riel serve exited with {code} on SIGTERM:\n{self.log_tail()}")
        finally:
            if self in _live_servers:
                _live_servers.remove(self)


ServerFactory = Callable[..., RielServer]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the tail of every running server's log to a failing test's report."""
    report = yield
    if report.failed:
        for server in list(_live_servers):
            report.sections.append(
                (f"riel server log ({server.bootstrap}, {server.log_path})", server.log_tail())
            )
    return report


@pytest.fixture(scope="module")
def riel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RielServer]:
    """One broker shared by the tests of a module (3 default partitions for auto-created topics)."""
    base = tmp_path_factory.mktemp("riel")
    server = RielServer(base / "data", base / "riel.log", num_partitions=3)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def riel_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start brokers of one's own: ``riel_factory(flush="always", num_partitions=1)``."""
    servers: list[RielServer] = []

    def make(
        *,
        flush: str = "always",
        num_partitions: int | None = None,
        data_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> RielServer:
        n = len(servers)
        server = RielServer(
            data_dir or tmp_path / f"data{n}",
            tmp_path / f"riel{n}.log",
            flush=flush,
            num_partitions=num_partitions,
            extra_args=extra_args,
        )
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        errors = []
        for server in servers:
            try:
                server.close()
            except BaseException as exc:  # report every server, not just the first
                errors.append(exc)
        if errors:
            raise errors[0]
