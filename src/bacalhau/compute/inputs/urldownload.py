"""URL inputs (``urlDownload``): an HTTP(S) download, retried on transient failures, with a size limit.

The file is placed in a directory mounted at the input's target, so the job sees ``<Target>/<filename>`` as in the
original. The name comes from the URL's path, else from Content-Disposition, else a UUID.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import httpx

from bacalhau.compute.executors.base import Mount
from bacalhau.compute.inputs.base import InputError
from bacalhau.lib.paths import is_plain_name
from bacalhau.models.plugins import SourceType
from bacalhau.models.resources import format_bytes
from bacalhau.models.spec import InputSource

_DISPOSITION = re.compile(r"""filename\*?=(?:UTF-8'')?["']?([^"';]+)""", re.IGNORECASE)
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def file_name(url: str, disposition: str) -> str:
    """The downloaded file's name: the server and the URL choose it, so anything but a plain name (``..``, a NUL)
    gives way to the next choice."""
    found = _DISPOSITION.search(disposition or "")
    if found:
        name = PurePosixPath(unquote(found.group(1).strip())).name
        if is_plain_name(name):
            return name
    name = PurePosixPath(unquote(urlparse(url).path)).name
    return name if is_plain_name(name) else str(uuid.uuid4())


class UrlDownloadInput:
    name = SourceType.URL.value

    def __init__(
        self, *, max_bytes: int = 10 * 10**9, retries: int = 3, timeout: float = 300.0, backoff: float = 0.5
    ) -> None:
        self.max_bytes = max_bytes
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff

    def is_installed(self) -> bool:
        return True

    async def prepare(self, source: InputSource, dest: Path) -> Mount:
        url = str(source.source.param("URL", "") if source.source else "")
        if urlparse(url).scheme not in ("http", "https"):
            raise InputError(f"URL {url!r} must use http or https", retryable=False)
        folder = dest / "download"
        folder.mkdir()
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                await self._download(url, folder)
                return Mount(source=folder, target=source.target)
            except _Transient as failure:
                if attempt == self.retries:
                    raise InputError(f"{failure} (gave up after {attempt + 1} attempts)") from None
                for leftover in folder.iterdir():
                    leftover.unlink()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8 * self.backoff)
        raise AssertionError("unreachable")

    async def _download(self, url: str, folder: Path) -> None:
        try:
            async with (
                httpx.AsyncClient(follow_redirects=True, timeout=self.timeout) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code in _RETRY_STATUSES:
                    raise _Transient(f"HTTP {response.status_code} {response.reason_phrase} from {url}")
                if response.status_code >= 400:
                    raise InputError(
                        f"HTTP {response.status_code} {response.reason_phrase} from {url}", retryable=False
                    )
                declared = int(response.headers.get("content-length") or 0)
                if declared > self.max_bytes:
                    raise InputError(self._too_large(url, declared), retryable=False)
                target = folder / file_name(str(response.url), response.headers.get("content-disposition", ""))
                received = 0
                with target.open("wb") as out:
                    async for chunk in response.aiter_bytes(1 << 16):
                        received += len(chunk)
                        if received > self.max_bytes:
                            raise InputError(self._too_large(url, received), retryable=False)
                        await asyncio.to_thread(out.write, chunk)
        except httpx.TimeoutException:
            raise _Transient(f"timed out downloading {url}") from None
        except httpx.TransportError as exc:
            raise _Transient(f"could not download {url}: {exc}") from None

    def _too_large(self, url: str, size: int) -> str:
        return f"{url} is larger than the limit of {format_bytes(self.max_bytes)} (at least {format_bytes(size)})"


class _Transient(Exception):
    """A failure worth retrying: the connection, a timeout, or a 5xx/429 answer."""
