"""The request and response envelopes of the API, for the OpenAPI document (handlers build the same shapes)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from bacalhau.models.base import OMIT_EMPTY, WireModel
from bacalhau.models.execution import Execution
from bacalhau.models.history import JobHistory
from bacalhau.models.job import Job
from bacalhau.models.node import BuildVersionInfo, ComputeNodeInfo, NodeState
from bacalhau.models.spec import SpecConfig


class ApiError(WireModel):
    """Every error: the HTTP status, a message, the request's X-Request-Id, an error code and the component."""

    status: int
    message: str
    request_id: str = Field(alias="RequestID")
    code: str
    component: str
    hint: Annotated[str, OMIT_EMPTY] = ""
    details: Annotated[dict[str, str], OMIT_EMPTY] = Field(default_factory=dict)


class PutJobRequest(WireModel):
    job: Job
    force: bool = False


class PutJobResponse(WireModel):
    job_id: str
    evaluation_id: str
    warnings: list[str] | None = None


class DiffJobRequest(WireModel):
    job: Job


class DiffJobResponse(WireModel):
    diff: str
    warnings: list[str] | None = None


class RerunJobRequest(WireModel):
    job_version: int = 0
    reason: str = ""


class RerunJobResponse(WireModel):
    evaluation_id: str
    job_id: str
    job_version: int
    warnings: list[str] | None = None


class VersionsPage(WireModel):
    next_token: str = ""
    items: list[Job] = Field(default_factory=list)


class ListJobsResponse(WireModel):
    next_token: str = ""
    items: list[Job] = Field(default_factory=list)


class HistoryPage(WireModel):
    next_token: str = ""
    items: list[JobHistory] = Field(default_factory=list)


class ExecutionsPage(WireModel):
    next_token: str = ""
    items: list[Execution] = Field(default_factory=list)


class ResultsPage(WireModel):
    next_token: str = ""
    items: list[SpecConfig] = Field(default_factory=list)


class GetJobResponse(WireModel):
    job: Job
    history: HistoryPage | None = None
    executions: ExecutionsPage | None = None


class StopJobRequest(WireModel):
    reason: str = Field(default="", alias="reason")


class StopJobResponse(WireModel):
    evaluation_id: str


class ListNodesResponse(WireModel):
    next_token: str = ""
    nodes_: list[NodeState] = Field(default_factory=list, alias="Nodes")
    nodes_lower: list[NodeState] = Field(default_factory=list, alias="nodes")


class GetNodeResponse(WireModel):
    node: NodeState = Field(alias="Node")
    node_lower: NodeState = Field(alias="node")


class NodeActionRequest(WireModel):
    action: str = Field(description="approve, reject or delete")
    message: str = ""
    node_id: str = Field(default="", alias="NodeID")


class NodeActionResponse(WireModel):
    success: bool = Field(alias="Success")
    success_lower: bool = Field(alias="success")


class AliveResponse(WireModel):
    status: str = "OK"


class AgentNodeResponse(NodeState):
    """This node's NodeInfo at the top level (v1.6+ and the Python client) plus NodeState (v1.5 Go clients)."""

    node_id: str = ""
    node_type: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    supported_protocols: list[str] = Field(default_factory=list)
    compute_node_info: Annotated[ComputeNodeInfo | None, OMIT_EMPTY] = None
    bacalhau_version: BuildVersionInfo = Field(default_factory=BuildVersionInfo)


class AgentConfigResponse(WireModel):
    config: dict[str, Any] = Field(alias="config")


class AuthConfigResponse(WireModel):
    """The node's SSO settings (API.Auth.Oauth2, each left out when empty): ``Config`` is empty without SSO."""

    version: str
    config: dict[str, str | int | list[str]]


class LegacyVersionRequest(WireModel):
    client_id: str = Field(default="", alias="client_id")


class LegacyVersionResponse(WireModel):
    build_version_info: BuildVersionInfo = Field(alias="build_version_info")


class JobsPerInterval(WireModel):
    """How many jobs ended in each interval before ``Now``, oldest first."""

    now: int = Field(description="Unix nanoseconds: the end of the last interval")
    interval_seconds: int
    completed: list[int]
    failed: list[int]


class UiSummaryResponse(WireModel):
    """The web UI's dashboard: every job counted by state, and those that ended in each minute of the last hour."""

    jobs_by_state: dict[str, int]
    total_jobs: int
    ended: JobsPerInterval


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ApiError, "description": "Bad request: malformed input or a failed validation"},
    404: {"model": ApiError, "description": "Not found"},
    409: {"model": ApiError, "description": "Conflict: an ID prefix that matches several, a taken ID, a node's state"},
    500: {"model": ApiError, "description": "Internal error"},
}


def query(*parameters: tuple[str, str, str]) -> dict[str, Any]:
    """OpenAPI query parameters: (name, JSON type, description). Handlers read them case-insensitively."""
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": kind}, "description": text}
            for name, kind, text in parameters
        ]
    }


def body(model: type[WireModel], *, required: bool = True) -> dict[str, Any]:
    """An OpenAPI request body (the handler parses it itself, with the original's rules)."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


REQUEST_MODELS: tuple[type[WireModel], ...] = (PutJobRequest, StopJobRequest, NodeActionRequest, LegacyVersionRequest)
