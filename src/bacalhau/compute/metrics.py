"""A compute node's Prometheus metrics (named ``bacalhau_compute_...``, so that they never clash with an
orchestrator's in a hybrid node's one exposition).

Read at each scrape: executions running and queued in the buffer, and the node's capacity (total, used by running
executions, asked for by queued ones). Counted as they happen: executions by engine and outcome, bytes of inputs
downloaded by source type, and the store's commit latency.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from stat import S_ISREG

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from bacalhau.lib.metrics import LATENCY_BUCKETS, NodeMetrics
from bacalhau.models.resources import Resources

OTHER = "other"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"


def folder_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symbolic links not followed): what an input left there."""
    total = 0
    for root, _dirs, files in os.walk(path):  # never follows links to folders
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if S_ISREG(stat.st_mode):
                total += stat.st_size
    return total


class ComputeMetrics:
    def __init__(
        self,
        metrics: NodeMetrics,
        *,
        engines: Collection[str],
        sources: Collection[str],
        capacity: Callable[[], tuple[Resources, Resources, Resources]],
        executions: Callable[[], tuple[int, int]],
    ) -> None:
        """``engines`` and ``sources``: the label values allowed (a job names its own: any other is "other");
        ``capacity``: (total, used, queued) now; ``executions``: (running, queued) now."""
        self._engines = frozenset(engines)
        self._sources = frozenset(sources)
        self._capacity = capacity
        self._executions = executions
        registry = metrics.registry
        self.executions_total = Counter(
            "bacalhau_compute_executions",
            "Executions this node ran to an end, by engine and outcome (completed, failed, cancelled)",
            ["engine", "outcome"],
            registry=registry,
        )
        self.input_bytes = Counter(
            "bacalhau_compute_input_download_bytes",
            "Bytes of inputs this node fetched into executions' folders, by source type",
            ["source"],
            registry=registry,
        )
        self.commit = Histogram(
            "bacalhau_compute_store_commit_seconds",
            "How long each commit of the compute node's SQLite store took",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        for engine in sorted(self._engines):
            for outcome in (COMPLETED, FAILED, CANCELLED):
                self.executions_total.labels(engine, outcome)
        for source in sorted(self._sources):
            self.input_bytes.labels(source)
        metrics.add(self.collect)

    def engine_label(self, engine: str) -> str:
        return engine if engine in self._engines else OTHER

    def ended(self, engine: str, outcome: str) -> None:
        self.executions_total.labels(self.engine_label(engine), outcome).inc()

    def downloaded(self, source: str, size: int) -> None:
        self.input_bytes.labels(source if source in self._sources else OTHER).inc(size)

    def collect(self) -> Iterator[Metric]:
        running, queued = self._executions()
        family = GaugeMetricFamily(
            "bacalhau_compute_executions_active", "Executions running, and waiting for room, here", labels=["state"]
        )
        family.add_metric(["running"], running)
        family.add_metric(["queued"], queued)
        yield family
        total, used, waiting = self._capacity()
        for name, unit, doc in (("cpu", "cores", "CPU"), ("memory", "bytes", "Memory"), ("disk", "bytes", "Disk"),
                                ("gpu", "devices", "GPUs")):  # fmt: skip
            family = GaugeMetricFamily(
                f"bacalhau_compute_capacity_{name}_{unit}",
                f"{doc} this node offers to jobs (total), holds for running executions (used), and queued ones ask "
                "for (queued)",
                labels=["kind"],
            )
            for kind, resources in (("total", total), ("used", used), ("queued", waiting)):
                family.add_metric([kind], float(getattr(resources, name)))
            yield family
