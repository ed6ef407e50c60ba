"""Kubernetes label-selector syntax (api-models.md §3.4) and matching (k8s.io/apimachinery labels, v0.29)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bacalhau.models.selector import SelectorError, matches, parse_selector, validate_key, validate_value
from bacalhau.models.spec import LabelSelectorRequirement

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)


def parsed(text: str) -> list[tuple[str, str, list[str]]]:
    return [(r.key, r.operator, r.values) for r in parse_selector(text)]


# --- Parsing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("env=prod", ("env", "=", ["prod"])),
        ("env==prod", ("env", "==", ["prod"])),
        ("env!=prod", ("env", "!=", ["prod"])),
        ("env in (a,b)", ("env", "in", ["a", "b"])),
        ("env notin (a,b)", ("env", "notin", ["a", "b"])),
        ("gpu", ("gpu", "exists", [])),
        ("!legacy", ("legacy", "!", [])),
        ("cores>3", ("cores", "gt", ["3"])),
        ("cores<3", ("cores", "lt", ["3"])),
        ("example.com/tier=gold", ("example.com/tier", "=", ["gold"])),
        ("a.b_c-d=E.f_G-h", ("a.b_c-d", "=", ["E.f_G-h"])),
        ("env=", ("env", "=", [""])),
        ("env==", ("env", "==", [""])),
    ],
)
def test_each_requirement_form(text: str, expected: tuple[str, str, list[str]]) -> None:
    """=, ==, !=, in, notin, exists, !, > and < (stored as gt/lt)."""
    assert parsed(text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  env = prod  ", ("env", "=", ["prod"])),
        ("env  in  ( b , a )", ("env", "in", ["a", "b"])),
        ("env in(a)", ("env", "in", ["a"])),
        ("! legacy", ("legacy", "!", [])),
        ("cores > 3", ("cores", "gt", ["3"])),
        ("env\tin\t(a)", ("env", "in", ["a"])),
    ],
)
def test_whitespace_around_tokens(text: str, expected: tuple[str, str, list[str]]) -> None:
    """Spaces and tabs between tokens are insignificant."""
    assert parsed(text) == [expected]


def test_set_values_are_sorted_and_deduplicated() -> None:
    """In/NotIn values form a sorted set, as sets.String.List() returns them."""
    assert parsed("env in (c,a,b,a)") == [("env", "in", ["a", "b", "c"])]


def test_empty_values_in_a_set() -> None:
    """The empty string is a valid value: (a,) holds "a" and ""."""
    assert parsed("env in (a,)") == [("env", "in", ["", "a"])]


def test_empty_parentheses_hold_the_empty_value() -> None:
    """k8s parses "x in ()" as the set {""} (its own doc example: "x in (foo,,baz),y,z notin ()")."""
    assert parsed("x in ()") == [("x", "in", [""])]


def test_requirements_are_anded_and_commas_inside_parentheses_do_not_split() -> None:
    """A comma splits requirements only outside parentheses."""
    assert parsed("env in (a,b),tier=gold,!legacy,gpu") == [
        ("env", "in", ["a", "b"]),
        ("tier", "=", ["gold"]),
        ("legacy", "!", []),
        ("gpu", "exists", []),
    ]


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_an_empty_selector_selects_everything(text: str) -> None:
    """No requirements at all."""
    assert parse_selector(text) == []
    assert matches(parse_selector(text), {"any": "thing"})


def test_keywords_can_be_keys() -> None:
    """ "in" is only a keyword in operator position."""
    assert parsed("in in (in)") == [("in", "in", ["in"])]


@pytest.mark.parametrize(
    "text",
    [
        "env=a=b",
        "env=a b",
        "env in (a b)",
        "env in (a",
        "env in a)",
        "(env)",
        "env=prod,",
        ",env=prod",
        "env=prod,,tier=gold",
        ",",
        "=prod",
        "!",
        "!env=prod",
        "env>",
        "env>abc",
        "env<1.5",
        "env in ()(",
        "a b",
    ],
)
def test_malformed_selectors(text: str) -> None:
    """Syntax errors raise SelectorError (a ValueError; the API answers 400)."""
    with pytest.raises(SelectorError):
        parse_selector(text)


@pytest.mark.parametrize("text", ["cores>-5", "cores<+5"])
def test_signed_numbers_are_not_label_values(text: str) -> None:
    """k8s validates Gt/Lt values as label values too, so a leading sign is rejected."""
    with pytest.raises(SelectorError):
        parse_selector(text)


def test_selector_errors_are_value_errors() -> None:
    """Callers can catch ValueError."""
    assert issubclass(SelectorError, ValueError)


# --- Keys and values ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "A",
        "a" * 63,
        "my-key_1.x",
        "9",
        "example.com/x",
        "a.b.c/x",
        "x-1.y/Name",
        ("a" * 63 + ".") * 3 + "a" * 61 + "/x",
    ],
)
def test_valid_keys(key: str) -> None:
    """Qualified names: an optional DNS-subdomain prefix (at most 253), then a name of at most 63."""
    validate_key(key)
    assert parsed(key) == [(key, "exists", [])]


@pytest.mark.parametrize(
    "key",
    [
        "",
        "a" * 64,
        "-a",
        "a-",
        "_a",
        "a.",
        "a b",
        "a@b",
        "/x",
        "x/",
        "Example.com/x",
        "a/b/c",
        "exa_mple.com/x",
        ("a" * 63 + ".") * 4 + "a/x",
    ],
)
def test_invalid_keys(key: str) -> None:
    """Bad names and bad prefixes are rejected."""
    with pytest.raises(SelectorError):
        validate_key(key)


@pytest.mark.parametrize("value", ["", "a", "A1", "a" * 63, "1.2.3", "a_b-c.d"])
def test_valid_values(value: str) -> None:
    """Values: empty, or up to 63 alphanumerics with -_. inside."""
    validate_value(value)


@pytest.mark.parametrize("value", ["a" * 64, "-a", "a-", ".a", "a b", "a/b", "é"])
def test_invalid_values(value: str) -> None:
    """Anything else is rejected."""
    with pytest.raises(SelectorError):
        validate_value(value)


@pytest.mark.parametrize("text", ["env=-bad", "env!=a/b", "env in (ok,-bad)", "env==" + "x" * 64])
def test_invalid_values_in_selectors(text: str) -> None:
    """Values are validated while parsing."""
    with pytest.raises(SelectorError):
        parse_selector(text)


# --- Matching -----------------------------------------------------------------------------------------------------

LABELS = {"env": "prod", "tier": "gold", "cores": "8", "name": "abc", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", True),
        ("env==prod", True),
        ("env=dev", False),
        ("missing=x", False),
        ("env!=dev", True),
        ("env!=prod", False),
        ("missing!=x", True),
        ("env in (dev,prod)", True),
        ("env in (dev)", False),
        ("missing in (x)", False),
        ("env notin (dev)", True),
        ("env notin (prod)", False),
        ("missing notin (x)", True),
        ("env", True),
        ("missing", False),
        ("!missing", True),
        ("!env", False),
        ("cores>7", True),
        ("cores>8", False),
        ("cores<9", True),
        ("cores<8", False),
        ("name>1", False),
        ("name<1", False),
        ("missing>1", False),
        ("missing<1", False),
        ("empty=", True),
        ("empty", True),
        ("env=", False),
        ("empty in (a,)", True),
        ("env=prod,tier=gold,cores>4", True),
        ("env=prod,tier=silver", False),
        ("Env=prod", False),
        ("env=Prod", False),
    ],
)
def test_matching(selector: str, expected: bool) -> None:
    """Kubernetes semantics; keys and values are case-sensitive; all requirements must hold."""
    assert matches(parse_selector(selector), LABELS) is expected


def test_integer_comparisons_are_numeric() -> None:
    """Gt/Lt compare integers, not strings ("10" > "9")."""
    assert matches(parse_selector("n>9"), {"n": "10"})
    assert matches(parse_selector("n<1"), {"n": "-5"})
    assert not matches(parse_selector("n>9"), {"n": "9.5"})


def test_constraint_models_match_directly() -> None:
    """Job constraints use the same matching."""
    constraint = LabelSelectorRequirement(key="region", operator="in", values=["eu", "us"])
    assert constraint.matches({"region": "eu"})
    assert not constraint.matches({"region": "ap"})
    assert not constraint.matches({})


def test_parsed_requirements_pass_constraint_validation() -> None:
    """Whatever the parser produces is a valid job constraint."""
    for requirement in parse_selector("a=b,c in (d,e),!f,g,h>1,i<2,j!=k,l==m,n notin (o)"):
        assert requirement.validate_requirement() == []


# --- Properties ---------------------------------------------------------------------------------------------------

label_names = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?", fullmatch=True)
label_values = st.just("") | label_names


@DETERMINISTIC
@given(label_names, label_values)
def test_equality_selectors_match_exactly_their_value(key: str, value: str) -> None:
    """k=v matches {k: v}; k!=v does not; k matches whenever the key is present."""
    assert matches(parse_selector(f"{key}={value}"), {key: value})
    assert not matches(parse_selector(f"{key}!={value}"), {key: value})
    assert matches(parse_selector(key), {key: value})
    assert not matches(parse_selector(f"!{key}"), {key: value})


@DETERMINISTIC
@given(label_names, st.lists(label_names, min_size=1, max_size=4), label_names)
def test_set_selectors(key: str, values: list[str], probe: str) -> None:
    """in and notin are each other's complement when the key is present."""
    inside = matches(parse_selector(f"{key} in ({','.join(values)})"), {key: probe})
    outside = matches(parse_selector(f"{key} notin ({','.join(values)})"), {key: probe})
    assert inside == (probe in values)
    assert outside != inside


@DETERMINISTIC
@given(label_names, st.integers(0, 10**6), st.integers(0, 10**6))
def test_integer_selectors(key: str, bound: int, have: int) -> None:
    """> and < compare as integers."""
    assert matches(parse_selector(f"{key}>{bound}"), {key: str(have)}) == (have > bound)
    assert matches(parse_selector(f"{key}<{bound}"), {key: str(have)}) == (have < bound)


@DETERMINISTIC
@given(
    st.lists(
        st.tuples(label_names, st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"]),
                  st.lists(label_names, min_size=1, max_size=3)),
        min_size=1,
        max_size=4,
    )
)  # fmt: skip
def test_describe_round_trips(parts: list[tuple[str, str, list[str]]]) -> None:
    """A requirement written back as selector text parses to the same requirement."""
    requirements = []
    for key, operator, values in parts:
        if operator in ("exists", "!"):
            values = []
        elif operator in ("gt", "lt"):
            values = ["42"]
        elif operator not in ("in", "notin"):
            values = values[:1]
        else:
            values = sorted(set(values))
        requirements.append(LabelSelectorRequirement(key=key, operator=operator, values=values))
    text = ",".join(r.describe() for r in requirements)
    assert parse_selector(text) == requirements
