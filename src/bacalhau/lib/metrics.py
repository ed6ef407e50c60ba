"""A node's Prometheus metrics: one registry per node, never the process-wide default one (devstack runs several nodes
in one process, and tests start many), with the hooks a scrape runs.

Most metrics are read from live state when scraped (custom collectors: :class:`LiveCollector`), so that each has one
source of truth; what only an event can tell (a job ended, a commit took so long) is a counter or histogram kept
here. A scrape first runs the node's async refreshers (reads from a store, cached for the collectors, which are
synchronous), then renders the registry, then appends what other processes of the node export (the compute half
of a hybrid node, see :mod:`bacalhau.hybrid`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "bacalhau_"
REFRESH_TIMEOUT = 3.0  # seconds a scrape waits for a store read or another process before leaving it out
MAX_NODE_SERIES = 1000  # per-node series (executions, stream lag): the first this many nodes by ID, so a huge network
# or a flood of joins cannot make a scrape unbounded

# Histogram buckets, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0)
PLACEMENT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0)


class LiveCollector(Collector):
    """A collector whose metric families come from a function, called at each scrape (it reads live state)."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception:  # a broken collector leaves its metrics out; the others are still served
            log.exception("a metrics collector failed")


class NodeMetrics:
    """The metrics of one node: its registry, what a scrape refreshes first, and what other processes add."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._refreshers: list[Callable[[], Awaitable[None]]] = []
        self._remotes: list[Callable[[], Awaitable[bytes]]] = []

    def add(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Serve the families ``collect`` yields at each scrape."""
        self.registry.register(LiveCollector(collect))

    def before_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Run ``refresh`` (e.g. a store read that collectors then use) before each scrape, for a bounded time."""
        self._refreshers.append(refresh)

    def add_remote(self, exposition: Callable[[], Awaitable[bytes]]) -> None:
        """Append another process's exposition text (whose metric names differ from this registry's) to each
        scrape."""
        self._remotes.append(exposition)

    async def exposition(self) -> bytes:
        """The text a scrape answers with. A part that fails or is late is left out (and logged): a scrape must not
        hang on a slow store or a busy child process."""
        if self._refreshers:
            await asyncio.gather(*(self._bounded(refresh(), "refresh") for refresh in self._refreshers))
        text = generate_latest(self.registry)
        for remote in self._remotes:
            extra = await self._bounded(remote(), "another process's metrics")
            if extra:
                text += extra if extra.endswith(b"\n") else extra + b"\n"
        return text

    @staticmethod
    async def _bounded(work: Awaitable[bytes | None], what: str) -> bytes | None:
        try:
            return await asyncio.wait_for(work, REFRESH_TIMEOUT)
        except Exception as exc:
            log.warning("metrics: %s failed: %s", what, exc or type(exc).__name__)
            return None


def bounded_labels(values: Iterable[str], limit: int = MAX_NODE_SERIES) -> list[str]:
    """The first ``limit`` of ``values`` in order: label values a scrape may show, however many there are."""
    return sorted(values)[:limit]
