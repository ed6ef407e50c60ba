"""Identifiers: ``j-<uuid>`` jobs, ``e-<uuid>`` executions, ``n-<uuid>`` nodes, and their short forms."""

from __future__ import annotations

import re
import uuid

JOB_PREFIX = "j-"
EXECUTION_PREFIX = "e-"
NODE_PREFIX = "n-"

_PREFIXED_UUID = re.compile(r"^[a-z]-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_BARE_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_job_id() -> str:
    return JOB_PREFIX + str(uuid.uuid4())


def new_execution_id() -> str:
    return EXECUTION_PREFIX + str(uuid.uuid4())


def new_node_id() -> str:
    return NODE_PREFIX + str(uuid.uuid4())


def is_full_id(value: str) -> bool:
    """A complete ID (``x-<uuid>`` or a bare UUID), as opposed to a prefix to search for."""
    return bool(_PREFIXED_UUID.match(value) or _BARE_UUID.match(value))


def is_execution_id(value: str) -> bool:
    """Whether ``value`` is an execution ID as this orchestrator makes them (``e-<uuid>``), and nothing more."""
    return value.startswith(EXECUTION_PREFIX) and bool(_BARE_UUID.fullmatch(value.removeprefix(EXECUTION_PREFIX)))


def short_id(value: str) -> str:
    """``j-1a2b3c4d-...`` -> ``j-1a2b3c4d``; anything else (a node name, say) is kept whole."""
    if _PREFIXED_UUID.match(value):
        return value[:10]
    return value
