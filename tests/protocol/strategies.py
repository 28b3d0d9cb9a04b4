"""Hypothesis strategies built from Riel's own schemas, and the dict a decoder should give back.

``message(fields, version, flexible)`` walks the ``Field`` tree and draws a message valid for that
version: integers in range for their width, short strings and bytes, small arrays, ``None`` where the
version allows null, and tagged fields that are sometimes left out, sometimes at their default and
sometimes set. ``expected(fields, version, flexible, msg)`` is what decoding the encoding of ``msg``
must return: the same values, plus defaults for every field the version does not carry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

from riel.protocol.schema import (
    BOOL,
    BYTES,
    FLOAT64,
    INT8,
    INT16,
    INT32,
    INT64,
    RECORDS,
    STRING,
    UINT16,
    UUID,
    Array,
    Field,
    Message,
    Type,
    Versions,
)

FieldType = Type | Array | list[Field]
# A hook that may replace the strategy of a field (an oracle may not accept every value of its type).
Override = Callable[[Field], st.SearchStrategy[Any] | None]

_INTS: dict[Type, tuple[int, int]] = {
    INT8: (-(2**7), 2**7 - 1),
    INT16: (-(2**15), 2**15 - 1),
    UINT16: (0, 2**16 - 1),
    INT32: (-(2**31), 2**31 - 1),
    INT64: (-(2**63), 2**63 - 1),
}
MAX_ITEMS = 3


def carried(f: Field, version: int, flexible: bool) -> bool:
    """Whether ``f`` is on the wire at ``version`` (tagged fields only exist in flexible versions)."""
    return version in f.version_range and (f.tag is None or flexible)


def value(t: FieldType, version: int, flexible: bool, nullable: bool,
          override: Override | None = None) -> st.SearchStrategy[Any]:
    if isinstance(t, list):
        inner = message(t, version, flexible, override)
        return st.none() | inner if nullable else inner
    if isinstance(t, Array):
        items = st.lists(value(t.element, version, flexible, False, override), max_size=MAX_ITEMS)
        return st.none() | items if nullable else items
    base: st.SearchStrategy[Any]
    if t in _INTS:
        low, high = _INTS[t]
        base = st.integers(low, high)
    elif t is BOOL:
        base = st.booleans()
    elif t is FLOAT64:
        base = st.floats(allow_nan=False)
    elif t is UUID:
        base = st.uuids() | st.just(UUID.default())
    elif t is STRING:
        base = st.text(max_size=8)
    elif t is BYTES or t is RECORDS:
        base = st.binary(max_size=16)
    else:
        raise AssertionError(f"no strategy for type {t.name}")
    return st.none() | base if nullable else base


def message(fields: Sequence[Field], version: int, flexible: bool,
            override: Override | None = None) -> st.SearchStrategy[Message]:
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for f in fields:
        if not carried(f, version, flexible):
            continue
        nullable = version in Versions.parse(f.nullable)
        strategy = override(f) if override is not None else None
        if strategy is None:
            strategy = value(f.type, version, flexible, nullable, override)
        if f.tag is None:
            required[f.name] = strategy
        else:
            # Left out (encoder uses the default), explicitly at its default, or anything.
            optional[f.name] = st.just(f.default_value()) | strategy
    return st.fixed_dictionaries(required, optional=optional)


def expected(fields: Sequence[Field], version: int, flexible: bool, msg: Message) -> Message:
    out: Message = {}
    for f in fields:
        if carried(f, version, flexible) and f.name in msg:
            out[f.name] = _expected_value(f.type, version, flexible, msg[f.name])
        else:
            out[f.name] = f.default_value()
    return out


def _expected_value(t: FieldType, version: int, flexible: bool, v: Any) -> Any:
    if v is None:
        return None
    if isinstance(t, list):
        return expected(t, version, flexible, v)
    if isinstance(t, Array):
        return [_expected_value(t.element, version, flexible, item) for item in v]
    return v
