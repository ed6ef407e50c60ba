"""IPFS inputs (``ipfs``): a CID fetched through the Kubo RPC API of an IPFS node that this compute node uses.

Offered only when ``InputSources.Types.IPFS.Endpoint`` is set, as a multiaddr (``/ip4/127.0.0.1/tcp/5001``, as
in the original) or an ``http(s)://`` URL. ``/api/v0/get`` streams the CID as a tar archive whose top entry is
named after the CID; that entry (a file or a directory) is what the job sees at the input's target.
"""

from __future__ import annotations

import asyncio
import re
import tarfile
from pathlib import Path

import httpx

from bacalhau.compute.executors.base import Mount
from bacalhau.compute.inputs.base import InputError
from bacalhau.models.plugins import SourceType
from bacalhau.models.spec import InputSource

_MULTIADDR = re.compile(r"^/(ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d+)(/(https|http))?/?$")
_CID = re.compile(r"^[A-Za-z0-9]+(/[^/\0]+)*$")


def api_url(endpoint: str) -> str:
    """The HTTP base URL of a Kubo RPC endpoint given as a multiaddr or a URL."""
    endpoint = endpoint.strip()
    if endpoint.startswith(("http://", "https://")):
        return endpoint.rstrip("/")
    found = _MULTIADDR.match(endpoint)
    if not found:
        raise ValueError(f"IPFS endpoint {endpoint!r} is neither a multiaddr like /ip4/127.0.0.1/tcp/5001 nor a URL")
    kind, host, port, _, scheme = found.groups()
    host = f"[{host}]" if kind == "ip6" else host
    return f"{scheme or 'http'}://{host}:{port}"


class IpfsInput:
    name = SourceType.IPFS.value

    def __init__(self, endpoint: str, *, max_bytes: int = 10 * 10**9, timeout: float = 300.0) -> None:
        self._base = api_url(endpoint) if endpoint.strip() else ""
        self._max_bytes = max_bytes
        self._timeout = timeout

    def is_installed(self) -> bool:
        return bool(self._base)

    async def has_locally(self, source: InputSource) -> bool:
        """Admission control's ``Locality: local``: the IPFS node holds the CID without fetching it (asked
        offline, as the original asks)."""
        cid = str(source.source.param("CID", "") if source.source else "").strip().split("/")[0]
        if not self._base or not _CID.match(cid):
            return False
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(f"{self._base}/api/v0/block/stat", params={"arg": cid, "offline": "true"})
        return answer.status_code == 200

    async def prepare(self, source: InputSource, dest: Path) -> Mount:
        cid = str(source.source.param("CID", "") if source.source else "").strip()
        if not _CID.match(cid):
            raise InputError(f"invalid CID {cid!r}", retryable=False)
        folder = dest / "ipfs"
        folder.mkdir()
        try:
            await self._get(cid, folder)
        except httpx.HTTPError as exc:
            raise InputError(f"could not get {cid} from the IPFS node at {self._base}: {exc}") from None
        fetched = folder / cid.split("/")[-1]
        if not fetched.exists():
            raise InputError(f"the IPFS node at {self._base} returned no content for {cid}")
        return Mount(source=fetched, target=source.target)

    async def _get(self, cid: str, folder: Path) -> None:
        url = f"{self._base}/api/v0/get"
        async with (
            httpx.AsyncClient(timeout=self._timeout) as client,
            client.stream("POST", url, params={"arg": cid, "archive": "true"}) as response,
        ):
            if response.status_code >= 400:
                body = (await response.aread()).decode(errors="replace")
                raise InputError(f"the IPFS node at {self._base} cannot get {cid}: {_kubo_message(body)}")
            archive = folder.parent / "ipfs.tar"
            received = 0
            with archive.open("wb") as out:
                async for chunk in response.aiter_bytes(1 << 16):
                    received += len(chunk)
                    if received > self._max_bytes:
                        raise InputError(f"{cid} is larger than the download limit", retryable=False)
                    await asyncio.to_thread(out.write, chunk)
        try:
            await asyncio.to_thread(_extract, archive, folder)
        finally:
            archive.unlink()


def _kubo_message(body: str) -> str:
    """Kubo answers errors as JSON ``{"Message": ..., "Code": ...}``; fall back to the raw text."""
    found = re.search(r'"Message"\s*:\s*"([^"]*)"', body)
    return found.group(1) if found else body.strip()[:200]


def _extract(archive: Path, folder: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"the IPFS node's archive could not be unpacked: {exc}") from None
