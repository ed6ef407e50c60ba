"""An execution's folder is made only as far as it is used, and cleaned up with its output kept for ``job logs``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bacalhau.compute.executors.base import Executor, RunOutcome, RunRequest
from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.logs import LogStore
from bacalhau.compute.publishers.noop import NoopPublisher
from bacalhau.compute.runner import ExecutionRunner, RunnerConfig
from bacalhau.compute.secrets import EnvResolver
from bacalhau.compute.store import ExecutionStore
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.state import ExecutionStateType


class EchoExecutor(NoopExecutor):
    """Writes its one parameter to stdout, as an engine running a program would."""

    name = "echo"
    writes_output = True

    async def run(self, request: RunRequest) -> RunOutcome:
        (request.results_dir / "stdout").write_text(str(request.engine.params["Text"]) + "\n")
        return RunOutcome(exit_code=0)


async def run_job(tmp_path: Path, store: ExecutionStore, task: dict[str, Any]) -> Execution:
    executors: dict[str, Executor] = {"noop": NoopExecutor(), "echo": EchoExecutor()}
    logs = LogStore(tmp_path / "executions", tmp_path / "logs", 60)
    runner = ExecutionRunner(
        store, executors, {}, {"noop": NoopPublisher()}, RunnerConfig(tmp_path / "executions", logs, EnvResolver([]))
    )
    job = Job.model_validate({"ID": "j-1", "Type": "batch", "Tasks": [{"Name": "main", **task}]})
    job.normalize()
    execution = Execution(id="e-1", job_id="j-1", node_id="n-1", job=job)
    await store.transact(lambda tx: tx.insert(execution))
    await runner.run(execution)
    finished = await store.get("e-1")
    assert finished is not None
    return finished


async def test_a_noop_job_without_publisher_touches_no_files(tmp_path: Path, execution_store: ExecutionStore) -> None:
    finished = await run_job(tmp_path, execution_store, {"Engine": {"Type": "noop"}})
    assert finished.state == ExecutionStateType.COMPLETED
    assert finished.run_output is not None and finished.run_output.exit_code == 0
    assert not (tmp_path / "executions").exists()
    assert not (tmp_path / "logs").exists()


async def test_a_publisher_gets_a_results_folder_that_is_removed_afterwards(
    tmp_path: Path, execution_store: ExecutionStore
) -> None:
    task = {"Engine": {"Type": "noop"}, "Publisher": {"Type": "noop"}}
    assert (await run_job(tmp_path, execution_store, task)).state == ExecutionStateType.COMPLETED
    assert (tmp_path / "executions").is_dir()
    assert not (tmp_path / "executions" / "e-1").exists()
    assert not (tmp_path / "logs").exists(), "there was no output to keep"


async def test_output_is_kept_for_job_logs_and_the_rest_removed(
    tmp_path: Path, execution_store: ExecutionStore
) -> None:
    finished = await run_job(tmp_path, execution_store, {"Engine": {"Type": "echo", "Params": {"Text": "hi"}}})
    assert finished.state == ExecutionStateType.COMPLETED
    assert finished.run_output is not None and finished.run_output.stdout == "hi\n"
    assert not (tmp_path / "executions" / "e-1").exists()
    assert (tmp_path / "logs" / "e-1" / "stdout").read_text() == "hi\n"
    assert not (tmp_path / "logs" / "e-1" / "stderr").exists()
