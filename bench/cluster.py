"""Cluster figures: jobs completed per second with 1 and 10 compute nodes, submit-to-Completed latency, and the time
from killing a compute node to its work running elsewhere.

    python -m bench.cluster            # the full run (a few minutes)
    python -m bench.cluster --quick    # smaller numbers, under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.nodes import Stack

SPIN_MODULE = 'data:text/plain,(module (memory 1) (func (export "_start") (loop $l (br $l))))'
NOOP_JOB: dict[str, Any] = {
    "Type": "batch",
    "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}, "Resources": {"CPU": "10m", "Memory": "10mb"}}],
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def submit_many(url: str, job: dict[str, Any], count: int, concurrency: int) -> list[str]:
    gate = asyncio.Semaphore(concurrency)
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one() -> None:
            async with gate:
                response = await client.put("/api/v1/orchestrator/jobs", json={"Job": job})
                response.raise_for_status()
                ids.append(response.json()["JobID"])

        await asyncio.gather(*(one() for _ in range(count)))
    return ids


def wait_all_terminal(url: str, count: int, namespace: str, timeout: float = 600) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = httpx.get(f"{url}/api/v1/orchestrator/jobs", params={"namespace": namespace}, timeout=60).json()[
            "Items"
        ]
        done = [j for j in items if j["State"]["StateType"] in ("Completed", "Failed", "Stopped")]
        if len(done) == count:
            return done
        time.sleep(0.05)
    raise RuntimeError(f"jobs did not finish within {timeout:.0f}s")


def throughput(computes: int, jobs: int, concurrency: int) -> dict[str, Any]:
    stack = Stack(computes)
    try:
        namespace = f"bench-{computes}"
        job = {**NOOP_JOB, "Namespace": namespace}
        started = time.perf_counter()
        asyncio.run(submit_many(stack.url, job, jobs, concurrency))
        submitted = time.perf_counter() - started
        done = wait_all_terminal(stack.url, jobs, namespace)
        elapsed = time.perf_counter() - started
        latencies = [(j["ModifyTime"] - j["CreateTime"]) / 1e6 for j in done]
        completed = sum(j["State"]["StateType"] == "Completed" for j in done)
        return {
            "compute_nodes": computes,
            "jobs": jobs,
            "completed": completed,
            "submitted_per_s": round(jobs / submitted, 1),
            "completed_per_s": round(completed / elapsed, 1),
            "latency_ms_p50": round(statistics.median(latencies), 1),
            "latency_ms_p99": round(percentile(latencies, 0.99), 1),
        }
    finally:
        stack.stop()


def failover(disconnect_timeout: str, heartbeat: str) -> dict[str, Any]:
    """Kill the node running a job; time until the job runs again on the other node."""
    stack = Stack(
        2,
        config=(f"Orchestrator.NodeManager.DisconnectTimeout={disconnect_timeout}",),
        compute_config=(f"Compute.Heartbeat.Interval={heartbeat}",),
    )
    try:
        spin = {"Target": "/m.wasm", "Source": {"Type": "inline", "Params": {"URL": SPIN_MODULE}}}
        task = {
            "Name": "main",
            "Engine": {"Type": "wasm", "Params": {"EntryModule": "/m.wasm"}},
            "InputSources": [spin],
            "Resources": {"CPU": "100m", "Memory": "10mb"},
        }
        job = {"Type": "service", "Count": 1, "Tasks": [task]}
        job_id = asyncio.run(submit_many(stack.url, job, 1, 1))[0]

        def running() -> list[dict[str, Any]]:
            items = httpx.get(f"{stack.url}/api/v1/orchestrator/jobs/{job_id}/executions").json()["Items"]
            return [e for e in items if e["ComputeState"]["StateType"] == 6]

        deadline = time.monotonic() + 60
        while not running() and time.monotonic() < deadline:
            time.sleep(0.02)
        victim = running()[0]["NodeID"]
        node = next(n for n in stack.computes if n.data_dir.name == victim)
        killed = time.perf_counter()
        node.kill()
        while time.monotonic() < deadline + 120:
            moved = [e for e in running() if e["NodeID"] != victim]
            if moved:
                return {
                    "disconnect_timeout": disconnect_timeout,
                    "heartbeat": heartbeat,
                    "seconds_to_run_elsewhere": round(time.perf_counter() - killed, 2),
                }
            time.sleep(0.02)
        raise RuntimeError("the work did not move to the other node")
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs, under a minute")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    jobs = 200 if args.quick else 2000
    results: dict[str, Any] = {
        "throughput": [throughput(n, jobs, 32) for n in (1, 10)],
        "failover": failover("5s", "1s"),
    }
    print(f"{'compute nodes':>14} {'jobs':>6} {'submitted/s':>12} {'completed/s':>12} {'p50 ms':>9} {'p99 ms':>9}")
    for row in results["throughput"]:
        print(
            f"{row['compute_nodes']:>14} {row['jobs']:>6} {row['submitted_per_s']:>12} {row['completed_per_s']:>12} "
            f"{row['latency_ms_p50']:>9} {row['latency_ms_p99']:>9}"
        )
    move = results["failover"]
    print(
        f"failover: work ran elsewhere {move['seconds_to_run_elsewhere']}s after its node was killed "
        f"(disconnect timeout {move['disconnect_timeout']}, heartbeat {move['heartbeat']})"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
