"""Orchestrators' NATS servers in a cluster (``Orchestrator.Cluster``): real nats-server processes routing to each
other, clients failing over between them, a compute node's connection handshaking again on the server that remains,
and the cluster settings checked so that no value can write anything but itself into nats-server's config file."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import nats
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from bacalhau.compute.connection import ConnectionConfig, OrchestratorConnection
from bacalhau.compute.store import ComputeTx, ExecutionStore
from bacalhau.config.model import BacalhauConfig
from bacalhau.errors import ConfigurationError
from bacalhau.models.node import NodeInfo
from bacalhau.node import Node
from bacalhau.transport import envelope, messages, subjects
from bacalhau.transport.natsserver import (
    MAX_ADDRESS,
    MAX_PEERS,
    Address,
    ClusterSettings,
    EmbeddedNatsServer,
    _quote,
    _refusal,
    _server_config,
    cluster_settings,
    free_port,
    parse_address,
    route_password,
)
from bacalhau.transport.stream import batch_request
from bacalhau.transport.tls import server_tls
from tests.certs import TestCA

LOCAL = "127.0.0.1"
DEADLINE = 20.0


async def within(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = DEADLINE) -> None:
    """Wait until the async ``condition`` holds, failing with ``what`` at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        await asyncio.sleep(0.05)


class Servers:
    """Embedded servers of one cluster, each on free ports, stopped (and their clients closed) at the end."""

    def __init__(self, root: Path, stack: AsyncExitStack, token: str = "", tls_ca: TestCA | None = None) -> None:
        self.root = root
        self.stack = stack
        self.token = token
        self.ca = tls_ca
        self.route_ports: list[int] = []

    def reserve(self, count: int) -> list[int]:
        """Cluster ports for ``count`` servers, chosen before any starts so that each can list all of them."""
        ports = [free_port(LOCAL) for _ in range(count)]
        self.route_ports += ports
        return ports

    async def start(
        self, route_port: int, peers: list[int] | None = None, name: str = "bacalhau"
    ) -> EmbeddedNatsServer:
        listed = self.route_ports if peers is None else peers
        cluster = cluster_settings(name, LOCAL, route_port, "", [f"{LOCAL}:{port}" for port in listed])
        tls = None
        if self.ca is not None:
            files = self.ca.issue(f"server {route_port}")
            tls = server_tls(str(files.cert), str(files.key), ca=str(self.ca.cert))
        server = EmbeddedNatsServer(
            LOCAL, 0, self.root / f"server-{route_port}", token=self.token, tls=tls, cluster=cluster
        )
        await server.start()
        self.stack.push_async_callback(server.stop)
        return server

    async def client(self, *servers: EmbeddedNatsServer, **options: Any) -> NATS:
        tls = servers[0].tls.local_client() if servers[0].tls is not None else None
        client = await nats.connect(
            servers=[server.client_url for server in servers],
            token=self.token or None,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.1,
            **({"tls": tls.context, "tls_handshake_first": True} if tls else {}),
            **options,
        )
        self.stack.push_async_callback(client.close)
        return client


@asynccontextmanager
async def cluster(tmp_path: Path, token: str = "", ca: TestCA | None = None) -> AsyncIterator[Servers]:
    async with AsyncExitStack() as stack:
        yield Servers(tmp_path, stack, token, ca)


async def answering(client: NATS, subject: str, answer: bytes) -> None:
    async def reply(msg: Msg) -> None:
        await msg.respond(answer + b" to " + msg.data)

    await client.subscribe(subject, cb=reply)
    await client.flush()


async def routed(requester: NATS, subject: str, expected: bytes) -> None:
    """Wait until a request from ``requester`` reaches the responder on ``subject`` (on another server)."""

    async def answered() -> bool:
        try:
            reply = await requester.request(subject, b"ping", timeout=0.5)
        except (NoRespondersError, NatsTimeoutError):
            return False
        assert reply.data == expected + b" to ping"
        return True

    await within(answered, f"a route to the responder on {subject}")


# ---- (a) messages and requests cross the cluster


