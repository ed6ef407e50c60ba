"""The connection limit of a process's HTTP servers, from its file descriptor limit."""

from __future__ import annotations

import subprocess
import sys

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


def test_a_node_raises_its_open_file_limit_to_the_hard_one() -> None:
    """As Go programs do at start; in a child process, whose limits are its own."""
    script = (
        "import resource; from bacalhau.lib.httpserver import raise_open_file_limit; "
        "_, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 256), hard)); raise_open_file_limit(); "
        "print(resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
