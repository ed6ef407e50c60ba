"""Compiled modules are shared between runs by content, and the cache stays within its budget."""

from __future__ import annotations

from pathlib import Path

import wasmtime

from bacalhau.compute.executors.wasm_cache import CompiledModules

HELLO = (Path(__file__).resolve().parents[2] / "examples" / "hello.wat").read_bytes()
SPIN = b'(module (func (export "_start") (loop $l (br $l))))'


def engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.epoch_interruption = True
    return wasmtime.Engine(config)


def test_the_same_code_is_compiled_once_and_loads_into_other_engines() -> None:
    cache = CompiledModules()
    first = cache.load(engine(), HELLO)
    second = cache.load(engine(), HELLO)
    assert cache.compiled == 1
    assert [e.name for e in second.exports] == [e.name for e in first.exports] == ["memory", "_start"]
    cache.load(engine(), SPIN)
    assert cache.compiled == 2


def test_binary_and_text_forms_are_different_code_but_both_load() -> None:
    cache = CompiledModules()
    binary = bytes(wasmtime.wat2wasm(SPIN.decode()))
    assert [e.name for e in cache.load(engine(), binary).exports] == ["_start"]
    assert [e.name for e in cache.load(engine(), SPIN).exports] == ["_start"]
    assert cache.compiled == 2


def test_the_least_recently_used_module_is_dropped_beyond_the_budget() -> None:
    probe = CompiledModules()
    probe.load(engine(), SPIN)
    size = len(next(iter(probe._artifacts.values())))
    cache = CompiledModules(budget_bytes=size + size // 2)  # room for one artifact of this size
    cache.load(engine(), SPIN)
    cache.load(engine(), SPIN.replace(b"$l", b"$k"))
    cache.load(engine(), SPIN)
    assert cache.compiled == 3
