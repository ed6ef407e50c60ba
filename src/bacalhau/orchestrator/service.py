"""The orchestrator: store, node manager and API services on every orchestrator; broker, schedulers, workers and the
streams to compute nodes on the one that leads (see :mod:`bacalhau.orchestrator.leadership`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS

from bacalhau.errors import Unavailable
from bacalhau.lib.links import KEY_BYTES, KEY_FILE, LinkSigner, load_or_create_key
from bacalhau.lib.metrics import MAX_NODE_SERIES, NodeMetrics
from bacalhau.lib.tasks import cancel, spawn
from bacalhau.models.evaluation import EvalTrigger, Evaluation
from bacalhau.models.job import JobType
from bacalhau.models.limits import DEFAULT_MAX_COUNT
from bacalhau.models.node import NodeInfo
from bacalhau.models.timefmt import now_ns
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.compute_handler import ComputeMessageHandler
from bacalhau.orchestrator.drain import QueueDrain
from bacalhau.orchestrator.endpoint import ComputeEndpoint
from bacalhau.orchestrator.jobs import JobService, TaskDefaults
from bacalhau.orchestrator.leadership import SharedLeadership, SoleLeadership
from bacalhau.orchestrator.logs import LogProxy
from bacalhau.orchestrator.metrics import OrchestratorMetrics, stream_positions
from bacalhau.orchestrator.nodes import NodeManager, NodeManagerConfig
from bacalhau.orchestrator.results import ResultTransformer
from bacalhau.orchestrator.scheduler import Scheduler, SchedulerConfig, schedulers
from bacalhau.orchestrator.scheduling import ImmediatePlanner, SchedulingRound
from bacalhau.orchestrator.selection import CapacityTracker, NodeSelector
from bacalhau.orchestrator.store import Announcement, CommitEffects, JobStore, Tx

log = logging.getLogger(__name__)

LINK_KEY_NAME = "links"  # the shared store's name for the link signing key


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


class Duties:
    """What only the leading orchestrator does, made afresh for each term: the broker and its workers, the capacity
    tracker, the schedulers, the queue drain, housekeeping and the streams to compute nodes. Everything it needs to
    know is read from the store when the term begins."""

    def __init__(
        self, config: OrchestratorConfig, store: JobStore, nodes: NodeManager, nc: NATS, links: LinkSigner
    ) -> None:
        self.config = config
        self.store = store
        self.nodes = nodes
        self.tracker = CapacityTracker()
        self.selector = NodeSelector(self.tracker, over_subscription=config.over_subscription)
        self.broker = EvaluationBroker()
        self.schedulers: dict[str, Scheduler] = schedulers(nodes, self.selector, config.scheduler)
        self._round = SchedulingRound(store, self.schedulers, self.tracker)
        self._drain = QueueDrain(self.broker, self.schedulers, nodes, self.selector)
        handler = ComputeMessageHandler(ImmediatePlanner(self.schedulers), self._drain)
        self.endpoint = ComputeEndpoint(nc, store, nodes, handler, links)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.tracker.load(await self.store.live_executions_by_node())
        await self.nodes.lead()
        await self.endpoint.start()
        self.broker.enqueue_all(await self.store.open_evaluations())
        self._tasks = [spawn(self._work(), f"scheduler-worker-{i}") for i in range(self.config.workers)]
        self._tasks.append(spawn(self._housekeeping(), "housekeeping"))

    async def stop(self) -> None:
        """Stop all of it, whatever the store can still take (a deposed leader's writes are refused)."""
        for task in self._tasks:
            await cancel(task)
        self._tasks = []
        await self.endpoint.stop()
        await self.nodes.follow()
        self.broker.close()

    # ---- what happens elsewhere in the orchestrator
    def on_commit(self, effects: CommitEffects) -> None:
        self.tracker.on_commit(effects)
        self.broker.enqueue_all(effects.evaluations)
        self._drain.after_commit(effects)
        self.endpoint.on_commit(effects)

    def on_announcement(self, announcement: Announcement | None, evaluations: list[Evaluation]) -> None:
        """Another orchestrator committed (None: something may have been missed): queue the evaluations it made and
        send what it queued for nodes."""
        self.broker.enqueue_all(evaluations)
        self.endpoint.send_queued(None if announcement is None else announcement.outbox)

    def on_capacity(self, _node_id: str) -> None:
        self.broker.unblock()

    def on_node_joined(self, node_id: str) -> None:
        """Daemon jobs run on every matching node, including ones that join later."""
        spawn(self._evaluate_daemons(), f"evaluate-daemons-for-{node_id}")

    def on_node_left(self, node_id: str) -> None:
        """Re-evaluate every job with live work on a node that left, so that its work fails over."""
        self.endpoint.on_node_left(node_id)
        spawn(self._evaluate_jobs_on(node_id), f"evaluate-jobs-on-{node_id}")

    async def _evaluate_daemons(self) -> None:
        job_ids = await self.store.in_progress_job_ids(JobType.DAEMON.value)
        if not job_ids:
            return

        def create(tx: Tx) -> None:
            for job_id in job_ids:
                tx.new_evaluation(tx.get_job(job_id), EvalTrigger.NODE_JOIN.value)

        await self.store.transact(create)

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


class Orchestrator:
    """Every orchestrator serves the API (jobs, nodes, logs); the one that leads also does its :class:`Duties`."""

    def __init__(self, config: OrchestratorConfig, node_info: NodeInfo) -> None:
        self.config = config
        self.node_info = node_info
        self.store = JobStore(config.store_url or config.data_dir / "orchestrator" / "jobs.db", durable=config.durable)
        self.nodes = NodeManager(self.store, config.node_manager)
        # The key results and logs links are signed with: in the data dir with SQLite; in the store when orchestrators
        # share it (any of them may sign a link a node got its key for from another), taken at start.
        self.links = LinkSigner(
            b"" if config.store_url else load_or_create_key(config.data_dir / "orchestrator" / KEY_FILE)
        )
        transform = ResultTransformer(self.links, presign=config.presign_results, expires_in=config.presign_expiration)
        self.jobs = JobService(
            self.store, node_info.node_id, config.job_defaults, transform, max_count=config.max_count
        )
        self.logs: LogProxy | None = None
        self.leadership: SoleLeadership | SharedLeadership = SoleLeadership(node_info.node_id)
        self.duties: Duties | None = None
        self._idle_broker = EvaluationBroker()  # what a follower's metrics read: nothing queued here
        self._nc: NATS | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, nc: NATS) -> None:
        self._nc = nc
        await self.store.open()
        if self.store.shared:
            self.links.use(await self.store.transact(lambda tx: tx.shared_secret(LINK_KEY_NAME, KEY_BYTES)))
        self.store.on_commit(self._on_commit)
        self.nodes.on_capacity(self._on_capacity)
        self.nodes.on_join(self._on_node_joined)
        self.nodes.on_leave(self._on_node_left)
        self.nodes.save_heartbeats = self.store.shared
        await self.nodes.start(self.node_info)
        self.logs = LogProxy(nc, self.links)
        if not self.store.shared:
            await self._lead()
            return
        from bacalhau.lib.postgres import ChangeFeed, PostgresDatabase

        assert isinstance(self.store.db, PostgresDatabase)
        db = self.store.db
        self.nodes.presence = lambda node_ids: asyncio.to_thread(db.present, node_ids)
        self.leadership = SharedLeadership(db, self.node_info.node_id)
        self._tasks = [
            spawn(ChangeFeed(self.store.db, self._on_announcement).run(), "store-change-feed"),
            spawn(self.leadership.run(self._lead, self._follow), "leadership"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel(task)
        self._tasks = []
        await self._follow()
        await self.nodes.stop()
        self.store.close()

    async def _lead(self) -> None:
        assert self._nc is not None
        duties = Duties(self.config, self.store, self.nodes, self._nc, self.links)
        self.duties = duties
        try:
            await duties.start()
        except BaseException:
            await self._follow()
            raise

    async def _follow(self) -> None:
        duties, self.duties = self.duties, None
        if duties is not None:
            await duties.stop()

    @property
    def broker(self) -> EvaluationBroker:
        """The leader's broker; an empty one while following."""
        return self.duties.broker if self.duties is not None else self._idle_broker

    def register_metrics(self, metrics: NodeMetrics) -> None:
        """Export this orchestrator's metrics in ``metrics`` (see :mod:`bacalhau.orchestrator.metrics`)."""
        OrchestratorMetrics(metrics, self.store, lambda: self.broker, self.nodes, self._senders, self.leadership.state)

    def _senders(self) -> dict[str, tuple[int, bool]]:
        return self.duties.endpoint.senders() if self.duties is not None else {}

    async def debug_info(self) -> dict[str, Any]:
        """What ``/agent/debug`` shows of the orchestrator: who leads, the broker's queues, each node's stream, the
        store."""
        try:
            streams: Any = stream_positions(await self.store.streams(MAX_NODE_SERIES), self._senders())
        except Unavailable as exc:  # the rest still tells what this orchestrator knows
            streams = {"Error": exc.message}
        broker = self.broker
        oldest = broker.oldest_blocked_time()
        return {
            "Leadership": (await self.leadership.state()).to_debug(),
            "Broker": {
                **{state.capitalize(): count for state, count in broker.counts().items()},
                "OldestBlockedAgeSeconds": max(0, now_ns() - oldest) / 1e9 if oldest else 0.0,
            },
            "Streams": streams,
            "Store": await asyncio.to_thread(self.store.db.info),
            "Workers": self.config.workers,
        }

    # ---- what the store and the node manager tell
    def _on_commit(self, effects: CommitEffects) -> None:
        if self.duties is not None:
            self.duties.on_commit(effects)

    def _on_announcement(self, text: str | None) -> None:
        """Another orchestrator committed to the shared store (None: this one may have missed some)."""
        announcement = None if text is None else Announcement.parse(text)
        if announcement is not None and announcement.origin == self.store.origin:
            return  # this process's own commit: its listeners were told already
        if announcement is not None and announcement.resync:
            announcement = None  # too much to say: read everything again
        spawn(self._catch_up(announcement), "catch-up-with-the-store")

    async def _catch_up(self, announcement: Announcement | None) -> None:
        """Read what the announcement names (everything for None) and tell the node manager and the duties."""
        if announcement is None or announcement.nodes:
            nodes = None if announcement is None else announcement.nodes
            await self.nodes.refresh(nodes, leading=self.duties is not None)
        duties = self.duties
        if duties is None:
            return
        if announcement is None:
            evaluations = await self.store.open_evaluations()
        else:
            evaluations = await self.store.evaluations(announcement.evaluations)
        if self.duties is duties:
            duties.on_announcement(announcement, evaluations)

    def _on_capacity(self, node_id: str) -> None:
        if self.duties is not None:
            self.duties.on_capacity(node_id)

    def _on_node_joined(self, node_id: str) -> None:
        if self.duties is not None:
            self.duties.on_node_joined(node_id)

    def _on_node_left(self, node_id: str) -> None:
        if self.duties is not None:
            self.duties.on_node_left(node_id)
