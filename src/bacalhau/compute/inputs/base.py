"""What every input source implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bacalhau.compute.executors.base import Mount
from bacalhau.models.spec import InputSource


class InputError(Exception):
    """An input could not be fetched or prepared; the message names the input and says why.

    ``retryable`` is false when no other attempt or node could do better (bad params, a 404, a checksum mismatch),
    so the job fails at once instead of repeating the same failure.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class InputProvider(Protocol):
    name: str

    def is_installed(self) -> bool: ...

    async def prepare(self, source: InputSource, dest: Path) -> Mount:
        """Materialise ``source`` under the empty directory ``dest`` and say where the job sees it."""
        ...
