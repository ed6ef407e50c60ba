"""Nodes as the orchestrator sees them: identity, capabilities, capacity, membership and connection."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from bacalhau.models.base import OMIT_EMPTY, WireModel
from bacalhau.models.resources import Resources
from bacalhau.models.timefmt import Timestamp


class NodeType(StrEnum):
    REQUESTER = "Requester"
    COMPUTE = "Compute"


class Membership(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class Connection(StrEnum):
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


class BuildVersionInfo(WireModel):
    major: Annotated[str, OMIT_EMPTY] = ""
    minor: Annotated[str, OMIT_EMPTY] = ""
    git_version: str = ""
    git_commit: str = ""
    build_date: Timestamp = 0
    goos: str = Field(default="", alias="GOOS")
    goarch: str = Field(default="", alias="GOARCH")


class ComputeNodeInfo(WireModel):
    execution_engines: list[str] = Field(default_factory=list)
    publishers: list[str] = Field(default_factory=list)
    storage_sources: list[str] = Field(default_factory=list)
    max_capacity: Resources = Field(default_factory=Resources)
    queue_used_capacity: Resources = Field(default_factory=Resources, alias="QueueCapacity")
    available_capacity: Resources = Field(default_factory=Resources)
    max_job_requirements: Resources = Field(default_factory=Resources)
    running_executions: int = 0
    enqueued_executions: int = 0
    address: Annotated[str, OMIT_EMPTY] = Field(default="", alias="address")


class NodeInfo(WireModel):
    node_id: str = ""
    node_type: str = NodeType.REQUESTER.value
    labels: dict[str, str] = Field(default_factory=dict)
    supported_protocols: list[str] = Field(default_factory=list)
    compute_node_info: Annotated[ComputeNodeInfo | None, OMIT_EMPTY] = None
    bacalhau_version: BuildVersionInfo = Field(default_factory=BuildVersionInfo)

    @property
    def is_compute(self) -> bool:
        return self.node_type == NodeType.COMPUTE.value and self.compute_node_info is not None


class ConnectionState(WireModel):
    status: str = Connection.DISCONNECTED.value
    last_heartbeat: Timestamp = 0
    last_compute_seq_num: Annotated[int, OMIT_EMPTY] = 0
    last_orchestrator_seq_num: Annotated[int, OMIT_EMPTY] = 0
    connected_since: Timestamp = 0
    disconnected_since: Timestamp = 0
    last_error: Annotated[str, OMIT_EMPTY] = ""


class NodeState(WireModel):
    info: NodeInfo = Field(default_factory=NodeInfo)
    membership: str = Membership.PENDING.value
    connection: str = Connection.DISCONNECTED.value
    connection_state: ConnectionState = Field(default_factory=ConnectionState)

    @property
    def is_schedulable(self) -> bool:
        return (
            self.info.is_compute
            and self.membership == Membership.APPROVED.value
            and self.connection == Connection.CONNECTED.value
        )
