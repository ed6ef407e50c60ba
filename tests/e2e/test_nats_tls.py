"""NATS over TLS between real processes: who gets in, what a client in clear sees, and jobs that run over it."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.certs import TestCA
from tests.conftest import ServeProcess, wait_until
from tests.e2e.cluster import Cluster, orchestrator_tls, settings
from tests.e2e.test_cluster import cluster, noop_job  # noqa: F401 (cluster: the fixture)
from tests.helpers import submit, wait_for_state

pytestmark = pytest.mark.e2e

TOKEN = "node-token"
SECRET = "env-value-only-the-node-may-see"


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "pki")


def completes(url: str, job: dict[str, object]) -> bool:
    return wait_for_state(url, submit(url, job))["State"]["StateType"] == "Completed"


def eavesdropper(nats_url: str) -> socket.socket:
    """A client that speaks NATS in clear, with the right token, and asks for every subject."""
    host, port = nats_url.removeprefix("nats://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    info = sock.recv(65536)
    assert info.startswith(b"INFO ") and b'"tls_required":true' in info
    sock.sendall(b"CONNECT " + json.dumps({"auth_token": TOKEN, "verbose": False}).encode() + b"\r\nSUB > 1\r\n")
    return sock


def test_a_node_that_requires_tls_runs_a_job_that_a_client_in_clear_cannot_see(
    cluster: Cluster,  # noqa: F811
    ca: TestCA,
) -> None:
    orchestrator = cluster.start_orchestrator(*orchestrator_tls(ca), *settings({"Orchestrator.Auth.Token": TOKEN}))
    listener = eavesdropper(cluster.nats_url)
    doubtful = cluster.add_compute("doubtful", *settings({"Compute.Auth.Token": TOKEN}), wait=False)  # no CA
    node = settings({"Compute.TLS.CACert": ca.cert, "Compute.TLS.RequireTLS": True, "Compute.Auth.Token": TOKEN})
    cluster.add_compute("secure", *node)
    assert completes(cluster.url, noop_job(task={"Env": {"SECRET": SECRET}}))
    with listener:
        heard = b"".join(iter(lambda: listener.recv(65536), b""))  # until the server hangs up
    assert heard == b""

    wait_until(lambda: "the orchestrator's TLS certificate is not trusted" in doubtful.log(), 20, "the node to say")
    assert "set Compute.TLS.CACert" in doubtful.log()
    assert "a client failed the TLS handshake" in orchestrator.log()
    assert "doubtful" not in cluster.nodes()


def test_a_node_that_requires_tls_refuses_an_orchestrator_without_it(
    cluster: Cluster,  # noqa: F811
    ca: TestCA,
) -> None:
    orchestrator = cluster.start_orchestrator()
    node = cluster.add_compute(
        "careful", *settings({"Compute.TLS.CACert": ca.cert, "Compute.TLS.RequireTLS": True}), wait=False
    )
    wait_until(lambda: "the orchestrator does not offer TLS" in node.log(), 20, "the node to say why it stays out")
    assert "which this node requires (Compute.TLS.RequireTLS); retrying" in node.log()
    assert "a client opened with TLS, which this server does not serve" in orchestrator.log()
    assert "careful" not in cluster.nodes()


def test_with_client_certificates_only_nodes_with_one_from_the_ca_get_in(
    cluster: Cluster,  # noqa: F811
    ca: TestCA,
) -> None:
    orchestrator = cluster.start_orchestrator(
        *orchestrator_tls(ca, client_certs=True), *settings({"Orchestrator.Auth.Token": TOKEN})
    )
    trusting = {"Compute.TLS.CACert": ca.cert, "Compute.Auth.Token": TOKEN}
    stranger = cluster.add_compute("stranger", *settings(trusting), wait=False)
    pair = ca.issue("member", usages=("client",))
    member = {**trusting, "Compute.TLS.ClientCert": pair.cert, "Compute.TLS.ClientKey": pair.key}
    cluster.add_compute("member", *settings(member))
    assert completes(cluster.url, noop_job())

    wait_until(lambda: "Compute.TLS.ClientCert" in stranger.log(), 20, "the node without a certificate to say why")
    assert "refused a node connection without a valid client certificate" in orchestrator.log()
    assert "stranger" not in cluster.nodes()


def test_nodes_trust_the_systems_store_without_a_ca(
    cluster: Cluster,  # noqa: F811
    ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The original's "default truststore" case: neither side names a CA; the machine trusts it (here through
    SSL_CERT_FILE, which OpenSSL reads as the system's store)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    cluster.start_orchestrator(*orchestrator_tls(ca, trust_ca=False))
    cluster.add_compute("trusting", *settings({"Compute.TLS.RequireTLS": True}))
    assert completes(cluster.url, noop_job())


def test_a_hybrid_node_runs_a_job_over_mutual_tls(tmp_path: Path, ca: TestCA) -> None:
    """Both halves connect to the node's own server (the compute half from its own process), presenting the
    server's certificate."""
    node = ServeProcess(tmp_path / "hybrid", "--orchestrator", "--compute")
    node.config = [*orchestrator_tls(ca, client_certs=True), *settings({"Orchestrator.Auth.Token": TOKEN})]
    try:
        node.start()
        assert completes(node.url, noop_job())
    finally:
        node.stop()
