"""bench/bench_embedded.py runs end to end on a tiny count (no timing assertions, no Redis)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_embedded.py"


def test_bench_embedded_runs_and_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    args = ["--count", "2000", "--chunk", "500", "--no-redis", "--timeout", "60"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--workdir", str(tmp_path), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout
    assert "fast_records.SPEEDUPS:" in text
    for case, system in [
        ("publish batched", "riel"),
        ("publish batched", "sqlite"),
        ("publish single", "riel"),
        ("publish single", "sqlite"),
        ("consume", "riel"),
        ("consume", "sqlite"),
    ]:
        pattern = rf"^{case}\s+{system}\s+.*\s2,000\s+[\d.]+\s+\S+\s+[\d,]+\s+[\d.,]+"
        assert re.search(pattern, text, re.MULTILINE), f"no table row for {case} / {system}:\n{text}"
    assert "Riel/SQLite" in text and "Targets" in text
    results = json.loads(out.read_text())
    assert {r["system"] for r in results["results"]} == {"riel", "sqlite"}
    assert all(r["error"] is None for r in results["results"])
    assert list(tmp_path.iterdir()) == [out]  # the benchmark's tmp dir is gone