async def test_three_servers_carry_messages_and_requests_between_their_clients(tmp_path: Path) -> None:
    async with cluster(tmp_path, token='to"k}en\n') as servers:
        ports = servers.reserve(3)
        a, b, c = [await servers.start(port) for port in ports]
        on_a, on_b, on_c = [await servers.client(server) for server in (a, b, c)]
        await answering(on_a, "orchestrator.ctrl", b"a")
        await routed(on_c, "orchestrator.ctrl", b"a")
        await routed(on_b, "orchestrator.ctrl", b"a")

        heard = await on_a.subscribe("bacalhau.global.compute.*.out.msgs")
        await on_a.flush()
        await within(lambda: _delivered(on_c, heard, b"probe"), "a subscription to reach server c")
        for sender, text in ((on_b, b"from b"), (on_c, b"from c")):
            await sender.publish("bacalhau.global.compute.n1.out.msgs", text)
            await sender.flush()
            assert (await heard.next_msg(timeout=5)).data == text

        assert a.config_path.read_text().count("bacalhau:" + route_password('to"k}en\n') + "@") == 3
        assert a.config_path.read_text().count(_quote('to"k}en\n')) == 1  # the clients' token; routes have a hash


async def _delivered(sender: NATS, subscription: Any, probe: bytes) -> bool:
    await sender.publish("bacalhau.global.compute.probe.out.msgs", probe)
    await sender.flush()
    try:
        while (await subscription.next_msg(timeout=0.2)).data != probe:
            pass
    except NatsTimeoutError:
        return False
    return True


async def test_routes_with_tls_both_ways(tmp_path: Path, test_ca: TestCA) -> None:
    async with cluster(tmp_path, token="t", ca=test_ca) as servers:
        a, b = [await servers.start(port) for port in servers.reserve(2)]
        assert "verify: true" in a.config_path.read_text().split("cluster {")[1]
        on_a, on_b = await servers.client(a), await servers.client(b)
        await answering(on_b, "tls.request", b"b")
        await routed(on_a, "tls.request", b"b")


async def test_a_route_with_the_wrong_token_is_refused_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bacalhau.transport.natsserver")
    async with cluster(tmp_path, token="right") as servers:
        port_a, port_b = servers.reserve(2)
        a = await servers.start(port_a)
        on_a = await servers.client(a)
        servers.token = "wrong"
        b = await servers.start(port_b)
        on_b = await servers.client(b)
        await answering(on_a, "secret.request", b"a")

        async def refused() -> bool:
            return "every orchestrator of a cluster needs the same Orchestrator.Auth.Token" in caplog.text

        await within(refused, "the refused route to be logged")
        assert "refused a node connection" not in caplog.text  # a route is not taken for a compute node
        with pytest.raises(NoRespondersError):
            await on_b.request("secret.request", b"ping", timeout=0.5)


# ---- (b) a peer started later joins; one peer is enough


async def test_a_server_started_later_joins_and_a_third_learns_of_it_from_one_peer(tmp_path: Path) -> None:
    async with cluster(tmp_path) as servers:
        port_a, port_b, port_c = servers.reserve(3)
        a = await servers.start(port_a, peers=[port_a, port_b])  # b is not up yet: a dials it until it is
        on_a = await servers.client(a)
        await answering(on_a, "late.request", b"a")

        b = await servers.start(port_b, peers=[])  # b dials nobody: a's route reaches it
        on_b = await servers.client(b)
        await routed(on_b, "late.request", b"a")

        c = await servers.start(port_c, peers=[port_b])  # c knows b alone, and learns of a from it
        on_c = await servers.client(c)
        await answering(on_c, "third.request", b"c")
        await routed(on_a, "third.request", b"c")
        await routed(on_c, "late.request", b"a")


# ---- (c) clients fail over


async def test_a_client_learns_the_other_servers_and_moves_to_one_when_its_own_is_killed(tmp_path: Path) -> None:
    async with cluster(tmp_path) as servers:
        a, b = [await servers.start(port) for port in servers.reserve(2)]
        reconnected = asyncio.Event()

        async def on_reconnect() -> None:
            reconnected.set()

        client = await servers.client(a, reconnected_cb=on_reconnect)  # told of a alone
        other = await servers.client(b)
        await answering(client, "failover.request", b"client")
        await routed(other, "failover.request", b"client")

        async def discovered() -> bool:
            return any(url.port == b.port for url in client.discovered_servers)

        await within(discovered, "the client to learn of server b")

        assert a._process is not None
        a._process.kill()
        await asyncio.wait_for(reconnected.wait(), DEADLINE)
        assert client.connected_url is not None and client.connected_url.port == b.port
        await routed(other, "failover.request", b"client")  # its subscription moved with it


# ---- a compute node's connection fails over, handshakes again, and its streams go on


