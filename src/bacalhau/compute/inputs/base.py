"""What every input source implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bacalhau.compute.executors.base import Mount
from bacalhau.models.spec import InputSource


class InputError(Exception):
    """An input could not be fetched or prepared; the message names the input and says why."""


class InputProvider(Protocol):
    name: str

    def is_installed(self) -> bool: ...

    async def prepare(self, source: InputSource, dest: Path) -> Mount:
        """Materialise ``source`` under the empty directory ``dest`` and say where the job sees it."""
        ...
