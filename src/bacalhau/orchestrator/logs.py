"""Streams an execution's logs from the compute node that ran it (see compute/logs.py for the other end)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from bacalhau.errors import Unavailable
from bacalhau.lib.links import LinkSigner, Purpose
from bacalhau.transport import envelope, subjects

# The node sends a keepalive every 10 s while it has nothing new; silence for this long means it is gone.
SILENCE_LIMIT = 35.0


class LogStreamError(Unavailable):
    """The execution's node could not stream its logs (gone, silent, or it refused)."""


class LogProxy:
    def __init__(self, nc: NATS, links: LinkSigner) -> None:
        """``links``: signs each request, which the node refuses without (whoever reaches NATS is not a user the API
        let in)."""
        self._nc = nc
        self._links = links

    async def stream(
        self, node_id: str, execution_id: str, *, follow: bool, tail: bool
    ) -> AsyncIterator[tuple[int, str]]:
        """(stream type, line) pairs: 1 is stdout, 2 is stderr."""
        subject = f"_BACALHAU_LOGS.{uuid.uuid4().hex}"
        chunks: asyncio.Queue[Msg] = asyncio.Queue(maxsize=4)

        async def on_chunk(msg: Msg) -> None:
            await chunks.put(msg)

        subscription = await self._nc.subscribe(subject, cb=on_chunk)
        unanswered: Msg | None = None
        try:
            grant = self._links.grant(node_id, execution_id, Purpose.LOGS)
            request = {
                "ExecutionID": execution_id,
                "Follow": follow,
                "Tail": tail,
                "Subject": subject,
                "Expires": grant.expires,
                "Signature": grant.signature,
            }
            try:
                reply = await self._nc.request(subjects.logs(node_id), envelope.encode(request), timeout=10)
            except (NoRespondersError, NatsTimeoutError) as exc:
                raise LogStreamError(
                    f"node {node_id} is not reachable to stream the logs of execution {execution_id}"
                ) from exc
            answer = envelope.decode(reply.data)
            if answer.get("Error"):
                raise LogStreamError(str(answer["Error"]))
            while True:
                try:
                    unanswered = await asyncio.wait_for(chunks.get(), SILENCE_LIMIT)
                except TimeoutError:
                    raise LogStreamError(f"node {node_id} stopped sending logs") from None
                body = envelope.decode(unanswered.data)
                for line in body.get("Lines") or []:
                    yield int(line.get("Type", 0)), str(line.get("Line", ""))
                await _answer(unanswered, proceed=True)
                unanswered = None
                if body.get("End"):
                    return
        finally:
            # The reader went away: tell the node to stop now rather than let it wait for an answer.
            while unanswered is not None or not chunks.empty():
                await _answer(unanswered or chunks.get_nowait(), proceed=False)
                unanswered = None
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()


async def _answer(msg: Msg, *, proceed: bool) -> None:
    with contextlib.suppress(ConnectionClosedError):
        await msg.respond(envelope.encode({"Continue": proceed}))
