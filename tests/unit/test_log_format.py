"""Log lines: an error's traceback is always shown, in text and JSON; a lesser record's only at debug level."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bacalhau.logs import setup_logging

log = logging.getLogger("bacalhau.test")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging configures the process's loggers: put them back as they were."""
    root, ours = logging.getLogger(), logging.getLogger("bacalhau")
    handlers, root_level, our_level = root.handlers[:], root.level, ours.level
    yield
    root.handlers[:] = handlers
    root.setLevel(root_level)
    ours.setLevel(our_level)


def log_failure(level: int) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.log(level, "it failed", exc_info=True)


@pytest.mark.parametrize("mode", ["default", "json"])
def test_an_error_shows_its_traceback_at_any_level(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", mode)
    log_failure(logging.ERROR)
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err
    if mode == "json":
        assert "RuntimeError: boom" in json.loads(err)["error"]


@pytest.mark.parametrize("mode", ["default", "json"])
def test_a_warning_stays_one_line_unless_debugging(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", mode)
    log_failure(logging.WARNING)
    quiet = capsys.readouterr().err
    assert "it failed" in quiet and "Traceback" not in quiet and len(quiet.splitlines()) == 1
    setup_logging("debug", mode)
    log_failure(logging.WARNING)
    assert "RuntimeError: boom" in capsys.readouterr().err
