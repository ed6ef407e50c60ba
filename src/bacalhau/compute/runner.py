"""One execution's life on a compute node: prepare inputs, run, collect results, publish, report.

Every step that changes the execution's state writes the state and the report owed to the orchestrator in one
transaction. A non-zero exit code is a successful run (as in the original); only problems of the engine, inputs,
timeouts or publishing fail the execution.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from bacalhau.compute.executors.base import Executor, ExecutorError, Mount, RunOutcome, RunRequest
from bacalhau.compute.inputs.base import InputError, InputProvider
from bacalhau.compute.logs import LogStore
from bacalhau.compute.metrics import CANCELLED, COMPLETED, FAILED, ComputeMetrics, folder_size
from bacalhau.compute.ports import PortAllocator, PortError, port_env, wants_ports
from bacalhau.compute.publishers.base import Publisher, PublishError
from bacalhau.compute.secrets import EnvResolver
from bacalhau.compute.store import ComputeTx, ExecutionStore
from bacalhau.compute.workspace import Workspace
from bacalhau.lib import tracing
from bacalhau.lib.paths import child
from bacalhau.models.execution import Execution, RunCommandResult
from bacalhau.models.history import Event
from bacalhau.models.job import Job
from bacalhau.models.resources import GPU
from bacalhau.models.spec import (
    EXIT_CODE_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    Network,
    NetworkConfig,
    Port,
    SpecConfig,
    go_duration,
)
from bacalhau.models.state import ExecutionStateType
from bacalhau.transport import messages

log = logging.getLogger(__name__)

SUMMARY_LIMIT = 2048  # bytes of stdout/stderr returned in RunOutput, as the original
TOPIC_INPUTS = "Downloading Inputs"
TOPIC_RUNNING = "Running Execution"
TOPIC_PUBLISHING = "Publishing Results"
TOPIC_PREPARING = "Preparing Environment"
TIMEOUT_HINT = "Increase the task timeout or allocate more resources"


class ExecutionGone(Exception):
    """The execution was stopped or ended while this step ran; there is nothing left to do."""


class ExecutionFailed(Exception):
    """A failed execution. ``retryable`` says whether running it again (elsewhere) could help: a broken download
    may, a program that exceeds its timeout will not."""

    def __init__(
        self,
        message: str,
        topic: str,
        hint: str = "",
        run_output: RunCommandResult | None = None,
        *,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.topic = topic
        self.hint = hint
        self.run_output = run_output
        self.retryable = retryable


@dataclass
class RunnerConfig:
    executions_dir: Path
    logs: LogStore
    env: EnvResolver
    ports: PortAllocator = field(default_factory=PortAllocator)
    networked: bool = True  # False (JobAdmissionControl.RejectNetworkedJobs): a Default network means none


def system_env(execution: Execution, job: Job) -> dict[str, str]:
    return {
        "BACALHAU_EXECUTION_ID": execution.id,
        "BACALHAU_JOB_ID": job.id,
        "BACALHAU_JOB_TYPE": job.type,
        "BACALHAU_PARTITION_INDEX": str(execution.partition_index),
        "BACALHAU_PARTITION_COUNT": str(job.desired_count),
        **port_env(execution.allocated_ports),
    }


def no_default_network(network: NetworkConfig) -> NetworkConfig:
    """On a node that takes no networked jobs, a task that leaves its network to the node gets none (as the
    original)."""
    return NetworkConfig(type=Network.NONE) if network.type == Network.DEFAULT else network


def span_attributes(execution: Execution) -> dict[str, str | int | bool]:
    """What the spans of an execution's bid and run say of it."""
    job = execution.job
    return {
        tracing.JOB_ID: execution.job_id,
        tracing.EXECUTION_ID: execution.id,
        tracing.NODE_ID: execution.node_id,
        tracing.JOB_TYPE: job.type if job is not None else "",
        tracing.ENGINE: job.task.engine_spec.type if job is not None and job.tasks else "",
    }


