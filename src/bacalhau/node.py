"""Builds and runs a node from its configuration: an orchestrator, a compute node, or both (hybrid)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import shlex
import signal
import socket
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import uvloop
from nats.aio.client import Client as NATS

from bacalhau.api.app import create_app
from bacalhau.api.auth import authorizer_for, sso_settings
from bacalhau.api.context import ApiContext
from bacalhau.compute.admission import AdmissionConfig
from bacalhau.compute.capacity import AllocatedCapacity
from bacalhau.compute.node import ComputeConfig, ComputeNode
from bacalhau.config import BacalhauConfig, parse_duration
from bacalhau.config.kinds import MASK
from bacalhau.errors import BacalhauError, ConfigurationError, Unavailable
from bacalhau.hybrid import UNREACHABLE, ComputeProcess
from bacalhau.identity import node_identity
from bacalhau.lib import tracing
from bacalhau.lib.certs import self_signed, server_context
from bacalhau.lib.httpserver import API_DEADLINES, HttpServer, bind, raise_open_file_limit
from bacalhau.lib.metrics import NodeMetrics
from bacalhau.logs import recent_errors
from bacalhau.models.node import Connection, Membership, NodeInfo, NodeState, NodeType
from bacalhau.models.resources import parse_bytes
from bacalhau.orchestrator.jobs import TaskDefaults
from bacalhau.orchestrator.nodes import NodeManagerConfig
from bacalhau.orchestrator.scheduler import SchedulerConfig
from bacalhau.orchestrator.service import Orchestrator, OrchestratorConfig
from bacalhau.transport.natsserver import EmbeddedNatsServer, cluster_settings
from bacalhau.transport.tls import ClientTls, ServerTls, compute_tls, server_tls
from bacalhau.version import build_info, goarch, goos
from bacalhau.webui.server import ApiLocation, WebUiApp, check_backend, parse_listen

log = logging.getLogger(__name__)

RUN_FILE = "bacalhau.run"
SELF_SIGNED_DIR = "tls"  # in the data dir: the API's certificate and key when API.TLS.SelfSigned is set
COMPUTE_CONNECT_TIMEOUT = 30.0
COMPUTE_STOP_TIMEOUT = 30.0


def _job_defaults(config: BacalhauConfig) -> dict[str, TaskDefaults]:
    result = {}
    for kind in ("batch", "ops", "daemon", "service"):
        section = getattr(config.job_defaults, kind)
        task = section.task
        result[kind] = TaskDefaults(
            cpu=task.resources.cpu,
            memory=task.resources.memory,
            disk=task.resources.disk,
            gpu=task.resources.gpu,
            publisher=task.publisher.type,
            execution_timeout=int(parse_duration(task.timeouts.execution_timeout)),
            total_timeout=int(parse_duration(task.timeouts.total_timeout)),
            queue_timeout=int(parse_duration(task.timeouts.queue_timeout)),
            priority=section.priority,
        )
    return result


def store_url(config: BacalhauConfig) -> str:
    """The PostgreSQL URL of Orchestrator.JobStore, or "" for the SQLite file in the data dir."""
    store = config.orchestrator.job_store
    if store.type != "postgres":
        if store.url:
            raise ConfigurationError(
                "Orchestrator.JobStore.URL is set but Orchestrator.JobStore.Type is sqlite",
                hint="set Orchestrator.JobStore.Type=postgres to use that database, or unset the URL",
            )
        return ""
    if not store.url:
        raise ConfigurationError(
            "Orchestrator.JobStore.Type is postgres but Orchestrator.JobStore.URL is not set",
            hint="set it to the database's URL: postgresql://user:password@host:5432/dbname",
        )
    from bacalhau.lib.postgres import check_url

    check_url(store.url)
    return store.url


class DataDirLock:
    """Only one node process may use a data dir at a time."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "bacalhau.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        if self._handle is not None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle = self._path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ConfigurationError(
                f"the data dir {self._path.parent} is in use by another bacalhau process",
                hint="stop the other node, or choose another --data-dir (BACALHAU_DIR)",
            ) from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class Node:
    """One node. With ``compute_process``, a hybrid node runs its compute half in a forked child process (see
    ``bacalhau.hybrid``); otherwise both halves share this process, as devstack's nodes do."""

    def __init__(self, config: BacalhauConfig, *, name: str = "", compute_process: bool = False) -> None:
        self.config = config
        self.data_dir = config.data_path
        self._requested_name = name
        self.node_id = ""
        self.nats_server: EmbeddedNatsServer | None = None
        self.nc: NATS | None = None
        self.orchestrator: Orchestrator | None = None
        self.compute: ComputeNode | None = None
        self.api: HttpServer | None = None
        self.web_ui: HttpServer | None = None
        self._lock = DataDirLock(self.data_dir)
        self._wants_compute_process = compute_process and self.is_orchestrator and self.is_compute
        self._compute_process: ComputeProcess | None = None
        self.self_signed_cert: Path | None = None  # the certificate made for the API, for clients to trust
        self.authorizer = authorizer_for(config.api.auth)  # a bad list of users stops the node before it starts
        self.metrics = NodeMetrics()  # this node's own registry (see bacalhau.lib.metrics)
        self._errors = recent_errors()  # before a fork: the compute process keeps its own
        self._started = 0.0  # time.time() at start, for the uptime /agent/debug shows

    @property
    def is_orchestrator(self) -> bool:
        return self.config.orchestrator.enabled

    @property
    def is_compute(self) -> bool:
        return self.config.compute.enabled

    def prepare(self) -> None:
        """What must happen before the event loop starts: fork the compute process, if this node has one (after
        taking the data dir lock, so that the lock is held until both processes are gone)."""
        if self._wants_compute_process and self._compute_process is None:
            self._lock.acquire()
            self._compute_process = ComputeProcess.fork(self._build_compute, COMPUTE_CONNECT_TIMEOUT)

    async def failure(self) -> str:
        """Wait until part of this node fails on its own (its compute process dies); what happened."""
        if self._compute_process is None:
            await asyncio.Future()  # an in-process node fails by raising: wait forever
        assert self._compute_process is not None
        return await self._compute_process.failure()

    def node_info(self) -> NodeInfo:
        if self.compute is not None:
            return self.compute.node_info()
        if self._compute_process is not None and self.orchestrator is not None:
            joined = self.orchestrator.nodes.get(self.node_id)
            if joined is not None and joined.info.is_compute:
                return joined.info  # what the compute process last told the orchestrator
        return NodeInfo(
            node_id=self.node_id,
            node_type=NodeType.REQUESTER.value,
            labels={"os_type": goos(), "os_arch": goarch(), **self.config.labels},
            supported_protocols=["ncl/v1"],
            bacalhau_version=build_info(),
        )

    def node_state(self) -> NodeState:
        if self.orchestrator is not None:
            known = self.orchestrator.nodes.get(self.node_id)
            if known is not None:
                return known.model_copy(update={"info": self.node_info()})
        connected = self.compute is None or self.compute.connection.connected
        status = (Connection.CONNECTED if connected else Connection.DISCONNECTED).value
        return NodeState(info=self.node_info(), membership=Membership.APPROVED.value, connection=status)

    async def start(self) -> None:
        self._lock.acquire()
        try:
            await self._start()
        except ValueError as exc:  # a setting that parsed as a string but means nothing (a duration, an address)
            await self.stop()
            raise ConfigurationError(f"invalid configuration: {exc}") from None
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        config = self.config
        self.metrics = NodeMetrics()  # afresh at each start: the parts made below register in it
        tracing.setup()  # when the OTEL_* environment asks for traces (after the fork of a compute process, if any)
        ignored = config.unsupported_settings()
        if ignored:
            log.warning("ignoring settings for features this node does not have: %s", ", ".join(ignored))
        tls = self.api_tls()  # before anything starts: a bad certificate is a configuration error
        web_ui = self._web_ui_settings()
        self.node_id, warning = node_identity(self.data_dir, self._requested_name, config.name_provider)
        if warning:
            log.warning(warning)
        orchestrators = list(config.compute.orchestrators)
        if self.is_orchestrator:
            self.nats_server = EmbeddedNatsServer(
                config.orchestrator.host,
                config.orchestrator.port,
                self.data_dir / "orchestrator",
                token=config.orchestrator.auth.token,
                tls=self._server_tls(),
                cluster=cluster_settings(
                    name=config.orchestrator.cluster.name,
                    host=config.orchestrator.cluster.host,
                    port=config.orchestrator.cluster.port,
                    advertise=config.orchestrator.cluster.advertise,
                    peers=config.orchestrator.cluster.peers,
                ),
                advertise=config.orchestrator.advertise,
            )
            await self.nats_server.start()
            self.nc = await self.nats_server.connect_client(f"bacalhau-orchestrator-{self.node_id}")
            orchestrator_config = OrchestratorConfig(
                data_dir=self.data_dir,
                workers=config.orchestrator.scheduler.worker_count,
                node_manager=NodeManagerConfig(
                    disconnect_timeout=parse_duration(config.orchestrator.node_manager.disconnect_timeout),
                    manual_approval=config.orchestrator.node_manager.manual_approval,
                ),
                scheduler=SchedulerConfig(max_retries=config.orchestrator.scheduler.max_retries),
                housekeeping_interval=parse_duration(config.orchestrator.scheduler.housekeeping_interval),
                job_defaults=_job_defaults(config),
                presign_results=not config.publishers.types.s3.pre_signed_url_disabled,
                presign_expiration=int(parse_duration(config.publishers.types.s3.pre_signed_url_expiration)),
                max_count=config.orchestrator.job_limits.max_count,
                store_url=store_url(config),
            )
            self.orchestrator = Orchestrator(orchestrator_config, self.node_info())
            await self.orchestrator.start(self.nc)
            self.orchestrator.register_metrics(self.metrics)
            orchestrators = [self.nats_server.client_url]
        if self._compute_process is not None:
            await self._compute_process.start(self.node_id, orchestrators, COMPUTE_CONNECT_TIMEOUT)
            self.metrics.add_remote(self._compute_process_metrics)
        elif self.is_compute:
            self.compute = self._build_compute(self.node_id, orchestrators)
            self.compute.register_metrics(self.metrics)
            await self.compute.start()
            if self.is_orchestrator and not await self.compute.connection.wait_connected(COMPUTE_CONNECT_TIMEOUT):
                raise Unavailable(UNREACHABLE)
        context = ApiContext(
            node_info=self.node_info,
            node_state=self.node_state,
            config=config.redacted,
            jobs=self.orchestrator.jobs if self.orchestrator else None,
            nodes=self.orchestrator.nodes if self.orchestrator else None,
            logs=self.orchestrator.logs if self.orchestrator else None,
            authorizer=self.authorizer,
            oauth2=sso_settings(config.api.auth),
            metrics=self.metrics,
            debug=self.debug_info,
        )
        sock = bind(config.api.host, config.api.port, "API server", "choose another port with --api-port")
        self.api = HttpServer(create_app(context), sock, "API server", API_DEADLINES, tls=tls, ws_ping_interval=None)
        await self.api.start()
        self._log_access(self.api.port)
        if web_ui is not None:
            await self._start_web_ui(*web_ui, tls)
        self._write_run_file()
        roles = " and ".join(
            r for r, on in (("orchestrator", self.is_orchestrator), ("compute", self.is_compute)) if on
        )
        address = f"{'https' if tls else 'http'}://{config.api.host}:{self.api.port}"
        self._started = time.time()
        log.info("node %s started as %s; API listening on %s", self.node_id, roles, address)

    async def _compute_process_metrics(self) -> bytes:
        if self._compute_process is None:
            return b""
        return str(await self._compute_process.ask("metrics") or "").encode()

    async def debug_info(self) -> dict[str, Any]:
        """What ``/agent/debug`` shows, by component as the original's map of debug providers: this node (uptime, roles,
        version), the orchestrator's broker queues, streams and store, the compute node's (asked of the compute
        process in a hybrid node), a summary of the config (the keys set, secrets masked) and the process's recent
        errors (any configured secret they quote is masked too)."""
        started = self._started or time.time()
        info: dict[str, Any] = {
            "Node": {
                "NodeID": self.node_id,
                "Orchestrator": self.is_orchestrator,
                "Compute": self.is_compute,
                "StartTime": datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z"),
                "UptimeSeconds": round(time.time() - started, 3),
                "Version": build_info().git_version,
            },
        }
        if self.orchestrator is not None:
            info["Orchestrator"] = await self.orchestrator.debug_info()
        errors = self._errors.records()
        if self.compute is not None:
            info["Compute"] = await self.compute.debug_info()
        elif self._compute_process is not None:
            try:
                compute = dict(await self._compute_process.ask("debug") or {})
            except BacalhauError as exc:
                compute = {"Error": exc.message}
            errors += [{**entry, "Process": "compute"} for entry in compute.pop("RecentErrors", [])]
            info["Compute"] = compute
        info["Config"] = self.config.summary()
        info["RecentErrors"] = _scrubbed(sorted(errors, key=lambda entry: entry["Time"]), self.config.secret_strings())
        return info

    def api_tls(self) -> ssl.SSLContext | None:
        """The API's TLS context from API.TLS, or None to serve plain HTTP. As in the original, a certificate and key
        given win over SelfSigned; unlike it, every node serves its API over TLS when told to (the original does
        only on orchestrators), and a certificate made for a node is kept in its data dir (the original makes one in
        /tmp at every start)."""
        tls = self.config.api.tls
        if tls.auto_cert:
            raise ConfigurationError(
                "API.TLS.AutoCert is not supported: this node cannot get certificates from an ACME service such as "
                "Let's Encrypt",
                hint="unset it, and give a certificate you obtained in API.TLS.CertFile and API.TLS.KeyFile, or set "
                "API.TLS.SelfSigned=true",
            )
        if bool(tls.cert_file) != bool(tls.key_file):
            given, missing = ("CertFile", "KeyFile") if tls.cert_file else ("KeyFile", "CertFile")
            raise ConfigurationError(
                f"invalid config: API.TLS.{given} is set without API.TLS.{missing}",
                hint="the API serves TLS with a certificate and its private key: set both, or neither",
            )
        if tls.cert_file:
            return server_context(tls.cert_file, tls.key_file, "API.TLS.CertFile", "API.TLS.KeyFile")
        if not tls.self_signed:
            return None
        hosts = [socket.gethostname(), "localhost", "127.0.0.1", "::1"]
        if self.config.api.host not in ("", "0.0.0.0", "::"):
            hosts.append(self.config.api.host)
        cert, key = self_signed(self.data_dir / SELF_SIGNED_DIR, hosts)
        self.self_signed_cert = cert
        return server_context(str(cert), str(key), "the self-signed certificate", "its key")

    def _web_ui_settings(self) -> tuple[str, int, str] | None:
        """Where the web UI listens and the API it names (WebUI.*), checked before anything starts; None when this
        node serves no UI (it is served by orchestrators, as in the original)."""
        web_ui = self.config.web_ui
        if not web_ui.enabled:
            return None
        if not self.is_orchestrator:
            log.warning("WebUI.Enabled is set, but only an orchestrator serves the web UI: this node does not")
            return None
        host, port = parse_listen(web_ui.listen)
        return host, port, check_backend(web_ui.backend)

    async def _start_web_ui(self, host: str, port: int, backend: str, tls: ssl.SSLContext | None) -> None:
        assert self.api is not None
        api = ApiLocation("https" if tls else "http", self.config.api.host, self.api.port, backend)
        sock = bind(host, port, "web UI", "choose another address and port with WebUI.Listen")
        self.web_ui = HttpServer(WebUiApp(api), sock, "web UI", API_DEADLINES, tls=tls)
        await self.web_ui.start()
        shown = "localhost" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
        log.info(
            "web UI on %s://%s:%d (API: %s)",
            "https" if tls else "http",
            shown,
            self.web_ui.port,
            backend or "this node's",
        )

    def _log_access(self, port: int) -> None:
        if self.authorizer is None:
            log.warning("no API users (API.Auth.Users): anyone who can reach port %d may use the whole API", port)
        else:
            for warning in self.authorizer.warnings:
                log.warning("API.Auth.Users: %s", warning)

    def _build_compute(self, node_id: str, orchestrators: list[str]) -> ComputeNode:
        config = self.config
        capacity = config.compute.allocated_capacity
        admission = config.job_admission_control
        return ComputeNode(
            ComputeConfig(
                data_dir=self.data_dir,
                node_id=node_id,
                orchestrators=orchestrators,
                labels=dict(config.labels),
                heartbeat_interval=parse_duration(config.compute.heartbeat.interval),
                allocated=AllocatedCapacity(capacity.cpu, capacity.memory, capacity.disk, capacity.gpu),
                local_publisher_address=config.publishers.types.local.address,
                local_publisher_port=config.publishers.types.local.port,
                log_retention=parse_duration(config.compute.logs.retention),
                disabled_engines=list(config.engines.disabled),
                disabled_inputs=list(config.input_sources.disabled),
                disabled_publishers=list(config.publishers.disabled),
                allow_listed_local_paths=list(config.compute.allow_listed_local_paths),
                env_allow_list=list(config.compute.env.allow_list),
                max_download_bytes=parse_bytes(config.input_sources.max_download_size.lower()),
                download_retries=config.input_sources.max_retry_count,
                ipfs_endpoint=config.input_sources.types.ipfs.endpoint,
                token=config.compute.auth.token or config.orchestrator.auth.token,
                tls=self._compute_tls(),
                port_range=(config.compute.network.port_range_start, config.compute.network.port_range_end),
                admission=AdmissionConfig(
                    reject_stateless_jobs=admission.reject_stateless_jobs,
                    reject_networked_jobs=admission.reject_networked_jobs,
                    locality=admission.locality,
                    probe_http=admission.probe_http,
                    probe_exec=admission.probe_exec,
                ),
            )
        )

    def _server_tls(self) -> ServerTls | None:
        tls = self.config.orchestrator.tls
        return server_tls(
            tls.server_cert,
            tls.server_key,
            ca=tls.ca_cert,
            timeout=tls.server_timeout,
            require_client_cert=tls.require_client_cert,
        )

    def _compute_tls(self) -> ClientTls:
        """How the compute half connects: with Compute.TLS to a remote orchestrator; to this node's own server as the
        orchestrator's client does (Orchestrator.TLS), which meets RequireTLS when that server serves TLS."""
        tls = self.config.compute.tls
        if not self.is_orchestrator:
            return compute_tls(ca=tls.ca_cert, cert=tls.client_cert, key=tls.client_key, require=tls.require_tls)
        server = self._server_tls()
        if server is not None:
            return server.local_client()
        if tls.require_tls:
            raise ConfigurationError(
                "Compute.TLS.RequireTLS is set, but this node's own NATS server serves no TLS",
                hint="set Orchestrator.TLS.ServerCert and Orchestrator.TLS.ServerKey, or unset Compute.TLS.RequireTLS",
            )
        return ClientTls()

    async def stop(self) -> None:
        for step in (self._stop_web_ui, self._stop_api, self._stop_compute, self._stop_orchestrator, self._stop_nats):
            try:
                await step()
            except Exception:
                log.exception("error while shutting down")
        with contextlib.suppress(OSError):
            (self.data_dir / RUN_FILE).unlink()
        self._lock.release()

    async def _stop_web_ui(self) -> None:
        if self.web_ui is not None:
            await self.web_ui.stop()
            self.web_ui = None

    async def _stop_api(self) -> None:
        if self.api is not None:
            await self.api.stop()
            self.api = None

    async def _stop_compute(self) -> None:
        if self._compute_process is not None:
            await self._compute_process.stop(COMPUTE_STOP_TIMEOUT)
            self._compute_process = None
        if self.compute is not None:
            await self.compute.stop()
            self.compute = None

    async def _stop_orchestrator(self) -> None:
        if self.orchestrator is not None:
            await self.orchestrator.stop()
            self.orchestrator = None
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
            self.nc = None

    async def _stop_nats(self) -> None:
        if self.nats_server is not None:
            await self.nats_server.stop()
            self.nats_server = None

    def client_environment(self) -> dict[str, str]:
        """What a CLI on this machine needs to reach this node's API: its address, and over TLS the setting that
        says so and, for a certificate made here, the file to trust (the original exports the address alone)."""
        assert self.api is not None
        host = self.config.api.host
        variables = {
            "BACALHAU_API_HOST": "127.0.0.1" if host in ("0.0.0.0", "", "::") else host,
            "BACALHAU_API_PORT": str(self.api.port),
        }
        if self.api.tls is not None:
            variables["BACALHAU_API_TLS_USETLS"] = "true"
        if self.self_signed_cert is not None:
            variables["BACALHAU_API_TLS_CAFILE"] = str(self.self_signed_cert)
        return variables

    def _write_run_file(self) -> None:
        variables = self.client_environment()
        if self.nats_server is not None:
            # What a compute node on this machine needs to join (a valid config variable: Compute.Orchestrators).
            variables["BACALHAU_COMPUTE_ORCHESTRATORS"] = self.nats_server.client_url
        partial = self.data_dir / f".{RUN_FILE}.tmp"  # renamed once whole: a reader never sees half of it
        partial.write_text(shell_exports(variables))
        partial.replace(self.data_dir / RUN_FILE)


