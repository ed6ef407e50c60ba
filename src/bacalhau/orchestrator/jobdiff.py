"""What changed between a stored job and a resubmitted spec of it: the decision between a new version and "no
changes detected", and the diff that ``job run --dry-run`` and ``PUT /jobs/diff`` show.

As the original compares them, the fields the orchestrator owns (ID, state, version, revision, times) and its own
meta entries (the reserved ``bacalhau.org/`` prefix) do not count, and resource amounts compare case-insensitively
(``1GB`` and ``1gb`` are the same request).
"""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from bacalhau.models.job import META_RESERVED_PREFIX, Job

_OWNED_BY_ORCHESTRATOR = ("ID", "State", "Version", "Revision", "CreateTime", "ModifyTime")
_RESOURCE_AMOUNTS = ("CPU", "Memory", "Disk", "GPU")


def comparable(job: Job) -> dict[str, Any]:
    """The part of a job's wire form that a user's spec decides."""
    wire = job.to_wire()
    for key in _OWNED_BY_ORCHESTRATOR:
        wire.pop(key, None)
    meta = wire.get("Meta") or {}
    wire["Meta"] = {key: value for key, value in meta.items() if not key.startswith(META_RESERVED_PREFIX)}
    for task in wire.get("Tasks") or []:
        resources = task.get("Resources") or {}
        for key in _RESOURCE_AMOUNTS:
            if isinstance(resources.get(key), str):
                resources[key] = resources[key].lower()
    return wire


def spec_diff(stored: Job, submitted: Job) -> str:
    """A unified diff of the stored job's spec against the submitted one; empty when they are equivalent."""
    before, after = comparable(stored), comparable(submitted)
    if before == after:
        return ""
    lines = difflib.unified_diff(
        _as_yaml(before),
        _as_yaml(after),
        fromfile=f"{stored.name} (version {stored.version})",
        tofile=f"{submitted.name} (submitted)",
        lineterm="",
    )
    return "\n".join(lines) + "\n"


def _as_yaml(wire: dict[str, Any]) -> list[str]:
    return yaml.safe_dump(wire, sort_keys=False, default_flow_style=False, allow_unicode=True).splitlines()