def held_gpus(execution: Execution) -> list[GPU]:
    """The node's GPUs the executor buffer gave the execution."""
    assert execution.job is not None
    held = execution.allocated_resources.tasks.get(execution.job.task.name)
    return list(held.gpus) if held is not None else []


def summarize(path: Path) -> tuple[str, bool]:
    """The first 2 KiB of an output file, and whether there was more."""
    if not path.exists():
        return "", False
    with path.open("rb") as handle:
        head = handle.read(SUMMARY_LIMIT + 1)
    return head[:SUMMARY_LIMIT].decode(errors="replace"), len(head) > SUMMARY_LIMIT


def collect_output(results_dir: Path, outcome: RunOutcome) -> RunCommandResult:
    """Write ``exitCode`` beside ``stdout`` and ``stderr`` and build the RunOutput summary."""
    (results_dir / EXIT_CODE_FILE).write_text(str(outcome.exit_code)[:4])
    stdout, stdout_truncated = summarize(results_dir / STDOUT_FILE)
    stderr, stderr_truncated = summarize(results_dir / STDERR_FILE)
    return RunCommandResult(
        stdout=stdout,
        stdout_truncated=stdout_truncated,
        stderr=stderr,
        stderr_truncated=stderr_truncated,
        exit_code=outcome.exit_code,
        error_msg=outcome.error,
    )


async def _collect(results_dir: Path | None, outcome: RunOutcome) -> RunCommandResult:
    """The RunOutput summary; with no results folder, there is no output to summarise."""
    if results_dir is None:
        return RunCommandResult(exit_code=outcome.exit_code, error_msg=outcome.error)
    return await asyncio.to_thread(collect_output, results_dir, outcome)


