"""The orchestrator: store, node manager, broker, schedulers and workers, wired together and started in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS

from bacalhau.lib.links import KEY_FILE, LinkSigner, load_or_create_key
from bacalhau.lib.metrics import MAX_NODE_SERIES, NodeMetrics
from bacalhau.lib.tasks import spawn
from bacalhau.models.evaluation import EvalTrigger
from bacalhau.models.job import JobType
from bacalhau.models.limits import DEFAULT_MAX_COUNT
from bacalhau.models.node import NodeInfo
from bacalhau.models.timefmt import now_ns
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.compute_handler import ComputeMessageHandler
from bacalhau.orchestrator.drain import QueueDrain
from bacalhau.orchestrator.endpoint import ComputeEndpoint
from bacalhau.orchestrator.jobs import JobService, TaskDefaults
from bacalhau.orchestrator.logs import LogProxy
from bacalhau.orchestrator.metrics import OrchestratorMetrics, stream_positions
from bacalhau.orchestrator.nodes import NodeManager, NodeManagerConfig
from bacalhau.orchestrator.results import ResultTransformer
from bacalhau.orchestrator.scheduler import Scheduler, SchedulerConfig, schedulers
from bacalhau.orchestrator.scheduling import ImmediatePlanner, SchedulingRound
from bacalhau.orchestrator.selection import CapacityTracker, NodeSelector
from bacalhau.orchestrator.store import CommitEffects, JobStore, Tx

log = logging.getLogger(__name__)


@dataclass
class OrchestratorConfig:
    data_dir: Path
    workers: int = 4
    round_size: int = 8
    durable: bool = True
    over_subscription: float = 1.5
    housekeeping_interval: float = 5.0
    node_manager: NodeManagerConfig = field(default_factory=NodeManagerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    job_defaults: dict[str, TaskDefaults] = field(default_factory=dict)
    presign_results: bool = True
    presign_expiration: int = 3600
    max_count: int = DEFAULT_MAX_COUNT
    store_url: str = ""  # a PostgreSQL store's URL (shared with other orchestrators); "" for the SQLite file


class Orchestrator:
    def __init__(self, config: OrchestratorConfig, node_info: NodeInfo) -> None:
        self.config = config
        self.node_info = node_info
        self.store = JobStore(config.store_url or config.data_dir / "orchestrator" / "jobs.db", durable=config.durable)
        self.nodes = NodeManager(self.store, config.node_manager)
        self.tracker = CapacityTracker()
        self.selector = NodeSelector(self.tracker, over_subscription=config.over_subscription)
        self.broker = EvaluationBroker()
        self.links = LinkSigner(load_or_create_key(config.data_dir / "orchestrator" / KEY_FILE))
        transform = ResultTransformer(self.links, presign=config.presign_results, expires_in=config.presign_expiration)
        self.jobs = JobService(
            self.store, node_info.node_id, config.job_defaults, transform, max_count=config.max_count
        )
        self.schedulers: dict[str, Scheduler] = schedulers(self.nodes, self.selector, config.scheduler)
        self._round = SchedulingRound(self.store, self.schedulers, self.tracker)
        self._drain = QueueDrain(self.broker, self.schedulers, self.nodes, self.selector)
        self._endpoint: ComputeEndpoint | None = None
        self.logs: LogProxy | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, nc: NATS) -> None:
        await self.store.open()
        self.store.on_commit(self._on_commit)
        self.tracker.load(await self.store.live_executions_by_node())
        self.nodes.on_capacity(self._on_capacity)
        self.nodes.on_join(self._on_node_joined)
        self.nodes.on_leave(self._on_node_left)
        await self.nodes.start(self.node_info)
        self.logs = LogProxy(nc, self.links)
        handler = ComputeMessageHandler(ImmediatePlanner(self.schedulers), self._drain)
        self._endpoint = ComputeEndpoint(nc, self.store, self.nodes, handler, self.links)
        await self._endpoint.start()
        self.broker.enqueue_all(await self.store.open_evaluations())
        self._tasks = [spawn(self._work(), f"scheduler-worker-{i}") for i in range(self.config.workers)]
        self._tasks.append(spawn(self._housekeeping(), "housekeeping"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._endpoint is not None:
            await self._endpoint.stop()
        await self.nodes.stop()
        self.broker.close()
        self.store.close()

    def register_metrics(self, metrics: NodeMetrics) -> None:
        """Export this orchestrator's metrics in ``metrics`` (see :mod:`bacalhau.orchestrator.metrics`)."""
        OrchestratorMetrics(metrics, self.store, self.broker, self.nodes, self._senders)

    def _senders(self) -> dict[str, tuple[int, bool]]:
        return self._endpoint.senders() if self._endpoint is not None else {}

    async def debug_info(self) -> dict[str, Any]:
        """What ``/agent/debug`` shows of the orchestrator: the broker's queues, each node's stream, the store."""
        streams = stream_positions(await self.store.streams(MAX_NODE_SERIES), self._senders())
        oldest = self.broker.oldest_blocked_time()
        return {
            "Broker": {
                **{state.capitalize(): count for state, count in self.broker.counts().items()},
                "OldestBlockedAgeSeconds": max(0, now_ns() - oldest) / 1e9 if oldest else 0.0,
            },
            "Streams": streams,
            "Store": await asyncio.to_thread(self.store.db.info),
            "Workers": self.config.workers,
        }

    def _on_commit(self, effects: CommitEffects) -> None:
        self.tracker.on_commit(effects)
        self.broker.enqueue_all(effects.evaluations)
        self._drain.after_commit(effects)

    def _on_capacity(self, _node_id: str) -> None:
        self.broker.unblock()

    def _on_node_joined(self, node_id: str) -> None:
        """Daemon jobs run on every matching node, including ones that join later."""
        spawn(self._evaluate_daemons(), f"evaluate-daemons-for-{node_id}")

    async def _evaluate_daemons(self) -> None:
        job_ids = await self.store.in_progress_job_ids(JobType.DAEMON.value)
        if not job_ids:
            return

        def create(tx: Tx) -> None:
            for job_id in job_ids:
                tx.new_evaluation(tx.get_job(job_id), EvalTrigger.NODE_JOIN.value)

        await self.store.transact(create)

    def _on_node_left(self, node_id: str) -> None:
        """Re-evaluate every job with live work on a node that left, so that its work fails over."""
        spawn(self._evaluate_jobs_on(node_id), f"evaluate-jobs-on-{node_id}")

    async def _evaluate_jobs_on(self, node_id: str) -> None:
        job_ids = await self.store.live_job_ids_on(node_id)
        if not job_ids:
            return

        def create(tx: Tx) -> None:
            for job_id in job_ids:
                job = tx.get_job(job_id)
                if not job.is_terminal:
                    tx.new_evaluation(job, EvalTrigger.NODE_LEAVE.value)

        await self.store.transact(create)

    async def _work(self) -> None:
        while True:
            deliveries = await self.broker.dequeue_batch(self.config.round_size)
            for outcome in await self._round.run(deliveries):
                delivery = outcome.delivery
                if outcome.error is None:
                    self.broker.ack(delivery, blocked=outcome.blocked)
                    continue
                log.warning(
                    "evaluation %s of job %s failed (attempt %d): %s",
                    delivery.evaluation.id,
                    delivery.evaluation.job_id,
                    delivery.attempt,
                    outcome.error,
                    exc_info=outcome.error if log.isEnabledFor(logging.DEBUG) else None,
                )
                self.broker.nack(delivery)

    async def _housekeeping(self) -> None:
        """A safety net for queued jobs: release one blocked evaluation every interval."""
        while True:
            await asyncio.sleep(self.config.housekeeping_interval)
            self.broker.unblock(1)
