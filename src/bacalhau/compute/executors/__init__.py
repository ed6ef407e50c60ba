"""Execution engines, by the type name used in job specs."""

from __future__ import annotations

from collections.abc import Iterable

from bacalhau.compute.executors.base import Executor
from bacalhau.compute.executors.docker import DockerExecutor
from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.executors.wasm import WasmExecutor


def default_executors(node_id: str, disabled: Iterable[str] = ()) -> dict[str, Executor]:
    """The engines this node offers: every installed one that the configuration does not disable."""
    off = {name.lower() for name in disabled}
    candidates: list[Executor] = [NoopExecutor(), WasmExecutor(), DockerExecutor(node_id)]
    return {e.name: e for e in candidates if e.name not in off and e.is_installed()}
