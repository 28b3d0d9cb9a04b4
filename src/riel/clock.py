"""The one wall clock. Code that needs the time takes a ``now_ms`` or a clock argument, so tests can
inject time; this is the default they fall back to."""

from __future__ import annotations

import time


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000
