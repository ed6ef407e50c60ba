"""The throttle every warning about other people's behaviour goes through (refusals, bad links, bad clients)."""

from __future__ import annotations

import logging

import pytest

from bacalhau.lib.throttle import Throttle
from tests.conftest import eventually


async def test_each_kind_is_logged_at_once_and_then_summed_up(caplog: pytest.LogCaptureFixture) -> None:
    throttle = Throttle(logging.getLogger("bacalhau.test"), 0.05)
    with caplog.at_level(logging.WARNING, logger="bacalhau.test"):
        for client in range(100):
            throttle.warn("slow", f"a slow client {client}")
        throttle.warn("bad", "a bad link")
        assert [record.getMessage() for record in caplog.records] == ["a slow client 0", "a bad link"]
        await eventually(lambda: len(caplog.records) == 3)
        assert caplog.records[2].getMessage() == "a slow client 99 (99 such in the last 0 s)"
        throttle.warn("slow", "a slow client again")  # within the next interval, after a summary: held again
        await eventually(lambda: "slow" not in throttle._recurred)
        assert caplog.records[-1].getMessage() == "a slow client again (1 such in the last 0 s)"
        throttle.warn("slow", "a quiet spell, then one more")
        assert caplog.records[-1].getMessage() == "a quiet spell, then one more"
