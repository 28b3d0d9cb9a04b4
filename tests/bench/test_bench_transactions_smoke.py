"""bench/bench_transactions.py runs end to end in --smoke mode (no timing assertions): every phase is
verified (log ends = messages + markers; read_committed counts them back) and a ratio is reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_transactions.py"


def test_bench_transactions_smoke_runs_and_verifies_every_phase(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["error"] is None
    modes = {phase["mode"] for phase in results["phases"]}
    assert modes == {"idempotent", "txn-100", "txn-1000"}
    assert all(phase["verified"] and phase["messages"] == 10_000 for phase in results["phases"])
    assert set(results["ratios"]) == {"txn-100", "txn-1000"}
    assert all(r["ratio_of_medians"] > 0 for r in results["ratios"].values())
    assert "vs idempotent" in done.stdout
