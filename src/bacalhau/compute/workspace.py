"""An execution's folder on a compute node, made only as far as the execution uses it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from bacalhau.compute.logs import LogStore


class Workspace:
    """``<executions>/<id>/``: ``results/`` (the output files, and what a publisher reads), ``inputs/<n>/`` (prepared
    inputs) and ``work/`` (an engine's scratch space, which it makes itself).

    Folders are made on first use, in a thread: a job that needs none (the noop engine with no publisher) costs no
    file-system work at all, which is most of what such a job costs a node.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.results = root / "results"
        self.work = root / "work"
        self.used = False

    async def make_results(self) -> Path:
        return await self._make(self.results)

    async def make_input(self, index: int) -> Path:
        return await self._make(self.root / "inputs" / str(index))

    async def _make(self, folder: Path) -> Path:
        self.used = True  # before the await: a cancelled mkdir may still have made the folder
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        return folder

    async def clean_up(self, execution_id: str, logs: LogStore) -> None:
        """Keep the output files for ``job logs``, drop everything else."""
        if self.used:
            await asyncio.to_thread(self._clean_up, execution_id, logs)

    def _clean_up(self, execution_id: str, logs: LogStore) -> None:
        logs.keep(execution_id, self.results)
        shutil.rmtree(self.root, ignore_errors=True)
