"""Kubernetes label-selector syntax, for list filters and job constraints."""

from __future__ import annotations

import pytest

from bacalhau.models.selector import SelectorError, matches, parse_selector

LABELS = {"env": "prod", "zone": "eu", "gpus": "4"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("env=prod", True),
        ("env==prod", True),
        ("env!=prod", False),
        ("env in (prod, test)", True),
        ("env notin (prod)", False),
        ("zone", True),
        ("!zone", False),
        ("!missing", True),
        ("missing!=x", True),
        ("gpus>3", True),
        ("gpus<3", False),
        ("env=prod,zone=us", False),
        ("env=prod, zone in (eu,us), gpus", True),
    ],
)
def test_matching(selector: str, expected: bool) -> None:
    assert matches(parse_selector(selector), LABELS) is expected


def test_parsed_requirements() -> None:
    [requirement] = parse_selector("zone notin (us, eu)")
    assert requirement.to_wire() == {"Key": "zone", "Operator": "notin", "Values": ["eu", "us"]}
    [greater] = parse_selector("gpus>2")
    assert (greater.operator, greater.values) == ("gt", ["2"])


@pytest.mark.parametrize(
    "selector", ["bad key=x", "k=bad value", "k in (a", "k>abc", "-k=v", "k=v-", "🐟=1", "a,,b", "x/y/z=1"]
)
def test_invalid_selectors(selector: str) -> None:
    """Not "k in ()": k8s reads it as the set {""} (test_selector.py)."""
    with pytest.raises(SelectorError):
        parse_selector(selector)


def test_prefixed_keys() -> None:
    [requirement] = parse_selector("example.com/tier=web")
    assert requirement.key == "example.com/tier"
