"""The measurements, each starting its own real node processes and returning plain figures."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import httpx
import psutil
import yaml

from bench.load import (
    completed_per_second,
    default_noop_job,
    docker_true_job,
    latencies_ms,
    noop_job,
    percentile,
    submit_many,
    wait_one,
    wait_terminal,
    wasm_hello_job,
)
from bench.nodes import NodeProcess, Stack
from bench.seed import clone_jobs
from bench.simnodes import SimProcess

MB = 2**20


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does: ``--quick`` runs the small set, the default the full one."""

    startups: int
    submit_jobs: int
    e2e_jobs: int
    node_counts: tuple[int, ...]
    noop_latency_jobs: int
    wasm_latency_jobs: int
    docker_latency_jobs: int
    stored_jobs: int
    list_requests: int
    auth_requests: int
    cli_runs: int
    simulated_nodes: int
    idle_window_s: float


QUICK = Sizes(1, 300, 300, (0, 10), 40, 10, 3, 10_000, 20, 2000, 5, 100, 5.0)
FULL = Sizes(3, 2000, 2000, (0, 1, 10, 100), 300, 100, 30, 100_000, 200, 20_000, 10, 1000, 30.0)


def node_memory(pid: int) -> dict[str, float]:
    """A node's memory: the resident set (RSS) of each of its processes (the node, its forked compute process, its
    NATS server), and their total proportional set size (PSS). RSS counts the pages that the forked compute process
    shares with the node in both; PSS counts them once, split between the two, so the total is what the node uses."""
    node = psutil.Process(pid)
    children = node.children(recursive=True)
    nats = [p for p in children if p.name() == "nats-server"]
    compute = [p for p in children if p not in nats]
    total_pss = sum(p.memory_full_info().pss for p in (node, *children))
    return {
        "rss_mb": round(node.memory_info().rss / MB, 1),
        "compute_rss_mb": round(sum(p.memory_info().rss for p in compute) / MB, 1),
        "nats_rss_mb": round(sum(p.memory_info().rss for p in nats) / MB, 1),
        "total_pss_mb": round(total_pss / MB, 1),
    }


def startup(sizes: Sizes) -> dict[str, Any]:
    """Seconds from `bacalhau serve` to a ready API, and the idle node's memory a few seconds later."""
    ready: list[float] = []
    memory: dict[str, float] = {}
    for _ in range(sizes.startups):
        stack = Stack(0)
        try:
            ready.append(stack.orchestrator.ready_after)
            _settle(stack.url)
            memory = node_memory(stack.orchestrator.pid)
        finally:
            stack.stop()
    return {"serve_to_ready_s": round(statistics.median(ready), 2), **{f"idle_{k}": v for k, v in memory.items()}}


def _settle(url: str, seconds: float = 3.0) -> None:
    """Let start-up work (first heartbeats, node registration) finish before measuring an idle node."""
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url) as client:
        while time.monotonic() < deadline:
            client.get("/api/v1/agent/alive")
            time.sleep(0.5)


