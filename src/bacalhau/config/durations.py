"""Go's durations: ``time.ParseDuration`` and ``Duration.String()``, as config values and flags spell them."""

from __future__ import annotations

import re

# Go's time.ParseDuration units, in nanoseconds (both micro signs: U+00B5 and U+03BC).
_UNIT_NS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_UNIT_NS["h"] = 60 * _UNIT_NS["m"]
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]+)")
_BARE_NUMBER = re.compile(r"\d+(\.\d+)?")


def parse_duration_ns(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds; a bare number is taken as seconds (our documented extension)."""
    value = text.strip()
    if _BARE_NUMBER.fullmatch(value):
        whole, _, fraction = value.partition(".")
        return _scaled(whole, fraction, _UNIT_NS["s"])
    negative = value.startswith("-")
    rest = value[1:] if value[:1] in ("-", "+") else value
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    nanoseconds, position = 0, 0
    while position < len(rest):
        match = _DURATION_PART.match(rest, position)
        whole, fraction, unit = match.groups() if match else ("", "", "")
        if match is None or not (whole or fraction) or unit not in _UNIT_NS:
            raise ValueError(f"invalid duration {text!r}")
        nanoseconds += _scaled(whole, fraction or "", _UNIT_NS[unit])
        position = match.end()
    return -nanoseconds if negative else nanoseconds


def _scaled(whole: str, fraction: str, unit: int) -> int:
    """``whole.fraction`` units in nanoseconds, what is below a nanosecond dropped (as Go drops it, part by part)."""
    scale: int = 10 ** len(fraction)
    return int(whole or 0) * unit + int(fraction or 0) * unit // scale


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (seconds as a float); a bare number is taken as seconds."""
    return parse_duration_ns(text) / 1e9


def format_duration(nanoseconds: int) -> str:
    """Go's ``Duration.String()``: ``1m30s``, ``24h0m0s``, ``1.5s``, ``300ms``, ``0s``."""
    if nanoseconds == 0:
        return "0s"
    sign, ns = ("-" if nanoseconds < 0 else ""), abs(nanoseconds)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("\u00b5s", 10**3), ("ns", 1)):
            if ns >= size:
                return sign + _decimal(ns, size) + unit
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    seconds = _decimal(ns, 10**9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _decimal(value: int, size: int) -> str:
    whole, rest = divmod(value, size)
    if not rest:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")