class ExecutionRunner:
    def __init__(
        self,
        store: ExecutionStore,
        executors: dict[str, Executor],
        inputs: dict[str, InputProvider],
        publishers: dict[str, Publisher],
        config: RunnerConfig,
    ) -> None:
        self._store = store
        self._executors = executors
        self._inputs = inputs
        self._publishers = publishers
        self._config = config
        self.metrics: ComputeMetrics | None = None  # set when the node exports metrics

    async def run(self, execution: Execution) -> None:
        if not tracing.ENABLED:
            await self._run(execution)
            return
        # In the job's trace, under the decision that started it (handed over by the message's handler).
        run = self._run(execution)
        await tracing.traced("execution.run", run, tracing.take_over(execution.id), **span_attributes(execution))

    async def _run(self, execution: Execution) -> None:
        job = execution.job
        assert job is not None
        workspace = Workspace(child(self._config.executions_dir, execution.id))
        outcome = CANCELLED
        try:
            await self._set_state(execution, ExecutionStateType.RUNNING)
            run_output, published = await self._execute(execution, job, workspace)
            await self._complete(execution, run_output, published)
            outcome = COMPLETED
        except ExecutionGone:
            log.debug("execution %s ended while it ran", execution.id)
        except asyncio.CancelledError:
            await asyncio.shield(self._cancelled(execution))
            raise
        except ExecutionFailed as failure:
            outcome = FAILED
            await self._fail(execution, failure)
        except Exception as exc:
            outcome = FAILED
            log.exception("execution %s failed unexpectedly", execution.id)
            await self._fail(execution, ExecutionFailed(f"internal error: {exc}", TOPIC_RUNNING, retryable=True))
        finally:
            if wants_ports(execution):  # the engine has stopped: its ports are free again
                await self._store.release_ports(execution.id)
                self._config.ports.release(execution.id)
            if self.metrics is not None:
                self.metrics.ended(job.task.engine_spec.type, outcome)
            await workspace.clean_up(execution.id, self._config.logs)

    async def _execute(
        self, execution: Execution, job: Job, workspace: Workspace
    ) -> tuple[RunCommandResult, SpecConfig]:
        task = job.task
        executor = self._executors.get(task.engine_spec.type)
        if executor is None:
            raise ExecutionFailed(f"engine {task.engine_spec.type} is not supported by this node", TOPIC_RUNNING)
        publisher_spec = task.publisher_spec
        results_dir = await workspace.make_results() if executor.writes_output or publisher_spec.type else None
        mounts = await tracing.traced("execution.inputs", self._prepare_inputs(job, workspace))
        resources, _ = task.resources_config.parse()
        resources.gpus = held_gpus(execution)
        try:
            task_env = self._config.env.resolve(task.env)
        except ValueError as exc:
            raise ExecutionFailed(str(exc), TOPIC_PREPARING) from None
        await self._allocate_ports(execution)
        request = RunRequest(
            execution_id=execution.id,
            job_id=job.id,
            engine=task.engine_spec,
            results_dir=workspace.results,
            work_dir=workspace.work,
            inputs=mounts,
            outputs=list(task.result_paths),
            env={**task_env, **system_env(execution, job)},
            resources=resources,
            network=(
                task.network_config if self._config.networked else no_default_network(task.network_config)
            ).model_copy(update={"ports": execution.allocated_ports}),
        )
        try:
            await executor.prepare(request, lambda event: self._report_events(execution, event))
        except ExecutorError as exc:
            raise ExecutionFailed(str(exc), TOPIC_PREPARING) from None
        timeout = 0 if job.is_long_running else task.timeouts_config.effective_execution_timeout()
        try:
            running = tracing.traced("execution.engine", executor.run(request), engine=task.engine_spec.type)
            if timeout > 0:
                outcome = await asyncio.wait_for(running, timeout)
            else:
                outcome = await running
        except TimeoutError:
            output = await _collect(results_dir, RunOutcome(exit_code=-1))
            raise ExecutionFailed(
                f"execution timed out after {go_duration(timeout)}", TOPIC_RUNNING, TIMEOUT_HINT, output
            ) from None
        except ExecutorError as exc:
            raise ExecutionFailed(str(exc), TOPIC_RUNNING) from None
        run_output = await _collect(results_dir, outcome)
        if outcome.error:
            raise ExecutionFailed(outcome.error, TOPIC_RUNNING, run_output=run_output)
        published = SpecConfig()
        if publisher_spec.type:
            publisher = self._publishers.get(publisher_spec.type)
            if publisher is None:
                raise ExecutionFailed(
                    f"publisher {publisher_spec.type} is not supported by this node", TOPIC_PUBLISHING
                )
            await self._set_state(execution, ExecutionStateType.PUBLISHING)
            try:
                publishing = publisher.publish(execution.id, job.id, workspace.results, publisher_spec)
                published = await tracing.traced(
                    "execution.publish", publishing, **{"bacalhau.publisher": publisher_spec.type}
                )
            except PublishError as exc:
                raise ExecutionFailed(str(exc), TOPIC_PUBLISHING, run_output=run_output, retryable=True) from None
        return run_output, published

    async def _prepare_inputs(self, job: Job, workspace: Workspace) -> list[Mount]:
        async def prepare(index: int) -> Mount:
            source = job.task.input_sources[index]
            kind = source.source.type if source.source else ""
            provider = self._inputs.get(kind)
            name = source.alias or source.target
            if provider is None:
                raise ExecutionFailed(
                    f"input {name}: source type {kind} is not supported", TOPIC_INPUTS, retryable=True
                )
            dest = await workspace.make_input(index)
            try:
                mount = await provider.prepare(source, dest)
            except InputError as exc:
                raise ExecutionFailed(
                    f"failed to prepare input {name} ({kind}): {exc}", TOPIC_INPUTS, retryable=exc.retryable
                ) from None
            if self.metrics is not None:  # what the source fetched into the folder (a local path is mounted: 0)
                self.metrics.downloaded(kind, await asyncio.to_thread(folder_size, dest))
            return mount

        return list(await asyncio.gather(*(prepare(i) for i in range(len(job.task.input_sources)))))

    # ---- state changes, each with its report
    async def _set_state(self, execution: Execution, state: ExecutionStateType) -> None:
        def change(tx: ComputeTx) -> None:
            current = tx.get(execution.id)
            if current is None or current.is_terminal:
                raise ExecutionGone(execution.id)
            current.compute_state.state_type = state
            current.compute_state.message = ""
            current.allocated_resources = execution.allocated_resources  # with the GPUs it holds
            tx.save(current)
            progress = messages.ExecutionProgress(execution_id=execution.id, job_id=execution.job_id, state=state)
            if execution.job is not None and held_gpus(execution):
                progress.allocated = execution.allocated_resources.tasks[execution.job.task.name]
            tx.report(messages.wrap(progress))

        await self._store.transact(change)

    async def _allocate_ports(self, execution: Execution) -> None:
        """Give the task its host ports, recorded on the execution (and reported) in the transaction that holds them."""
        if not wants_ports(execution):
            return

        def change(tx: ComputeTx) -> list[Port]:
            current = tx.get(execution.id)
            if current is None or current.is_terminal:
                raise ExecutionGone(execution.id)
            ports = self._config.ports.allocate(tx, current)
            current.allocate_ports(ports)
            tx.save(current)
            progress = messages.ExecutionProgress(
                execution_id=execution.id, job_id=execution.job_id, state=current.state, ports=ports
            )
            tx.report(messages.wrap(progress))
            return ports

        try:
            execution.allocate_ports(await self._store.transact(change))
        except PortError as exc:
            raise ExecutionFailed(f"allocating ports: {exc}", TOPIC_PREPARING, retryable=True) from None

    async def _report_events(self, execution: Execution, *events: Event) -> None:
        """Progress worth showing in the job's history (e.g. an image pull), without a state change."""
        report = messages.ExecutionProgress(
            execution_id=execution.id, job_id=execution.job_id, state=ExecutionStateType.RUNNING, events=list(events)
        )
        await self._store.transact(lambda tx: tx.report(messages.wrap(report)))

    async def _complete(self, execution: Execution, run_output: RunCommandResult, published: SpecConfig) -> None:
        tracing.current().set(**{"bacalhau.exit_code": run_output.exit_code})

        def change(tx: ComputeTx) -> None:
            current = tx.get(execution.id)
            if current is None or current.is_terminal:
                return
            current.compute_state.state_type = ExecutionStateType.COMPLETED
            current.run_output = run_output
            current.published_result = published
            tx.save(current)
            tx.report(
                messages.wrap(
                    messages.RunResult(
                        execution_id=execution.id,
                        job_id=execution.job_id,
                        published_result=published,
                        run_output=run_output,
                    )
                )
            )

        await self._store.transact(change)

    async def _fail(self, execution: Execution, failure: ExecutionFailed) -> None:
        event = Event.error(
            failure.topic, failure.message, hint=failure.hint, fails_execution=True, retryable=failure.retryable
        )

        def change(tx: ComputeTx) -> None:
            current = tx.get(execution.id)
            if current is None or current.is_terminal:
                return
            current.compute_state.state_type = ExecutionStateType.FAILED
            current.compute_state.message = failure.message
            if failure.run_output is not None:
                current.run_output = failure.run_output
            tx.save(current)
            tx.report(
                messages.wrap(
                    messages.ComputeError(
                        execution_id=execution.id,
                        job_id=execution.job_id,
                        message=failure.message,
                        retryable=failure.retryable,
                        events=[event],
                        run_output=failure.run_output,
                    )
                )
            )

        log.info("execution %s failed: %s", execution.id, failure.message)
        tracing.current().fail(failure.message)
        await self._store.transact(change)

    async def _cancelled(self, execution: Execution) -> None:
        def change(tx: ComputeTx) -> None:
            current = tx.get(execution.id)
            if current is None or current.is_terminal:
                return
            current.compute_state.state_type = ExecutionStateType.CANCELLED
            tx.save(current)

        await self._store.transact(change)
