"""Bytes on the wire between orchestrator and compute: a version byte, a CRC32 of the body, then JSON."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

JSON_V1 = 1


class EnvelopeError(ValueError):
    pass


def encode(body: dict[str, Any] | str) -> bytes:
    """Wrap a JSON object (or already-serialised JSON text) for sending."""
    data = (body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))).encode()
    return struct.pack(">BI", JSON_V1, zlib.crc32(data)) + data


def decode(raw: bytes) -> dict[str, Any]:
    if len(raw) < 5:
        raise EnvelopeError("message too short")
    version, checksum = struct.unpack(">BI", raw[:5])
    if version != JSON_V1:
        raise EnvelopeError(f"unsupported message version {version}")
    data = raw[5:]
    if zlib.crc32(data) != checksum:
        raise EnvelopeError("message checksum mismatch")
    body = json.loads(data)
    if not isinstance(body, dict):
        raise EnvelopeError("message body is not an object")
    return body
