"""Execution engines, by the type name used in job specs."""

from __future__ import annotations

from bacalhau.compute.executors.base import Executor
from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.executors.wasm import WasmExecutor


def default_executors() -> dict[str, Executor]:
    executors: list[Executor] = [NoopExecutor(), WasmExecutor()]
    return {e.name: e for e in executors if e.is_installed()}