class FakeOrchestrator:
    """A plain NATS client answering a compute node's handshakes and heartbeats and acknowledging its stream."""

    def __init__(self, client: NATS, node_id: str) -> None:
        self.client = client
        self.node_id = node_id
        self.handshakes = 0
        self.reports: list[dict[str, Any]] = []

    async def start(self) -> None:
        await self.client.subscribe(subjects.control(self.node_id), cb=self._control)
        await self.client.subscribe(subjects.to_orchestrator(self.node_id), cb=self._stream)
        await self.client.flush()

    async def _control(self, msg: Msg) -> None:
        request = envelope.decode(msg.data)
        reply: dict[str, Any] = {}
        if request["Type"] == "Handshake":
            self.handshakes += 1
            reply = messages.HandshakeResponse(
                accepted=True, orchestrator_epoch="epoch-1", last_compute_seq_num=len(self.reports)
            ).to_wire()
        elif request["Type"] == "Heartbeat":
            reply = messages.HeartbeatResponse().to_wire()
        await msg.respond(envelope.encode(reply))

    async def _stream(self, msg: Msg) -> None:
        batch = envelope.decode(msg.data)
        for item in batch["Messages"]:
            if item["Seq"] == len(self.reports) + 1:
                self.reports.append(item["Message"])
        await msg.respond(envelope.encode({"Ack": len(self.reports)}))

    async def send(self, seq: int, message: dict[str, Any]) -> dict[str, Any]:
        request = batch_request("epoch-1", [(seq, envelope.message_text(message))], 1 << 20)
        return envelope.decode((await self.client.request(subjects.to_compute(self.node_id), request, timeout=5)).data)


async def test_a_compute_node_on_a_killed_server_handshakes_again_on_another_and_its_streams_go_on(
    tmp_path: Path,
) -> None:
    node_id = "node-1"
    async with cluster(tmp_path, token="token") as servers:
        a, b = [await servers.start(port) for port in servers.reserve(2)]
        orchestrator = FakeOrchestrator(await servers.client(b), node_id)
        await orchestrator.start()
        store = ExecutionStore(tmp_path / "compute.db", durable=False)
        await store.open()
        servers.stack.callback(store.close)
        received: list[dict[str, Any]] = []

        def handle(_tx: ComputeTx, _peer: str, message: dict[str, Any]) -> None:
            received.append(message)

        connection = OrchestratorConnection(
            ConnectionConfig([a.client_url], heartbeat_interval=0.2, token="token"),
            store,
            lambda: NodeInfo(node_id=node_id),
            lambda: messages.HeartbeatRequest(node_id=node_id),
            handle,
            lambda _key: None,
        )
        connection.start()
        servers.stack.push_async_callback(connection.stop)
        assert await connection.wait_connected(DEADLINE)
        assert connection.nats is not None and connection.nats.connected_url is not None
        assert connection.nats.connected_url.port == a.port and orchestrator.handshakes == 1

        await store.transact(lambda tx: tx.report({"Type": "Report", "N": 1}))
        assert (await orchestrator.send(1, {"Type": "Order", "N": 1}))["Ack"] == 1

        async def reported(count: int) -> bool:
            return len(orchestrator.reports) == count

        await within(lambda: reported(1), "the first report")

        async def discovered() -> bool:
            nc = connection.nats
            return nc is not None and any(url.port == b.port for url in nc.discovered_servers)

        await within(discovered, "the node to learn of server b")

        assert a._process is not None
        a._process.kill()

        async def handshook_again() -> bool:
            return orchestrator.handshakes == 2

        await within(handshook_again, "a handshake over server b")
        assert connection.nats.connected_url.port == b.port

        await store.transact(lambda tx: tx.report({"Type": "Report", "N": 2}))
        await within(lambda: reported(2), "the second report")
        assert [report["N"] for report in orchestrator.reports] == [1, 2]

        async def ordered() -> bool:
            return (await orchestrator.send(2, {"Type": "Order", "N": 2}))["Ack"] == 2

        await within(ordered, "the second order")
        assert [message["N"] for message in received] == [1, 2]