def _scrubbed(entries: list[dict[str, str]], secrets: list[str]) -> list[dict[str, str]]:
    """``entries`` with every secret they quote masked."""
    if not secrets:
        return entries
    for entry in entries:
        message = entry["Message"]
        for secret in secrets:
            message = message.replace(secret, MASK)
        entry["Message"] = message
    return entries


def shell_exports(variables: dict[str, str]) -> str:
    """``export NAME=value`` lines for a shell to source."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())


def run_nodes(*nodes: Node, on_ready: Callable[[], None] | None = None) -> None:
    """Serve nodes on uvloop: its event loop costs less per message and request than asyncio's own, and a node
    spends most of its time there."""
    raise_open_file_limit()
    for node in nodes:
        node.prepare()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(*nodes, on_ready=on_ready))
    finally:
        tracing.shutdown()


async def serve(*nodes: Node, on_ready: Callable[[], None] | None = None) -> None:
    """Run nodes (in start order) until SIGINT or SIGTERM, then shut them down cleanly, last started first."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[Node] = []
    failure = ""
    try:
        for node in nodes:
            await node.start()
            started.append(node)
        # What start-up built (modules, schemas, routes) lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise pause every request now and then for tens of milliseconds.
        gc.freeze()
        if on_ready is not None:
            on_ready()
        failure = await _first_failure(stop, started)
        log.info("shutting down node %s", ", ".join(node.node_id for node in started))
    finally:
        for node in reversed(started):
            await node.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if failure:
        raise BacalhauError(failure, hint="the node's state is kept in its data dir: start it again to carry on")


async def _first_failure(stop: asyncio.Event, nodes: list[Node]) -> str:
    """Wait for a stop signal (then "") or for a node's part to fail on its own (then what happened)."""
    waits = [asyncio.ensure_future(stop.wait()), *(asyncio.ensure_future(node.failure()) for node in nodes)]
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    result = done.pop().result()
    return result if isinstance(result, str) else ""
