"""An orchestrator process whose NATS server is in a cluster (``Orchestrator.Cluster``): a compute node that joined
through it learns of the cluster's other server, and when the orchestrator's own server is killed, the node and the
orchestrator both carry on over the other one, and jobs still run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import NoRespondersError

from bacalhau.transport import envelope
from bacalhau.transport.natsserver import EmbeddedNatsServer, cluster_settings, free_port
from tests.conftest import ServeProcess, wait_until
from tests.e2e.cluster import Cluster, settings
from tests.e2e.test_cluster import noop_job
from tests.helpers import submit, wait_for_state

pytestmark = pytest.mark.e2e

LOCAL = "127.0.0.1"
TOKEN = "cluster-token"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    stack = Cluster(tmp_path)
    yield stack
    stack.stop()


def completes(url: str) -> bool:
    return wait_for_state(url, submit(url, noop_job()))["State"]["StateType"] == "Completed"


def nats_server_child(node: ServeProcess) -> int:
    """The pid of the nats-server the node started (its child)."""
    assert node.process is not None
    for child in Path(f"/proc/{node.process.pid}/task/{node.process.pid}/children").read_text().split():
        if Path(f"/proc/{child}/comm").read_text().strip() == "nats-server":
            return int(child)
    raise AssertionError("the orchestrator has no nats-server child")


async def test_jobs_still_run_when_the_orchestrators_own_nats_server_dies(cluster: Cluster, tmp_path: Path) -> None:
    route_a, route_b = free_port(LOCAL), free_port(LOCAL)
    peers = f"{LOCAL}:{route_a},nats://{LOCAL}:{route_b}"
    other = EmbeddedNatsServer(
        LOCAL,
        0,
        tmp_path / "other-server",
        token=TOKEN,
        cluster=cluster_settings("bacalhau", LOCAL, route_b, "", peers.split(",")),
    )
    await other.start()
    try:
        orchestrator = await asyncio.to_thread(
            cluster.start_orchestrator,
            *settings(
                {
                    "Orchestrator.Auth.Token": TOKEN,
                    "Orchestrator.Cluster.Name": "bacalhau",
                    "Orchestrator.Cluster.Host": LOCAL,
                    "Orchestrator.Cluster.Port": route_a,
                    "Orchestrator.Cluster.Peers": peers,
                }
            ),
        )
        # The node is told of the orchestrator's own server alone.
        node = await asyncio.to_thread(cluster.add_compute, "failing-over", *settings({"Compute.Auth.Token": TOKEN}))
        assert await asyncio.to_thread(completes, cluster.url)

        # A client of the other server reaches the orchestrator's subscribers: the servers are routed (and so the
        # node has been told of the other server).
        client = await nats.connect(other.client_url, token=TOKEN, allow_reconnect=False)
        try:
            probe = envelope.encode({"Type": "Probe", "Payload": {}})
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while True:
                try:
                    reply = await client.request("bacalhau.global.compute.nobody.out.ctrl", probe, timeout=5)
                    break
                except NoRespondersError:
                    assert loop.time() < deadline, "the servers did not route to each other"
                    await asyncio.sleep(0.05)
            assert "unknown request 'Probe'" in envelope.decode(reply.data)["Error"]
        finally:
            await client.close()

        os.kill(nats_server_child(orchestrator), signal.SIGKILL)
        moved = f"reconnected to NATS at nats://{LOCAL}:{other.port}; handshaking with the orchestrator again"
        await asyncio.to_thread(wait_until, lambda: moved in node.log(), 30, "the node to move to the other server")
        # The orchestrator's own client moves too (it was told of the other server as well), and takes the node's
        # new handshake: only then is there a node to run a job.
        rejoined = "node failing-over connected (resuming its stream"
        await asyncio.to_thread(
            wait_until, lambda: orchestrator.log().count(rejoined) >= 2, 30, "the orchestrator to take the handshake"
        )
        assert await asyncio.to_thread(completes, cluster.url)
        assert cluster.nodes()["failing-over"]["Connection"] == "CONNECTED"
        assert (
            "the NATS server exited (code -9): compute nodes cannot reach this orchestrator except through the other "
            "servers of its cluster"
        ) in orchestrator.log()
    finally:
        await asyncio.to_thread(cluster.stop)
        await other.stop()


@pytest.mark.parametrize(
    ("values", "said"),
    [
        (
            {
                "Orchestrator.Cluster.Name": "c",
                "Orchestrator.Cluster.Port": 6222,
                "Orchestrator.Cluster.Peers": 'h:6222"\n}\nauthorization { token: x }',
            },
            "Orchestrator.Cluster.Peers[0]: 'h:6222\"\\n}\\nauthorization { token: x }' is not an address",
        ),
        ({"Orchestrator.Cluster.Port": 6222}, "Orchestrator.Cluster.Port is set without Orchestrator.Cluster.Name"),
        ({"Orchestrator.Advertise": "nats://user:pass@h:4222"}, "Orchestrator.Advertise"),
    ],
)
def test_bad_cluster_settings_stop_serve_with_one_clear_error(
    tmp_path: Path, values: dict[str, object], said: str
) -> None:
    config = ("-c", "API.Port=0", "-c", "Orchestrator.Port=0", *settings(values))
    result = subprocess.run(
        [sys.executable, "-m", "bacalhau", *config, "serve", "--orchestrator"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}, "BACALHAU_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert said in result.stderr and "Hint: " in result.stderr
    assert "Traceback" not in result.stderr
