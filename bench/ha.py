"""Orchestrators on PostgreSQL: throughput beside SQLite in the same run, and how long a change of leader takes.

The database is a private PostgreSQL server started here (tests/postgres.py: Debian's binaries, as the test suite
uses them); without one, the section says it was skipped and why.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.postgres import PostgresServer, unavailable_reason

from bacalhau.transport.natsserver import free_port
from bench.load import completed_per_second, latencies_ms, noop_job, percentile, submit_many, wait_one, wait_terminal
from bench.nodes import NodeProcess, Stack

LOCAL = "127.0.0.1"
FAILOVER_ORCHESTRATORS = 3


def store_engines(sizes: Any) -> dict[str, Any]:
    """Noop jobs accepted and completed per second by a hybrid node on each store, and the failover figures."""
    reason = unavailable_reason()
    if reason:
        return {"skipped": reason}
    server = PostgresServer().start()
    try:
        result: dict[str, Any] = {"engines": []}
        for engine in ("sqlite", "postgres"):
            config = () if engine == "sqlite" else _postgres(server.create_database(f"bench_{engine}"))
            result["engines"].append({"engine": engine, **_throughput(sizes.e2e_jobs, config)})
        result["failover"] = [_failover(server.create_database(f"bench_failover_{i}")) for i in range(sizes.startups)]
        return result
    finally:
        server.close()


def _postgres(url: str) -> tuple[str, ...]:
    return ("Orchestrator.JobStore.Type=postgres", f"Orchestrator.JobStore.URL={url}")


def _throughput(jobs: int, config: tuple[str, ...]) -> dict[str, Any]:
    stack = Stack(0, config=config)
    try:
        ids, seconds = asyncio.run(submit_many(stack.url, noop_job("engines"), jobs, 64))
        finished = wait_terminal(stack.url, ids)
        return {
            "jobs": len(finished),
            "completed": sum(j["State"]["StateType"] == "Completed" for j in finished),
            "accepted_per_s": round(len(ids) / seconds, 1),
            "completed_per_s": round(completed_per_second(finished), 1),
            "latency_ms_p50": round(percentile(latencies_ms(finished), 0.5), 1),
        }
    finally:
        stack.stop()


def _failover(url: str) -> dict[str, Any]:
    """Three orchestrators (NATS clustered) and one compute node; the leader is killed (SIGKILL, with its NATS server):
    seconds until another leads, and until a job submitted at the kill has completed."""
    root = Path(tempfile.mkdtemp(prefix="bacalhau-bench-ha-"))
    names = [f"o{i}" for i in range(1, FAILOVER_ORCHESTRATORS + 1)]
    nats = {name: free_port(LOCAL) for name in names}
    routes = {name: free_port(LOCAL) for name in names}
    orchestrators: dict[str, NodeProcess] = {}
    compute: NodeProcess | None = None
    try:
        for name in names:
            peers = ",".join(f"nats://{LOCAL}:{routes[other]}" for other in names if other != name)
            config = (
                *_postgres(url),
                f"Orchestrator.Host={LOCAL}",
                f"Orchestrator.Port={nats[name]}",
                "Orchestrator.Cluster.Name=bench",
                f"Orchestrator.Cluster.Host={LOCAL}",
                f"Orchestrator.Cluster.Port={routes[name]}",
                f"Orchestrator.Cluster.Peers={peers}",
                "Orchestrator.NodeManager.DisconnectTimeout=5s",
            )
            orchestrators[name] = NodeProcess(root / name, "--orchestrator", "--name", name, config=config).launch()
        for node in orchestrators.values():
            node.wait_ready()
        servers = ",".join(f"nats://{LOCAL}:{port}" for port in nats.values())
        compute = NodeProcess(
            root / "compute", "--compute", "--orchestrators", servers, config=("Compute.Heartbeat.Interval=0.5s",)
        ).launch()
        compute.wait_ready()
        leader = _leader(orchestrators)
        _completed(orchestrators[leader].url, _submit(orchestrators[leader].url))  # all ready
        survivors = {name: node for name, node in orchestrators.items() if name != leader}
        survivor_url = next(iter(survivors.values())).url

        orchestrators[leader].kill()
        killed = time.perf_counter()
        job_id = _submit(survivor_url)  # a follower's API takes it while nobody leads
        new_leader = _leader(survivors)
        led_after = time.perf_counter() - killed
        _completed(survivor_url, job_id)
        return {
            "new_leader_s": round(led_after, 2),
            "job_completed_s": round(time.perf_counter() - killed, 2),
            "new_leader": new_leader != leader,
        }
    finally:
        for node in [*orchestrators.values(), *([compute] if compute else [])]:
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


def _completed(url: str, job_id: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        state = wait_one(client, job_id)["State"]["StateType"]
    if state != "Completed":
        raise RuntimeError(f"job {job_id} ended {state}")


def _submit(url: str) -> str:
    response = httpx.put(f"{url}/api/v1/orchestrator/jobs", json={"Job": noop_job("failover")}, timeout=30)
    response.raise_for_status()
    return str(response.json()["JobID"])


def _leader(orchestrators: dict[str, NodeProcess], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, node in orchestrators.items():
            try:
                debug = httpx.get(f"{node.url}/api/v1/agent/debug", timeout=2).json()
            except httpx.HTTPError:
                continue
            if debug["Orchestrator"]["Leadership"]["Leading"]:
                return name
        time.sleep(0.02)
    raise RuntimeError(f"no orchestrator led within {timeout:.0f}s")


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    if "skipped" in result:
        return [("store engines", f"skipped: {result['skipped']}", "")]
    out = []
    for r in result["engines"]:
        measured = f"{r['completed_per_s']} jobs/s, p50 {r['latency_ms_p50']} ms"
        out.append((f"noop completed, hybrid node, {r['engine']} store", measured, ""))
        out.append((f"  accepted, 64 clients, {r['engine']} store", f"{r['accepted_per_s']} jobs/s", ""))
    failovers = result["failover"]
    if failovers:
        leader = statistics.median(f["new_leader_s"] for f in failovers)
        job = statistics.median(f["job_completed_s"] for f in failovers)
        runs = f"median of {len(failovers)}"
        out.append((f"failover: SIGKILL of the leader to a new leader, {runs}", f"{leader} s", "within seconds"))
        out.append((f"  to a job submitted at the kill completed, {runs}", f"{job} s", ""))
    return out
