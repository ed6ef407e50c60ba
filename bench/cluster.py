"""Failover: the time from killing the compute node that runs a job to the job running on another node.

    python -m bench.cluster
(throughput and latency figures are in ``python -m bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from bench.load import submit_many
from bench.nodes import Stack

SPIN_MODULE = 'data:text/plain,(module (memory 1) (func (export "_start") (loop $l (br $l))))'


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
        job_id = asyncio.run(submit_many(stack.url, job, 1, 1))[0][0]

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
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    move = failover("5s", "1s")
    print(
        f"failover: work ran elsewhere {move['seconds_to_run_elsewhere']}s after its node was killed "
        f"(disconnect timeout {move['disconnect_timeout']}, heartbeat {move['heartbeat']})"
    )
    if args.json:
        args.json.write_text(json.dumps(move, indent=2))


if __name__ == "__main__":
    main()
