"""End to end: results and logs reach only whoever the orchestrator signed a link for, with real ``bacalhau serve``
processes, real NATS and real HTTP. Execution IDs are listed by the API, so knowing one must not be enough."""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import nats
import pytest
from nats.aio.msg import Msg

from bacalhau.lib.links import EXPIRES, KEY_FILE, SIGNATURE, Purpose, sign
from bacalhau.transport import envelope, subjects
from bacalhau.transport.natsserver import free_port
from tests.conftest import ServeProcess, wait_until
from tests.e2e.cluster import Cluster
from tests.helpers import executions, link_key, signed_url, submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    serving = ServeProcess(tmp_path_factory.mktemp("links") / "node", "--orchestrator", "--compute").start()
    yield serving
    serving.stop()


def run_hello(url: str, wasm: Callable[[str], bytes], word: str) -> str:
    """A completed job whose results the local publisher published; its ID."""
    job_id = submit(url, wasm_job(wasm("hello"), word))
    assert wait_for_state(url, job_id)["State"]["StateType"] == "Completed"
    return job_id


def handed_out(url: str, job_id: str) -> str:
    """The download URL the results endpoint hands out for the job's one result."""
    [result] = httpx.get(f"{url}/api/v1/orchestrator/jobs/{job_id}/results", timeout=10).json()["Items"]
    return str(result["Params"]["URL"])


def stored(url: str, job_id: str) -> tuple[str, str, str]:
    """(execution ID, node ID, URL) of the job's one execution, as the orchestrator stores it."""
    [execution] = executions(url, job_id)
    return execution["ID"], execution["NodeID"], execution["PublishedResult"]["Params"]["URL"]


def job_get(node: ServeProcess, job_id: str, out: Path) -> str:
    out.mkdir()
    node.cli("job", "get", job_id, "--output-dir", str(out))
    return (out / "stdout").read_text()


