"""The benchmark suite: real `bacalhau serve` processes on free ports, driven over the REST API.

    python -m bench                  # every figure, under 10 minutes
    python -m bench --quick          # smaller runs, under a minute
    python -m bench --only latency   # some sections: startup, submit, e2e, saturation, latency, store, auth, cli,
                                     # nodes (simulated compute nodes: 100 quick, 1,000 full), engines (SQLite and
                                     # PostgreSQL stores, and failover between orchestrators sharing PostgreSQL)
    python -m bench --json out.json  # also write the figures as JSON
    python -m bench --compare old.json  # and each figure's ratio to that earlier run's

Timings of jobs come from the orchestrator's own clock (a job's CreateTime to the ModifyTime of its last change),
so the benchmark's polling does not add to them.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench import ha, suite

SECTIONS: dict[str, Callable[[suite.Sizes], Any]] = {
    "startup": suite.startup,
    "submit": suite.submit_throughput,
    "e2e": suite.end_to_end,
    "latency": suite.latency,
    "store": suite.large_store,
    "auth": suite.auth_overhead,
    "cli": suite.cli_wall_times,
    "saturation": suite.saturation,
    "nodes": suite.many_nodes,
    "engines": ha.store_engines,
}


def _rss(r: dict[str, Any], prefix: str = "") -> str:
    """Resident memory of a node's processes; shared pages count in each, so these do not add up to the total."""
    return f"node {r[prefix + 'rss_mb']} / compute {r[prefix + 'compute_rss_mb']} / NATS {r[prefix + 'nats_rss_mb']} MB"