# ---- (d) bad settings are configuration errors


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"port": 6222}, "Orchestrator.Cluster.Port is set without Orchestrator.Cluster.Name"),
        ({"name": "c"}, "Orchestrator.Cluster.Name is set without Orchestrator.Cluster.Port"),
        ({"peers": ["h:6222"]}, "Orchestrator.Cluster.Peers is set, but this orchestrator is in no cluster"),
        ({"host": "10.0.0.1"}, "Orchestrator.Cluster.Host is set, but"),
        ({"name": "two words", "port": 6222}, "is not a cluster name"),
        ({"name": "x" * 65, "port": 6222}, "is not a cluster name"),
        ({"name": "c", "port": 6222, "peers": ["h"]}, "Orchestrator.Cluster.Peers[0]: 'h' has no port"),
        ({"name": "c", "port": 6222, "peers": ["h:1", "h:0"]}, "Peers[1]: 'h:0' has no valid port"),
        ({"name": "c", "port": 6222, "peers": ["h:70000"]}, "has no valid port"),
        ({"name": "c", "port": 6222, "peers": ["tls://h:6222"]}, "is not an address"),
        ({"name": "c", "port": 6222, "peers": ["nats://u:p@h:6222"]}, "is not an address"),
        ({"name": "c", "port": 6222, "peers": ["nats://h:6222/path"]}, "is not an address"),
        ({"name": "c", "port": 6222, "peers": ["-h:6222"]}, "has no valid host name or IP address"),
        ({"name": "c", "port": 6222, "peers": ["300.1.1.1:6222"]}, "has no valid host name or IP address"),
        ({"name": "c", "port": 6222, "peers": ["[::g]:6222"]}, "is not an address"),
        ({"name": "c", "port": 6222, "peers": ["h:6222"] * (MAX_PEERS + 1)}, f"at most {MAX_PEERS} are allowed"),
        ({"name": "c", "port": 6222, "peers": ["a" * MAX_ADDRESS + ":1"]}, f"longer than {MAX_ADDRESS} characters"),
        ({"name": "c", "port": 6222, "advertise": "h:1:2"}, "Orchestrator.Cluster.Advertise"),
        ({"name": "c", "port": 6222, "host": "a b"}, "Orchestrator.Cluster.Host"),
    ],
)
def test_bad_cluster_settings_are_configuration_errors(settings_: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        cluster_settings(**settings_)
    assert message in caught.value.message and caught.value.hint
    assert len(caught.value.message) < 300


def test_good_cluster_settings() -> None:
    assert cluster_settings() is None
    made = cluster_settings(
        "prod.eu-1",
        "",
        6222,
        "orch-1.example.com",
        ["nats://orch-1.example.com:6222", "10.0.0.2:6222", "[fd00::3]:6222", " orch-4:6222 ", "10.0.0.2:6222"],
    )
    assert made == ClusterSettings(
        "prod.eu-1",
        6222,
        "",
        Address("orch-1.example.com", 6222),
        (
            Address("orch-1.example.com", 6222),
            Address("10.0.0.2", 6222),
            Address("fd00::3", 6222),
            Address("orch-4", 6222),
        ),
    )
    text = _server_config(
        "0.0.0.0", 4222, "", 1024, None, made, parse_address("nats.example.com", "x", default_port=4222)
    )
    assert 'client_advertise: "nats.example.com:4222"' in text
    assert '"nats://[fd00::3]:6222"' in text and "authorization" not in text and 'listen: "0.0.0.0:6222"' in text


def test_a_bad_advertised_address_stops_the_node_before_anything_starts(tmp_path: Path) -> None:
    for bad in ({"Orchestrator.Advertise": "nats://h:4222/x"}, {"Orchestrator.Cluster.Peers": ["h:6222"]}):
        config = BacalhauConfig.defaults().with_settings(
            {"DataDir": str(tmp_path), "Orchestrator.Enabled": True, "API.Port": free_port(LOCAL), **bad}
        )
        with pytest.raises(ConfigurationError, match=next(iter(bad))):
            asyncio.run(Node(config).start())


async def test_a_cluster_port_taken_or_the_client_port_is_refused_at_start(tmp_path: Path) -> None:
    client_port = free_port(LOCAL)
    same = EmbeddedNatsServer(LOCAL, client_port, tmp_path / "same", cluster=cluster_settings("c", "", client_port))
    with pytest.raises(ConfigurationError, match=r"is Orchestrator\.Port too"):
        await same.start()
    with socket.socket() as taken:
        taken.bind((LOCAL, 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = EmbeddedNatsServer(LOCAL, 0, tmp_path / "busy", cluster=cluster_settings("c", "", port))
        with pytest.raises(ConfigurationError, match=f"cluster port {port} is already in use"):
            await busy.start()
    assert same._process is None and busy._process is None


@pytest.mark.parametrize(
    ("line", "meaning"),
    [
        ("[1] [ERR] 127.0.0.1:5 - rid:6 - authentication error", "needs the same Orchestrator.Auth.Token"),
        ("[1] [ERR] 127.0.0.1:5 - rid:8 - Route Error 'Authorization Violation'", "needs the same Orchestrator.Auth"),
        ("[1] [ERR] 127.0.0.1:5 - rid:8 - TLS route handshake error: bad certificate", "failed its TLS handshake"),
        ("[1] [ERR] Error trying to connect to route (attempt 7): dial tcp: refused", "cannot be reached (yet)"),
        ("[1] [ERR] 127.0.0.1:5 - cid:6 - authentication error", "refused a node connection"),
        ("[1] [INF] 127.0.0.1:5 - rid:6 - Route connection created", None),
    ],
)
def test_what_nats_server_says_about_routes_is_told_apart_from_clients(line: str, meaning: str | None) -> None:
    said = _refusal(line)
    assert (said is None) if meaning is None else (said is not None and meaning in said)


# ---- (e) hostile values never change the config file's shape

FRAGMENTS = ['"', "\\", "\n", "\r", "\x00", "}", "{", "]", "[", "#", "//", ";", ":", "=", " ", "\t", "$HOME", "\u2028"]
hostile = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=12).map("".join),
    st.builds(lambda head, count: head + "a" * count, st.text(max_size=8), st.integers(0, 2 * MAX_ADDRESS)),
    st.builds(lambda inner, port: f"nats://{inner}:{port}", st.text(max_size=20), st.integers(0, 70000)),
)
names = st.one_of(hostile, st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True))
peer_addresses = st.one_of(
    hostile,
    st.builds(
        lambda host, port: f"{host}:{port}",
        st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
        st.integers(1, 65535),
    ),
    st.ip_addresses(v=4).map(lambda ip: f"nats://{ip}:6222"),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]:6222"),
)
STRUCTURE = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def skeleton(text: str) -> str:
    """The config text with every quoted string emptied: its shape, whatever the values."""
    return STRUCTURE.sub('""', text)


