"""An orchestrator and compute node running in this process (on a thread of their own), for fuzzing the submission
pipeline at the rate of thousands of requests, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacalhau.config import load_config
from bacalhau.node import Node

START_TIMEOUT = 30.0


class InProcessNode:
    def __init__(self, data_dir: Path) -> None:
        config = load_config(
            data_dir=str(data_dir),
            environ={},
            overrides=[
                "Orchestrator.Enabled=true",
                "Compute.Enabled=true",
                "API.Host=127.0.0.1",
                "API.Port=0",
                "Orchestrator.Host=127.0.0.1",
                "Orchestrator.Port=0",
                "Publishers.Types.Local.Port=0",
                # nothing a fuzzed job asks for may wait on the network or an image pull
                "Engines.Disabled=docker",
                "InputSources.Disabled=urlDownload,s3,ipfs",
            ],
        )
        self.node = Node(config, name="fuzz")
        self.database = data_dir / "orchestrator" / "jobs.db"
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-node", daemon=True)

    @property
    def url(self) -> str:
        assert self.node.api is not None
        return f"http://127.0.0.1:{self.node.api.port}"

    def start(self) -> InProcessNode:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._failure is not None:
            raise AssertionError(f"the in-process node did not start: {self._failure!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT)

    def count(self, table: str) -> int:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            await self.node.start()
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            raise
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.node.stop()


@pytest.fixture(scope="module")
def fuzz_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    node = InProcessNode(tmp_path_factory.mktemp("fuzz") / "node").start()
    yield node
    node.stop()
