"""Host ports for the tasks that publish them (``Network.Ports``), as the original's port allocator gives them.

A port without ``Static`` gets the next free one of ``Compute.Network.PortRangeStart``-``PortRangeEnd`` (round robin
from the last one given, so a port just freed is not handed out again at once); a ``Static`` one is given as asked,
inside the range or not, or the execution fails. A port is free when no execution of this node (nor of another
compute node in this process: a devstack) holds it and it can be bound on every interface right now. Bridge tasks
without a ``Target`` listen on their host port inside the container too.

What each execution holds is in the compute store (table ``ports``), written in the same transaction as the
execution that records it, so a restarted node gives no port twice: the long-running executions it restarts keep
theirs, and the ports of executions that ended while it was down are freed (:meth:`ExecutionStore.release_ports`).
The runner frees an execution's ports once its engine has stopped (its container is gone), never before.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

from bacalhau.compute.store import ComputeTx
from bacalhau.models.execution import Execution
from bacalhau.models.spec import (
    ENV_HOST_PORT_PREFIX,
    ENV_PORT_PREFIX,
    MAXIMUM_PORT,
    MINIMUM_PORT,
    PORT_NETWORKS,
    Network,
    Port,
)

DEFAULT_RANGE = (20000, 32000)

# The ports every allocator of this process holds: a devstack runs several compute nodes in one process, with stores
# that do not know of each other's ports, and a port bound by a container only once it starts.
_process_lock = threading.Lock()
_process_held: set[int] = set()


class PortError(Exception):
    """The execution's ports cannot be given on this node (now)."""


def is_bindable(port: int) -> bool:
    """Whether a TCP listener could take ``port`` on every interface now (IPv6 and IPv4 where the host has it)."""
    families = [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")] if socket.has_ipv6 else []
    families = families or [(socket.AF_INET, "0.0.0.0")]
    for family, address in families:
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no such family on this host: the other one decides
        with contextlib.closing(probe):
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                with contextlib.suppress(OSError):
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            try:
                probe.bind((address, port))
                probe.listen(1)
            except OSError:
                return False
            return True  # a dual-stack listener covers IPv4 too
    return False


def wants_ports(execution: Execution) -> bool:
    job = execution.job
    if job is None or not job.tasks:
        return False
    network = job.task.network_config
    return bool(network.ports) and network.type in PORT_NETWORKS


def port_env(ports: list[Port]) -> dict[str, str]:
    """``BACALHAU_HOST_PORT_<NAME>`` (the host port) and ``BACALHAU_PORT_<NAME>`` (the port inside, Bridge only)."""
    env: dict[str, str] = {}
    for port in ports:
        if port.static > 0:
            env[ENV_HOST_PORT_PREFIX + port.name] = str(port.static)
        if port.target > 0:
            env[ENV_PORT_PREFIX + port.name] = str(port.target)
    return env


class PortAllocator:
    def __init__(
        self, start: int = DEFAULT_RANGE[0], end: int = DEFAULT_RANGE[1], *, probe: Callable[[int], bool] = is_bindable
    ) -> None:
        problems = []
        if start < MINIMUM_PORT:
            problems.append(f"start port must be >= {MINIMUM_PORT}")
        if end > MAXIMUM_PORT:
            problems.append(f"end port must be <= {MAXIMUM_PORT}")
        if start >= end:
            problems.append("start port must be less than end port")
        if problems:
            raise ValueError("\n".join(problems))
        self.start = start
        self.end = end
        self._probe = probe
        self._last = start - 1
        self._by_execution: dict[str, set[int]] = {}

    def allocate(self, tx: ComputeTx, execution: Execution) -> list[Port]:
        """The execution's ports, held in ``tx``: the ones it already holds (a restarted execution), or new ones."""
        if not wants_ports(execution):
            return []
        with _process_lock:
            held = tx.held_ports(execution.id)
            if held:
                self._claim(execution.id, held)
                return [port.model_copy() for port in execution.allocated_ports]
            assert execution.job is not None
            network = execution.job.task.network_config
            used = tx.all_held_ports() | _process_held
            allocated: list[Port] = []
            for requested in network.ports:
                port = requested.model_copy()
                if port.static == 0:
                    port.static = self._dynamic(used)
                else:
                    self._static(port.static, used)
                used.add(port.static)
                if network.type == Network.BRIDGE and port.target == 0:
                    port.target = port.static
                allocated.append(port)
            for port in allocated:
                tx.hold_port(port.static, execution.id)
            self._claim(execution.id, [port.static for port in allocated])
            return allocated

    def release(self, execution_id: str) -> None:
        """Forget the execution's ports in this process (the store frees them in its own write)."""
        with _process_lock:
            for port in self._by_execution.pop(execution_id, set()):
                _process_held.discard(port)

    def _claim(self, execution_id: str, ports: list[int]) -> None:
        self._by_execution.setdefault(execution_id, set()).update(ports)
        _process_held.update(ports)

    def _static(self, port: int, used: set[int]) -> None:
        if port < MINIMUM_PORT or port > MAXIMUM_PORT:  # refused at submission; checked again for whoever sent it
            raise PortError(f"static port {port} is outside the valid range {MINIMUM_PORT}-{MAXIMUM_PORT}")
        if port in used:
            raise PortError(f"port {port} is already in use")
        if not self._probe(port):
            raise PortError(f"port {port} is in use")

    def _dynamic(self, used: set[int]) -> int:
        size = self.end - self.start + 1
        offset = self._last + 1 - self.start
        if offset < 0 or offset >= size:
            offset = 0
        for step in range(size):
            port = self.start + (offset + step) % size
            if port in used or not self._probe(port):
                continue
            self._last = port
            return port
        raise PortError(f"no available ports in range {self.start}-{self.end}")
