"""The S3 publisher (``s3``): results uploaded with the node's credentials.

``Key`` is a template: ``{jobID}``, ``{executionID}``, ``{nodeID}``, ``{date}`` (YYYYMMDD) and ``{time}`` (HHMMSS).
With ``Encoding: gzip`` (the default) the results become one ``<key>.tar.gz`` object laid out like the local
publisher's archive; with ``plain`` every file is uploaded under ``<key>/``.
"""

from __future__ import annotations

import asyncio
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from bacalhau.compute.publishers.base import PublishError
from bacalhau.lib import s3client
from bacalhau.models.plugins import PublisherType, ResultType
from bacalhau.models.spec import SpecConfig


def render_key(template: str, *, job_id: str, execution_id: str, node_id: str, now: float | None = None) -> str:
    moment = time.gmtime(now if now is not None else time.time())
    return (
        template.replace("{jobID}", job_id)
        .replace("{executionID}", execution_id)
        .replace("{nodeID}", node_id)
        .replace("{date}", time.strftime("%Y%m%d", moment))
        .replace("{time}", time.strftime("%H%M%S", moment))
    )


class S3Publisher:
    name = PublisherType.S3.value

    def __init__(self, node_id: str) -> None:
        self._node_id = node_id

    def is_installed(self) -> bool:
        return True

    async def publish(self, execution_id: str, job_id: str, results_dir: Path, spec: SpecConfig) -> SpecConfig:
        bucket = str(spec.param("Bucket", "") or "")
        template = str(spec.param("Key", "") or "")
        if not bucket or not template:
            raise PublishError("the s3 publisher needs Bucket and Key")
        key = render_key(template, job_id=job_id, execution_id=execution_id, node_id=self._node_id)
        encoding = str(spec.param("Encoding", "gzip") or "gzip").lower()
        if encoding not in ("gzip", "plain"):
            raise PublishError(f"unknown Encoding {encoding!r}: use gzip or plain")
        suffix = ".tar.gz" if encoding == "gzip" else "/"
        key = key if key.endswith(suffix) else key + suffix
        try:
            return await asyncio.to_thread(self._upload, spec, bucket, key, encoding, results_dir)
        except s3client.S3Error as exc:
            raise PublishError(f"publishing to s3://{bucket}/{key} failed: {s3client.describe(exc)}") from None

    def _upload(self, spec: SpecConfig, bucket: str, key: str, encoding: str, results_dir: Path) -> SpecConfig:
        s3 = s3client.client(spec)
        version = ""
        if encoding == "gzip":
            with tempfile.TemporaryDirectory() as scratch:
                archive = Path(scratch) / "results.tar.gz"
                with tarfile.open(archive, "w:gz") as tar:
                    tar.add(results_dir, arcname=".")
                version = self._put(s3, bucket, key, archive)
        else:
            for path in sorted(p for p in results_dir.rglob("*") if p.is_file()):
                self._put(s3, bucket, key + path.relative_to(results_dir).as_posix(), path)
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        for name in ("Endpoint", "Region"):
            if spec.param(name):
                params[name] = spec.param(name)
        if version:
            params["VersionID"] = version
        return SpecConfig(type=ResultType.S3.value, params=params)

    @staticmethod
    def _put(s3: Any, bucket: str, key: str, path: Path) -> str:
        with path.open("rb") as body:
            response = s3.put_object(Bucket=bucket, Key=key, Body=body)
        version = response.get("VersionId") or ""
        return "" if version == "null" else str(version)
