"""S3 inputs (``s3``): one object, or every object under a prefix, downloaded with the node's credentials.

As in the original, the job always sees a directory at the input's target. A key that does not end in ``/`` or
``*`` names one object, placed there under its base name (``VersionID`` and ``ChecksumSHA256`` honoured). Otherwise
every object under the prefix whose key, with the prefix removed, matches the ``Filter`` regex is downloaded, laid
out relative to the prefix's directory. An empty prefix gives an empty directory, as in the original.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import Any

from bacalhau.compute.executors.base import Mount
from bacalhau.compute.inputs.base import InputError
from bacalhau.lib import s3client
from bacalhau.lib.paths import UnsafePath, is_plain_name, within
from bacalhau.models.plugins import SourceType
from bacalhau.models.spec import InputSource, SpecConfig


def local_path(key: str, prefix: str) -> str:
    """Where an object lands, relative to the input directory: its key without the prefix's directory parts."""
    prefix_dirs = prefix.split("/")[:-1]
    parts = key.split("/")
    common = 0
    while common < len(prefix_dirs) and common < len(parts) - 1 and parts[common] == prefix_dirs[common]:
        common += 1
    return "/".join(parts[common:])


class S3Input:
    name = SourceType.S3.value

    def is_installed(self) -> bool:
        return True

    async def prepare(self, source: InputSource, dest: Path) -> Mount:
        spec = source.source or SpecConfig()
        bucket = str(spec.param("Bucket", "") or "")
        if not bucket:
            raise InputError("invalid s3 storage params: bucket cannot be empty", retryable=False)
        key = str(spec.param("Key", "") or "").strip()
        try:
            pattern = re.compile(str(spec.param("Filter", "") or ""))
        except re.error as exc:
            raise InputError(f"invalid Filter regex {spec.param('Filter')!r}: {exc}", retryable=False) from None
        folder = dest / "s3"
        folder.mkdir()
        try:
            await asyncio.to_thread(self._fetch, spec, bucket, key, pattern, folder)
        except s3client.S3Error as exc:
            raise InputError(
                f"s3://{bucket}/{key}: {s3client.describe(exc)}", retryable=not s3client.is_missing(exc)
            ) from None
        return Mount(source=folder, target=source.target)

    def _fetch(self, spec: SpecConfig, bucket: str, key: str, pattern: re.Pattern[str], folder: Path) -> None:
        s3 = s3client.client(spec)
        if key and not key.endswith(("/", "*")):
            name = PurePosixPath(key).name
            self._download(s3, spec, bucket, key, folder / (name if is_plain_name(name) else "object"))
            return
        prefix = key.removesuffix("*")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                object_key: str = item["Key"]
                if not pattern.search(object_key.removeprefix(prefix)):
                    continue
                relative = local_path(object_key, prefix)
                if not relative.strip("/"):
                    continue  # the prefix's own folder marker: the input directory itself
                try:
                    path = within(folder, relative)
                except UnsafePath:
                    raise InputError(
                        f"object key {object_key!r} escapes the input directory", retryable=False
                    ) from None
                if object_key.endswith("/"):
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                self._download(s3, SpecConfig(), bucket, object_key, path)

    @staticmethod
    def _download(s3: Any, spec: SpecConfig, bucket: str, key: str, path: Path) -> None:
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        version = spec.param("VersionID")
        if version:
            request["VersionId"] = str(version)
        response = s3.get_object(**request)
        digest = hashlib.sha256()
        with path.open("wb") as out:
            for chunk in response["Body"].iter_chunks(1 << 16):
                digest.update(chunk)
                out.write(chunk)
        expected = spec.param("ChecksumSHA256")
        actual = base64.b64encode(digest.digest()).decode()
        if expected and expected not in (actual, digest.hexdigest()):
            raise InputError(
                f"checksum mismatch for s3://{bucket}/{key}, expected {expected}, got {actual}", retryable=False
            )
