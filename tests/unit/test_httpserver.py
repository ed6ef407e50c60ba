"""The connection limit of a process's HTTP servers, from its file descriptor limit."""

from __future__ import annotations

import pytest

from bacalhau.lib.httpserver import connection_limit


@pytest.mark.parametrize(
    ("open_files", "connections"),
    [
        (256, 128),  # a reserve of at least 128 descriptors for everything else
        (1024, 768),  # the usual default: a quarter kept back
        (20_000, 10_000),  # capped: past this, memory would run out first
        (1 << 20, 10_000),
    ],
)
def test_the_limit_leaves_descriptors_for_everything_else(open_files: int, connections: int) -> None:
    assert connection_limit(open_files) == connections