def table(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, measured, target) rows for the sections that ran."""
    rows: list[tuple[str, str, str]] = []
    if "startup" in results:
        r = results["startup"]
        rows.append(("serve to ready", f"{r['serve_to_ready_s']} s", ""))
        rows.append(("idle node memory, PSS of all its processes", f"{r['idle_total_pss_mb']} MB", "< 150 MB"))
        rows.append(("  resident (RSS) of each", _rss(r, "idle_"), ""))
    for r in results.get("submit", []):
        target = ">= 1000/s" if r["concurrency"] == 64 else ""
        rows.append((f"submit, {r['concurrency']} concurrent clients", f"{r['accepted_per_s']} jobs/s", target))
    for r in results.get("e2e", []):
        target = ">= 500/s" if r["compute_nodes"] == 0 else ""
        rows.append((f"noop completed, {r['layout']}", f"{r['completed_per_s']} jobs/s", target))
    saturation = results.get("saturation", [])
    for r in saturation:
        target = {
            "noop, 10m CPU (capacity never binds)": ">= 500/s",
            "noop, default resources (saturated)": ">= 250/s",
            "wasm hello, 100m CPU": ">= 150/s",
        }.get(r["case"], "")
        measured = f"{r['completed_per_s']} jobs/s, p50 {r['latency_ms_p50']} ms"
        rows.append((f"completed, hybrid node, {r['case']}", measured, target))
    if len(saturation) >= 2 and saturation[0]["completed_per_s"]:
        share = saturation[1]["completed_per_s"] / saturation[0]["completed_per_s"]
        rows.append(("  saturated / unbound", f"{share:.0%}", ">= 80%"))
    for r in results.get("latency", []):
        if "skipped" in r:
            rows.append((f"latency {r['engine']}", f"skipped: {r['skipped']}", ""))
            continue
        target = "p50 < 20 ms" if r["engine"] == "noop" else ""
        measured = f"p50 {r['p50_ms']} / p90 {r['p90_ms']} / p99 {r['p99_ms']} ms"
        rows.append((f"submit to Completed, {r['engine']}", measured, target))
    if "store" in results:
        r = results["store"]
        n = f"{r['stored_jobs']:,} jobs"
        rows.append(
            (
                f"GET /jobs page of 100, {n}",
                f"p50 {r['first_page_ms_p50']} / p99 {r['first_page_ms_p99']} ms",
                "< 50 ms",
            )
        )
        rows.append((f"  newest first, {n}", f"p50 {r['newest_first_ms_p50']} / p99 {r['newest_first_ms_p99']} ms", ""))
        rows.append(
            (
                f"  following NextToken, {n}",
                f"p50 {r['next_token_pages_ms_p50']} / p99 {r['next_token_pages_ms_p99']} ms",
                "",
            )
        )
        rows.append((f"serve to ready, {n}", f"{r['serve_to_ready_s']} s", ""))
        rows.append((f"memory, {n}, PSS of all processes", f"{r['total_pss_mb']} MB", ""))
        rows.append(("  resident (RSS) of each", _rss(r), ""))
    for r in results.get("auth", []):
        rows.append((f"node CPU per GET, {r['layout']}, {r['credentials']}", f"{r['node_cpu_us']} us", ""))
    if "cli" in results:
        r = results["cli"]
        rows.append(("CLI: version --client, wall, median", f"{r['version_client_s']} s", "<= 0.25 s"))
        rows.append(("CLI: job list against a local node, wall, median", f"{r['job_list_s']} s", "<= 0.4 s"))
    if "nodes" in results:
        rows += _nodes_rows(results["nodes"])
    if "engines" in results:
        rows += ha.rows(results["engines"])
    return rows


def _nodes_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    n = f"{r['nodes']:,} simulated nodes"
    share = r["completed_per_s"] / r["one_node_completed_per_s"] if r["one_node_completed_per_s"] else 0.0
    every = f"every {r['heartbeat_s']:g} s"
    return [
        ("noop completed, orchestrator + 1 simulated node", f"{r['one_node_completed_per_s']} jobs/s", ""),
        (f"noop completed, orchestrator + {n}", f"{r['completed_per_s']} jobs/s", ""),
        (f"  {n} / 1 node", f"{share:.0%}", ">= 80%"),
        (f"idle orchestrator CPU, {n} heartbeating {every}", f"{r['idle_cpu_pct']}% of a core", "<= 10%"),
        ("  with no nodes", f"{r['alone_cpu_pct']}% of a core", ""),
        ("  orchestrator CPU per heartbeat", f"{r['heartbeat_cpu_us']} us", ""),
        ("  NATS server / simulator", f"{r['idle_nats_cpu_pct']}% / {r['idle_simulator_cpu_pct']}% of a core", ""),
        (
            f"GET /orchestrator/nodes, {n}",
            f"p50 {r['node_list_ms_p50']} / p90 {r['node_list_ms_p90']} ms",
            "<= 100 ms",
        ),
        (f"orchestrator memory, {n}", f"RSS {r['rss_mb']} MB ({r['rss_kb_per_node']} KB per node)", ""),
    ]


# A figure's number: not the digits of a label such as "p50" or "x1.2" (a letter, digit or dot before it).
_NUMBER = re.compile(r"(?<![A-Za-z\d.])-?\d+(?:\.\d+)?")


def first_number(measured: str) -> float | None:
    """The first figure in a measured cell: ``11.4`` in ``p50 11.4 / p90 13.3 ms``."""
    found = _NUMBER.search(measured)
    return float(found.group()) if found else None


def ratios(rows: list[tuple[str, str, str]], previous: dict[str, Any]) -> dict[str, str]:
    """Each figure's first number over the same figure's in an earlier run's JSON (``x1.10``: 10% more), where both
    runs measured it."""
    before = {figure: first_number(measured) for figure, measured, _ in table(previous)}
    out = {}
    for figure, measured, _ in rows:
        now, then = first_number(measured), before.get(figure)
        if now is not None and then:
            out[figure] = f"x{now / then:.2f}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, under a minute")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--compare", type=Path, default=None, help="an earlier run's JSON: show each figure's ratio")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    sizes = suite.QUICK if args.quick else suite.FULL
    results: dict[str, Any] = {
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
        },
        "mode": "quick" if args.quick else "full",
    }
    started = time.perf_counter()
    for name in chosen:
        section_started = time.perf_counter()
        print(f"bench: {name}...", file=sys.stderr, flush=True)
        results[name] = SECTIONS[name](sizes)
        print(f"bench: {name} took {time.perf_counter() - section_started:.0f}s", file=sys.stderr, flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    rows = table(results)
    compared = ratios(rows, json.loads(args.compare.read_text())) if args.compare else {}
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    target_width = max(len(r[2]) for r in rows)
    header = f"{'FIGURE':<{width}}  {'MEASURED':<{value_width}}  {'TARGET':<{target_width}}"
    print((header + ("  VS " + args.compare.name if args.compare else "")).rstrip())
    for figure, measured, target in rows:
        ratio = compared.get(figure, "")
        print(f"{figure:<{width}}  {measured:<{value_width}}  {target:<{target_width}}  {ratio}".rstrip())
    print(f"({results['mode']} run, {results['seconds']} s, {results['machine']['cpus']} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
