"""Tests of the ``riel`` command line against real ``riel serve`` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

CLI_TIMEOUT_S = 90.0


def riel_cli(
    *args: str, input: bytes | str | None = None, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m riel ARGS`` as a user would; bounded by ``timeout``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIEL_")}
    env["COLUMNS"] = "200"
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [sys.executable, "-m", "riel", *args],
        input=data,
        capture_output=True,
        timeout=timeout,
        env=env,
        stdin=None if data is not None else subprocess.DEVNULL,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result).stdout)


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok(result).stdout.splitlines() if line.strip()]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
