"""Showing bytes to people: a key, value or header value as text, JSON or hex, plus sizes and times.

Pure functions. What a record holds is unknown to the broker, so each field is rendered in the format
asked for when it fits (``text`` needs UTF-8, ``json`` needs a JSON document) and falls back to the next
one that does (json -> text -> hex), saying which format it actually used. ``auto`` picks the first
that fits of json, text and hex.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

Format = Literal["auto", "text", "json", "hex"]
FORMATS: Final[tuple[Format, ...]] = ("auto", "text", "json", "hex")

# Beyond this many bytes a field is cut (the page says how big it really is).
MAX_SHOWN_BYTES: Final = 16 * 1024


@dataclass(frozen=True, slots=True)
class Rendered:
    """``text`` is None for a null field; ``format`` is the format actually used."""

    text: str | None
    format: str
    size: int
    truncated: bool = False

    def as_json(self) -> dict[str, object]:
        return {"text": self.text, "format": self.format, "size": self.size, "truncated": self.truncated}


def parse_format(value: str | None) -> Format:
    for fmt in FORMATS:
        if value == fmt:
            return fmt
    return "auto"


def render_bytes(data: bytes | None, fmt: Format) -> Rendered:
    if data is None:
        return Rendered(None, "null", 0)
    size = len(data)
    truncated = size > MAX_SHOWN_BYTES
    shown = data[:MAX_SHOWN_BYTES] if truncated else data
    if fmt in ("json", "auto") and not truncated:
        pretty = _as_json(shown)
        if pretty is not None:
            return Rendered(pretty, "json", size)
    if fmt != "hex":
        try:
            # A cut may split a multi-byte character: ignore only that trailing fragment.
            text = shown.decode("utf-8") if not truncated else _decode_cut(shown)
        except UnicodeDecodeError:
            pass
        else:
            if all(c.isprintable() or c in "\t\r\n" for c in text):
                return Rendered(text, "text", size, truncated)
    return Rendered(hex_dump(shown), "hex", size, truncated)


def _decode_cut(data: bytes) -> str:
    for cut in range(4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("utf-8", data, 0, len(data), "not UTF-8")


def _as_json(data: bytes) -> str | None:
    stripped = data.strip()
    if not stripped or stripped[:1] not in b'{["-0123456789tfn':
        return None
    try:
        document = json.loads(stripped)
    except (ValueError, UnicodeDecodeError):
        return None
    return json.dumps(document, indent=2, ensure_ascii=False)


def hex_dump(data: bytes) -> str:
    """16 bytes a line: offset, hex bytes, printable ASCII."""
    lines = []
    for pos in range(0, len(data), 16):
        chunk = data[pos : pos + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{pos:08x}  {hexes:<47}  {ascii_}")
    return "\n".join(lines)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def iso_ms(timestamp_ms: int) -> str:
    """``2026-11-28T09:00:00.123Z``; negative (no timestamp) gives an empty string."""
    if timestamp_ms < 0:
        return ""
    try:
        moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return str(timestamp_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def parse_time_ms(value: str) -> int | None:
    """Milliseconds since the epoch from digits (already ms) or an ISO 8601 date-time (UTC if naive)."""
    value = value.strip()
    if not value:
        return None
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
