"""Times on the wire (api-models.md §6.2): Go's RFC3339Nano for time.Time fields, Unix nanoseconds as ints."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bacalhau.models.base import WireModel
from bacalhau.models.timefmt import ZERO_TIME, Timestamp, format_rfc3339_nano, now_ns, parse_rfc3339

NS = 1_719_576_000_123_456_789  # 2024-06-28T12:00:00.123456789Z
NOON = 1_719_576_000_000_000_000  # 2024-06-28T12:00:00Z
GO_ZERO_NS = -62_135_596_800 * 10**9  # 0001-01-01T00:00:00Z as Unix nanoseconds
YEAR_9999_END = 253_402_300_799_999_999_999  # 9999-12-31T23:59:59.999999999Z

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)

RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$")


class Stamped(WireModel):
    """A model with one time.Time-like field."""

    at: Timestamp = 0


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0001-01-01T00:00:00Z"),
        (NOON, "2024-06-28T12:00:00Z"),
        (NS, "2024-06-28T12:00:00.123456789Z"),
        (NOON + 120_000_000, "2024-06-28T12:00:00.12Z"),
        (NOON + 100_000_000, "2024-06-28T12:00:00.1Z"),
        (NOON + 1_000, "2024-06-28T12:00:00.000001Z"),
        (NOON + 10, "2024-06-28T12:00:00.00000001Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
        (1_000_000, "1970-01-01T00:00:00.001Z"),
        (10**9, "1970-01-01T00:00:01Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (-(10**9), "1969-12-31T23:59:59Z"),
        (951_782_400 * 10**9, "2000-02-29T00:00:00Z"),
        (YEAR_9999_END, "9999-12-31T23:59:59.999999999Z"),
    ],
)
def test_formatting_matches_go_rfc3339nano(ns: int, text: str) -> None:
    """UTC, 'Z', fractional seconds with trailing zeros trimmed; 0 is Go's zero time."""
    assert format_rfc3339_nano(ns) == text


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (GO_ZERO_NS + 500_000_000, "0001-01-01T00:00:00.5Z"),
        (GO_ZERO_NS + 10**9, "0001-01-01T00:00:01Z"),
        (-30_610_224_000 * 10**9 - 1, "0999-12-31T23:59:59.999999999Z"),
    ],
)
def test_years_before_1000_have_four_digits(ns: int, text: str) -> None:
    """Go always writes a four-digit year ("0001", "0999"), as RFC 3339 requires."""
    assert format_rfc3339_nano(ns) == text


def test_zero_time_constant() -> None:
    """Go's zero time.Time."""
    assert ZERO_TIME == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-06-28T12:00:00Z", NOON),
        ("2024-06-28T12:00:00.123456789Z", NS),
        ("2024-06-28T14:00:00.123456789+02:00", NS),
        ("2024-06-28T06:30:00.123456789-05:30", NS),
        ("2024-06-29T01:45:00.123456789+13:45", NS),
        ("2024-06-28T12:00:00+00:00", NOON),
        ("2024-06-28T12:00:00-00:00", NOON),
        ("2024-06-28T12:00:00.1Z", NOON + 100_000_000),
        ("2024-06-28T12:00:00.000000001Z", NOON + 1),
        ("2024-06-28T12:00:00.1234567891234Z", NS),
        ("1969-12-31T23:59:59.999999999Z", -1),
        ("0001-01-01T00:00:00Z", 0),
        ("0001-01-01T01:00:00+01:00", 0),
        ("9999-12-31T23:59:59.999999999Z", YEAR_9999_END),
    ],
)
def test_parsing(text: str, ns: int) -> None:
    """Offsets are applied; digits past nanoseconds are dropped (as Go does); the zero time is 0."""
    assert parse_rfc3339(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "2024-06-28",
        "2024-06-28T12:00:00",
        "2024-06-28T12:00Z",
        "2024-06-28T12:00:00.Z",
        "2024-06-28T12:00:00+0200",
        "2024-06-28T12:00:00+02",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-06-28T24:00:00Z",
        "2024-06-28T12:60:00Z",
        "2024-06-28T12:00:60Z",
        "24-06-28T12:00:00Z",
        "2024-6-28T12:00:00Z",
        "2024-06-28T12:00:00ZZ",
        "1719576000",
    ],
)
def test_invalid_times(text: str) -> None:
    """Anything that is not a valid RFC 3339 date-time is a ValueError."""
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_timestamp_fields_write_strings_and_read_strings() -> None:
    """A Timestamp is an int in Python and an RFC 3339 string on the wire."""
    assert Stamped(at=NS).to_wire() == {"At": "2024-06-28T12:00:00.123456789Z"}
    assert Stamped().to_wire() == {"At": ZERO_TIME}
    assert Stamped.model_validate({"At": "2024-06-28T14:00:00.123456789+02:00"}).at == NS
    assert Stamped.model_validate({"at": ZERO_TIME}).at == 0


