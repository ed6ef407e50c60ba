"""Warnings about what others do to a node (refused requests, bad links, misbehaving clients), so throttled that a
flood of them cannot flood the log: the first of a kind is logged at once, the rest of the interval are counted and
summed up in one line when it ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable


class Throttle:
    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self._log = logger
        self.interval = interval
        self._recurred: dict[Hashable, tuple[int, str]] = {}  # kind -> times, and the last message, while throttled

    def warn(self, kind: Hashable, message: str) -> None:
        """Log ``message`` now, unless one of the same ``kind`` was logged less than an interval ago: then count it."""
        if kind in self._recurred:
            times, _ = self._recurred[kind]
            self._recurred[kind] = (times + 1, message)
            return
        self._log.warning(message)
        self._hold(kind)

    def _hold(self, kind: Hashable) -> None:
        self._recurred[kind] = (0, "")
        asyncio.get_running_loop().call_later(self.interval, self._release, kind)

    def _release(self, kind: Hashable) -> None:
        times, last = self._recurred.pop(kind)
        if times:
            self._log.warning("%s (%d such in the last %.0f s)", last, times, self.interval)
            self._hold(kind)
