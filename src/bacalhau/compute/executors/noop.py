"""The noop engine: succeeds at once and prints nothing (used for tests and benchmarks)."""

from __future__ import annotations

from bacalhau.compute.executors.base import Reporter, RunOutcome, RunRequest
from bacalhau.models.plugins import EngineType
from bacalhau.models.spec import NetworkConfig, SpecConfig


class NoopExecutor:
    name = EngineType.NOOP.value
    writes_output = False
    supports_gpus = True  # it runs nothing: a GPU it holds is simply not used

    def is_installed(self) -> bool:
        return True

    def validate(self, engine: SpecConfig, network: NetworkConfig) -> list[str]:
        return []

    async def prepare(self, request: RunRequest, report: Reporter) -> None:
        return

    async def run(self, request: RunRequest) -> RunOutcome:
        return RunOutcome(exit_code=0)
