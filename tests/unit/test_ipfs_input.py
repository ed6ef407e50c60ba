"""``ipfs`` inputs through the Kubo RPC API.

No IPFS node can run on these machines (no Kubo binary is installable offline), so these tests serve the one RPC
call the input uses, ``POST /api/v0/get?arg=CID&archive=true``, from a loopback HTTP server that answers as Kubo
does: a tar archive whose top entry is named after the CID, or a JSON error.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from bacalhau.compute.inputs.base import InputError
from bacalhau.compute.inputs.ipfs import IpfsInput, api_url
from bacalhau.models.spec import InputSource

DIR_CID = "QmDirectoryCid1111111111111111111111111111111111"
FILE_CID = "bafkreifilecid22222222222222222222222222222222222222222222"


def archive(cid: str, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"{cid}/{name}" if name else cid)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


CONTENT = {
    DIR_CID: archive(DIR_CID, {"a.txt": b"alpha", "sub/b.txt": b"beta"}),
    FILE_CID: archive(FILE_CID, {"": b"just a file"}),
}


class KuboRpc(BaseHTTPRequestHandler):
    calls: list[dict[str, list[str]]] = []

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        self.calls.append(query)
        cid = query.get("arg", [""])[0]
        if url.path != "/api/v0/get" or cid not in CONTENT:
            body = json.dumps({"Message": f"block was not found locally (offline): ipld: could not find {cid}",
                               "Code": 0, "Type": "error"}).encode()  # fmt: skip
            self.send_response(500)
        else:
            body = CONTENT[cid]
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def kubo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), KuboRpc)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"/ip4/127.0.0.1/tcp/{server.server_address[1]}"
    server.shutdown()
    thread.join()


def ipfs(cid: str) -> InputSource:
    return InputSource.model_validate({"Source": {"Type": "ipfs", "Params": {"CID": cid}}, "Target": "/ipfs"})


async def test_a_directory_cid_is_mounted_as_a_directory(kubo: str, tmp_path: Path) -> None:
    mount = await IpfsInput(kubo).prepare(ipfs(DIR_CID), tmp_path)
    assert mount.target == "/ipfs" and mount.source.name == DIR_CID
    assert (mount.source / "a.txt").read_bytes() == b"alpha"
    assert (mount.source / "sub" / "b.txt").read_bytes() == b"beta"
    assert KuboRpc.calls[-1] == {"arg": [DIR_CID], "archive": ["true"]}
    assert os.listdir(tmp_path) == ["ipfs"], "the downloaded archive is removed"


async def test_a_file_cid_is_mounted_as_a_file(kubo: str, tmp_path: Path) -> None:
    mount = await IpfsInput(kubo).prepare(ipfs(FILE_CID), tmp_path)
    assert mount.source.read_bytes() == b"just a file"


async def test_an_unknown_cid_reports_what_the_ipfs_node_said(kubo: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot get QmMissing: block was not found locally .*could not find"):
        await IpfsInput(kubo).prepare(ipfs("QmMissing"), tmp_path)


async def test_content_over_the_limit_is_refused(kubo: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="larger than the download limit"):
        await IpfsInput(kubo, max_bytes=100).prepare(ipfs(DIR_CID), tmp_path)


async def test_an_unreachable_ipfs_node_is_a_retryable_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"could not get QmX from the IPFS node at http://127\.0\.0\.1:9") as info:
        await IpfsInput("/ip4/127.0.0.1/tcp/9").prepare(ipfs("QmX"), tmp_path)
    assert info.value.retryable


@pytest.mark.parametrize("cid", ["", "../etc", "Qm x"])
async def test_invalid_cids_are_refused(kubo: str, cid: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="invalid CID"):
        await IpfsInput(kubo).prepare(ipfs(cid), tmp_path)


def test_offered_only_with_an_endpoint() -> None:
    assert not IpfsInput("").is_installed()
    assert IpfsInput("http://127.0.0.1:5001").is_installed()


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("/ip4/127.0.0.1/tcp/5001", "http://127.0.0.1:5001"),
        ("/dns4/ipfs.local/tcp/5001/https", "https://ipfs.local:5001"),
        ("/ip6/::1/tcp/5001", "http://[::1]:5001"),
        ("http://10.0.0.1:5001/", "http://10.0.0.1:5001"),
    ],
)
def test_endpoints(endpoint: str, url: str) -> None:
    assert api_url(endpoint) == url


def test_a_bad_endpoint_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="neither a multiaddr"):
        api_url("localhost:5001")
