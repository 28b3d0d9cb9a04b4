"""bench/bench_throughput.py runs end to end in --smoke mode (no timing assertions): every phase of
Riel (kcat and confluent-kafka) and Redis Streams moves every message, and the CPU accounting that
the README's ceiling argument rests on is filled in for client and server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_throughput.py"


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is installed by .ci/run")
def test_bench_throughput_smoke_moves_every_message_and_accounts_cpu(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--timeout", "60", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert float(report["environment"]["sha-256 (hashlib)"].split()[0].replace(",", "")) > 0
    results = report["results"]
    systems = {r["system"] for r in results}
    assert {"riel (flush=always) [kcat]", "riel (flush=always) [confluent]"} <= systems
    for r in results:
        for phase in (r["produce"], r["consume"]):
            assert phase["error"] is None, (r["system"], r["workload"], phase)
            assert phase["messages"] == r["count"] > 0
            assert phase["client_cpu_s"] > 0, (r["system"], phase)
        if r["system"].startswith("riel"):
            assert r["produce_cpu_s"] is not None and r["produce_cpu_s"] >= 0
    assert "CPU ceiling msg/s" in done.stdout
