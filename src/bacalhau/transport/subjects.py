"""NATS subjects, one family per compute node (as the original's NCL protocol lays them out)."""

from __future__ import annotations

PREFIX = "bacalhau.global.compute"


def control(node_id: str) -> str:
    """Compute -> orchestrator requests: handshake, heartbeat, node info, shutdown."""
    return f"{PREFIX}.{node_id}.out.ctrl"


def to_compute(node_id: str) -> str:
    """Orchestrator -> compute message stream."""
    return f"{PREFIX}.{node_id}.in.msgs"


def to_orchestrator(node_id: str) -> str:
    """Compute -> orchestrator message stream."""
    return f"{PREFIX}.{node_id}.out.msgs"


def logs(node_id: str) -> str:
    """Orchestrator -> compute log stream requests."""
    return f"{PREFIX}.{node_id}.logs"


CONTROL_ALL = f"{PREFIX}.*.out.ctrl"
TO_ORCHESTRATOR_ALL = f"{PREFIX}.*.out.msgs"


def node_of(subject: str) -> str:
    """The node ID embedded in one of the subjects above."""
    parts = subject.split(".")
    return parts[3] if len(parts) > 3 else ""
