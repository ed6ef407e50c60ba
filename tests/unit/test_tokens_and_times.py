"""Paging tokens and times, encoded as the original encodes them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bacalhau.models.paging import InvalidPagingToken, PagingToken
from bacalhau.models.timefmt import ZERO_TIME, format_rfc3339_nano, parse_rfc3339


def test_paging_tokens_match_the_original() -> None:
    assert PagingToken("created_at", False, 5, 5).encode() == "Y3JlYXRlZF9hdDpOOjU6NQ"
    assert PagingToken("", False, 0, 5).encode() == "Ok46MDo1"
    assert PagingToken.decode("Y3JlYXRlZF9hdDpOOjU6NQ") == PagingToken("created_at", False, 5, 5)


@pytest.mark.parametrize("token", ["!!!", "YWJj", "YTpiOmM6ZA", "YTpZOi0xOjA"])
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(InvalidPagingToken):
        PagingToken.decode(token)


@given(
    sort_by=st.sampled_from(["", "created_at", "modified_at"]),
    reverse=st.booleans(),
    limit=st.integers(0, 2**32 - 1),
    offset=st.integers(0, 2**32 - 1),
)
def test_tokens_round_trip(sort_by: str, reverse: bool, limit: int, offset: int) -> None:
    token = PagingToken(sort_by, reverse, limit, offset)
    assert PagingToken.decode(token.encode()) == token


def test_rfc3339_nano_trims_trailing_zeros() -> None:
    assert format_rfc3339_nano(1_719_576_000_000_000_000) == "2024-06-28T12:00:00Z"
    assert format_rfc3339_nano(1_719_576_000_120_000_000) == "2024-06-28T12:00:00.12Z"
    assert format_rfc3339_nano(0) == ZERO_TIME == "0001-01-01T00:00:00Z"


def test_parsing_offsets_and_the_zero_time() -> None:
    assert parse_rfc3339("2024-06-28T14:00:00.5+02:00") == 1_719_576_000_500_000_000
    assert parse_rfc3339(ZERO_TIME) == 0
    with pytest.raises(ValueError):
        parse_rfc3339("yesterday")


@given(st.integers(min_value=1, max_value=4_000_000_000_000_000_000))
def test_times_round_trip(ns: int) -> None:
    assert parse_rfc3339(format_rfc3339_nano(ns)) == ns
