"""The Docker engine, through the Docker SDK against ``DOCKER_HOST`` (or the default socket).

Each execution is one container: inputs bind-mounted at their targets (read-only unless allowed otherwise), each
result path a writable bind of ``results/<Name>`` at its ``Path``, CPU and memory limits from the task, the task's
network mode and published ports. Output is streamed into ``results/stdout`` and ``results/stderr`` while the
container runs, so that ``job logs -f`` works. The container is removed on every path: success, failure, timeout,
stop and shutdown.

The Docker SDK blocks, so every call runs in a thread; a stop kills the container, which ends the thread's wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

import docker
from bacalhau.compute.executors.base import ExecutorError, RunOutcome, RunRequest
from bacalhau.compute.executors.gpu_devices import add_gpus, gpus_problem
from bacalhau.lib.threads import run_in_daemon_thread
from bacalhau.models.history import Event
from bacalhau.models.plugins import EngineType
from bacalhau.models.spec import Network, NetworkConfig, SpecConfig

log = logging.getLogger(__name__)

LABEL_EXECUTOR = "bacalhau-executor"
LABEL_JOB = "bacalhau-jobID"
LABEL_EXECUTION = "bacalhau-executionID"
STOP_GRACE = 10
KILLED = 137  # 128 + SIGKILL
TOPIC_PULL = "Preparing Environment"


class DockerParams:
    """The engine parameters, with the original's names."""

    def __init__(self, engine: SpecConfig) -> None:
        self.image = str(engine.param("Image", "") or "")
        self.entrypoint = [str(p) for p in engine.param("Entrypoint") or []]
        self.parameters = [str(p) for p in engine.param("Parameters") or []]
        self.environment = [str(e) for e in engine.param("EnvironmentVariables") or []]
        self.working_directory = str(engine.param("WorkingDirectory", "") or "")

    def errors(self) -> list[str]:
        problems = []
        if not self.image:
            problems.append("docker engine requires Image")
        if self.working_directory and not posixpath.isabs(self.working_directory):
            problems.append(f"working directory {self.working_directory!r} must be absolute")
        for item in self.environment:
            name = item.partition("=")[0]
            if not name or name.startswith("BACALHAU_"):
                problems.append(
                    f"invalid environment variable {item!r}: names may not be empty or start with BACALHAU_"
                )
        return problems


HTTP_NETWORK_REFUSED = (
    "network type HTTP (outbound HTTP to the job's Domains only) is not enforced by this node: it would run the "
    "container with unrestricted network access, so it does not take the job; use network type Full if the job "
    "may reach anything, or None"
)


def network_problems(network: NetworkConfig) -> list[str]:
    """Network modes this engine cannot give as asked: never run such a container more open than it asked."""
    return [HTTP_NETWORK_REFUSED] if network.type == Network.HTTP else []


def network_mode(network: Network) -> str:
    if network == Network.NONE:
        return "none"
    if network in (Network.HOST, Network.FULL):
        return "host"
    return "bridge"


def port_options(network: NetworkConfig) -> dict[str, Any]:
    """The container options that publish the task's ports (as the compute node allocated them): on a bridge network,
    each ``Target`` inside the container on its host port (``Static``) at ``HostNetwork`` (every interface when
    empty: no address given, which Docker and Podman both take as every one, where Podman's explicit 0.0.0.0 forwards
    nothing). On the host network the task listens on its host ports itself; with no network it has none."""
    if network_mode(network.type) != "bridge":
        return {}
    published: dict[str, int | tuple[str, int]] = {
        f"{port.target or port.static}/tcp": (port.host_network, port.static) if port.host_network else port.static
        for port in network.ports
        if port.static
    }
    return {"ports": published} if published else {}


def _client(timeout: float | None) -> docker.DockerClient:
    """A client for ``DOCKER_HOST`` (or the default socket). Long-lived calls (waiting for a container, following
    its output) need no timeout; a container may run, or stay silent, for hours."""
    return docker.from_env(timeout=timeout)  # type: ignore[arg-type]


