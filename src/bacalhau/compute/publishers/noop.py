"""The noop publisher: results stay on the node only while it keeps them."""

from __future__ import annotations

from pathlib import Path

from bacalhau.models.plugins import PublisherType
from bacalhau.models.spec import SpecConfig


class NoopPublisher:
    name = PublisherType.NOOP.value

    def is_installed(self) -> bool:
        return True

    async def publish(self, execution_id: str, job_id: str, results_dir: Path, spec: SpecConfig) -> SpecConfig:
        return SpecConfig()
