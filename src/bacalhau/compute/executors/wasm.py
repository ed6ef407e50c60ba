"""The WebAssembly engine, on wasmtime (WASI preview 1).

The job sees a virtual filesystem like the original's: every input at its target (a file input as that file, a
directory input as that directory), every result path writable at ``/<Name>``, relative paths resolved from ``/``.
wasmtime preopens only directories, so file inputs are linked into a read-only staging root preopened as ``/``;
directory inputs and outputs are preopened at their own paths (the guest picks the longest matching preopen).

A task whose network is not None may make HTTP requests through the host module ``wasi:http/requests`` (the
original's ABI, :mod:`wasm_http`), limited to the hosts its network allows.

Each run gets its own wasmtime engine with epoch interruption, so a timeout or a stop interrupts even a module that
spins without calling the host. Compiled modules are shared between runs through :mod:`wasm_cache`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import shutil
from pathlib import Path

import wasmtime

from bacalhau.compute.executors.base import ExecutorError, Mount, Reporter, RunOutcome, RunRequest
from bacalhau.compute.executors.wasm_cache import CompiledModules
from bacalhau.compute.executors.wasm_http import MODULE as HTTP_MODULE
from bacalhau.compute.executors.wasm_http import HttpLimits, HttpModule, offers_http
from bacalhau.lib.threads import run_in_daemon_thread
from bacalhau.models.plugins import EngineType
from bacalhau.models.spec import NetworkConfig, SpecConfig

WASI_MODULE = "wasi_snapshot_preview1"
PAGE_SIZE = 64 * 1024
MAX_MEMORY = 65536 * PAGE_SIZE
NO_EXIT_CODE = -1  # the original's code for a module that returns without calling proc_exit
CANCEL_GRACE = 2.0
COMPILED = CompiledModules()


def guest_path(target: str) -> str:
    return posixpath.normpath("/" + target.strip().lstrip("/"))


class WasmParams:
    """The engine parameters, with the original's names (``Entrypoint`` defaults to ``_start``)."""

    def __init__(self, engine: SpecConfig) -> None:
        entry = engine.param("EntryModule", "")
        self.entry_module = entry if isinstance(entry, str) else ""
        self.entry_point = str(engine.param("Entrypoint", "") or "_start")
        self.parameters = [str(p) for p in (engine.param("Parameters") or [])]
        self.import_modules = [str(m) for m in (engine.param("ImportModules") or []) if isinstance(m, str)]

    def errors(self) -> list[str]:
        return [] if self.entry_module else ["wasm engine requires EntryModule: the target path of an input"]


class WasmExecutor:
    name = EngineType.WASM.value
    writes_output = True

    def __init__(self, http: HttpLimits | None = None) -> None:
        self.http = http or HttpLimits()

    def is_installed(self) -> bool:
        return True

    def validate(self, engine: SpecConfig, network: NetworkConfig) -> list[str]:
        return WasmParams(engine).errors()

    async def prepare(self, request: RunRequest, report: Reporter) -> None:
        return

    async def run(self, request: RunRequest) -> RunOutcome:
        params = WasmParams(request.engine)
        if params.errors():
            raise ExecutorError("; ".join(params.errors()))
        config = wasmtime.Config()
        config.epoch_interruption = True
        engine = wasmtime.Engine(config)
        future = run_in_daemon_thread(f"wasm-{request.execution_id}", _run_module, engine, request, params, self.http)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # Traps the module at its next loop head or call. A module blocked in a host call (a long WASI sleep)
            # cannot be interrupted; its daemon thread is left to finish on its own rather than hold up a stop.
            engine.increment_epoch()
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), CANCEL_GRACE)
            raise


