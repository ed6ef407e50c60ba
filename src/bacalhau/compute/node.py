"""A compute node: store, engines, inputs, publishers, bidder, buffer and the connection to the orchestrator."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bacalhau.compute.admission import AdmissionConfig, JobAdmission
from bacalhau.compute.bidder import Bidder
from bacalhau.compute.buffer import ExecutorBuffer
from bacalhau.compute.capacity import AllocatedCapacity, CapacityTracker, allocate, machine_resources
from bacalhau.compute.connection import ConnectionConfig, OrchestratorConnection
from bacalhau.compute.executors import default_executors
from bacalhau.compute.executors.docker import DockerExecutor
from bacalhau.compute.gpus import detect_gpus, gpu_labels
from bacalhau.compute.handler import OrchestratorMessageHandler
from bacalhau.compute.inputs import default_inputs
from bacalhau.compute.logs import LogServer, LogStore
from bacalhau.compute.metrics import ComputeMetrics
from bacalhau.compute.ports import DEFAULT_RANGE, PortAllocator
from bacalhau.compute.publishers.base import Publisher
from bacalhau.compute.publishers.local import LocalPublisher
from bacalhau.compute.publishers.noop import NoopPublisher
from bacalhau.compute.publishers.s3results import S3Publisher
from bacalhau.compute.runner import ExecutionRunner, RunnerConfig
from bacalhau.compute.secrets import EnvResolver
from bacalhau.compute.store import ComputeTx, ExecutionStore
from bacalhau.errors import ConfigurationError
from bacalhau.lib.links import LinkVerifier
from bacalhau.lib.metrics import NodeMetrics
from bacalhau.lib.tasks import spawn
from bacalhau.models.job import JobType
from bacalhau.models.node import ComputeNodeInfo, NodeInfo, NodeType
from bacalhau.models.state import ExecutionStateType
from bacalhau.transport import messages, subjects
from bacalhau.transport.tls import ClientTls
from bacalhau.version import build_info, goarch, goos

log = logging.getLogger(__name__)

RESTART_MESSAGE = "Failed due to node restart"


@dataclass
class ComputeConfig:
    data_dir: Path
    node_id: str
    orchestrators: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    heartbeat_interval: float = 15.0
    allocated: AllocatedCapacity = field(default_factory=AllocatedCapacity)
    local_publisher_address: str = "127.0.0.1"
    local_publisher_port: int = 6001
    log_retention: float = 3600.0
    disabled_engines: list[str] = field(default_factory=list)
    disabled_inputs: list[str] = field(default_factory=list)
    disabled_publishers: list[str] = field(default_factory=list)
    allow_listed_local_paths: list[str] = field(default_factory=list)
    env_allow_list: list[str] = field(default_factory=list)
    max_download_bytes: int = 10 * 10**9
    download_retries: int = 3
    ipfs_endpoint: str = ""
    token: str = ""
    tls: ClientTls = field(default_factory=ClientTls)
    durable: bool = True
    port_range: tuple[int, int] = DEFAULT_RANGE  # Compute.Network.PortRangeStart/End
    find_gpus: bool = True  # ask the GPU vendors' tools at start
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)


class ComputeNode:
    def __init__(self, config: ComputeConfig) -> None:
        self.config = config
        root = config.data_dir / "compute"
        try:
            ports = PortAllocator(*config.port_range)
        except ValueError as exc:
            raise ConfigurationError(f"invalid Compute.Network port range: {exc}") from None
        self.store = ExecutionStore(root / "executions.db", durable=config.durable)
        self.executors = default_executors(config.node_id, config.disabled_engines)
        self.inputs = default_inputs(
            allow_listed_paths=config.allow_listed_local_paths,
            max_download_bytes=config.max_download_bytes,
            retries=config.download_retries,
            ipfs_endpoint=config.ipfs_endpoint,
            disabled=config.disabled_inputs,
        )
        self.links = LinkVerifier()  # its key comes with each handshake: until the first, every link is refused
        self.local_publisher = LocalPublisher(
            root / "results" / "local-publisher",
            config.local_publisher_address,
            config.local_publisher_port,
            self.links,
        )
        off = {name.lower() for name in config.disabled_publishers}
        publishers: list[Publisher] = [NoopPublisher(), self.local_publisher, S3Publisher(config.node_id)]
        self.publishers = {p.name: p for p in publishers if p.name.lower() not in off}
        self._machine = machine_resources(root)  # and the GPUs, found at start
        self.maximum = allocate(self._machine, config.allocated)
        self.capacity = CapacityTracker(self.maximum)
        self.logs = LogStore(root / "executions", root / "logs", config.log_retention)
        self.runner = runner = ExecutionRunner(
            self.store,
            self.executors,
            self.inputs,
            self.publishers,
            RunnerConfig(
                root / "executions",
                self.logs,
                EnvResolver(config.env_allow_list),
                networked=not config.admission.reject_networked_jobs,
                ports=ports,
            ),
        )
        self.buffer = ExecutorBuffer(runner, self.capacity)
        self.bidder = Bidder(
            self.executors,
            self.inputs,
            self.publishers,
            self.maximum,
            EnvResolver(config.env_allow_list),
            JobAdmission(config.admission, self.inputs),
        )
        self.handler = OrchestratorMessageHandler(self.store, self.bidder, self.buffer)
        self.log_server = LogServer(lambda: self.connection.nats, self.logs, self._finished, self._known, self.links)
        self.connection = OrchestratorConnection(
            ConnectionConfig(config.orchestrators, config.heartbeat_interval, config.token, config.tls),
            self.store,
            self.node_info,
            self.heartbeat,
            self.handler.handle,
            self.links.update,
            services={subjects.logs(config.node_id): self.log_server.on_request},
        )
        self._janitor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.store.open()
        docker = self.executors.get("docker")
        if isinstance(docker, DockerExecutor):
            removed = await asyncio.to_thread(docker.remove_leftovers)
            if removed:
                log.info("removed %d containers left by an earlier run of this node", removed)
        if self.local_publisher.name in self.publishers:
            await self.local_publisher.start()
        if self.config.find_gpus:
            await self._find_gpus()
        await self._recover()
        await self.store.release_ports()  # of executions that ended while the node was down
        self.connection.start()
        self._janitor = spawn(self._prune_logs(), "prune-logs")

    async def _find_gpus(self) -> None:
        """The machine's GPUs, before any execution may hold one (their tools can take seconds: not in __init__,
        which may run on a loop that serves an orchestrator)."""
        gpus = await detect_gpus()
        if gpus:
            machine = self._machine.model_copy(update={"gpu": len(gpus), "gpus": gpus})
            self.maximum = allocate(machine, self.config.allocated)
            self.capacity.maximum = self.bidder.maximum = self.maximum

    async def stop(self) -> None:
        if self._janitor is not None:
            self._janitor.cancel()
        await self.log_server.stop()
        await self.connection.stop()
        await self.handler.stop()
        await self.buffer.stop()
        await self.local_publisher.stop()
        self.store.close()

    def register_metrics(self, metrics: NodeMetrics) -> None:
        """Export this compute node's metrics in ``metrics`` (see :mod:`bacalhau.compute.metrics`)."""
        exported = ComputeMetrics(
            metrics,
            engines=self.executors,
            sources=self.inputs,
            capacity=lambda: (self.maximum, self.capacity.used(), self.capacity.queued_total()),
            executions=lambda: (self.buffer.running_count, self.buffer.queued_count),
        )
        self.runner.metrics = exported
        self.store.db.observe_commit = exported.commit.observe

    async def debug_info(self) -> dict[str, Any]:
        """What ``/agent/debug`` shows of the compute node: its executions, capacity, link and store."""
        return {
            "Connected": self.connection.connected,
            "Running": self.buffer.running_count,
            "Queued": self.buffer.queued_count,
            "Capacity": {
                "Total": self.maximum.to_wire(),
                "Used": self.capacity.used().to_wire(),
                "Queued": self.capacity.queued_total().to_wire(),
            },
            "Stream": self.connection.stream_position(),
            "Store": await asyncio.to_thread(self.store.db.info),
        }

    def node_info(self) -> NodeInfo:
        labels = {"os_type": goos(), "os_arch": goarch(), **gpu_labels(self.maximum.gpus), **self.config.labels}
        return NodeInfo(
            node_id=self.config.node_id,
            node_type=NodeType.COMPUTE.value,
            labels=labels,
            supported_protocols=["ncl/v1"],
            compute_node_info=ComputeNodeInfo(
                execution_engines=sorted(self.executors),
                publishers=sorted(self.publishers),
                storage_sources=sorted(self.inputs),
                max_capacity=self.maximum,
                queue_used_capacity=self.capacity.queued_total(),
                available_capacity=self.capacity.available(),
                max_job_requirements=self.maximum,
                running_executions=self.buffer.running_count,
                enqueued_executions=self.buffer.queued_count,
                address=self.config.local_publisher_address,
            ),
            bacalhau_version=build_info(),
        )

    async def _known(self, execution_id: str) -> bool:
        return await self.store.get(execution_id) is not None

    async def _finished(self, execution_id: str) -> bool:
        execution = await self.store.get(execution_id)
        return execution is None or execution.is_terminal

    async def _prune_logs(self) -> None:
        interval = min(max(self.logs.retention / 10, 1.0), 60.0)
        while True:
            await asyncio.to_thread(self.logs.prune)
            await asyncio.sleep(interval)

    def heartbeat(self) -> messages.HeartbeatRequest:
        return messages.HeartbeatRequest(
            node_id=self.config.node_id,
            available_capacity=self.capacity.available(),
            queue_used_capacity=self.capacity.queued_total(),
            running_executions=self.buffer.running_count,
            enqueued_executions=self.buffer.queued_count,
        )

    async def _recover(self) -> None:
        """After a restart: batch and ops work that was running is failed (and reported); long-running work restarts."""
        for execution in await self.store.active():
            if execution.state == ExecutionStateType.NEW:
                self.handler.admit(execution)  # its bid waited for admission control when the node stopped
                continue
            if not execution.state.is_executing or execution.job is None:
                continue
            if execution.job.type in (JobType.SERVICE.value, JobType.DAEMON.value):
                self.buffer.enqueue(execution)
                continue

            def fail(tx: ComputeTx, execution_id: str = execution.id, job_id: str = execution.job_id) -> None:
                current = tx.get(execution_id)
                if current is None or not current.state.is_executing:
                    return
                current.compute_state.state_type = ExecutionStateType.FAILED
                current.compute_state.message = RESTART_MESSAGE
                tx.save(current)
                report = messages.ComputeError(
                    execution_id=execution_id, job_id=job_id, message=RESTART_MESSAGE, retryable=True
                )
                tx.report(messages.wrap(report))

            log.info("execution %s was interrupted by a restart; reporting it failed", execution.id)
            await self.store.transact(fail)