class DockerExecutor:
    name = EngineType.DOCKER.value
    writes_output = True
    supports_gpus = True

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = _client(timeout=None)
        return self._client

    def is_installed(self) -> bool:
        """Only advertise Docker when an engine answers; a node without one bids no Docker work."""
        try:
            probe = _client(timeout=5)
            try:
                return bool(probe.ping())
            finally:
                probe.close()
        except (DockerException, OSError) as exc:
            log.info("docker engine not available (%s): this node will not run docker jobs", exc)
            return False

    def validate(self, engine: SpecConfig, network: NetworkConfig) -> list[str]:
        return DockerParams(engine).errors() + network_problems(network)

    def remove_leftovers(self) -> int:
        """Containers of this node left by a crash: nothing of theirs is still tracked, so they go."""
        removed = 0
        mine: dict[str, str | list[str] | bool] = {"label": f"{LABEL_EXECUTOR}={self.node_id}"}
        # sparse: no inspection of each container, which fails for one removed meanwhile
        for container in self.client.containers.list(all=True, filters=mine, sparse=True):
            with contextlib.suppress(DockerException):
                container.remove(force=True)
                removed += 1
        return removed

    async def prepare(self, request: RunRequest, report: Callable[[Event], Awaitable[None]]) -> None:
        """Pull the image if it is missing (not counted against the execution timeout)."""
        image = DockerParams(request.engine).image
        if await asyncio.to_thread(self._has_image, image):
            return
        await report(Event.new(TOPIC_PULL, f"Pulling image {image}"))
        started = time.monotonic()
        try:
            await run_in_daemon_thread(f"pull-{request.execution_id}", self.client.images.pull, image)
        except ImageNotFound:
            raise ExecutorError(
                f"image {image} not found: check its name and tag, and that the registry has it"
            ) from None
        except (APIError, DockerException) as exc:
            raise ExecutorError(f"could not pull image {image}: {_reason(exc)}") from None
        await report(Event.new(TOPIC_PULL, f"Pulled image {image} in {time.monotonic() - started:.1f}s"))

    def _has_image(self, image: str) -> bool:
        try:
            self.client.images.get(image)
        except ImageNotFound:
            return False
        return True

    async def run(self, request: RunRequest) -> RunOutcome:
        params = DockerParams(request.engine)
        problems = self.validate(request.engine, request.network)
        if problems:
            raise ExecutorError("; ".join(problems))
        container = await self._create_surviving_cancel(request, params)
        pumps: list[threading.Thread] = []
        try:
            await asyncio.to_thread(container.start)
            pumps = [
                _pump(container, stdout=True, target=request.stdout_file),
                _pump(container, stdout=False, target=request.stderr_file),
            ]
            # its own thread: a wait lasts as long as the job, and would starve the shared pool
            status = await asyncio.shield(run_in_daemon_thread(f"wait-{request.execution_id}", container.wait))
            await asyncio.to_thread(container.reload)
            return self._outcome(container, status, limited=bool(request.resources.memory))
        except asyncio.CancelledError:
            await asyncio.to_thread(_stop, container)
            raise
        except (APIError, DockerException) as exc:
            raise ExecutorError(f"docker could not run the container: {_reason(exc)}") from None
        finally:
            for pump in pumps:
                await asyncio.to_thread(pump.join, 5)
            await asyncio.to_thread(_remove, container)

    async def _create_surviving_cancel(self, request: RunRequest, params: DockerParams) -> Container:
        """A cancel can arrive after the engine made the container but before its answer reached us: wait for the
        answer then, and remove what it made, so no container outlives its execution."""
        creating = asyncio.ensure_future(asyncio.to_thread(self._create, request, params))
        try:
            return await asyncio.shield(creating)
        except asyncio.CancelledError:
            with contextlib.suppress(ExecutorError):
                await asyncio.to_thread(_remove, await creating)
            raise

    def _create(self, request: RunRequest, params: DockerParams) -> Container:
        env = [*params.environment, *(f"{key}={value}" for key, value in request.env.items())]
        mounts = [
            docker.types.Mount(mount.target, str(mount.source), type="bind", read_only=not mount.read_write)
            for mount in request.inputs
        ]
        for result in request.outputs:
            host = request.output_dir(result)
            host.mkdir(parents=True, exist_ok=True)
            mounts.append(docker.types.Mount(result.path, str(host), type="bind", read_only=False))
        options: dict[str, Any] = {
            "name": f"bacalhau-{self.node_id}-{request.execution_id}",
            "labels": {
                LABEL_EXECUTOR: self.node_id,
                LABEL_JOB: request.job_id,
                LABEL_EXECUTION: request.execution_id,
            },
            "environment": env,
            "mounts": mounts,
            "network_mode": network_mode(request.network.type),
            "detach": True,
            **port_options(request.network),
        }
        if params.entrypoint:
            options["entrypoint"] = params.entrypoint
        if params.parameters:
            options["command"] = params.parameters
        if params.working_directory:
            options["working_dir"] = params.working_directory
        if request.resources.memory:
            options["mem_limit"] = request.resources.memory
        if request.resources.cpu:
            options["nano_cpus"] = int(request.resources.cpu * 1e9)
        add_gpus(options, request.resources.gpus)
        try:
            container = self.client.containers.create(params.image, **options)
        except ImageNotFound:
            raise ExecutorError(f"image {params.image} not found") from None
        except (APIError, DockerException) as exc:
            raise ExecutorError(f"docker could not create the container: {_reason(exc)}") from None
        problem = gpus_problem(options, container.attrs)
        if problem:
            _remove(container)
            raise ExecutorError(problem)
        return container

    @staticmethod
    def _outcome(container: Container, status: Mapping[str, Any], *, limited: bool) -> RunOutcome:
        """A SIGKILL we did not send, under a memory limit, is the limit (Podman does not always set OOMKilled)."""
        code = int(status.get("StatusCode", -1))
        if container.attrs.get("State", {}).get("OOMKilled") or (limited and code == KILLED):
            return RunOutcome(exit_code=code, error="memory limit exceeded")
        error = status.get("Error") or {}
        message = error.get("Message") if isinstance(error, dict) else ""
        return RunOutcome(exit_code=code, error=str(message or ""))


def _pump(container: Container, *, stdout: bool, target: Path) -> threading.Thread:
    """Copy one of the container's output streams into a file as it is produced."""

    def copy() -> None:
        with target.open("ab") as out:
            try:
                for chunk in container.logs(stdout=stdout, stderr=not stdout, stream=True, follow=True):
                    out.write(chunk)
                    out.flush()
            except Exception as exc:  # the engine went away or the container was removed: stop copying
                log.debug("stopped reading %s of %s: %s", "stdout" if stdout else "stderr", container.name, exc)

    thread = threading.Thread(target=copy, name=f"docker-logs-{container.name}", daemon=True)
    thread.start()
    return thread


def _stop(container: Container) -> None:
    with contextlib.suppress(NotFound, DockerException):
        container.stop(timeout=STOP_GRACE)


def _remove(container: Container) -> None:
    with contextlib.suppress(NotFound, DockerException):
        container.remove(force=True)


def _reason(error: Exception) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error).strip()
