"""The WebAssembly engine on real wasmtime, with test programs written in WAT."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute.executors.base import ExecutorError, Mount, RunOutcome, RunRequest
from bacalhau.compute.executors.wasm import WasmExecutor
from bacalhau.models.resources import Resources
from bacalhau.models.spec import ResultPath, SpecConfig


class Sandbox:
    """One execution's directories, with modules and files placed as inputs."""

    def __init__(self, root: Path, wasm: Callable[[str], bytes]) -> None:
        self.root = root
        self.wasm = wasm
        self.results = root / "results"
        self.results.mkdir(parents=True)
        self.inputs: list[Mount] = []

    def file(self, target: str, content: bytes) -> None:
        host = self.root / "inputs" / str(len(self.inputs)) / "file"
        host.parent.mkdir(parents=True)
        host.write_bytes(content)
        self.inputs.append(Mount(host, target))

    def directory(self, target: str, files: dict[str, bytes]) -> None:
        host = self.root / "inputs" / str(len(self.inputs)) / "dir"
        host.mkdir(parents=True)
        for name, content in files.items():
            (host / name).write_bytes(content)
        self.inputs.append(Mount(host, target))

    def request(self, module: str, *params: str, outputs: dict[str, str] | None = None, **extra: Any) -> RunRequest:
        self.file("/app/main.wasm", self.wasm(module))
        engine = SpecConfig(type="wasm", params={"EntryModule": "/app/main.wasm", "Parameters": list(params)})
        engine.params.update(extra.pop("engine_params", {}))
        return RunRequest(
            execution_id="e-test",
            job_id="j-test",
            engine=engine,
            results_dir=self.results,
            work_dir=self.root / "work",
            inputs=list(self.inputs),
            outputs=[ResultPath(name=n, path=p) for n, p in (outputs or {}).items()],
            **extra,
        )

    def stdout(self) -> str:
        return (self.results / "stdout").read_text()

    def stderr(self) -> str:
        return (self.results / "stderr").read_text()


@pytest.fixture
def sandbox(tmp_path: Path, wasm: Callable[[str], bytes]) -> Sandbox:
    return Sandbox(tmp_path, wasm)


async def run(request: RunRequest) -> RunOutcome:
    return await WasmExecutor().run(request)


async def test_hello_world_with_arguments(sandbox: Sandbox) -> None:
    outcome = await run(sandbox.request("hello", "a", "b c"))
    assert outcome == RunOutcome(exit_code=0)
    assert sandbox.stdout() == "Hello, world! a b c\n"
    assert sandbox.stderr() == ""


async def test_environment_variables_reach_the_module(sandbox: Sandbox) -> None:
    await run(sandbox.request("env", env={"B_VAR": "2", "A_VAR": "1"}))
    assert sandbox.stdout() == "A_VAR=1\nB_VAR=2\n"


async def test_file_and_directory_inputs_are_readable_at_their_targets(sandbox: Sandbox) -> None:
    sandbox.file("/data/one.txt", b"one\n")
    sandbox.directory("/inputs", {"two.txt": b"two\n"})
    outcome = await run(sandbox.request("files", "cat", "/data/one.txt", "/inputs/two.txt", "inputs/two.txt"))
    assert outcome.exit_code == 0, sandbox.stderr()
    assert sandbox.stdout() == "one\ntwo\ntwo\n"


async def test_inputs_are_read_only(sandbox: Sandbox) -> None:
    sandbox.directory("/inputs", {"keep.txt": b"original"})
    outcome = await run(sandbox.request("files", "write", "/inputs/keep.txt", "changed"))
    assert outcome.exit_code == 1
    assert "cannot open /inputs/keep.txt" in sandbox.stderr()
    assert (sandbox.inputs[0].source / "keep.txt").read_bytes() == b"original"


async def test_result_paths_are_writable_under_their_name(sandbox: Sandbox) -> None:
    outcome = await run(
        sandbox.request("files", "write", "/outputs/out.txt", "result", outputs={"outputs": "/outputs"})
    )
    assert outcome.exit_code == 0, sandbox.stderr()
    assert (sandbox.results / "outputs" / "out.txt").read_text() == "result"


async def test_exit_codes_as_the_original_records_them(sandbox: Sandbox, tmp_path: Path) -> None:
    assert (await run(sandbox.request("exit"))).exit_code == 3
    assert sandbox.stderr() == "failing\n"
    other = Sandbox(tmp_path / "noexit", sandbox.wasm)
    assert (await run(other.request("noexit"))).exit_code == -1


async def test_a_missing_file_fails_the_program_not_the_engine(sandbox: Sandbox) -> None:
    outcome = await run(sandbox.request("files", "cat", "/nope.txt"))
    assert outcome.exit_code == 1 and outcome.error == ""


async def test_cancelling_interrupts_a_spinning_module(sandbox: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(run(sandbox.request("spin")), timeout=0.3)
    assert time.monotonic() - started < 5


async def test_memory_limit_refuses_growth(sandbox: Sandbox, tmp_path: Path) -> None:
    limited = await run(sandbox.request("grow", resources=Resources(memory=1024 * 1024)))
    assert limited.exit_code == 7
    roomy = Sandbox(tmp_path / "roomy", sandbox.wasm)
    assert (await run(roomy.request("grow", resources=Resources(memory=128 * 1024 * 1024)))).exit_code == 0


async def test_import_modules_are_linked_by_file_name(sandbox: Sandbox) -> None:
    sandbox.file("lib.wasm", sandbox.wasm("answer_lib"))
    assert (await run(sandbox.request("answer_main"))).exit_code == 42


async def test_a_module_given_as_a_directory_with_one_wasm_file(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.directory("/app", {"module.wasm": sandbox.wasm("hello")})
    request = sandbox.request("hello")
    request.engine.params["EntryModule"] = "/app"
    request.inputs = [sandbox.inputs[0]]
    assert (await run(request)).exit_code == 0
    assert sandbox.stdout().startswith("Hello, world!")


async def test_engine_problems_raise_executor_errors(sandbox: Sandbox) -> None:
    with pytest.raises(ExecutorError, match="unable to find the entrypoint 'main' in the WASM module"):
        await run(sandbox.request("hello", engine_params={"Entrypoint": "main"}))
    with pytest.raises(ExecutorError, match=r'unknown module "lib\.wasm"'):
        await run(sandbox.request("answer_main"))
    request = sandbox.request("hello")
    request.engine.params["EntryModule"] = "/missing.wasm"
    with pytest.raises(ExecutorError, match="no input is mounted at that path"):
        await run(request)
