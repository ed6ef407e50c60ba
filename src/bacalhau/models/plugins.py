"""The registry of plugin type names: the engines, input sources and publishers this implementation provides.

Every other place names a plugin through these enums (the compute node's implementations, the CLI's flags, the
submission check), so a type is accepted at submission exactly when some node of ours can provide it. The original's
types we do not provide (the ``ipfs`` and ``s3managed`` publishers, the ``s3PreSigned`` input source) are refused
at submission like any unknown name, rather than failing later on a node.
"""

from __future__ import annotations

from enum import StrEnum


class EngineType(StrEnum):
    DOCKER = "docker"
    WASM = "wasm"
    NOOP = "noop"


class SourceType(StrEnum):
    INLINE = "inline"
    URL = "urlDownload"
    LOCAL_DIRECTORY = "localDirectory"
    LOCAL = "local"  # v1.8's name for localDirectory
    S3 = "s3"
    IPFS = "ipfs"


class PublisherType(StrEnum):
    NOOP = "noop"
    LOCAL = "local"
    S3 = "s3"


class ResultType(StrEnum):
    """How a published result is fetched: a plain URL (the local publisher), an object in S3, or a pre-signed URL
    for one (what the orchestrator turns an S3 result into for clients)."""

    URL = "urlDownload"
    S3 = "s3"
    S3_PRESIGNED = "s3PreSigned"


ENGINES = frozenset(EngineType)
INPUT_SOURCES = frozenset(SourceType)
PUBLISHERS = frozenset(PublisherType)


_SPELLINGS = {str(name).lower(): str(name) for kind in (EngineType, SourceType, PublisherType) for name in kind}


def canonical(name: str, names: frozenset[str]) -> str:
    """The registry's spelling of a type name, matched as the original matches plugin names (trimmed, in any case),
    so that every later lookup can be exact; a name not in ``names`` comes back as it was."""
    spelling = _SPELLINGS.get(name.strip().lower(), name)
    return spelling if spelling in names else name


def _known(kind: str, name: str, names: frozenset[str]) -> list[str]:
    if canonical(name, names) in names:
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
