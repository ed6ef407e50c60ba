"""The benchmark suite runs against real nodes and reports every figure it promises (a smoke test, not a timing)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bench.__main__ import first_number, ratios
from bench.load import percentile

ROOT = Path(__file__).resolve().parents[2]


def bench(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m bench`` as a user runs it, from the repository's root."""
    command = [sys.executable, "-m", "bench", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.9), percentile(values, 0.99)) == (50.0, 90.0, 99.0)
    assert percentile([7.0], 0.99) == 7.0


def test_quick_startup_and_large_store_figures(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = bench("--quick", "--only", "startup,store", "--json", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    startup = figures["startup"]
    assert startup["serve_to_ready_s"] > 0 and startup["idle_rss_mb"] > 0 and startup["idle_compute_rss_mb"] > 0
    assert 0 < startup["idle_total_pss_mb"] < startup["idle_rss_mb"] + startup["idle_compute_rss_mb"] + 50
    store = figures["store"]
    assert store["stored_jobs"] == 10_000
    assert store["first_page_ms_p50"] > 0 and store["rss_mb"] > 0 and store["total_pss_mb"] > 0
    assert "GET /jobs page of 100, 10,000 jobs" in result.stdout
    assert "idle node memory, PSS of all its processes" in result.stdout


def test_a_figure_is_its_first_number_not_a_labels_digits() -> None:
    assert first_number("p50 11.4 / p90 13.3 ms") == 11.4
    assert first_number("141.9 jobs/s, p50 3663.1 ms") == 141.9
    assert first_number("-2.5 s") == -2.5
    assert first_number("skipped: no docker") is None


def test_unknown_sections_are_refused() -> None:
    result = bench("--only", "nope")
    assert result.returncode == 2
    assert "unknown section(s) nope" in result.stderr


def test_cli_wall_times_and_the_comparison_with_an_earlier_run(tmp_path: Path) -> None:
    earlier = tmp_path / "earlier.json"
    first = bench("--quick", "--only", "cli", "--json", str(earlier))
    assert first.returncode == 0, first.stderr
    figures = json.loads(earlier.read_text())["cli"]
    assert 0 < figures["version_client_s"] < 30 and 0 < figures["job_list_s"] < 30
    second = bench("--quick", "--only", "cli", "--compare", str(earlier))
    assert second.returncode == 0, second.stderr
    assert "VS earlier.json" in second.stdout
    rows = [line for line in second.stdout.splitlines() if line.startswith("CLI: ")]
    assert len(rows) == 2 and all(re.search(r" x\d+\.\d\d$", row) for row in rows), second.stdout


def test_ratios_pair_figures_by_name_and_skip_what_only_one_run_measured() -> None:
    rows = [("CLI: version --client, wall, median", "0.2 s", ""), ("serve to ready", "2 s", "")]
    earlier = {"cli": {"version_client_s": 0.4, "job_list_s": 0.5}}
    assert ratios(rows, earlier) == {"CLI: version --client, wall, median": "x0.50"}


def test_saturation_figures(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = bench("--quick", "--only", "saturation", "--json", str(out))
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["saturation"]
    assert [row["case"] for row in rows] == [
        "noop, 10m CPU (capacity never binds)",
        "noop, default resources (saturated)",
        "wasm hello, 100m CPU",
    ]
    assert all(row["completed"] == row["jobs"] == 300 and row["completed_per_s"] > 0 for row in rows), rows
    assert "saturated / unbound" in result.stdout


def test_quick_many_nodes_figures(tmp_path: Path) -> None:
    """An orchestrator with 1 and then 100 simulated nodes: every figure present and sane."""
    out = tmp_path / "figures.json"
    result = bench("--quick", "--only", "nodes", "--json", str(out))
    assert result.returncode == 0, result.stderr
    nodes = json.loads(out.read_text())["nodes"]
    assert nodes["nodes"] == 100 and nodes["heartbeat_s"] == 15.0
    assert nodes["jobs"] == nodes["completed"] == 300
    assert nodes["one_node_completed_per_s"] > 0 and nodes["completed_per_s"] > 0
    assert nodes["alone_cpu_pct"] >= 0 and 0 < nodes["idle_cpu_pct"] < 200
    assert 0 < nodes["node_list_ms_p50"] <= nodes["node_list_ms_p90"]
    assert nodes["rss_mb"] > nodes["alone_rss_mb"] > 0
    assert "GET /orchestrator/nodes, 100 simulated nodes" in result.stdout
    assert "idle orchestrator CPU, 100 simulated nodes heartbeating every 15 s" in result.stdout
