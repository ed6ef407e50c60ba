"""Executions: one attempt to run a job's task on one compute node."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from bacalhau.models.base import OMIT_EMPTY, WireModel
from bacalhau.models.job import Job
from bacalhau.models.limits import MAX_PORTS
from bacalhau.models.resources import Resources
from bacalhau.models.spec import Port, SpecConfig
from bacalhau.models.state import (
    ExecutionDesiredState,
    ExecutionDesiredStateType,
    ExecutionState,
    ExecutionStateType,
)


class RunCommandResult(WireModel):
    """What a run printed and returned; note the lower-case ``stderr`` key, as in the original."""

    stdout: str = ""
    stdout_truncated: bool = False
    stderr: str = Field(default="", alias="stderr")
    stderr_truncated: bool = False
    exit_code: int = 0
    error_msg: str = ""


class AllocatedResources(WireModel):
    tasks: dict[str, Resources] = Field(default_factory=dict)


class Execution(WireModel):
    id: str = ""
    namespace: str = ""
    eval_id: str = ""
    name: str = ""
    node_id: str = ""
    job_id: str = ""
    job: Annotated[Job | None, OMIT_EMPTY] = None
    job_version: int = 0
    allocated_resources: AllocatedResources = Field(default_factory=AllocatedResources)
    # Ours: the host ports the compute node gave the task (the original keeps them only in the compute node's copy
    # of the execution's job, Job.Tasks[0].Network.Ports, which the orchestrator never sees).
    allocated_ports: Annotated[list[Port], OMIT_EMPTY, Field(max_length=MAX_PORTS)] = Field(default_factory=list)
    desired_state: ExecutionDesiredState = Field(default_factory=ExecutionDesiredState)
    compute_state: ExecutionState = Field(default_factory=ExecutionState)
    published_result: SpecConfig = Field(default_factory=SpecConfig)
    run_output: RunCommandResult | None = None
    previous_execution: str = ""
    next_execution: str = ""
    followup_eval_id: str = Field(default="", alias="FollowupEvalID")
    partition_index: Annotated[int, OMIT_EMPTY] = 0
    revision: int = 0
    create_time: int = 0
    modify_time: int = 0

    def allocate_ports(self, ports: list[Port]) -> None:
        """Record the ports given to the task, here and (as the original) in the task's network of its job."""
        self.allocated_ports = [port.model_copy() for port in ports]
        if self.job is not None and self.job.tasks:
            self.job.task.network_config.ports = [port.model_copy() for port in ports]

    @property
    def state(self) -> ExecutionStateType:
        return self.compute_state.state_type

    @property
    def desired(self) -> ExecutionDesiredStateType:
        return self.desired_state.state_type

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal
