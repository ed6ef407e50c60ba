"""``env:NAME`` task environment values: resolved from the compute node's environment only when allowed."""

from __future__ import annotations

import pytest

from bacalhau.compute.secrets import EnvResolver

HOST = {"API_TOKEN": "s3cr3t", "AWS_REGION": "eu-west-1", "HOME": "/root"}


def test_allowed_names_are_resolved_and_plain_values_kept() -> None:
    resolver = EnvResolver(["API_TOKEN", "AWS_*"], HOST)
    env = {"TOKEN": "env:API_TOKEN", "REGION": "env:AWS_REGION", "GREETING": "hello"}
    assert resolver.problems(env) == []
    assert resolver.resolve(env) == {"TOKEN": "s3cr3t", "REGION": "eu-west-1", "GREETING": "hello"}


def test_names_outside_the_allow_list_are_refused() -> None:
    resolver = EnvResolver(["AWS_*"], HOST)
    (problem,) = resolver.problems({"H": "env:HOME"})
    assert problem == (
        "environment variable H refers to host variable HOME, which this node does not allow (Compute.Env.AllowList)"
    )
    with pytest.raises(ValueError, match="does not allow"):
        resolver.resolve({"H": "env:HOME"})


def test_unset_names_are_refused() -> None:
    resolver = EnvResolver(["*"], HOST)
    assert resolver.problems({"X": "env:NOT_THERE"}) == [
        "environment variable X refers to host variable NOT_THERE, which is not set"
    ]


def test_an_empty_allow_list_allows_nothing() -> None:
    assert EnvResolver([], HOST).problems({"T": "env:API_TOKEN"})
    assert EnvResolver([" ", ""], HOST).resolve({"PLAIN": "value"}) == {"PLAIN": "value"}