def _run_module(engine: wasmtime.Engine, request: RunRequest, params: WasmParams, http: HttpLimits) -> RunOutcome:
    filesystem = _Filesystem(request)
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1)
    if request.resources.memory:
        pages = -(-request.resources.memory // PAGE_SIZE)
        if pages * PAGE_SIZE > MAX_MEMORY:
            raise ExecutorError(f"requested memory {request.resources.memory} exceeds the WebAssembly maximum of 4GiB")
        store.set_limits(memory_size=pages * PAGE_SIZE)
    stdout, stderr = request.stdout_file, request.stderr_file
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["", *params.parameters]
    wasi.env = sorted(request.env.items())
    wasi.stdout_file = str(stdout)
    wasi.stderr_file = str(stderr)
    for host, guest, writable in filesystem.preopens():
        wasi.preopen_dir(str(host), guest, writable)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    network = HttpModule(request.network, http) if offers_http(request.network) else None
    if network is not None:
        network.define(linker)
    try:
        loaded: set[str] = {HTTP_MODULE} if network is not None else set()
        for name in params.import_modules:
            _instantiate(engine, store, linker, filesystem, name, loaded, register=True)
        entry = _instantiate(engine, store, linker, filesystem, params.entry_module, loaded, register=False)
        function = entry.exports(store).get(params.entry_point)
        if not isinstance(function, wasmtime.Func):
            raise ExecutorError(f"unable to find the entrypoint '{params.entry_point}' in the WASM module")
        try:
            function(store)
        except wasmtime.ExitTrap as exit_trap:
            return RunOutcome(exit_code=exit_trap.code)
        except wasmtime.Trap as trap:
            if trap.trap_code == wasmtime.TrapCode.INTERRUPT:
                raise ExecutorError("execution interrupted") from None
            return RunOutcome(exit_code=1, error=str(trap).splitlines()[0])
        except wasmtime.WasmtimeError as error:
            return RunOutcome(exit_code=1, error=str(error).splitlines()[0])
        return RunOutcome(exit_code=NO_EXIT_CODE)
    finally:
        if network is not None:
            network.close()
        filesystem.cleanup()
        for path in (stdout, stderr):
            path.touch(exist_ok=True)


def _instantiate(
    engine: wasmtime.Engine,
    store: wasmtime.Store,
    linker: wasmtime.Linker,
    filesystem: _Filesystem,
    path: str,
    loaded: set[str],
    *,
    register: bool,
) -> wasmtime.Instance:
    """Load a module by its path in the job's filesystem, first loading the modules it imports by file name."""
    module = _load_module(engine, filesystem, path)
    for item in module.imports:
        name = item.module
        if name == WASI_MODULE or name in loaded:
            continue
        if filesystem.resolve(name) is None:
            raise ExecutorError(f'failed to load entry module {path}: unknown module "{name}"')
        loaded.add(name)
        _instantiate(engine, store, linker, filesystem, name, loaded, register=True)
    try:
        instance = linker.instantiate(store, module)
    except wasmtime.WasmtimeError as error:
        raise ExecutorError(f"failed to instantiate module {path}: {str(error).splitlines()[0]}") from None
    if register:
        for alias in {path, path.lstrip("/"), posixpath.basename(path)}:
            with contextlib.suppress(wasmtime.WasmtimeError):
                linker.define_instance(store, alias, instance)
        loaded.add(path)
    return instance


def _load_module(engine: wasmtime.Engine, filesystem: _Filesystem, path: str) -> wasmtime.Module:
    host = filesystem.resolve(path)
    if host is None:
        raise ExecutorError(f"failed to load entry module {path}: no input is mounted at that path")
    if host.is_dir():
        candidates = sorted(p for p in host.iterdir() if p.suffix in (".wasm", ".wat"))
        if len(candidates) != 1:
            raise ExecutorError(
                f"failed to load entry module {path}: expected one .wasm (or .wat) file in the directory, "
                f"found {len(candidates)}"
            )
        host = candidates[0]
    try:
        return COMPILED.load(engine, host.read_bytes())
    except (wasmtime.WasmtimeError, UnicodeDecodeError) as error:
        raise ExecutorError(f"failed to load entry module {path}: {str(error).splitlines()[0]}") from None


class _Filesystem:
    """The job's view: inputs at their targets, outputs at ``/<Name>``, over a staging root."""

    def __init__(self, request: RunRequest) -> None:
        self.root = request.work_dir / "wasm-root"
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self.mounts: list[tuple[str, Path, bool]] = []
        for mount in request.inputs:
            self._add_input(mount)
        for result in request.outputs:
            host = request.output_dir(result)
            host.mkdir(parents=True, exist_ok=True)
            self.mounts.append((guest_path(result.name), host, True))
            (self.root / guest_path(result.name).lstrip("/")).mkdir(parents=True, exist_ok=True)

    def _add_input(self, mount: Mount) -> None:
        target = guest_path(mount.target)
        staged = self.root / target.lstrip("/")
        if mount.is_dir:
            self.mounts.append((target, mount.source, mount.read_write))
            staged.mkdir(parents=True, exist_ok=True)
            return
        staged.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(mount.source, staged)
        except OSError:
            shutil.copyfile(mount.source, staged)

    def preopens(self) -> list[tuple[Path, str, bool]]:
        return [(self.root, "/", False)] + [(host, guest, rw) for guest, host, rw in self.mounts]

    def resolve(self, path: str) -> Path | None:
        """The host path behind a path in the job's filesystem (longest mount prefix first)."""
        wanted = guest_path(path)
        for guest, host, _ in sorted(self.mounts, key=lambda m: len(m[0]), reverse=True):
            if wanted == guest or wanted.startswith(guest.rstrip("/") + "/"):
                candidate = host / wanted[len(guest) :].lstrip("/")
                return candidate if candidate.exists() else None
        staged = self.root / wanted.lstrip("/")
        return staged if staged.exists() and wanted != "/" else None

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
