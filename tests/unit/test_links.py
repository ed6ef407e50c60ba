"""Signed links (bacalhau.lib.links): what a compute node accepts, what it refuses and why; the orchestrator's key."""

from __future__ import annotations

import hmac
import logging
import os
import stat
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bacalhau.errors import ConfigurationError
from bacalhau.lib import links
from bacalhau.lib.links import (
    EXPIRES,
    KEY_BYTES,
    KEY_FILE,
    LIFETIMES,
    SIGNATURE,
    LinkSigner,
    LinkVerifier,
    Purpose,
    load_or_create_key,
    node_key,
    redacted,
    refusal,
    sign,
)
from bacalhau.models.execution import Execution
from bacalhau.models.ids import new_execution_id
from bacalhau.models.spec import SpecConfig
from bacalhau.orchestrator.results import ResultTransformer

KEY = bytes(range(KEY_BYTES))
EXECUTION = new_execution_id()
NOW = 1_800_000_000
LATER = NOW + 60
EXPIRED = "the link has expired: ask the orchestrator for a new one"
WRONG = "the link's signature is wrong"
MALFORMED = "the link is malformed"
NOT_SIGNED = "the link is not signed"


def check(
    execution_id: str = EXECUTION,
    purpose: Purpose = Purpose.RESULTS,
    expires: str = str(LATER),
    signature: str | None = None,
    key: bytes | None = KEY,
    now: float = NOW,
) -> str:
    """The refusal of a link that, unless told otherwise, is signed right for EXECUTION's results, a minute ahead."""
    if signature is None:
        signature = sign(KEY, EXECUTION, Purpose.RESULTS, LATER)
    return refusal(key, execution_id, purpose, expires, signature, now)


def test_a_signed_link_is_valid_until_its_expiry() -> None:
    assert check() == ""
    assert check(now=LATER) == ""
    assert check(now=LATER + 1) == EXPIRED


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"key": bytes(KEY_BYTES)}, WRONG),
        ({"execution_id": new_execution_id()}, WRONG),
        ({"purpose": Purpose.LOGS}, WRONG),
        ({"expires": str(LATER + 3600)}, WRONG),  # a later expiry written over the signed one
        ({"expires": str(NOW - 1), "now": NOW}, WRONG),  # nor an earlier one: the signature covers it either way
        ({"key": None}, "this node has no signing key from its orchestrator yet"),
    ],
    ids=["wrong-key", "another-execution", "logs-not-results", "later-expiry", "earlier-expiry", "no-key"],
)
def test_a_link_for_anything_else_is_refused(changed: dict[str, object], reason: str) -> None:
    assert check(**changed) == reason  # type: ignore[arg-type]