def test_job_get_downloads_through_a_link_signed_when_asked(
    node: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    job_id = run_hello(node.url, wasm, "signed")
    assert job_get(node, job_id, tmp_path / "out") == "Hello, world! signed\n"
    _, _, unsigned = stored(node.url, job_id)
    assert urlsplit(unsigned).query == "", "the stored execution keeps the URL unsigned"
    url = urlsplit(handed_out(node.url, job_id))
    assert url._replace(query="").geturl() == unsigned
    assert set(parse_qs(url.query)) == {EXPIRES, SIGNATURE}


def test_the_publisher_refuses_every_link_not_signed_for_the_execution(
    node: ServeProcess, wasm: Callable[[str], bytes]
) -> None:
    job_id, other_job_id = run_hello(node.url, wasm, "mine"), run_hello(node.url, wasm, "theirs")
    execution_id, node_id, unsigned = stored(node.url, job_id)
    _, _, other_unsigned = stored(node.url, other_job_id)
    good = handed_out(node.url, job_id)
    query = {name: values[0] for name, values in parse_qs(urlsplit(good).query).items()}
    key = link_key(node.data_dir, node_id)  # what the node verifies with, read from the data dir by this test
    flipped = query[SIGNATURE][:-1] + ("0" if query[SIGNATURE][-1] != "0" else "1")
    now = int(time.time())

    def refusal(url: str) -> str:
        response = httpx.get(url, timeout=10)
        assert response.status_code == 403, f"{url} was not refused: {response.status_code}"
        return response.text

    assert httpx.get(good, timeout=10).status_code == 200
    assert refusal(unsigned) == "forbidden: the link is not signed\n"
    assert "signature is wrong" in refusal(f"{unsigned}?{urlencode({**query, SIGNATURE: flipped})}")
    assert "signature is wrong" in refusal(f"{unsigned}?{urlencode({**query, EXPIRES: now + 86400})}")
    assert "signature is wrong" in refusal(f"{other_unsigned}?{urlsplit(good).query}"), "another execution's ID"
    assert "has expired" in refusal(signed_url(unsigned, key, execution_id, now - 1))
    assert "malformed" in refusal(f"{unsigned}?{urlencode({**query, EXPIRES: 'soon'})}")
    assert httpx.get(signed_url(unsigned, key, execution_id, now + 60), timeout=10).status_code == 200

    log = node.log()
    assert f"refused a results link for execution {execution_id} from 127.0.0.1" in log
    assert query[SIGNATURE] not in log and flipped not in log and key.hex() not in log


async def test_job_logs_work_and_a_raw_log_request_needs_a_signature(
    node: ServeProcess, wasm: Callable[[str], bytes]
) -> None:
    job_id = run_hello(node.url, wasm, "logged")
    assert node.cli("job", "logs", job_id).stdout == "Hello, world! logged\n"
    execution_id, node_id, _ = stored(node.url, job_id)
    key = link_key(node.data_dir, node_id)
    run = (node.data_dir / "bacalhau.run").read_text()
    nats_url = run.split("BACALHAU_COMPUTE_ORCHESTRATORS=")[1].split()[0]
    client = await nats.connect(nats_url)  # anyone who can reach NATS: no token is set on this node
    chunks: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_chunk(msg: Msg) -> None:
        await chunks.put(msg)

    try:
        await client.subscribe("_TEST_LOGS.raw", cb=on_chunk)

        async def ask(**signed: Any) -> dict[str, Any]:
            request = {"ExecutionID": execution_id, "Subject": "_TEST_LOGS.raw", **signed}
            reply = await client.request(subjects.logs(node_id), envelope.encode(request), timeout=10)
            return envelope.decode(reply.data)

        past, later = int(time.time()) - 1, int(time.time()) + 60
        assert await ask() == {"Error": "log request refused: the link is not signed"}
        expired = await ask(Expires=past, Signature=sign(key, execution_id, Purpose.LOGS, past))
        assert expired == {"Error": "log request refused: the link has expired: ask the orchestrator for a new one"}
        results_link = await ask(Expires=later, Signature=sign(key, execution_id, Purpose.RESULTS, later))
        assert results_link == {"Error": "log request refused: the link's signature is wrong"}
        assert chunks.empty()

        assert await ask(Expires=later, Signature=sign(key, execution_id, Purpose.LOGS, later)) == {"OK": True}
        first = await asyncio.wait_for(chunks.get(), 10)
        assert envelope.decode(first.data)["Lines"] == [{"Type": 1, "Line": "Hello, world! logged\n"}]
        await first.respond(envelope.encode({"Continue": False}))
    finally:
        await client.close()
    assert f"refused a logs link for execution {execution_id} from a NATS client" in node.log()


def test_links_survive_restarts_of_the_orchestrator_and_the_compute_node(
    tmp_path: Path, wasm: Callable[[str], bytes]
) -> None:
    """The orchestrator keeps its key in its data dir, so that links it signed stay valid and it signs the same way
    after a restart; a restarted compute node, which kept its key in memory only, gets it back at its handshake."""
    cluster = Cluster(tmp_path)
    try:
        orchestrator = cluster.start_orchestrator(nats_port=free_port("127.0.0.1"))
        # A fixed port: the stored URL names it, and must still lead to the node after its restart.
        compute = cluster.add_compute("c1", "-c", f"Publishers.Types.Local.Port={free_port('127.0.0.1')}")
        key_file = orchestrator.data_dir / "orchestrator" / KEY_FILE
        key = key_file.read_bytes()
        job_id = run_hello(cluster.url, wasm, "again")
        before = handed_out(cluster.url, job_id)
        assert httpx.get(before, timeout=10).status_code == 200

        orchestrator.stop()
        orchestrator.start()
        assert httpx.get(before, timeout=10).status_code == 200, "a link signed before the restart"
        assert job_get(orchestrator, job_id, tmp_path / "after-orchestrator") == "Hello, world! again\n"

        compute.stop()
        compute.start()
        wait_until(
            lambda: httpx.get(before, timeout=10).status_code == 200,
            30,
            "the compute node's handshake to bring its key",
        )
        assert job_get(orchestrator, job_id, tmp_path / "after-compute") == "Hello, world! again\n"

        assert key_file.read_bytes() == key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
        logs = orchestrator.log() + compute.log()
        assert key.hex() not in logs and link_key(orchestrator.data_dir, "c1").hex() not in logs
    finally:
        cluster.stop()