def test_timestamp_fields_accept_datetimes() -> None:
    """Aware datetimes convert exactly (to the microsecond); naive ones are taken as UTC."""
    aware = datetime(2024, 6, 28, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert Stamped(at=aware).at == NOON + 123_456_000  # type: ignore[arg-type]
    assert Stamped(at=datetime(2024, 6, 28, 12)).at == NOON  # type: ignore[arg-type]


def test_invalid_timestamp_strings_fail_validation() -> None:
    """A bad time string is a validation error, not a crash."""
    with pytest.raises(ValueError):
        Stamped.model_validate({"At": "not a time"})


def test_now_ns_is_the_current_time() -> None:
    """now_ns() is Unix nanoseconds."""
    before = time.time_ns()
    current = now_ns()
    assert before <= current <= time.time_ns()


# --- Properties ---------------------------------------------------------------------------------------------------

any_instant = st.integers(GO_ZERO_NS + 1, YEAR_9999_END).filter(lambda ns: ns != 0)


@DETERMINISTIC
@given(any_instant)
@example(GO_ZERO_NS + 500_000_000)
def test_format_then_parse_round_trips(ns: int) -> None:
    """Every instant from year 1 to 9999 survives formatting and parsing."""
    assert parse_rfc3339(format_rfc3339_nano(ns)) == ns


@DETERMINISTIC
@given(any_instant)
@example(GO_ZERO_NS + 500_000_000)
def test_format_has_the_go_shape(ns: int) -> None:
    """Always UTC with 'Z', no trailing zeros in the fraction, no empty fraction."""
    assert RFC3339_NANO.match(format_rfc3339_nano(ns))


@DETERMINISTIC
@given(st.integers(-(10**15), 4 * 10**15).filter(lambda us: us != 0).map(lambda us: us * 1000))
def test_format_agrees_with_datetime(ns: int) -> None:
    """For microsecond instants the text is what datetime prints, with the fraction trimmed."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        expected += "." + f"{moment.microsecond:06d}".rstrip("0")
    assert format_rfc3339_nano(ns) == expected + "Z"


@DETERMINISTIC
@given(
    st.integers(-(2 * 10**18), 7 * 10**18).filter(lambda ns: ns != 0),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
)
def test_any_offset_names_the_same_instant(ns: int, offset_minutes: int) -> None:
    """The same instant written in any zone offset parses to the same nanoseconds."""
    seconds, fraction = divmod(ns, 10**9)
    zone = timezone(timedelta(minutes=offset_minutes))
    local = datetime(1970, 1, 1, tzinfo=UTC).astimezone(zone) + timedelta(seconds=seconds)
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = f"{local.strftime('%Y-%m-%dT%H:%M:%S')}.{fraction:09d}{sign}{hours:02d}:{minutes:02d}"
    assert parse_rfc3339(text) == ns