def test_an_expired_link_is_refused_only_as_expired_when_genuine() -> None:
    """Said of links the orchestrator really signed, so that a refused user learns to ask again."""
    past = NOW - 1
    assert check(expires=str(past), signature=sign(KEY, EXECUTION, Purpose.RESULTS, past)) == EXPIRED


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"expires": ""}, NOT_SIGNED),
        ({"signature": ""}, NOT_SIGNED),
        ({"expires": "12a"}, MALFORMED),
        ({"expires": "-1"}, MALFORMED),
        ({"expires": f"{LATER}.0"}, MALFORMED),
        ({"expires": f" {LATER}"}, MALFORMED),
        ({"expires": f"{LATER}\n"}, MALFORMED),
        ({"expires": "١٢٣"}, MALFORMED),  # digits to str.isdigit, not to us
        ({"expires": "9" * 13}, MALFORMED),
        ({"signature": "zz" * 32}, MALFORMED),
        ({"signature": sign(KEY, EXECUTION, Purpose.RESULTS, LATER).upper()}, MALFORMED),
        ({"signature": sign(KEY, EXECUTION, Purpose.RESULTS, LATER)[:-1]}, MALFORMED),
        ({"signature": "é" * 64}, MALFORMED),  # compare_digest would raise on a non-ASCII str
        ({"execution_id": "../" + EXECUTION}, MALFORMED),
        ({"execution_id": EXECUTION.upper()}, MALFORMED),
        ({"execution_id": EXECUTION + "\n"}, MALFORMED),
        ({"execution_id": "e-1"}, MALFORMED),
    ],
)
def test_malformed_links_are_refused_before_any_signing(changed: dict[str, str], reason: str) -> None:
    assert check(**changed) == reason  # type: ignore[arg-type]


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through hmac.compare_digest (watched here, still doing the comparing), never ``==``."""
    compared: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def watched(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(links.hmac, "compare_digest", watched)
    forged = "0" * 64
    assert check(signature=forged) == WRONG
    assert compared == [(sign(KEY, EXECUTION, Purpose.RESULTS, LATER), forged)]


def test_each_node_has_its_own_key() -> None:
    """A node can verify, and so could forge, links to its own executions only."""
    keys = {node_key(KEY, "node-a"), node_key(KEY, "node-b"), node_key(bytes(KEY_BYTES), "node-a"), KEY}
    assert len(keys) == 4 and all(len(key) == KEY_BYTES for key in keys)
    signer = LinkSigner(KEY)
    assert signer.handshake_key("node-a") == node_key(KEY, "node-a").hex()
    grant = signer.grant("node-a", EXECUTION, Purpose.LOGS)
    assert grant.expires - time.time() == pytest.approx(LIFETIMES[Purpose.LOGS], abs=2)
    a, b = node_key(KEY, "node-a"), node_key(KEY, "node-b")
    assert refusal(a, EXECUTION, Purpose.LOGS, str(grant.expires), grant.signature, time.time()) == ""
    assert refusal(b, EXECUTION, Purpose.LOGS, str(grant.expires), grant.signature, time.time()) == WRONG


def test_the_key_is_made_once_readable_by_its_owner_alone(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator" / KEY_FILE
    old_umask = os.umask(0)  # even a umask that lets everyone read what is created
    try:
        key = load_or_create_key(path)
    finally:
        os.umask(old_umask)
    assert len(key) == KEY_BYTES and key != bytes(KEY_BYTES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key, "links must survive a restart"
    assert sorted(p.name for p in path.parent.iterdir()) == [KEY_FILE]
    assert load_or_create_key(tmp_path / "other" / KEY_FILE) != key


def test_a_crash_while_making_the_key_leaves_no_half_key(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    (tmp_path / f"{KEY_FILE}.partial").write_bytes(b"half")  # left by a crash before the rename
    assert len(load_or_create_key(path)) == KEY_BYTES
    path.write_bytes(b"short")
    with pytest.raises(ConfigurationError, match=f"is not a link signing key \\(5 bytes, not {KEY_BYTES}\\)"):
        load_or_create_key(path)


def test_the_results_endpoint_signs_local_downloads_for_their_node() -> None:
    published = SpecConfig(type="urlDownload", params={"URL": f"http://10.0.0.1:6001/{EXECUTION}.tar.gz"})
    execution = Execution(id=EXECUTION, node_id="node-a", published_result=published)
    handed = ResultTransformer(LinkSigner(KEY))(execution)
    url = urlsplit(handed.params["URL"])
    assert handed.type == "urlDownload"
    assert url._replace(query="").geturl() == published.params["URL"]
    query = {name: values[0] for name, values in parse_qs(url.query, strict_parsing=True).items()}
    assert set(query) == {EXPIRES, SIGNATURE}
    assert (
        refusal(node_key(KEY, "node-a"), EXECUTION, Purpose.RESULTS, query[EXPIRES], query[SIGNATURE], time.time())
        == ""
    )
    assert int(query[EXPIRES]) - time.time() == pytest.approx(LIFETIMES[Purpose.RESULTS], abs=2)
    assert execution.published_result == published, "the stored result stays unsigned"
    assert redacted(handed.params["URL"]) == published.params["URL"]


async def test_a_node_refuses_everything_until_a_handshake_brings_a_usable_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    verifier = LinkVerifier()
    grant = LinkSigner(KEY).grant("node-a", EXECUTION, Purpose.RESULTS)
    args = (EXECUTION, Purpose.RESULTS, str(grant.expires), grant.signature, "127.0.0.1")
    assert verifier.check(*args) == "this node has no signing key from its orchestrator yet"
    verifier.update(LinkSigner(KEY).handshake_key("node-a"))
    assert verifier.check(*args) == ""
    for unusable in ("", "zz", "00" * (KEY_BYTES - 1)):  # an older orchestrator sends none
        verifier.update(unusable)
        assert verifier.check(*args) == "this node has no signing key from its orchestrator yet"
    assert "sent no usable link signing key" in caplog.text


async def test_refusals_are_logged_without_secrets_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    verifier = LinkVerifier()
    verifier.update(node_key(KEY, "node-a").hex())
    caplog.clear()
    forged = "0" * 64
    for _ in range(5):
        assert verifier.check(EXECUTION, Purpose.RESULTS, str(int(time.time()) + 60), forged, "192.0.2.7") == WRONG
    assert verifier.check("e-\n" + forged, Purpose.LOGS, "1", forged, "a NATS client") == MALFORMED
    assert verifier.check(EXECUTION, Purpose.LOGS, "1", forged, "a NATS client") == WRONG
    results, logs = caplog.records
    assert results.levelno == logs.levelno == logging.WARNING
    assert results.getMessage() == f"refused a results link for execution {EXECUTION} from 192.0.2.7: {WRONG}"
    assert (
        logs.getMessage() == f"refused a logs link for execution (not an execution ID) from a NATS client: {MALFORMED}"
    )
    assert forged not in caplog.text and node_key(KEY, "node-a").hex() not in caplog.text


def test_redacted_urls_keep_no_query() -> None:
    assert redacted(f"http://h:6001/{EXECUTION}.tar.gz?expires=1&signature=ab#x") == f"http://h:6001/{EXECUTION}.tar.gz"
    assert redacted("https://s3/b/k?X-Amz-Signature=secret") == "https://s3/b/k"
