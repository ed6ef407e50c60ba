"""Driving a node over the REST API: the benchmark jobs, many concurrent submitters, and light waiting.

Waiting costs the node a few requests a second at most (polling every job would load it more than the jobs do), and
timings come from the orchestrator's own CreateTime and ModifyTime.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

TERMINAL = ("Completed", "Failed", "Stopped")
HELLO_WAT = Path(__file__).resolve().parent.parent / "examples" / "hello.wat"
BUSYBOX = "localhost/busybox:latest"


def noop_job(namespace: str = "default") -> dict[str, Any]:
    """So small (10m CPU) that a node's capacity never limits how many run at once."""
    task = {"Name": "main", "Engine": {"Type": "noop"}, "Resources": {"CPU": "10m", "Memory": "10mb"}}
    return {"Type": "batch", "Namespace": namespace, "Tasks": [task]}


def default_noop_job(namespace: str = "default") -> dict[str, Any]:
    """As users submit jobs, with the default resources (500m CPU, 512Mb): a node runs a few at a time, the rest
    queue."""
    return {"Type": "batch", "Namespace": namespace, "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}


def wasm_hello_job(namespace: str = "default") -> dict[str, Any]:
    """examples/hello.wat, shipped inline so that no download or publisher is part of the figure."""
    module = "data:text/plain;base64," + base64.b64encode(HELLO_WAT.read_bytes()).decode()
    task = {
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": {"EntryModule": "/hello.wat", "Parameters": ["bench"]}},
        "InputSources": [{"Target": "/hello.wat", "Source": {"Type": "inline", "Params": {"URL": module}}}],
        "Publisher": {"Type": "noop"},
        "Resources": {"CPU": "100m", "Memory": "64mb"},
    }
    return {"Type": "batch", "Namespace": namespace, "Tasks": [task]}


def docker_true_job(namespace: str = "default") -> dict[str, Any]:
    task = {
        "Name": "main",
        "Engine": {"Type": "docker", "Params": {"Image": BUSYBOX, "Entrypoint": ["true"]}},
        "Publisher": {"Type": "noop"},
        "Resources": {"CPU": "100m", "Memory": "64mb"},
    }
    return {"Type": "batch", "Namespace": namespace, "Tasks": [task]}


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the value at or below which ``fraction`` of the values lie."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(len(ordered), rank) - 1]


async def submit_many(url: str, job: dict[str, Any], count: int, concurrency: int) -> tuple[list[str], float]:
    """Submit ``count`` copies of ``job`` from ``concurrency`` concurrent clients; the IDs and the seconds taken.

    aiohttp rather than httpx here: httpx's connection pool slows down sharply with many connections (about 250
    requests/s at 64 against 750 at 8 on the same node), which would measure the client instead of the server.
    """
    remaining = count
    ids: list[str] = []
    body = json.dumps({"Job": job})
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def submitter() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with session.put("/api/v1/orchestrator/jobs", data=body, headers=headers) as response:
                    response.raise_for_status()
                    ids.append((await response.json())["JobID"])

        started = time.perf_counter()
        await asyncio.gather(*(submitter() for _ in range(concurrency)))
        return ids, time.perf_counter() - started


def wait_terminal(url: str, ids: list[str], timeout: float = 600) -> list[dict[str, Any]]:
    """The jobs once every one is terminal.

    Jobs finish roughly in the order they were submitted, so this watches the last one (four requests a second),
    then lists the jobs' namespace to check the rest: a few requests in all, where checking each job would add a
    request per job to the load being measured.
    """
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=60) as client:
        namespace = client.get(f"/api/v1/orchestrator/jobs/{ids[-1]}").json()["Job"]["Namespace"]
        while time.monotonic() < deadline:
            last = client.get(f"/api/v1/orchestrator/jobs/{ids[-1]}").json()["Job"]
            if last["State"]["StateType"] in TERMINAL:
                jobs = [j for j in _list_namespace(client, namespace) if j["ID"] in wanted]
                if len(jobs) == len(wanted) and all(j["State"]["StateType"] in TERMINAL for j in jobs):
                    return jobs
            time.sleep(0.25)
    raise RuntimeError(f"jobs not finished after {timeout:.0f}s")


def _list_namespace(client: httpx.Client, namespace: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    token = ""
    while True:
        params = {"namespace": namespace, "limit": 1000, "next_token": token}
        page = client.get("/api/v1/orchestrator/jobs", params=params).json()
        jobs += page["Items"]
        token = page.get("NextToken") or ""
        if not token:
            return jobs


def wait_one(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    """One job once terminal, polled every 10 ms: often enough to keep the run short, rarely enough that the
    polling does not slow the node down (latencies come from the job's own timestamps, not from this loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v1/orchestrator/jobs/{job_id}").json()["Job"]
        if job["State"]["StateType"] in TERMINAL:
            return job
        time.sleep(0.01)
    raise RuntimeError(f"job {job_id} not finished after {timeout:.0f}s")


def completed_per_second(jobs: list[dict[str, Any]]) -> float:
    """Jobs completed per second by the orchestrator's clock: first accepted to last completed."""
    completed = [j for j in jobs if j["State"]["StateType"] == "Completed"]
    if not completed:
        return 0.0
    span = max(j["ModifyTime"] for j in jobs) - min(j["CreateTime"] for j in jobs)
    return len(completed) / (span / 1e9) if span > 0 else float("inf")


def latencies_ms(jobs: list[dict[str, Any]]) -> list[float]:
    """Submit-to-terminal time of each job by the orchestrator's clock."""
    return [(j["ModifyTime"] - j["CreateTime"]) / 1e6 for j in jobs]
