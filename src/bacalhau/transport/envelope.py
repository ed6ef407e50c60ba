"""Bytes on the wire between orchestrator and compute: a version byte, a CRC32 of the body, then JSON."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

JSON_V1 = 1
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size


class EnvelopeError(ValueError):
    pass


def message_text(message: dict[str, Any]) -> str:
    """A message as the JSON text an outbox stores and a batch carries: compact and in UTF-8, so that a message is
    no bigger on the wire than the data in it (escaping every non-ASCII character would triple an emoji)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def encode(body: dict[str, Any] | bytes) -> bytes:
    """Wrap a JSON object (or already-serialised JSON, in UTF-8) for sending."""
    data = json.dumps(body, separators=(",", ":")).encode() if isinstance(body, dict) else body
    return _HEADER.pack(JSON_V1, zlib.crc32(data)) + data


def decode(raw: bytes) -> dict[str, Any]:
    if len(raw) < HEADER_SIZE:
        raise EnvelopeError("message too short")
    version, checksum = _HEADER.unpack(raw[:HEADER_SIZE])
    if version != JSON_V1:
        raise EnvelopeError(f"unsupported message version {version}")
    data = raw[HEADER_SIZE:]
    if zlib.crc32(data) != checksum:
        raise EnvelopeError("message checksum mismatch")
    body = json.loads(data)
    if not isinstance(body, dict):
        raise EnvelopeError("message body is not an object")
    return body
