"""``config set/list``, profiles and ``version`` as real CLI processes, against a real ``bacalhau serve``.

The CLI runs with its own data directory (config file and profiles) and without the BACALHAU_API_* variables the
node fixtures set, so that only the flags, profiles and files under test say where it connects.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from bacalhau.version import API_VERSION
from tests.conftest import ServeProcess

pytestmark = pytest.mark.e2e


def bacalhau(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: no BACALHAU_* settings but its own $BACALHAU_DIR and ``env``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("BACALHAU_")}
    environment.update({"BACALHAU_DIR": str(data_dir), **(env or {})})
    result = subprocess.run(
        [sys.executable, "-m", "bacalhau", *args],
        env=environment, capture_output=True, text=True, input=input, timeout=60, cwd=data_dir.parent,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"bacalhau {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    assert "Traceback" not in result.stderr
    return result


def closed_port() -> int:
    """A loopback port with nothing listening (free when the kernel chose it, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def config_values(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    listed = json.loads(bacalhau(data_dir, *args, "config", "list", "--output", "json", env=env).stdout)
    return {entry["Key"]: entry["Value"] for entry in listed}


def test_config_set_then_list_then_serve_from_the_file(tmp_path: Path) -> None:
    """What config set writes, config list reads back in precedence order, and a node starts from it."""
    client = tmp_path / "client"
    node_file = tmp_path / "node.yaml"
    written = bacalhau(client, "config", "set", "NameProvider=hostname")
    assert written.stdout.strip() == f"Writing config to {client / 'config.yaml'}"
    bacalhau(client, "config", "set", "--config", str(node_file), "labels=team=blue,tier=gold")
    bacalhau(client, "config", "set", "--config", str(node_file), "Compute.Heartbeat.Interval=2000ms")
    assert yaml.safe_load(node_file.read_text()) == {
        "compute": {"heartbeat": {"interval": "2s"}},
        "labels": {"team": "blue", "tier": "gold"},
    }

    assert config_values(client)["NameProvider"] == "hostname"
    assert config_values(client, env={"BACALHAU_NAMEPROVIDER": "uuid"})["NameProvider"] == "uuid"
    assert config_values(client, "-c", "NameProvider=puuid")["NameProvider"] == "puuid"
    from_node_file = config_values(client, "-c", str(node_file))
    assert from_node_file["Labels"] == {"team": "blue", "tier": "gold"}
    assert from_node_file["NameProvider"] == "puuid"  # an explicit file replaces $BACALHAU_DIR/config.yaml

    refused = bacalhau(client, "config", "set", "Compute.Heartbeat=2s", check=False)
    assert refused.returncode == 1
    assert 'Error: "compute.heartbeat" is not a valid config key' in refused.stderr

    node = ServeProcess(tmp_path / "node", "--orchestrator", "--compute")
    node.config = ["-c", str(node_file)]
    try:
        node.start()
        [state] = json.loads(node.cli("node", "list", "--output", "json").stdout)
        assert {"team": "blue", "tier": "gold"}.items() <= state["Info"]["Labels"].items()
        served = json.loads(node.cli("agent", "config", "--output", "json").stdout)
        assert served["Compute"]["Heartbeat"]["Interval"] == "2s"
    finally:
        node.stop()


def test_profiles_point_the_cli_at_a_node(shared_node: ServeProcess, tmp_path: Path) -> None:
    """--profile, BACALHAU_PROFILE and the selected profile all reach the node; flags and env still win."""
    client = tmp_path / "client"
    marker = uuid.uuid4().hex[:12]
    noop = {"Type": "batch", "Labels": {"marker": marker}, "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    job_id = shared_node.cli("job", "run", "--wait=false", input=json.dumps(noop)).stdout.strip()

    saved = bacalhau(client, "profile", "save", "local", "--endpoint", f"127.0.0.1:{shared_node.port}")
    assert saved.stdout == 'Profile "local" saved\n'
    listed = bacalhau(client, "job", "list", "--labels", f"marker={marker}", "--output", "json", "--profile", "local")
    assert [job["ID"] for job in json.loads(listed.stdout)] == [job_id]
    assert bacalhau(client, "--profile", "local", "agent", "alive").stdout.strip() == "Status: OK"
    assert bacalhau(client, "agent", "alive", env={"BACALHAU_PROFILE": "local"}).stdout.strip() == "Status: OK"

    dead_port = closed_port()
    bacalhau(client, "profile", "save", "dead", "--endpoint", f"http://127.0.0.1:{dead_port}")
    refused = bacalhau(client, "agent", "alive", "--profile", "dead", check=False)
    assert refused.returncode == 1
    assert f"Error: cannot reach the Bacalhau API at http://127.0.0.1:{dead_port}" in refused.stderr
    assert 'profile "dead"' in refused.stderr
    port = str(shared_node.port)
    assert bacalhau(client, "--profile", "dead", "--api-port", port, "agent", "alive").stdout.strip() == "Status: OK"
    from_env = bacalhau(client, "agent", "alive", env={"BACALHAU_PROFILE": "dead", "BACALHAU_API_PORT": port})
    assert from_env.stdout.strip() == "Status: OK"

    assert bacalhau(client, "profile", "select", "local").stdout == 'Switched to profile "local"\n'
    assert bacalhau(client, "agent", "alive").stdout.strip() == "Status: OK"
    current = bacalhau(client, "profile", "list", "--output", "json").stdout
    assert {entry["name"]: entry["current"] for entry in json.loads(current)} == {"dead": "", "local": "*"}


def test_version_against_the_node(shared_node: ServeProcess, tmp_path: Path) -> None:
    """CLIENT and SERVER columns; json and yaml with both versions; the client alone when there is no server."""
    client = tmp_path / "client"
    bacalhau(client, "profile", "save", "local", "--endpoint", f"127.0.0.1:{shared_node.port}", "--select")
    table = bacalhau(client, "version").stdout.splitlines()
    assert table[0].split() == ["CLIENT", "SERVER"]
    assert table[1].split() == [API_VERSION, API_VERSION]
    for output, parse in (("json", json.loads), ("yaml", yaml.safe_load)):
        document = parse(bacalhau(client, "version", "--output", output).stdout)
        assert document["serverVersion"]["GitCommit"] == document["clientVersion"]["GitCommit"]
        assert document["serverVersion"]["GitVersion"] == API_VERSION

    alone = bacalhau(client, "version", "--api-port", str(closed_port()))
    assert alone.stdout.split() == ["CLIENT", API_VERSION]
    assert "Warning: could not get the server version" in alone.stderr


def test_a_node_starts_from_the_originals_config_files_and_names_what_it_ignores(tmp_path: Path) -> None:
    """An orchestrator behind a reverse proxy with a managed S3 publisher, as the original's suites start one: it
    serves, says once which settings it ignores, and shows them (its token masked) in its config."""
    data = Path(__file__).resolve().parents[1] / "data" / "config"
    node = ServeProcess(tmp_path / "node", "--orchestrator")
    node.config = [
        "-c",
        str(data / "orchestrator_reverse_proxy.yaml"),
        "-c",
        str(data / "orchestrator_managed_publisher.yaml"),
    ]
    try:
        node.start()
        ignored = [line for line in node.log().splitlines() if "ignoring settings" in line]
        assert len(ignored) == 1
        assert (
            "WRN ignoring settings for features this node does not have: Orchestrator.SupportReverseProxy, "
            "Publishers.Types.S3Managed.Bucket, Publishers.Types.S3Managed.Key, Publishers.Types.S3Managed.Region, "
            "Publishers.Types.S3Managed.Endpoint component=node"
        ) in ignored[0]
        served = json.loads(node.cli("agent", "config", "--output", "json").stdout)
        assert served["Orchestrator"]["SupportReverseProxy"] is True
        assert served["Publishers"]["Types"]["S3Managed"]["Bucket"] == "results-bucket"
        assert served["Orchestrator"]["Auth"]["Token"] == "********" and served["Logging"]["Level"] == "debug"
    finally:
        node.stop()
