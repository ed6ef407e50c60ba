"""Signed links to an execution's results and logs, one scheme for both sides.

Execution IDs are no secret (the API lists them), so a compute node serves an execution's results archive, or streams
its logs, only against a signature from its orchestrator: HMAC-SHA256 over the execution ID, what the link is for
(``results`` or ``logs``) and its expiry in Unix seconds. The orchestrator signs for callers its API let in, at the
time they ask; the node verifies. Orchestrator and compute never import each other, so the scheme lives here.

Keys. The orchestrator makes a random master key once and keeps it in its data dir (readable by its owner alone
from the first byte), so that links, and the nodes' keys, survive its restarts. Each compute node gets, at every
handshake, a key derived from it for that node alone: a node can verify (and so could forge) links to its own
executions only, never another node's. A node keeps its key in memory; until a handshake brings one (a node that just
started, or one whose orchestrator signs no links) it refuses every link rather than serve openly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from bacalhau.errors import ConfigurationError
from bacalhau.lib.throttle import Throttle
from bacalhau.models.ids import is_execution_id

log = logging.getLogger(__name__)

KEY_BYTES = 32
KEY_FILE = "links.key"  # in the orchestrator's folder of its data dir
SCHEME = "bacalhau-link/1"  # first in every signed message: a later scheme cannot be confused with this one
EXPIRES, SIGNATURE = "expires", "signature"  # the query parameters of a signed URL
REFUSAL_LOG_INTERVAL = 60.0  # seconds between two logged refusals: a flood of bad links cannot flood the log
_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class Purpose(StrEnum):
    RESULTS = "results"
    LOGS = "logs"


LIFETIMES = {
    # The CLI and the Python client download right after asking; an hour also covers a user who asks, then fetches
    # by hand, or a slow start of many downloads, as the S3 publisher's pre-signed URLs do by default. The expiry is
    # checked when a download starts, so a long download is never cut off.
    Purpose.RESULTS: 3600,
    # A log request travels from the orchestrator to the node at once and is checked once, when the stream starts.
    # Minutes, not seconds, so that clocks of orchestrator and node a little apart do not refuse every request.
    Purpose.LOGS: 300,
}


@dataclass(frozen=True)
class Grant:
    """A signature and the expiry it covers, as a link carries them."""

    expires: int
    signature: str


def load_or_create_key(path: Path) -> bytes:
    """The orchestrator's master key, made on first start: written whole to a 0600 file, then renamed into place, so
    that a crash leaves either no key or a complete one, and nobody else could ever read it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(secrets.token_bytes(KEY_BYTES))
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ConfigurationError(
            f"{path} is not a link signing key ({len(key)} bytes, not {KEY_BYTES})",
            hint="delete it: the next start makes a new one (links signed before then stop working)",
        )
    return key


def node_key(master: bytes, node_id: str) -> bytes:
    """The key of one compute node, derived from the orchestrator's master key."""
    return hmac.new(master, f"{SCHEME} node key\x00{node_id}".encode(), hashlib.sha256).digest()


def sign(key: bytes, execution_id: str, purpose: Purpose, expires: int) -> str:
    """The signature (lowercase hex) of a link to one execution's results or logs, valid until ``expires``."""
    message = json.dumps([SCHEME, purpose.value, execution_id, expires])  # unambiguous whatever the ID holds
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def refusal(key: bytes | None, execution_id: str, purpose: Purpose, expires: str, signature: str, now: float) -> str:
    """Why a link must be refused ("" when it is valid). The signature is compared in constant time, so that timing
    tells a forger nothing about how much of a guess was right; only then is the expiry looked at, so that
    "expired" is said of genuine links alone."""
    if key is None:
        return "this node has no signing key from its orchestrator yet"
    if not expires or not signature:
        return "the link is not signed"
    if not is_execution_id(execution_id) or not _EXPIRES.fullmatch(expires) or not _SIGNATURE.fullmatch(signature):
        return "the link is malformed"
    if not hmac.compare_digest(sign(key, execution_id, purpose, int(expires)), signature):
        return "the link's signature is wrong"
    if int(expires) < now:
        return "the link has expired: ask the orchestrator for a new one"
    return ""


def with_grant(url: str, grant: Grant) -> str:
    """``url`` (a local publisher's, which has no query of its own) carrying ``grant`` as its query."""
    query = urlencode({EXPIRES: grant.expires, SIGNATURE: grant.signature})
    return urlunsplit(urlsplit(url)._replace(query=query))


def redacted(url: str) -> str:
    """``url`` without its query, which carries a link's signature (or an S3 pre-signed URL's credentials): what
    logs and messages may show."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment=""))


class LinkSigner:
    """The orchestrator's side: signs links for the compute node that will verify them."""

    def __init__(self, master: bytes) -> None:
        self._master = master

    def use(self, master: bytes) -> None:
        """Sign with ``master`` from now on (the key orchestrators sharing a store keep in it, taken once it opens)."""
        self._master = master

    def handshake_key(self, node_id: str) -> str:
        """The key a node verifies its links with, as its handshake reply carries it."""
        return node_key(self._master, node_id).hex()

    def grant(self, node_id: str, execution_id: str, purpose: Purpose) -> Grant:
        expires = int(time.time()) + LIFETIMES[purpose]
        return Grant(expires, sign(node_key(self._master, node_id), execution_id, purpose, expires))

    def sign_url(self, url: str, node_id: str, execution_id: str) -> str:
        """A download URL of the node's local publisher, with the query that lets the node serve the results."""
        return with_grant(url, self.grant(node_id, execution_id, Purpose.RESULTS))


class LinkVerifier:
    """The compute node's side: checks links against the key of its orchestrator's latest handshake reply."""

    def __init__(self) -> None:
        self._key: bytes | None = None
        # Throttled by purpose: a flood of bad downloads cannot hide a refused log request.
        self._refusals = Throttle(log, REFUSAL_LOG_INTERVAL)

    def update(self, handshake_key: str) -> None:
        """Take the key of a handshake reply. An orchestrator that sends none (an older one) leaves this node with
        none: it then refuses every link rather than serve without."""
        try:
            key: bytes | None = bytes.fromhex(handshake_key)
        except ValueError:
            key = None
        if key is None or len(key) != KEY_BYTES:
            log.warning(
                "the orchestrator sent no usable link signing key (is it older than this node?): "
                "this node refuses every results download and log request until it does"
            )
            key = None
        elif self._key is not None and key != self._key:
            log.info("the orchestrator's link signing key changed: links signed with the one before are refused")
        self._key = key

    def check(self, execution_id: str, purpose: Purpose, expires: str, signature: str, client: str) -> str:
        """Why a link from ``client`` must be refused ("" when it is valid); refusals are logged, without the
        signature, once a minute for each purpose at most, with how many more there were."""
        reason = refusal(self._key, execution_id, purpose, expires, signature, time.time())
        if reason:
            self._log_refusal(purpose, execution_id, reason, client)
        return reason

    def _log_refusal(self, purpose: Purpose, execution_id: str, reason: str, client: str) -> None:
        shown = execution_id if is_execution_id(execution_id) else "(not an execution ID)"
        self._refusals.warn(purpose, f"refused a {purpose.value} link for execution {shown} from {client}: {reason}")
