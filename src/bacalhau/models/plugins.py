"""The plugin type names a job spec may use: engines, input sources and publishers."""

from __future__ import annotations

ENGINES = frozenset({"docker", "wasm", "noop"})
INPUT_SOURCES = frozenset({"inline", "urlDownload", "localDirectory", "local", "s3", "s3PreSigned", "ipfs", "noop"})
PUBLISHERS = frozenset({"noop", "local", "s3", "ipfs", "s3managed"})


def _known(kind: str, name: str, names: frozenset[str]) -> list[str]:
    if any(name.lower() == known.lower() for known in names):
        return []
    return [f"unknown {kind} type {name!r}: supported types are {', '.join(sorted(names))}"]


def unknown_plugin_types(engine: str, publisher: str, sources: list[str]) -> list[str]:
    """Messages for every type name no node of this implementation can ever provide."""
    errors = _known("engine", engine, ENGINES) if engine else []
    if publisher:
        errors += _known("publisher", publisher, PUBLISHERS)
    for source in sources:
        errors += _known("input source", source, INPUT_SOURCES)
    return errors
