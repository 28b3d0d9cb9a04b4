"""The examples in ``examples/`` run as documented (``python examples/x.py``), embedded and against a real
``riel serve``, exit 0, and their output tells the story they claim: checked here from the printed lines,
independently of each example's own verdict."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT_S = 120


@pytest.fixture(params=["embedded", "server"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """Command-line arguments choosing the log: an embedded data directory, or the module's server."""
    if request.param == "embedded":
        return ["--data-dir", str(tmp_path / "data")]
    server = request.getfixturevalue("riel")
    return ["--server", server.bootstrap]


def run_example(script: str, *args: str) -> list[str]:
    """Run ``examples/<script>`` in a subprocess; its stdout lines, once it exited 0 without a traceback."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=RUN_TIMEOUT_S,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    report = f"exit code {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, report
    assert "Traceback" not in proc.stderr, report
    return proc.stdout.splitlines()


def matches(pattern: str, lines: list[str]) -> list[re.Match[str]]:
    return [m for m in map(re.compile(pattern).match, lines) if m is not None]


def test_restaurant(where: list[str]) -> None:
    lines = run_example("restaurant.py", *where)
    text = "\n".join(lines)

    pace_ms = {
        m["cook"]: float(m["ms"]) for m in matches(r"(?P<cook>\w+) \((?P<ms>[\d.]+) ms per ticket\)", lines)
    }
    assert len(pace_ms) == 2, text
    slow_cook = max(pace_ms, key=lambda cook: pace_ms[cook])
    assert pace_ms[slow_cook] >= 5 * min(pace_ms.values()), text

    # Every order cooked exactly once, by the two cooks together, each doing some of the work.
    (placed,) = matches(r"waiter: (?P<n>\d+) orders placed", lines)
    orders = int(placed["n"])
    assert orders >= 20, text
    cooked: dict[str, list[int]] = {cook: [] for cook in pace_ms}
    for m in matches(r"\s+(?P<cook>\w+): cooked order\s+(?P<n>\d+)", lines):
        cooked[m["cook"]].append(int(m["n"]))
    everything = [n for numbers in cooked.values() for n in numbers]
    assert sorted(everything) == list(range(1, orders + 1)), f"cooked twice or never:\n{text}"
    assert all(numbers for numbers in cooked.values()), f"a cook cooked nothing:\n{text}"
    counts = {m["cook"]: int(m["n"]) for m in matches(r"(?P<cook>\w+) cooked (?P<n>\d+) tickets$", lines)}
    assert counts == {cook: len(numbers) for cook, numbers in cooked.items()}, text
    assert sum(counts.values()) == orders, text

    # publish() returns at once: far below the time the slow cook spends on one ticket.
    per_order_us = [float(x) for m in matches(r"\s+[\d. ]+$", lines) for x in m.group(0).split()]
    assert len(per_order_us) == orders, text
    (summary,) = matches(r"waiter: .*median (?P<median>[\d.]+) us, max (?P<max>[\d.]+) us", lines)
    assert float(summary["max"]) == pytest.approx(max(per_order_us), abs=0.1), text
    assert float(summary["median"]) < 1_000, f"publish() is not microseconds:\n{text}"
    assert float(summary["max"]) < pace_ms[slow_cook] * 1000 / 4, f"publish() waited for something:\n{text}"

    # The kitchen fell behind while the waiter was long done, then the lag drained to zero.
    lags = [int(m["lag"]) for m in matches(r"pass: cooked \d+/\d+, lag (?P<lag>\d+)", lines)]
    assert lags and max(lags) > 0, f"the kitchen never lagged:\n{text}"
    assert lags == sorted(lags, reverse=True), f"the lag grew while nothing was published:\n{text}"
    assert f"summary: {orders} tickets cooked for {orders} orders, final lag 0" in lines, text


def test_group_chat(where: list[str]) -> None:
    lines = run_example("group_chat.py", *where)
    text = "\n".join(lines)

    users = [m["user"] for m in matches(r"sign-up form: (?P<user>\w+) signed up$", lines)]
    assert len(users) == len(set(users)) >= 3, text
    got: dict[str, list[str]] = {"welcome-mail": [], "marketing": [], "audit": []}
    patterns = {
        "welcome-mail": r"\s+welcome-mail: sending 'Welcome, (?P<user>\w+)!'",
        "marketing": r"\s+marketing: adding (?P<user>\w+) to",
        "audit": r"\s+audit: filed: (?P<user>\w+) signed up",
    }
    for service, pattern in patterns.items():
        got[service] = [m["user"].lower() for m in matches(pattern, lines)]
        assert sorted(got[service]) == sorted(users), f"{service} did not get each sign-up once:\n{text}"
    summary = r"(?P<service>\S+) got (?P<n>\d+)/(?P<of>\d+) sign-ups$"
    summaries = {m["service"]: (int(m["n"]), int(m["of"])) for m in matches(summary, lines)}
    assert summaries == dict.fromkeys(got, (len(users), len(users))), text

    # Audit joined only after every sign-up was published (and handled by the others), yet saw them all.
    published = lines.index(f"sign-up form: {len(users)} sign-ups published")
    deployed = next(i for i, line in enumerate(lines) if "audit service is deployed" in line)
    first_audit = next(i for i, line in enumerate(lines) if line.lstrip().startswith("audit:"))
    last_other = max(
        i for i, line in enumerate(lines) if line.lstrip().startswith(("welcome-mail:", "marketing:"))
    )
    assert published < deployed and last_other < deployed < first_audit, text


def test_black_box(where: list[str]) -> None:
    lines = run_example("black_box.py", *where)
    text = "\n".join(lines)

    record = r"bank: recorded offset\s+(?P<offset>\d+): (?P<what>.*)$"
    recorded = {int(m["offset"]): m["what"] for m in matches(record, lines)}
    assert sorted(recorded) == list(range(len(recorded))) and len(recorded) >= 8, text
    (rewind,) = matches(r"investigator: rewinding to (?P<when>\S+)$", lines)
    since = datetime.fromisoformat(rewind["when"])
    steps = matches(r"\s+step (?P<step>\d+): (?P<when>\S+) offset\s+(?P<offset>\d+): (?P<what>.*)$", lines)
    assert steps, text

    # The replay is exactly the tail of the ledger from the rewind point: in order, nothing skipped.
    offsets = [int(m["offset"]) for m in steps]
    first = offsets[0]
    assert offsets == list(range(first, len(recorded))), text
    assert [int(m["step"]) for m in steps] == list(range(1, len(steps) + 1)), text
    assert [m["what"] for m in steps] == [recorded[o] for o in offsets], text
    assert all(datetime.fromisoformat(m["when"]) >= since for m in steps), text
    # It starts at the burst of failed logins, and the ordinary morning before it is not in the replay.
    assert "FAILED" in steps[0]["what"] and "FAILED" in steps[1]["what"], text
    assert 0 < first < len(recorded) - 1, text
    assert "mule" in steps[-1]["what"], text
    # The earlier events are still in the log.
    (held,) = matches(
        r"investigator: the ledger still holds all (?P<all>\d+) events: (?P<before>\d+) before", lines
    )
    assert (int(held["all"]), int(held["before"])) == (len(recorded), first), text


def test_examples_can_be_imported_and_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``main(argv)`` works in-process too (no subprocess, no ``sys.exit``)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    try:
        main = runpy.run_path(str(EXAMPLES / "black_box.py"), run_name="black_box_example")["main"]
        assert main(["--data-dir", str(tmp_path / "data")]) == 0
    finally:
        sys.modules.pop("_common", None)
    out = capsys.readouterr().out
    assert "the replay showed exactly the 7 events after the moment" in out, out
    assert (tmp_path / "data").is_dir()
