"""Paging tokens (api-models.md §3.1-3.2): base64url without padding of "<sortBy>:<Y|N>:<limit>:<offset>"."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bacalhau.models.paging import InvalidPagingToken, PagingToken

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)

MAX_UINT32 = 2**32 - 1


def raw_token(raw: str) -> str:
    """Encode raw text the way Go's base64.RawURLEncoding does."""
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("token", "encoded"),
    [
        (PagingToken("created_at", False, 5, 5), "Y3JlYXRlZF9hdDpOOjU6NQ"),
        (PagingToken("created_at", False, 10, 0), "Y3JlYXRlZF9hdDpOOjEwOjA"),
        (PagingToken("created_at", True, 10, 0), "Y3JlYXRlZF9hdDpZOjEwOjA"),
        (PagingToken("created_at", True, 10, 10), "Y3JlYXRlZF9hdDpZOjEwOjEw"),
        (PagingToken("", False, 0, 5), "Ok46MDo1"),
    ],
)
def test_tokens_match_the_original(token: PagingToken, encoded: str) -> None:
    """Vectors from the reference and from Go's paging_token_test.go."""
    assert token.encode() == encoded
    assert PagingToken.decode(encoded) == token


def test_decoded_fields() -> None:
    """The four parts land in their fields."""
    token = PagingToken.decode(raw_token("modified_at:Y:20:40"))
    assert (token.sort_by, token.reverse, token.limit, token.offset, token.after) == ("modified_at", True, 20, 40, None)


@pytest.mark.parametrize("flag", ["N", "y", "yes", "", "1"])
def test_only_an_uppercase_y_means_reverse(flag: str) -> None:
    """Go compares parts[1] == "Y"; anything else is not reversed."""
    assert PagingToken.decode(raw_token(f"created_at:{flag}:1:0")).reverse is False


def test_bounds_of_limit_and_offset() -> None:
    """Both parse as 32-bit unsigned integers."""
    token = PagingToken.decode(raw_token(f"x:N:{MAX_UINT32}:{MAX_UINT32}"))
    assert (token.limit, token.offset) == (MAX_UINT32, MAX_UINT32)


def test_job_list_tokens_may_carry_the_last_position() -> None:
    """Our documented extension: two more parts (sort key and ID of the page's last job)."""
    token = PagingToken("created_at", True, 5, 5, after=(1_719_576_000_000_000_000, "j-abc"))
    encoded = token.encode()
    assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode() == (
        "created_at:Y:5:5:1719576000000000000:j-abc"
    )
    assert PagingToken.decode(encoded) == token


@pytest.mark.parametrize(
    "token",
    [
        "!!!",
        "a",
        "YWJj",  # "abc"
        raw_token("a:b:c"),
        raw_token("a:N:1:2:3"),
        raw_token("a:N:1:2:3:4:5"),
        raw_token("a:N:x:0"),
        raw_token("a:N:0:x"),
        raw_token("a:N::0"),
        raw_token("a:N:0:"),
        raw_token("a:N:-1:0"),
        raw_token("a:N:0:-1"),
        raw_token(f"a:N:{MAX_UINT32 + 1}:0"),
        raw_token(f"a:N:0:{MAX_UINT32 + 1}"),
        raw_token("a:N:1.5:0"),
        raw_token("a:N:1:2:x:j-1"),
        base64.urlsafe_b64encode(b"\xff\xfe:N:1:0").decode().rstrip("="),
    ],
)
def test_malformed_tokens(token: str) -> None:
    """Bad base64, a wrong number of parts and non-uint32 numbers are all InvalidPagingToken."""
    with pytest.raises(InvalidPagingToken):
        PagingToken.decode(token)


@pytest.mark.parametrize(
    "token",
    [
        raw_token("a:N:+5:0"),
        raw_token("a:N: 5:0"),
        raw_token("a:N:5 :0"),
        raw_token("a:N:1_0:0"),
        raw_token("a:N:0:+1"),
        raw_token("a:N:\u0665:0"),
    ],
    ids=["plus-sign", "leading-space", "trailing-space", "underscore", "plus-offset", "arabic-indic-digit"],
)
def test_numbers_must_be_plain_decimal(token: str) -> None:
    """strconv.ParseUint(s, 10, 32) accepts only decimal digits: no sign, spaces or underscores."""
    with pytest.raises(InvalidPagingToken):
        PagingToken.decode(token)


@pytest.mark.parametrize(
    "token",
    [
        "Y3JlYXRlZF9hdDpOOjU6NQ==",
        "Y3JlYXRlZF9hdDpOOjU6NQ!!!!",
        "Y3JlYXRl    ZF9hdDpOOjU6NQ",
        base64.standard_b64encode(b"?>?:N:1:0").decode().rstrip("="),
    ],
    ids=["padding", "junk-characters", "space", "standard-alphabet"],
)
def test_only_the_raw_url_alphabet_is_accepted(token: str) -> None:
    """base64.RawURLEncoding rejects padding and any character outside A-Z a-z 0-9 - _."""
    with pytest.raises(InvalidPagingToken):
        PagingToken.decode(token)


def test_invalid_paging_token_is_a_value_error_naming_the_token() -> None:
    """The error says which token was bad."""
    with pytest.raises(ValueError, match="invalid paging token") as caught:
        PagingToken.decode("!!!")
    assert isinstance(caught.value, InvalidPagingToken)
    assert "!!!" in str(caught.value)


sort_keys = st.text(st.characters(codec="utf-8", exclude_characters=":"), max_size=20)
uint32 = st.integers(0, MAX_UINT32)


@DETERMINISTIC
@given(sort_keys, st.booleans(), uint32, uint32)
def test_tokens_round_trip(sort_by: str, reverse: bool, limit: int, offset: int) -> None:
    """decode(encode(t)) == t for every four-part token."""
    token = PagingToken(sort_by, reverse, limit, offset)
    assert PagingToken.decode(token.encode()) == token


@DETERMINISTIC
@given(sort_keys, st.booleans(), uint32, uint32, st.integers(0, 2**63 - 1),
       st.text(st.characters(codec="utf-8", exclude_characters=":"), min_size=1, max_size=40))  # fmt: skip
def test_six_part_tokens_round_trip(
    sort_by: str, reverse: bool, limit: int, offset: int, key: int, job_id: str
) -> None:
    """The extended tokens round-trip too."""
    token = PagingToken(sort_by, reverse, limit, offset, after=(key, job_id))
    assert PagingToken.decode(token.encode()) == token


@DETERMINISTIC
@given(sort_keys, st.booleans(), uint32, uint32)
def test_encoding_is_raw_url_base64(sort_by: str, reverse: bool, limit: int, offset: int) -> None:
    """Only the URL-safe alphabet, no padding, and it decodes to the colon-separated text."""
    encoded = PagingToken(sort_by, reverse, limit, offset).encode()
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(encoded) % 4 != 1
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    assert raw == f"{sort_by}:{'Y' if reverse else 'N'}:{limit}:{offset}"
