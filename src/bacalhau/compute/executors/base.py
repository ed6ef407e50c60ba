"""What every executor (engine) implements, and the request it receives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bacalhau.models.history import Event
from bacalhau.models.resources import Resources
from bacalhau.models.spec import (
    RESULT_NAME_RULE,
    STDERR_FILE,
    STDOUT_FILE,
    NetworkConfig,
    ResultPath,
    SpecConfig,
    is_result_name,
)

Reporter = Callable[[Event], Awaitable[None]]


class ExecutorError(Exception):
    """The engine could not run the execution (as opposed to the program failing): the execution fails."""


@dataclass
class Mount:
    """A prepared input: where it is on this host and where the job sees it."""

    source: Path
    target: str
    read_write: bool = False

    @property
    def is_dir(self) -> bool:
        return self.source.is_dir()


@dataclass
class RunOutcome:
    """How the program ended. A non-zero exit code is not a failure; ``error`` (an engine-level problem) is."""

    exit_code: int
    error: str = ""


@dataclass
class RunRequest:
    execution_id: str
    job_id: str
    engine: SpecConfig
    results_dir: Path
    work_dir: Path  # scratch space of the execution's own; not created until an executor needs it
    inputs: list[Mount] = field(default_factory=list)
    outputs: list[ResultPath] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    network: NetworkConfig = field(default_factory=NetworkConfig)

    @property
    def stdout_file(self) -> Path:
        return self.results_dir / STDOUT_FILE

    @property
    def stderr_file(self) -> Path:
        return self.results_dir / STDERR_FILE

    def output_dir(self, result: ResultPath) -> Path:
        """A result path's folder, directly inside the results. The name is checked here too, not only at submission:
        whoever sent the run request, no name may lead an engine to mount anything outside the execution's folder."""
        if not is_result_name(result.name):
            raise ExecutorError(f"result name {result.name!r} {RESULT_NAME_RULE}")
        return self.results_dir / result.name


class Executor(Protocol):
    """Runs one execution to its end. Cancelling the awaiting task must stop the run and free what it holds.

    ``run`` writes the program's output to the files ``stdout`` and ``stderr`` in ``request.results_dir`` (and the
    result paths under it; a file not written counts as empty) and returns how the program ended; problems of the
    engine itself raise :class:`ExecutorError`.
    """

    name: str
    writes_output: bool
    """Whether ``run`` writes files (its output, scratch space under ``request.work_dir``): if not, and no publisher
    reads the results, the execution gets no folder at all."""

    def is_installed(self) -> bool: ...

    def validate(self, engine: SpecConfig, network: NetworkConfig) -> list[str]:
        """Why this engine cannot run a task with these parameters and network (empty when it can): a bid is
        refused for each reason, rather than the task running in a way other than it asked."""
        ...

    async def prepare(self, request: RunRequest, report: Reporter) -> None:
        """Get ready before the execution's timeout starts (e.g. pull an image); ``report`` records progress."""
        ...

    async def run(self, request: RunRequest) -> RunOutcome: ...