def expected_skeleton(peers: int, advertise: bool, token: bool) -> str:
    """The shape of the config of a cluster of ``peers`` routes made from benign values."""
    made = cluster_settings("c", "", 6222, "h:1" if advertise else "", [f"h{index}:6222" for index in range(peers)])
    return skeleton(_server_config("0.0.0.0", 4222, "t" if token else "", 1024, None, made))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=names,
    peers=st.lists(peer_addresses, max_size=4),
    advertise=st.one_of(hostile, peer_addresses),
    token=hostile,
    host=st.one_of(hostile, st.just("")),
)
def test_hostile_cluster_settings_are_refused_or_written_as_data(
    name: str, peers: list[str], advertise: str, token: str, host: str
) -> None:
    try:
        made = cluster_settings(name, host, 6222, advertise, peers)
    except ConfigurationError as error:
        assert error.message and len(error.message) < 400  # said briefly, never a traceback
        return
    if made is None:
        return
    event("written")
    text = _server_config("0.0.0.0", 4222, token, 1024, None, made)
    assert skeleton(text) == expected_skeleton(len(made.peers), made.advertise is not None, bool(token))
    for value in STRUCTURE.findall(text):
        assert value.isascii() and value.isprintable()
    for peer in made.peers:
        assert re.fullmatch(r"[A-Za-z0-9.:-]+", peer.host) and 0 < peer.port < 65536


@settings(max_examples=200, deadline=None)
@given(peer=peer_addresses)
def test_a_peer_is_refused_or_nothing_but_a_host_and_port(peer: str) -> None:
    try:
        address = parse_address(peer, "Orchestrator.Cluster.Peers[0]")
    except ConfigurationError as error:
        assert "Orchestrator.Cluster.Peers[0]" in error.message and error.hint
        return
    assert re.fullmatch(r"nats://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}", address.url())
    assert address.host in peer and str(address.port) in peer


@settings(max_examples=200, deadline=None)
@given(token=hostile, peers=st.lists(peer_addresses, max_size=3))
def test_any_token_leaves_the_cluster_block_as_it_is(token: str, peers: list[str]) -> None:
    """The token reaches the file only quoted (for clients) and as a hex digest (for routes)."""
    try:
        made = cluster_settings("c", "", 6222, "", peers)
    except ConfigurationError:
        return
    text = _server_config("0.0.0.0", 4222, token, 1024, None, made)
    assert skeleton(text) == expected_skeleton(len(made.peers) if made else 0, False, bool(token))
    if token:
        assert f"authorization {{\n  token: {_quote(token)}\n}}" in text
