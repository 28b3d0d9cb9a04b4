"""bench/bench_compaction.py runs end to end in --quick mode (no timing assertions)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_compaction.py"


def test_bench_compaction_quick_runs_and_prints_the_tables(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--timeout",
            "60",
            "--workdir",
            str(tmp_path),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout
    for phase in ("A baseline", "B cleaning"):
        pattern = rf"^1\s+{phase}\s+20,000\s+[\d.]+\s+[\d,]+\s+\d+%"
        assert re.search(pattern, text, re.MULTILINE), f"no table row for {phase}:\n{text}"
    # The compaction row: 50,000 records, sizes before and after, and the broker's count of removed records.
    row = re.search(
        r"^1\s+50,000\s+[\d.]+\s+([\d.,]+) MB\s+([\d.,]+) MB\s+[\d.]+\s+[\d.]+\s+(\d+)$", text, re.M
    )
    assert row, f"no compaction row:\n{text}"
    assert float(row.group(2)) < float(row.group(1))
    assert "B/A:" in text and "target >= 0.80" in text
    results = json.loads(out.read_text())
    assert [p["name"] for p in results["phases"]] == ["A", "B"]
    assert all(p["msgs_per_s"] > 0 for p in results["phases"])
    (clean,) = results["cleans"]
    assert clean["bytes_after"] < clean["bytes_before"] and clean["broker_log"]
    assert list(tmp_path.iterdir()) == [out]  # the benchmark's tmp dir is gone
