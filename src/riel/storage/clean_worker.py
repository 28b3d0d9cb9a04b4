"""The log cleaner's worker process: ``python -m riel.storage.clean_worker PLAN RESULT``.

Reads a ``CleanPlan`` (JSON) from the file PLAN, runs it (``log_cleaner.run_clean``: reads sealed
segments, writes ``.cleaned`` files) and writes ``{"cleaned": [...]}`` or ``{"error": "..."}`` to the
file RESULT. A separate process, so that decompressing and re-encoding records neither holds the
broker's GIL nor competes with its event loop at the same priority (it runs at idle priority).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from riel.storage.atomic_file import write_file_atomically
from riel.storage.log_cleaner import CleanPlan, run_clean


def _lower_priority() -> None:
    """Run only on CPU time nobody else wants (SCHED_IDLE), so producers and consumers never wait for
    compaction; where that policy is unavailable, the lowest nice level."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(19)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m riel.storage.clean_worker PLAN RESULT", file=sys.stderr)
        return 2
    plan_path, result_path = Path(argv[0]), Path(argv[1])
    _lower_priority()
    try:
        plan = CleanPlan.from_json(plan_path.read_text())
        outcome: dict[str, object] = {"cleaned": [group.to_dict() for group in run_clean(plan)]}
    except Exception as exc:  # reported to the broker, which logs it and retries after its backoff
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    write_file_atomically(result_path, json.dumps(outcome).encode())
    return 0 if "cleaned" in outcome else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
