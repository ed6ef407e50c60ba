"""Which orchestrator leads: the one that runs the broker, the schedulers, the node manager's liveness and the streams
to compute nodes. Every orchestrator serves the API.

With a SQLite store the one orchestrator of its file leads for as long as it runs (:class:`SoleLeadership`). With a
PostgreSQL store several orchestrators share (:class:`SharedLeadership`), the leader is whoever holds the store's
leader lock, a PostgreSQL advisory lock held by a session of its own: followers try to take it every
:data:`CAMPAIGN_INTERVAL`; the leader checks its session every :data:`CHECK_INTERVAL` and stops leading at once when
the session is gone, which is also when the lock is free for the others (a killed process's session ends with its
socket; one cut off from the database is dropped by the server's keepalives). Each taking of the lock is a new term,
and every write the leader makes checks that its term is still the latest, so a deposed leader that has not noticed
yet cannot commit anything (fencing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bacalhau.errors import Unavailable
from bacalhau.lib.postgres import LeaderLock, PostgresDatabase, current_leader
from bacalhau.models.timefmt import format_rfc3339_nano, now_ns

log = logging.getLogger(__name__)

CAMPAIGN_INTERVAL = 0.5  # seconds between a follower's tries for the leader lock
CHECK_INTERVAL = 1.0  # seconds between the leader's checks that it still holds the lock

Duty = Callable[[], Awaitable[None]]


@dataclass
class LeaderState:
    """Who leads, as one orchestrator knows it (for ``/agent/debug`` and ``/metrics``)."""

    leading: bool
    leader_id: str = ""
    term: int = 0
    since_ns: int = 0  # when the term began

    def to_debug(self) -> dict[str, Any]:
        return {
            "Leading": self.leading,
            "LeaderID": self.leader_id,
            "Term": self.term,
            "Since": format_rfc3339_nano(self.since_ns) if self.since_ns else "",
        }


class SoleLeadership:
    """The one orchestrator of a SQLite store: it leads from its start."""

    def __init__(self, node_id: str) -> None:
        self._state = LeaderState(leading=True, leader_id=node_id, since_ns=now_ns())

    async def state(self) -> LeaderState:
        return self._state


class SharedLeadership:
    """Leading in turns with the other orchestrators of a PostgreSQL store."""

    def __init__(self, db: PostgresDatabase, node_id: str) -> None:
        self._db = db
        self._node_id = node_id
        self._lock = LeaderLock(db, node_id)
        self._term = 0
        self._since = 0
        self._announced_unreachable = False

    @property
    def leading(self) -> bool:
        return self._term > 0

    async def state(self) -> LeaderState:
        if self.leading:
            return LeaderState(leading=True, leader_id=self._node_id, term=self._term, since_ns=self._since)
        try:
            latest = await self._db.read(current_leader)
        except Unavailable:
            latest = None
        if latest is None:
            return LeaderState(leading=False)
        term, holder, since = latest
        return LeaderState(leading=False, leader_id=holder, term=term, since_ns=since)

    async def run(self, lead: Duty, follow: Duty) -> None:
        """Campaign, lead while the lock holds (``lead`` once taken, ``follow`` once lost), and again, until
        cancelled (then the lock is let go)."""
        try:
            while True:
                term = await self._campaign()
                self._db.guard = self._lock.fence(term)
                self._term, self._since = term, now_ns()
                log.info("this orchestrator leads (term %d)", term)
                try:
                    await lead()
                    await self._hold()
                    log.warning("this orchestrator lost the leader lock (term %d): it follows now", term)
                except Unavailable as exc:
                    log.warning("this orchestrator stops leading (term %d): %s", term, exc.message)
                finally:
                    self._term = 0
                    await follow()
                    self._db.guard = None
                    await self._lock.release()
        finally:
            await self._lock.release()

    async def _hold(self) -> None:
        """Return once the leader lock's session is lost."""
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            if not await self._lock.holding(timeout=CHECK_INTERVAL * 3):
                return

    async def _campaign(self) -> int:
        while True:
            try:
                term = await self._lock.try_acquire()
                self._announced_unreachable = False
                if term is not None:
                    return term
            except Unavailable as exc:
                if not self._announced_unreachable:
                    log.warning("cannot campaign for leadership: %s", exc.message)
                    self._announced_unreachable = True
            await asyncio.sleep(CAMPAIGN_INTERVAL)