def submit_throughput(sizes: Sizes, concurrency_levels: tuple[int, ...] = (1, 8, 64)) -> list[dict[str, Any]]:
    """Jobs accepted per second by a hybrid node, at each client concurrency (the previous burst drained first)."""
    rows = []
    stack = Stack(0)
    try:
        for concurrency in concurrency_levels:
            count = sizes.submit_jobs if concurrency > 1 else max(100, sizes.submit_jobs // 4)
            ids, seconds = asyncio.run(submit_many(stack.url, noop_job(f"submit-{concurrency}"), count, concurrency))
            rows.append({"concurrency": concurrency, "jobs": count, "accepted_per_s": round(count / seconds, 1)})
            wait_terminal(stack.url, ids)
    finally:
        stack.stop()
    return rows


def end_to_end(sizes: Sizes) -> list[dict[str, Any]]:
    """Noop jobs reaching Completed per second: a hybrid node (0 compute processes), then an orchestrator with N
    compute node processes."""
    rows = []
    for nodes in sizes.node_counts:
        stack = Stack(nodes)
        try:
            ids, seconds = asyncio.run(submit_many(stack.url, noop_job("e2e"), sizes.e2e_jobs, 64))
            jobs = wait_terminal(stack.url, ids)
            latencies = latencies_ms(jobs)
            rows.append(
                {
                    "compute_nodes": nodes,
                    "layout": _layout(nodes),
                    "jobs": len(jobs),
                    "completed": sum(j["State"]["StateType"] == "Completed" for j in jobs),
                    "accepted_per_s": round(len(ids) / seconds, 1),
                    "completed_per_s": round(completed_per_second(jobs), 1),
                    "latency_ms_p50": round(percentile(latencies, 0.5), 1),
                    "latency_ms_p99": round(percentile(latencies, 0.99), 1),
                }
            )
        finally:
            stack.stop()
    return rows


def _layout(computes: int) -> str:
    if computes == 0:
        return "hybrid node"
    return f"orchestrator + {computes} compute process{'es' if computes > 1 else ''}"


def latency(sizes: Sizes) -> list[dict[str, Any]]:
    """Submit-to-Completed of one job at a time on an otherwise idle hybrid node, by the orchestrator's clock."""
    rows = []
    stack = Stack(0)
    try:
        cases = [("noop", noop_job, sizes.noop_latency_jobs), ("wasm hello", wasm_hello_job, sizes.wasm_latency_jobs)]
        has_docker = "docker" in _engines(stack.url)
        if has_docker:
            cases.append(("docker true", docker_true_job, sizes.docker_latency_jobs))
        with httpx.Client(base_url=stack.url, timeout=60) as client:
            for name, make_job, count in cases:
                job = {"Job": make_job("latency")}
                client.put("/api/v1/orchestrator/jobs", json=job).raise_for_status()  # warm-up: pulls, compiles
                finished = []
                for _ in range(count):
                    response = client.put("/api/v1/orchestrator/jobs", json=job)
                    response.raise_for_status()
                    finished.append(wait_one(client, response.json()["JobID"]))
                failed = [j for j in finished if j["State"]["StateType"] != "Completed"]
                if failed:
                    raise RuntimeError(f"{name}: {len(failed)} jobs did not complete: {failed[0]['State']}")
                values = latencies_ms(finished)
                rows.append(
                    {
                        "engine": name,
                        "jobs": count,
                        "p50_ms": round(percentile(values, 0.5), 1),
                        "p90_ms": round(percentile(values, 0.9), 1),
                        "p99_ms": round(percentile(values, 0.99), 1),
                    }
                )
    finally:
        stack.stop()
    if not has_docker:
        rows.append({"engine": "docker true", "skipped": "no Docker engine reachable (see scripts/docker-engine)"})
    return rows


def _engines(url: str) -> set[str]:
    nodes = httpx.get(f"{url}/api/v1/orchestrator/nodes").json()["Nodes"]
    return {e for n in nodes for e in ((n["Info"].get("ComputeNodeInfo") or {}).get("ExecutionEngines") or [])}


def large_store(sizes: Sizes) -> dict[str, Any]:
    """A hybrid node restarted over a store of many finished jobs: start-up, memory and job listing latency."""
    stack = Stack(0)
    node = stack.orchestrator
    try:
        ids, _ = asyncio.run(submit_many(stack.url, noop_job(), 100, 8))
        wait_terminal(stack.url, ids)
    finally:
        stack.stop(keep_files=True)
    started = time.perf_counter()
    clone_jobs(node.data_dir, sizes.stored_jobs)
    seeded_s = time.perf_counter() - started
    restarted = NodeProcess(node.data_dir, *node.args, config=node.config).launch().wait_ready()
    try:
        pages = _list_latencies(restarted.url, sizes.list_requests)
        return {
            "stored_jobs": sizes.stored_jobs,
            "seed_s": round(seeded_s, 1),
            "serve_to_ready_s": round(restarted.ready_after, 2),
            **pages,
            **node_memory(restarted.pid),
        }
    finally:
        restarted.stop()
        shutil.rmtree(stack.root, ignore_errors=True)


def _list_latencies(url: str, requests: int) -> dict[str, Any]:
    """GET /jobs pages of 100: the first page, newest first, and pages reached by following NextToken."""
    figures: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/api/v1/orchestrator/jobs", params={"limit": 100}).raise_for_status()  # warm the page cache
        for name, params in (
            ("first_page", {"limit": 100}),
            ("newest_first", {"limit": 100, "order_by": "modified_at", "reverse": "true"}),
        ):
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get("/api/v1/orchestrator/jobs", params=params)
                samples.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                if len(response.json()["Items"]) != 100:
                    raise RuntimeError(f"{name}: expected a page of 100 jobs")
            figures[f"{name}_ms_p50"] = round(percentile(samples, 0.5), 1)
            figures[f"{name}_ms_p99"] = round(percentile(samples, 0.99), 1)
        samples, token = [], ""
        for _ in range(requests):
            started = time.perf_counter()
            page = client.get("/api/v1/orchestrator/jobs", params={"limit": 100, "next_token": token}).json()
            samples.append((time.perf_counter() - started) * 1000)
            token = page.get("NextToken") or ""
        figures["next_token_pages_ms_p50"] = round(percentile(samples, 0.5), 1)
        figures["next_token_pages_ms_p99"] = round(percentile(samples, 0.99), 1)
    return figures


AUTH_ROUTE = "/api/v1/id"  # a read:agent route whose handler does next to nothing: the layer's cost shows
AUTH_KEY = "bench-api-key-0123456789"
AUTH_PASSWORD = "bench-password"


def _basic(username: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{AUTH_PASSWORD}".encode()).decode()


def auth_overhead(sizes: Sizes) -> list[dict[str, Any]]:
    """The orchestrator's CPU per request with no users (the open API) and with users, for each kind of
    credentials (a bcrypt password after its first check, which is cached)."""
    users = [
        {"APIKey": AUTH_KEY, "Capabilities": [{"Actions": ["*"]}]},
        {"Username": "plain", "Password": AUTH_PASSWORD, "Capabilities": [{"Actions": ["*"]}]},
        {
            "Username": "hashed",
            "Password": bcrypt.hashpw(AUTH_PASSWORD.encode(), bcrypt.gensalt(10)).decode(),
            "Capabilities": [{"Actions": ["*"]}],
        },
    ]
    rows = []
    for layout, config, kinds in (
        ("open API, no users", {}, {"no credentials": ""}),
        (
            "users configured",
            {"API": {"Auth": {"Users": users}}},
            {
                "API key": f"Bearer {AUTH_KEY}",
                "username and plain password": _basic("plain"),
                "username and bcrypt password": _basic("hashed"),
            },
        ),
    ):
        folder = Path(tempfile.mkdtemp(prefix="bacalhau-bench-auth-"))
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        stack = Stack(0, config=(str(folder / "config.yaml"),))
        try:
            for kind, authorization in kinds.items():
                cpu_us = asyncio.run(_cpu_per_request(stack.url, stack.orchestrator.pid, authorization, sizes))
                rows.append({"layout": layout, "credentials": kind, "node_cpu_us": cpu_us})
        finally:
            stack.stop()
            shutil.rmtree(folder, ignore_errors=True)
    return rows


async def _cpu_per_request(url: str, pid: int, authorization: str, sizes: Sizes, concurrency: int = 8) -> float:
    """Microseconds of the node's CPU (all its processes) per request, after a warm-up."""
    node = psutil.Process(pid)
    processes = [node, *node.children(recursive=True)]
    headers = {"Authorization": authorization} if authorization else {}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as session:

        async def requests(count: int) -> None:
            for _ in range(count):
                async with session.get(AUTH_ROUTE) as response:
                    response.raise_for_status()

        await asyncio.gather(*(requests(100 // concurrency) for _ in range(concurrency)))
        before = sum(sum(p.cpu_times()[:2]) for p in processes)
        await asyncio.gather(*(requests(sizes.auth_requests // concurrency) for _ in range(concurrency)))
        spent = sum(sum(p.cpu_times()[:2]) for p in processes) - before
    return round(spent / (sizes.auth_requests // concurrency * concurrency) * 1e6, 1)


def cli_wall_times(sizes: Sizes) -> dict[str, Any]:
    """Wall seconds of CLI commands as a user runs them (the installed ``bacalhau`` script, a fresh interpreter each
    time), median of ``cli_runs``: ``version --client`` (no node), and ``job list`` against a hybrid node holding a
    page of jobs."""
    stack = Stack(0)
    try:
        ids, _ = asyncio.run(submit_many(stack.url, noop_job("cli"), 10, 4))
        wait_terminal(stack.url, ids)
        with tempfile.TemporaryDirectory() as client_dir:
            host, _, port = stack.url.removeprefix("http://").rpartition(":")
            env = {**os.environ, "BACALHAU_DIR": client_dir, "BACALHAU_API_HOST": host, "BACALHAU_API_PORT": port}
            return {
                "version_client_s": _median_wall(["version", "--client"], env, sizes.cli_runs),
                "job_list_s": _median_wall(["job", "list"], env, sizes.cli_runs),
            }
    finally:
        stack.stop()


def _median_wall(arguments: list[str], env: dict[str, str], runs: int) -> float:
    command = [str(Path(sys.executable).with_name("bacalhau")), *arguments]
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
        walls.append(time.perf_counter() - started)
    return round(statistics.median(walls), 3)


def saturation(sizes: Sizes) -> list[dict[str, Any]]:
    """Jobs completed per second on one hybrid node, 16 clients submitting, when capacity binds and when it does not,
    in the same run: noop jobs at 10m CPU (never bound), the same with the default resources (a node holds a few at
    a time and the rest queue: each freed slot must be refilled), and WebAssembly hello at 100m CPU."""
    cases = (
        ("noop, 10m CPU (capacity never binds)", noop_job("unbound")),
        ("noop, default resources (saturated)", default_noop_job("saturated")),
        ("wasm hello, 100m CPU", wasm_hello_job("wasm")),
    )
    rows = []
    stack = Stack(0)
    try:
        for case, job in cases:
            ids, seconds = asyncio.run(submit_many(stack.url, job, sizes.e2e_jobs, 16))
            jobs = wait_terminal(stack.url, ids)
            latencies = latencies_ms(jobs)
            rows.append(
                {
                    "case": case,
                    "jobs": len(jobs),
                    "completed": sum(j["State"]["StateType"] == "Completed" for j in jobs),
                    "accepted_per_s": round(len(ids) / seconds, 1),
                    "completed_per_s": round(completed_per_second(jobs), 1),
                    "latency_ms_p50": round(percentile(latencies, 0.5), 1),
                }
            )
    finally:
        stack.stop()
    return rows


SIM_HEARTBEAT = 15.0  # seconds: Compute.Heartbeat.Interval's default, in the original as here


def many_nodes(sizes: Sizes) -> dict[str, Any]:
    """An orchestrator with simulated compute nodes (``bench/simnodes.py``, in a process of their own): noop jobs
    placed and completed per second with one node and with many (a fresh orchestrator each), and with many, while
    they only heartbeat (every 15 s, the default): the orchestrator's CPU, its memory and the node list's latency."""
    one = _with_simulated_nodes(1, sizes, idle=False)
    many = _with_simulated_nodes(sizes.simulated_nodes, sizes, idle=True)
    return {"one_node_completed_per_s": one["completed_per_s"], **many}


def _with_simulated_nodes(count: int, sizes: Sizes, *, idle: bool) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bacalhau-bench-nodes-"))
    orchestrator = NodeProcess(root / "orchestrator", "--orchestrator", config=("Orchestrator.Port=0",))
    sim: SimProcess | None = None
    figures: dict[str, Any] = {"nodes": count, "heartbeat_s": SIM_HEARTBEAT}
    try:
        orchestrator.launch().wait_ready()
        if idle:
            _settle(orchestrator.url)
            alone = _cpu_seconds(orchestrator.pid, sizes.idle_window_s)
            figures["alone_cpu_pct"] = round(alone["node"] / sizes.idle_window_s * 100, 2)
            figures["alone_rss_mb"] = node_memory(orchestrator.pid)["rss_mb"]
        started = time.perf_counter()
        sim = SimProcess(orchestrator.nats_url, count, root / "simnodes.log", heartbeat=SIM_HEARTBEAT).wait_ready()
        figures["connect_s"] = round(time.perf_counter() - started, 2)
        if idle:
            _settle(orchestrator.url)
            busy = _cpu_seconds(orchestrator.pid, sizes.idle_window_s, sim.pid)
            window = sizes.idle_window_s
            heartbeats = count * window / SIM_HEARTBEAT
            figures["idle_cpu_pct"] = round(busy["node"] / window * 100, 2)
            figures["idle_nats_cpu_pct"] = round(busy["nats"] / window * 100, 2)
            figures["idle_simulator_cpu_pct"] = round(busy["simulator"] / window * 100, 2)
            figures["heartbeat_cpu_us"] = round(max(busy["node"] - alone["node"], 0.0) / heartbeats * 1e6, 1)
            figures.update(_node_list_latencies(orchestrator.url, count + 1, sizes.list_requests))
            memory = node_memory(orchestrator.pid)
            figures["rss_mb"] = memory["rss_mb"]
            figures["nats_rss_mb"] = memory["nats_rss_mb"]
            figures["rss_kb_per_node"] = round((memory["rss_mb"] - figures["alone_rss_mb"]) * 1024 / count, 1)
        ids, _ = asyncio.run(submit_many(orchestrator.url, noop_job("nodes"), sizes.e2e_jobs, 64))
        jobs = wait_terminal(orchestrator.url, ids)
        figures["jobs"] = len(jobs)
        figures["completed"] = sum(j["State"]["StateType"] == "Completed" for j in jobs)
        figures["completed_per_s"] = round(completed_per_second(jobs), 1)
        figures["latency_ms_p50"] = round(percentile(latencies_ms(jobs), 0.5), 1)
        return figures
    finally:
        if sim is not None:
            sim.stop()
        orchestrator.stop()
        shutil.rmtree(root, ignore_errors=True)


def _cpu_seconds(pid: int, window: float, simulator: int = 0) -> dict[str, float]:
    """CPU seconds (user and system) spent over ``window`` by the node's own process, its NATS server and the
    simulator."""
    node = psutil.Process(pid)
    nats = [p for p in node.children(recursive=True) if p.name() == "nats-server"]
    groups = {"node": [node], "nats": nats, "simulator": [psutil.Process(simulator)] if simulator else []}

    def spent() -> dict[str, float]:
        return {name: sum(sum(p.cpu_times()[:2]) for p in processes) for name, processes in groups.items()}

    before = spent()
    time.sleep(window)
    after = spent()
    return {name: after[name] - before[name] for name in groups}


def _node_list_latencies(url: str, expected: int, requests: int) -> dict[str, Any]:
    """``GET /api/v1/orchestrator/nodes`` of every node, over HTTP as a client sees it (after one warm-up)."""
    samples = []
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/api/v1/orchestrator/nodes").raise_for_status()
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get("/api/v1/orchestrator/nodes")
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            listed = len(response.json()["Nodes"])
            if listed != expected:
                raise RuntimeError(f"node list: expected {expected} nodes, got {listed}")
    return {
        "node_list_ms_p50": round(percentile(samples, 0.5), 1),
        "node_list_ms_p90": round(percentile(samples, 0.9), 1),
    }
