"""The orchestrator's Prometheus metrics.

Read from live state at each scrape (one source of truth each): jobs by state (counted from the store's state index
alone, as the web UI's summary counts them: a pass over that covering index, never over the jobs themselves), the
broker's evaluations by state, the queue (blocked evaluations) and its oldest, nodes by approval and connection,
executions running per node (as their heartbeats report), and each node's stream lag (messages committed to its
outbox that it has not acknowledged).

Counted as they happen, from what each commit tells its listeners: jobs submitted and ended by type, the placement
latency (evaluation created -> its executions placed) and submit -> completed durations, and the store's commit
latency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from bacalhau.errors import Unavailable
from bacalhau.lib.metrics import (
    JOB_DURATION_BUCKETS,
    LATENCY_BUCKETS,
    MAX_NODE_SERIES,
    PLACEMENT_BUCKETS,
    NodeMetrics,
    bounded_labels,
)
from bacalhau.models.job import JOB_TYPES, JobType
from bacalhau.models.node import Connection, Membership
from bacalhau.models.state import JobStateType
from bacalhau.models.timefmt import now_ns
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.leadership import LeaderState
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.store import CommitEffects, JobStore, StreamState, Tx

OTHER = "other"
_STATES = tuple(state.value for state in JobStateType)
_ENDED = {
    JobStateType.COMPLETED.value: "completed",
    JobStateType.FAILED.value: "failed",
    JobStateType.STOPPED.value: "stopped",
}


def job_type_label(job_type: str) -> str:
    return job_type if job_type in JOB_TYPES else OTHER


class OrchestratorMetrics:
    def __init__(
        self,
        metrics: NodeMetrics,
        store: JobStore,
        broker: Callable[[], EvaluationBroker],
        nodes: NodeManager,
        senders: Callable[[], dict[str, tuple[int, bool]]],
        leadership: Callable[[], Awaitable[LeaderState]] | None = None,
    ) -> None:
        """``broker``: the leader's broker (an empty one while following); ``senders``: each node's stream as its
        sender knows it (acknowledged message, running); ``leadership``: who leads, as this orchestrator knows."""
        self._store = store
        self._broker = broker
        self._leadership = leadership
        self._leader = LeaderState(leading=False)
        self._nodes = nodes
        self._senders = senders
        self._job_counts: dict[str, int] = {}
        self._streams: list[StreamState] = []
        registry = metrics.registry
        self.submitted = Counter(
            "bacalhau_jobs_submitted", "Jobs submitted (new jobs and new versions), by job type", ["type"],
            registry=registry,
        )  # fmt: skip
        self.ended = {
            label: Counter(f"bacalhau_jobs_{label}", f"Jobs that ended {state}, by type", ["type"], registry=registry)
            for state, label in _ENDED.items()
        }
        self.placement = Histogram(
            "bacalhau_placement_latency_seconds",
            "From an evaluation's creation to the commit that placed its executions (queued time included)",
            buckets=PLACEMENT_BUCKETS,
            registry=registry,
        )
        self.completion = Histogram(
            "bacalhau_job_submit_to_completed_seconds",
            "From a job's submission to its completion, by job type (jobs that completed)",
            ["type"],
            buckets=JOB_DURATION_BUCKETS,
            registry=registry,
        )
        self.commit = Histogram(
            "bacalhau_orchestrator_store_commit_seconds",
            "How long each commit of the orchestrator's store took (one commit may hold many writes)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        for job_type in JobType:
            self.submitted.labels(job_type.value)
            self.completion.labels(job_type.value)
            for counter in self.ended.values():
                counter.labels(job_type.value)
        metrics.before_scrape(self.refresh)
        metrics.add(self.collect)
        store.on_commit(self.on_commit)
        store.db.observe_commit = self.commit.observe

    async def refresh(self) -> None:
        """What a scrape reads from the store: a few rows each, bounded. While the store cannot be reached, the last
        figures read stand (the scrape still says who leads, and the store's failures show in the API's)."""
        try:
            self._job_counts = await self._store.read(lambda conn: Tx(conn).jobs_by_state())
            self._streams = await self._store.streams(MAX_NODE_SERIES)
        except Unavailable:
            pass
        if self._leadership is not None:
            self._leader = await self._leadership()

    def on_commit(self, effects: CommitEffects) -> None:
        for job_type in effects.submitted_jobs:
            self.submitted.labels(job_type_label(job_type)).inc()
        if not effects.ended_jobs and not effects.placements:
            return
        now = now_ns()
        for job_type, state, created in effects.ended_jobs:
            label = job_type_label(job_type)
            self.ended[_ENDED[state]].labels(label).inc()
            if state == JobStateType.COMPLETED.value and created:
                self.completion.labels(label).observe(max(0, now - created) / 1e9)
        for created in effects.placements:
            self.placement.observe(max(0, now - created) / 1e9)

    def collect(self) -> Iterator[Metric]:
        yield self._jobs()
        broker = self._broker()
        counts = broker.counts()
        evaluations = GaugeMetricFamily(
            "bacalhau_evaluations", "Evaluations the broker holds, by state", labels=["state"]
        )
        for state, count in counts.items():
            evaluations.add_metric([state], count)
        yield evaluations
        yield GaugeMetricFamily(
            "bacalhau_job_queue_depth", "Jobs waiting for capacity (blocked evaluations)", value=counts["blocked"]
        )
        oldest = broker.oldest_blocked_time()
        yield GaugeMetricFamily(
            "bacalhau_job_queue_oldest_age_seconds",
            "How long the longest-waiting queued job's evaluation has existed (0: none queued)",
            value=max(0, now_ns() - oldest) / 1e9 if oldest else 0.0,
        )
        yield from self._node_metrics()
        yield self._stream_lag()
        yield from self._leader_metrics()

    def _leader_metrics(self) -> Iterator[Metric]:
        leader = self._leader
        yield GaugeMetricFamily(
            "bacalhau_orchestrator_leader", "1 while this orchestrator leads, else 0", value=int(leader.leading)
        )
        yield GaugeMetricFamily(
            "bacalhau_orchestrator_leader_term",
            "The leader's term as this orchestrator knows it (one more at each change of leader; 0 with SQLite)",
            value=leader.term,
        )
        yield GaugeMetricFamily(
            "bacalhau_orchestrator_leader_since_seconds",
            "When the leader's term began (Unix seconds; 0: no leader known)",
            value=leader.since_ns / 1e9,
        )

    def _jobs(self) -> Metric:
        jobs = GaugeMetricFamily("bacalhau_jobs", "Jobs in the store, by state", labels=["state"])
        counts = dict.fromkeys(_STATES, 0)
        for state, count in self._job_counts.items():
            key = state if state in counts else OTHER
            counts[key] = counts.get(key, 0) + count
        for state, count in counts.items():
            jobs.add_metric([state], count)
        return jobs

    def _node_metrics(self) -> Iterator[Metric]:
        nodes = self._nodes.all()
        by_state = {(m.value, c.value): 0 for m in Membership for c in Connection}
        running: dict[str, int] = {}
        for node in nodes:
            key = (node.membership, node.connection)
            by_state[key] = by_state.get(key, 0) + 1
            compute = node.info.compute_node_info
            if compute is not None and node.info.is_compute:
                running[node.info.node_id] = compute.running_executions
        family = GaugeMetricFamily(
            "bacalhau_nodes",
            "Nodes known to the orchestrator, by approval and connection",
            labels=["approval", "connection"],
        )
        for (approval, connection), count in by_state.items():
            family.add_metric([approval, connection], count)
        yield family
        family = GaugeMetricFamily(
            "bacalhau_node_executions_running",
            f"Executions each compute node reported running in its last heartbeat (the first {MAX_NODE_SERIES} "
            "nodes by ID)",
            labels=["node_id"],
        )
        for node_id in bounded_labels(running):
            family.add_metric([node_id], running[node_id])
        yield family

    def _stream_lag(self) -> Metric:
        family = GaugeMetricFamily(
            "bacalhau_stream_lag_messages",
            f"Messages committed to a node's outbox that it has not acknowledged (the first {MAX_NODE_SERIES} nodes "
            "by ID)",
            labels=["node_id"],
        )
        for position in stream_positions(self._streams, self._senders()):
            family.add_metric([position["NodeID"]], position["Lag"])
        return family


def stream_positions(streams: list[StreamState], senders: dict[str, tuple[int, bool]]) -> list[dict[str, Any]]:
    """Each node's outbound stream: the last message committed to it, the last it acknowledged (the sender's live
    position, which the store records only now and then), the difference, and whether a sender runs; with the last
    message of the node's own stream applied here."""
    positions = []
    for stream in streams:
        acked, running = senders.get(stream.node_id, (0, False))
        acked = max(stream.acked_seq, acked)
        committed = stream.next_seq - 1
        positions.append(
            {
                "NodeID": stream.node_id,
                "Committed": committed,
                "Acked": acked,
                "Lag": max(0, committed - acked),
                "Sending": running,
                "AppliedFromNode": stream.applied_seq,
            }
        )
    return positions
