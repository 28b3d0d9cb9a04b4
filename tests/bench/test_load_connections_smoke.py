"""bench/load_connections.py runs end to end in a short mode: every connection served, nothing lost,
slow-loris and oversized-frame connections cut, RSS reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "load_connections.py"


def test_load_connections_short_run(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    args = ["--connections", "200", "--seconds", "10", "--interval", "2", "--rate", "200", "--grace", "30"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failures"] == []
    assert report["connections_served"] == 200
    assert report["requests_answered"] >= 200 * 3
    assert report["produced"] == report["delivered"] == report["consumed"] > 0
    assert report["consumed_in_order_exactly_once"]
    assert report["slow_loris_cut_after_s"] is not None and report["oversized_cut_after_s"] is not None
    assert 0 < report["peak_rss_mb"] < 1024
    assert "connections served      200 / 200" in done.stdout
