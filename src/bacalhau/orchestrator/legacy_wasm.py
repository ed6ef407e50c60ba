"""Jobs written for the original's older WASM engine format are rewritten into the current one at submission.

Old form: ``EntryModule`` and ``ImportModules`` are input sources themselves, ``EntryPoint`` is spelled with a
capital P and ``EnvironmentVariables`` is a map. New form: modules are ordinary inputs referenced by target path.
"""

from __future__ import annotations

from typing import Any

from bacalhau.models.job import Job
from bacalhau.models.spec import InputSource

ENTRY_TARGET = "/wasm/entry.wasm"


def _as_input(value: dict[str, Any], default_target: str) -> InputSource:
    source = InputSource.model_validate(value)
    if not source.target:
        source.target = default_target
    return source


def convert_legacy_wasm(job: Job) -> None:
    for task in job.tasks:
        engine = task.engine
        if engine is None or not engine.is_type("wasm"):
            continue
        params = dict(engine.params)
        entry = engine.param("EntryModule")
        if isinstance(entry, dict):
            source = _as_input(entry, ENTRY_TARGET)
            task.input_sources.append(source)
            params = {k: v for k, v in params.items() if k.lower() != "entrymodule"}
            params["EntryModule"] = source.target
        imports = engine.param("ImportModules")
        if isinstance(imports, list) and any(isinstance(item, dict) for item in imports):
            targets = []
            for index, item in enumerate(imports):
                if isinstance(item, dict):
                    source = _as_input(item, f"/wasm/imports/module_{index}.wasm")
                    task.input_sources.append(source)
                    targets.append(source.target)
                else:
                    targets.append(str(item))
            params = {k: v for k, v in params.items() if k.lower() != "importmodules"}
            params["ImportModules"] = targets
        if "EntryPoint" in params and "Entrypoint" not in params:
            params["Entrypoint"] = params.pop("EntryPoint")
        env = engine.param("EnvironmentVariables")
        if isinstance(env, dict):
            task.env = {**{str(k): str(v) for k, v in env.items()}, **task.env}
            params = {k: v for k, v in params.items() if k.lower() != "environmentvariables"}
        engine.params = params
