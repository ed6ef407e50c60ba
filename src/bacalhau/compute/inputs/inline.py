"""Inline inputs: the data travels in the job spec as an RFC 2397 ``data:`` URL (or as plain text).

Plain data becomes a file at the target; ``application/gzip`` data is a tar.gz and becomes a directory, which is
how the CLI ships local files larger than 512 bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import tarfile
import urllib.parse
from pathlib import Path

from bacalhau.compute.executors.base import Mount
from bacalhau.compute.inputs.base import InputError
from bacalhau.models.plugins import SourceType
from bacalhau.models.spec import InputSource


def parse_data_url(url: str) -> tuple[str, bytes]:
    """(media type, bytes) of a ``data:`` URL; text that is not a data URL is taken as the content itself."""
    if not url.startswith("data:"):
        return "text/plain", url.encode()
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise InputError("inline data URL has no comma separating its header from its data", retryable=False)
    parts = header.split(";")
    media_type = parts[0] or "text/plain"
    if "base64" in parts[1:]:
        try:
            return media_type, base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"inline data is not valid base64: {exc}", retryable=False) from None
    return media_type, urllib.parse.unquote_to_bytes(payload)


def _extract(data: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        archive.extractall(dest, filter="data")


class InlineInput:
    name = SourceType.INLINE.value

    def is_installed(self) -> bool:
        return True

    async def has_locally(self, source: InputSource) -> bool:
        """The data travels with the job (admission control's ``Locality: local``)."""
        return True

    async def prepare(self, source: InputSource, dest: Path) -> Mount:
        spec = source.source
        url = str(spec.param("URL", "") if spec else "")
        media_type, data = parse_data_url(url)
        if media_type in ("application/gzip", "application/x-gzip", "application/x-tar+gzip"):
            target_dir = dest / "inline"
            target_dir.mkdir(parents=True)
            try:
                await asyncio.to_thread(_extract, data, target_dir)
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise InputError(f"inline archive could not be unpacked: {exc}", retryable=False) from None
            return Mount(source=target_dir, target=source.target)
        target_file = dest / "inline"
        await asyncio.to_thread(target_file.write_bytes, data)
        return Mount(source=target_file, target=source.target)
