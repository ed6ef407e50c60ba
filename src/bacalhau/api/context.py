"""What the API needs from the node it runs on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
