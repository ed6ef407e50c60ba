"""Published ports end to end: a web server in a container answers on the host port its node gave it, the API and
``job describe`` say which, and once the job is stopped the container is gone and the port is free again."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import docker
from bacalhau.compute.ports import is_bindable
from tests.conftest import ServeProcess, wait_until
from tests.docker.conftest import IMAGE, containers_labelled
from tests.helpers import executions, submit, wait_for_state

pytestmark = pytest.mark.e2e

RANGE = 40


def free_range() -> int:
    """The start of ``RANGE`` ports nothing listens on now (the allocator skips any taken meanwhile)."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind(("", 0))
        start = int(probe.getsockname()[1])
        probe.close()
        if start + RANGE <= 65535 and all(is_bindable(start + i) for i in range(RANGE)):
            return start
    raise AssertionError("no free range of ports")


@pytest.fixture
def port_node(docker_host: str, serve_factory: Callable[..., ServeProcess]) -> tuple[ServeProcess, int]:
    start = free_range()
    node = serve_factory(
        "--orchestrator", "--compute",
        "-c", f"Compute.Network.PortRangeStart={start}",
        "-c", f"Compute.Network.PortRangeEnd={start + RANGE - 1}",
        name="port-node",
    )  # fmt: skip
    return node, start


def web_service(network: dict[str, Any], script: str) -> dict[str, Any]:
    task = {
        "Name": "main",
        "Engine": {
            "Type": "docker",
            "Params": {"Image": IMAGE, "Entrypoint": ["sh", "-c"], "Parameters": [script]},
        },
        "Network": network,
    }
    return {"Type": "service", "Count": 1, "Tasks": [task]}


def answers(url: str) -> str:
    try:
        response = httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return ""
    return response.text if response.status_code == 200 else ""


def test_a_web_server_in_a_container_answers_on_its_host_port(
    port_node: tuple[ServeProcess, int], engine: docker.DockerClient
) -> None:
    node, start = port_node
    script = (
        'mkdir /www && echo "hello from $BACALHAU_HOST_PORT_WEB" > /www/index.html && '
        "exec httpd -f -p $BACALHAU_PORT_WEB -h /www"
    )
    job_id = submit(node.url, web_service({"Type": "Bridge", "Ports": [{"Name": "WEB", "Target": 8080}]}, script))
    wait_for_state(node.url, job_id, ("Running",))

    def published() -> list[dict[str, Any]]:
        return [p for e in executions(node.url, job_id) for p in e.get("AllocatedPorts") or []]

    ports = wait_until(published, 30, "the execution to record its ports")
    assert len(ports) == 1 and ports[0]["Name"] == "WEB" and ports[0]["Target"] == 8080
    host_port = ports[0]["Static"]
    assert start <= host_port < start + RANGE
    body = wait_until(lambda: answers(f"http://127.0.0.1:{host_port}/index.html"), 30, "the web server to answer")
    assert body == f"hello from {host_port}\n"

    described = node.cli("job", "describe", job_id).stdout
    assert "Published Ports" in described and str(host_port) in described

    node.cli("job", "stop", job_id)
    wait_until(lambda: not containers_labelled(engine, f"bacalhau-jobID={job_id}"), 30, "the container to go")
    wait_until(lambda: is_bindable(host_port), 30, "the host port to be free")
    assert answers(f"http://127.0.0.1:{host_port}/index.html") == ""


def test_two_services_get_different_ports_and_host_mode_listens_on_the_host_port(
    port_node: tuple[ServeProcess, int], engine: docker.DockerClient
) -> None:
    node, start = port_node
    bridge = submit(
        node.url,
        web_service(
            {"Type": "Bridge", "Ports": [{"Name": "WEB", "HostNetwork": "127.0.0.1"}]},
            "mkdir /www && echo bridge > /www/index.html && exec httpd -f -p $BACALHAU_PORT_WEB -h /www",
        ),
    )
    host = submit(
        node.url,
        web_service(
            {"Type": "Host", "Ports": [{"Name": "WEB"}]},
            "mkdir /www && echo host > /www/index.html && exec httpd -f -p $BACALHAU_HOST_PORT_WEB -h /www",
        ),
    )

    def port_of(job_id: str) -> int:
        found = [p["Static"] for e in executions(node.url, job_id) for p in e.get("AllocatedPorts") or []]
        return int(found[0]) if found else 0

    bridge_port = wait_until(lambda: port_of(bridge), 30, "the bridge service's port")
    host_port = wait_until(lambda: port_of(host), 30, "the host service's port")
    assert bridge_port != host_port
    assert {bridge_port, host_port} <= set(range(start, start + RANGE))
    assert wait_until(lambda: answers(f"http://127.0.0.1:{bridge_port}/"), 30, "the bridge service") == "bridge\n"
    assert wait_until(lambda: answers(f"http://127.0.0.1:{host_port}/"), 30, "the host service") == "host\n"
    for job_id in (bridge, host):
        node.cli("job", "stop", job_id)
    for job_id in (bridge, host):
        wait_until(lambda j=job_id: not containers_labelled(engine, f"bacalhau-jobID={j}"), 30, "the containers to go")
