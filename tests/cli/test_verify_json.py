"""``riel verify --json``: one document with every partition's result and a summary, the same exit codes
as the text output; and the progress bar, shown on a terminal only."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from e2e.test_verify_cli import flip_byte_in_batch, run_verify, write_with_sdk

PTY_TIMEOUT_S = 60.0


def verify_json(data_dir: Path, *args: str, code: int = 0) -> dict[str, Any]:
    result = run_verify(data_dir, "--json", *args)
    assert result.returncode == code, result.stdout + result.stderr
    document: dict[str, Any] = json.loads(result.stdout)  # nothing else on stdout
    return document


def test_verify_json_ok_then_a_flipped_byte(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_with_sdk(data_dir)
    heads = tmp_path / "heads.json"

    ok = verify_json(data_dir, "--export-heads", str(heads))
    assert ok["ok"] is True and ok["target"] is None
    assert ok["summary"] == {
        "partitions": 2,
        "ok": 2,
        "failed": 0,
        "against": None,
        "exported_heads": str(heads),
    }
    exported = json.loads(heads.read_text())
    for report in ok["partitions"]:
        name = report["partition"]
        assert f"{report['topic']}/{report['index']}" == name
        assert report["ok"] is True and report["batches"] == 12 and report["bytes"] > 0
        assert (report["head_offset"], report["next_offset"]) == (11, 12)
        assert report["head_hash"] == exported[name]["hash"]
        assert report["first_bad_offset"] is None and report["reason"] is None and report["notes"] == []

    bad_offset = flip_byte_in_batch(data_dir / "topics" / "orders-1", 5)
    bad = verify_json(data_dir, "--against", str(heads), code=1)
    assert bad["ok"] is False
    assert bad["summary"]["failed"] == 1 and bad["summary"]["ok"] == 1
    by_name = {r["partition"]: r for r in bad["partitions"]}
    assert by_name["orders/0"]["ok"] is True and by_name["orders/0"]["pinned_offset"] == 11
    failed = by_name["orders/1"]
    assert failed["ok"] is False and failed["first_bad_offset"] == bad_offset and failed["reason"]
    assert failed["head_offset"] is None and failed["head_hash"] is None

    one = verify_json(data_dir, "orders/0")
    assert [r["partition"] for r in one["partitions"]] == ["orders/0"] and one["target"] == "orders/0"


def test_verify_json_usage_error_and_empty_data_dir(tmp_path: Path) -> None:
    missing = run_verify(tmp_path / "nope", "--json")
    assert missing.returncode == 2 and missing.stdout == "" and "no data directory" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = verify_json(tmp_path / "empty")
    assert empty["partitions"] == [] and empty["summary"]["partitions"] == 0 and empty["ok"] is True


def run_in_terminal(*args: str) -> tuple[int, str]:
    """Run ``python -m riel ARGS`` with a pseudo-terminal as stdout; its exit code and output."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "riel", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + PTY_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_with_sdk(data_dir, rounds=3)
    code, output = run_in_terminal("verify", "--data-dir", str(data_dir))
    assert code == 0, output
    assert "verify " in output and "\x1b[" in output  # the bar, drawn with terminal escapes
    assert "OK    orders/0  3 batches" in output and "2 partition(s) verified OK" in output

    piped = run_verify(data_dir)
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout
    assert piped.stdout.splitlines()[-1] == "2 partition(s) verified OK"
