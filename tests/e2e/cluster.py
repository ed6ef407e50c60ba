"""A cluster of real processes: one ``serve --orchestrator`` and compute nodes joining it over NATS."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.certs import TestCA
from tests.conftest import ServeProcess, wait_until

FAST_ORCHESTRATOR = (
    "-c", "Orchestrator.NodeManager.DisconnectTimeout=2s",
    "-c", "Orchestrator.Scheduler.HousekeepingInterval=1s",
)  # fmt: skip
FAST_COMPUTE = ("-c", "Compute.Heartbeat.Interval=0.5s")


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.orchestrator: ServeProcess | None = None
        self.computes: dict[str, ServeProcess] = {}

    @property
    def url(self) -> str:
        assert self.orchestrator is not None
        return self.orchestrator.url

    def start_orchestrator(self, *config: str, nats_port: int = 0) -> ServeProcess:
        node = ServeProcess(self.root / "orchestrator", "--orchestrator", "--name", "orchestrator")
        node.config = [*FAST_ORCHESTRATOR, *config, "-c", f"Orchestrator.Port={nats_port}"]
        self.orchestrator = node.start()
        return node

    @property
    def nats_url(self) -> str:
        assert self.orchestrator is not None
        run = (self.orchestrator.data_dir / "bacalhau.run").read_text()
        return run.split("BACALHAU_COMPUTE_ORCHESTRATORS=")[1].split()[0]

    def add_compute(self, name: str, *config: str, cpu: str = "1", labels: str = "", wait: bool = True) -> ServeProcess:
        node = self._launch_compute(name, *config, cpu=cpu, labels=labels).wait_ready()
        if wait:
            self.wait_for_node(name, "CONNECTED")
        return node

    def add_computes(self, *names: str, cpu: str = "1") -> None:
        """Start several compute nodes at once and wait until all have joined."""
        launched = [self._launch_compute(name, cpu=cpu) for name in names]
        for node in launched:
            node.wait_ready()
        for name in names:
            self.wait_for_node(name, "CONNECTED")

    def _launch_compute(self, name: str, *config: str, cpu: str, labels: str = "") -> ServeProcess:
        args = ["--compute", "--name", name, "--orchestrators", self.nats_url]
        if labels:
            args += ["--labels", labels]
        node = ServeProcess(self.root / name, *args)
        node.config = [*FAST_COMPUTE, "-c", f"Compute.AllocatedCapacity.CPU={cpu}", *config]
        self.computes[name] = node
        return node.launch()

    def nodes(self) -> dict[str, dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/orchestrator/nodes", timeout=10).json()
        return {node["Info"]["NodeID"]: node for node in body["Nodes"]}

    def wait_for_node(self, name: str, status: str, timeout: float = 20) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            node = self.nodes().get(name)
            return node if node and node["Connection"] == status else None

        result: dict[str, Any] = wait_until(reached, timeout, f"node {name} to be {status}")
        return result

    def local_execution_state(self, name: str, execution_id: str) -> int | None:
        """The state a compute node itself recorded for an execution (read from its own store)."""
        path = self.root / name / "compute" / "executions.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT state FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return int(row[0]) if row else None

    def stop(self) -> None:
        for node in self.computes.values():
            node.stop()
        if self.orchestrator is not None:
            self.orchestrator.stop()


def settings(values: dict[str, object]) -> tuple[str, ...]:
    """``-c Key=Value`` arguments (booleans as the config reads them)."""
    pairs = [f"{key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in values.items()]
    return tuple(argument for pair in pairs for argument in ("-c", pair))


def orchestrator_tls(ca: TestCA, *, trust_ca: bool = True, client_certs: bool = False) -> tuple[str, ...]:
    """NATS over TLS, with a certificate from ``ca`` for this machine, made for both ends of a link (the orchestrator
    presents it to its own server when clients must present one). ``trust_ca``: ``ca`` as Orchestrator.TLS.CACert;
    else the system's trust store must know it."""
    pair = ca.issue("orchestrator", usages=("server", "client"))
    values: dict[str, object] = {"Orchestrator.TLS.ServerCert": pair.cert, "Orchestrator.TLS.ServerKey": pair.key}
    if trust_ca:
        values["Orchestrator.TLS.CACert"] = ca.cert
    return settings({**values, "Orchestrator.TLS.RequireClientCert": client_certs})
