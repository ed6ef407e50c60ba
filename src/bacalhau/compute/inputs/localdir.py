"""Local inputs (``localDirectory``, and ``local`` as v1.8 calls it): a path on the compute node, mounted as is.

Only paths the node's allow-list (``Compute.AllowListedLocalPaths``) permits can be used: each entry is a glob
(``**`` spans directories) with an optional ``:rw`` or ``:ro`` suffix (read-only by default). Paths are resolved
(``..`` and symlinks) before matching, so that a job cannot reach outside the allowed places.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from bacalhau.compute.executors.base import Mount
from bacalhau.compute.inputs.base import InputError
from bacalhau.models.plugins import SourceType
from bacalhau.models.spec import InputSource


def glob_pattern(glob: str) -> re.Pattern[str]:
    """A doublestar glob as a regex: ``**`` matches across ``/``, ``*`` and ``?`` within one path part."""
    parts = []
    index = 0
    while index < len(glob):
        char = glob[index]
        if glob.startswith("**", index):
            parts.append(".*")
            index += 2
            continue
        parts.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        index += 1
    return re.compile("".join(parts) + "/?")


@dataclass(frozen=True)
class AllowedPath:
    pattern: re.Pattern[str]
    read_write: bool

    @classmethod
    def parse(cls, entry: str) -> AllowedPath:
        path, mode = entry, "ro"
        for suffix in (":rw", ":ro"):
            if entry.endswith(suffix):
                path, mode = entry[: -len(suffix)], suffix[1:]
        return cls(glob_pattern(str(Path(path).expanduser())), mode == "rw")

    def covers(self, path: Path) -> bool:
        text = str(path)
        return any(self.pattern.fullmatch(candidate) for candidate in (text, *(str(p) for p in path.parents)))


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


class LocalDirectoryInput:
    name = SourceType.LOCAL_DIRECTORY.value

    def __init__(self, allow_list: list[str]) -> None:
        self._allowed = [AllowedPath.parse(entry) for entry in allow_list if entry.strip()]

    def is_installed(self) -> bool:
        return bool(self._allowed)

    async def has_locally(self, source: InputSource) -> bool:
        """Admission control's ``Locality: local``, as the original: the path is allowed and exists, or may be
        created."""
        return await asyncio.to_thread(self._has_locally, source)

    def _has_locally(self, source: InputSource) -> bool:
        spec = source.source
        raw = str(spec.param("SourcePath", "") if spec else "")
        if not raw or spec is None:
            return False
        path = Path(raw).expanduser().resolve()
        if not any(entry.covers(path) for entry in self._allowed):
            return False
        create_as = str(spec.param("CreateAs", "noCreate") or "noCreate")
        return path.exists() or (_flag(spec.param("ReadWrite", False)) and create_as in ("dir", "file"))

    async def prepare(self, source: InputSource, dest: Path) -> Mount:
        return await asyncio.to_thread(self._prepare, source)

    def _prepare(self, source: InputSource) -> Mount:
        spec = source.source
        raw = str(spec.param("SourcePath", "") if spec else "")
        if not raw:
            raise InputError("SourcePath is required", retryable=False)
        read_write = _flag(spec.param("ReadWrite", False)) if spec else False
        create_as = str(spec.param("CreateAs", "noCreate") if spec else "noCreate") or "noCreate"
        path = Path(raw).expanduser().resolve()
        matching = [entry for entry in self._allowed if entry.covers(path)]
        if not matching:
            raise InputError(f"volume {raw} is not allowlisted")
        if read_write and not any(entry.read_write for entry in matching):
            raise InputError(f"volume {raw} is not granted write access")
        if not path.exists():
            self._create(path, raw, read_write, create_as)
        return Mount(source=path, target=source.target, read_write=read_write)

    @staticmethod
    def _create(path: Path, raw: str, read_write: bool, create_as: str) -> None:
        if not read_write or create_as not in ("dir", "file"):
            raise InputError(f"volume {raw} does not exist (set ReadWrite and CreateAs to have it created)")
        if create_as == "dir":
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
