"""The node's persistent identity: chosen once (``--name`` or the name provider) and kept in the data dir."""

from __future__ import annotations

import re
import socket
import uuid
from pathlib import Path

import yaml

from bacalhau.errors import ConfigurationError
from bacalhau.models.ids import new_node_id

METADATA_FILE = "system_metadata.yaml"
_INVALID = re.compile(r"[\s.*>\x00]")


def _from_provider(provider: str) -> str:
    if provider == "puuid":
        return new_node_id()
    if provider == "uuid":
        return str(uuid.uuid4())
    if provider == "hostname":
        return socket.gethostname().split(".")[0]
    raise ConfigurationError(f"unsupported name provider {provider!r}", hint="use puuid, uuid or hostname")


def validate_node_id(node_id: str) -> None:
    if not node_id.strip() or _INVALID.search(node_id):
        raise ConfigurationError(
            f"invalid node name {node_id!r}: it must not be blank or contain spaces, '.', '*' or '>'",
        )


def node_identity(data_dir: Path, requested: str, provider: str) -> tuple[str, str]:
    """(node ID, warning): the stored name wins over ``requested``, which is only used on first start."""
    path = data_dir / METADATA_FILE
    metadata: dict[str, object] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        metadata = loaded if isinstance(loaded, dict) else {}
    stored = str(metadata.get("NodeName") or "")
    if stored:
        warning = ""
        if requested and requested != stored:
            warning = f"ignoring --name {requested}: this data dir belongs to node {stored}"
        return stored, warning
    node_id = requested or _from_provider(provider)
    validate_node_id(node_id)
    metadata.update({"NodeName": node_id, "RepoVersion": 4, "InstanceID": str(uuid.uuid4())})
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(metadata))
    return node_id, ""
