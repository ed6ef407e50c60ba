"""What every publisher implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bacalhau.models.spec import SpecConfig


class PublishError(Exception):
    pass


class Publisher(Protocol):
    name: str

    def is_installed(self) -> bool: ...

    async def publish(self, execution_id: str, job_id: str, results_dir: Path, spec: SpecConfig) -> SpecConfig:
        """Make the results available and return where they are (a spec a downloader understands)."""
        ...
