"""Times on the wire: int64 Unix nanoseconds for Create/ModifyTime, RFC 3339 with nanoseconds elsewhere."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from bacalhau.models.limits import INT64_MAX

ZERO_TIME = "0001-01-01T00:00:00Z"
_NS_PER_S = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)

_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9})\d*)?(Z|z|[+-]\d{2}:\d{2})$")


def now_ns() -> int:
    return time.time_ns()


def after_ns(start: int, seconds: float) -> int:
    """``start`` plus ``seconds``, in Unix nanoseconds, saturating at the largest time an int64 holds (year 2262),
    as a deadline for a timeout of up to Go's longest duration must still fit the store and the wire."""
    return min(start + int(seconds * _NS_PER_S), INT64_MAX)


def format_rfc3339_nano(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: fractional seconds with trailing zeros trimmed; 0 is Go's zero time."""
    if ns == 0:
        return ZERO_TIME
    seconds, frac = divmod(ns, _NS_PER_S)
    # isoformat() always writes four year digits, as Go does; strftime's %Y drops leading zeros (year 1 is "1").
    stamp = (_NAIVE_EPOCH + timedelta(seconds=seconds)).isoformat()
    if frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 timestamp (with up to nanosecond precision) into Unix nanoseconds."""
    match = _RFC3339.match(text.strip())
    if not match:
        raise ValueError(f"invalid RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC) - offset
    if moment.year == 1 and moment.month == 1 and moment.day == 1 and not frac and moment.second == 0:
        return 0
    whole = (moment - _EPOCH) // timedelta(seconds=1)
    return whole * _NS_PER_S + int((frac or "0").ljust(9, "0"))


def _to_ns(value: Any) -> Any:
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (stamp - _EPOCH) // timedelta(microseconds=1) * 1000
    return value


# An instant stored as Unix nanoseconds and written as an RFC 3339 string (Go's time.Time).
Timestamp = Annotated[int, BeforeValidator(_to_ns), PlainSerializer(format_rfc3339_nano, return_type=str)]
