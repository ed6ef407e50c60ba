"""What the API needs from the node it runs on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bacalhau.api.auth import Authorizer
from bacalhau.lib.metrics import NodeMetrics
from bacalhau.models.node import NodeInfo, NodeState
from bacalhau.orchestrator.jobs import JobService
from bacalhau.orchestrator.logs import LogProxy
from bacalhau.orchestrator.nodes import NodeManager


@dataclass
class ApiContext:
    node_info: Callable[[], NodeInfo]
    node_state: Callable[[], NodeState]
    config: Callable[[], dict[str, Any]] = field(default=dict)
    jobs: JobService | None = None
    nodes: NodeManager | None = None
    logs: LogProxy | None = None
    authorizer: Authorizer | None = None  # None: no users configured, the API is open
    oauth2: dict[str, Any] = field(default_factory=dict)  # the SSO settings offered to clients (API.Auth.Oauth2)
    metrics: NodeMetrics | None = None  # served at /metrics, with the API's request latency
    debug: Callable[[], Awaitable[dict[str, Any]]] | None = None  # what /agent/debug shows
