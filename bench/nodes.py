"""Real node processes for benchmarks: an orchestrator, compute nodes, or a hybrid, on free ports."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

START_TIMEOUT = 60.0
LAUNCH_WAVE = 10


class NodeProcess:
    def __init__(self, data_dir: Path, *args: str, config: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.args = args
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started_at = 0.0
        self.ready_after = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> NodeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "bacalhau.run").unlink(missing_ok=True)
        command = [sys.executable, "-m", "bacalhau", "-c", "API.Port=0", "-c", "Publishers.Types.Local.Port=0"]
        for item in self.config:
            command += ["-c", item]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
        env["BACALHAU_DIR"] = str(self.data_dir)
        log = (self.data_dir.parent / f"{self.data_dir.name}.log").open("ab")
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(
            [*command, "serve", *self.args], env=env, stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        return self

    def wait_ready(self) -> NodeProcess:
        run_file = self.data_dir / "bacalhau.run"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited with {self.process.returncode}; see {self.data_dir}.log")
            if run_file.exists() and "API_PORT" in run_file.read_text():
                self.port = int(run_file.read_text().split("BACALHAU_API_PORT=")[1].split()[0])
                try:
                    if httpx.get(f"{self.url}/api/v1/agent/alive", timeout=1).status_code == 200:
                        self.ready_after = time.perf_counter() - self.started_at
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.01)
        raise RuntimeError(f"node did not become ready within {START_TIMEOUT:.0f}s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def nats_url(self) -> str:
        return (self.data_dir / "bacalhau.run").read_text().split("BACALHAU_COMPUTE_ORCHESTRATORS=")[1].split()[0]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


class Stack:
    """An orchestrator with N compute nodes (or, with computes=0, a single hybrid node)."""

    def __init__(self, computes: int, *, config: tuple[str, ...] = (), compute_config: tuple[str, ...] = ()) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bacalhau-bench-"))
        self.computes: list[NodeProcess] = []
        fast = ("Orchestrator.Port=0",)
        if computes == 0:
            hybrid = ("--orchestrator", "--compute")
            self.orchestrator = NodeProcess(self.root / "hybrid", *hybrid, config=(*fast, *config, *compute_config))
        else:
            self.orchestrator = NodeProcess(self.root / "orchestrator", "--orchestrator", config=(*fast, *config))
        try:
            self.orchestrator.launch().wait_ready()
            if computes:
                self._start_computes(computes, compute_config)
        except BaseException:
            self.stop()
            raise

    def _start_computes(self, computes: int, compute_config: tuple[str, ...]) -> None:
        """Start compute nodes a wave at a time: a hundred Python processes starting at once on two cores would
        each take longer to start than the start-up timeout allows."""
        for first in range(0, computes, LAUNCH_WAVE):
            wave = [
                NodeProcess(
                    self.root / f"compute-{index}",
                    "--compute",
                    "--name",
                    f"compute-{index}",
                    "--orchestrators",
                    self.orchestrator.nats_url,
                    config=compute_config,
                ).launch()
                for index in range(first, min(first + LAUNCH_WAVE, computes))
            ]
            self.computes += wave
            for node in wave:
                node.wait_ready()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            nodes = httpx.get(f"{self.url}/api/v1/orchestrator/nodes").json()["Nodes"]
            if sum(n["Connection"] == "CONNECTED" and n["Info"]["NodeType"] == "Compute" for n in nodes) == computes:
                return
            time.sleep(0.05)
        raise RuntimeError("compute nodes did not all connect")

    @property
    def url(self) -> str:
        return self.orchestrator.url

    def stop(self, *, keep_files: bool = False) -> None:
        """Stop every node, then delete their data and logs unless ``keep_files``."""
        for node in self.computes:
            node.stop()
        self.orchestrator.stop()
        if not keep_files:
            shutil.rmtree(self.root, ignore_errors=True)
