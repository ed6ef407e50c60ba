"""The local publisher over real HTTP on loopback: it serves an execution's archive for a link signed for it, and
nothing else: no other file, nothing outside its folder, nothing at all before its orchestrator sent a key."""

from __future__ import annotations

import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bacalhau.compute.publishers.local import LocalPublisher
from bacalhau.lib.links import KEY_BYTES, LinkSigner, LinkVerifier, Purpose, with_grant
from bacalhau.models.ids import new_execution_id
from bacalhau.models.spec import SpecConfig

MASTER = bytes(range(KEY_BYTES))
NODE = "node-a"
SIGNER = LinkSigner(MASTER)


@pytest.fixture
async def publisher(tmp_path: Path) -> AsyncIterator[LocalPublisher]:
    verifier = LinkVerifier()
    verifier.update(SIGNER.handshake_key(NODE))
    serving = LocalPublisher(tmp_path / "published", "127.0.0.1", 0, verifier)
    await serving.start()
    yield serving
    await serving.stop()


async def publish(publisher: LocalPublisher, tmp_path: Path) -> tuple[str, str]:
    """(execution ID, unsigned URL) of a freshly published result."""
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    (results / "stdout").write_text("hello\n")
    execution_id = new_execution_id()
    published = await publisher.publish(execution_id, "j-1", results, SpecConfig(type="local"))
    return execution_id, str(published.params["URL"])


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def test_an_archive_is_served_for_a_signed_link_only(publisher: LocalPublisher, tmp_path: Path) -> None:
    execution_id, url = await publish(publisher, tmp_path)
    served = await get(SIGNER.sign_url(url, NODE, execution_id))
    assert served.status_code == 200 and served.headers["content-type"] == "application/gzip"
    archive = tmp_path / "got.tar.gz"
    archive.write_bytes(served.content)
    with tarfile.open(archive) as tar:
        assert "./stdout" in tar.getnames()
    refused = await get(url)
    assert refused.status_code == 403 and refused.text == "forbidden: the link is not signed\n"
    other_node = await get(SIGNER.sign_url(url, "node-b", execution_id))
    assert other_node.status_code == 403 and "signature is wrong" in other_node.text


async def test_nothing_is_served_before_the_orchestrator_sent_a_key(tmp_path: Path) -> None:
    keyless = LocalPublisher(tmp_path / "published", "127.0.0.1", 0, LinkVerifier())
    await keyless.start()
    try:
        execution_id, url = await publish(keyless, tmp_path)
        refused = await get(SIGNER.sign_url(url, NODE, execution_id))
        assert refused.status_code == 403 and "no signing key" in refused.text
    finally:
        await keyless.stop()


async def test_only_archives_named_for_an_execution_inside_the_folder_are_served(
    publisher: LocalPublisher, tmp_path: Path
) -> None:
    """Defence in depth, for a folder someone else could write into: a symlink out of it is refused though the link
    is signed right, and so is any file not named ``<execution-id>.tar.gz``."""
    secret = tmp_path / "secret.tar.gz"
    secret.write_bytes(b"not yours")
    linked = new_execution_id()
    (publisher.directory / f"{linked}.tar.gz").symlink_to(secret)
    response = await get(SIGNER.sign_url(f"{publisher.url_prefix}/{linked}.tar.gz", NODE, linked))
    assert response.status_code == 404
    missing = new_execution_id()
    assert (await get(SIGNER.sign_url(f"{publisher.url_prefix}/{missing}.tar.gz", NODE, missing))).status_code == 404

    (publisher.directory / "notes.txt").write_text("x")
    (publisher.directory / "other.tar.gz").write_bytes(b"x")
    grant = SIGNER.grant(NODE, "other", Purpose.RESULTS)
    assert (await get(f"{publisher.url_prefix}/notes.txt")).status_code == 404
    assert (await get(with_grant(f"{publisher.url_prefix}/other.tar.gz", grant))).status_code == 403
    assert (await get(with_grant(f"{publisher.url_prefix}/..%2F{secret.name}", grant))).status_code == 404
