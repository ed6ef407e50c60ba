"""Paging tokens: base64url (no padding) of ``<sortBy>:<Y|N>:<limit>:<offset>``, as the original encodes them.

Job-list tokens also carry the sort key and ID of the page's last job (two more parts), so that the next page
starts right after it: items inserted or removed meanwhile can then neither repeat nor skip an item, as offsets
would. Tokens with only the original's four parts are still accepted.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from bacalhau.models.limits import INT64_MAX, INT64_MIN

_MAX_UINT32 = 2**32 - 1
# base64.RawURLEncoding: the URL-safe alphabet without padding (it skips CR and LF; Python would skip any junk).
_RAW_URL_BASE64 = re.compile(r"[A-Za-z0-9_-]*")
# strconv.ParseUint/ParseInt(s, 10, ...): ASCII digits only, no spaces, underscores or (for unsigned) sign.
_UINT = re.compile(r"[0-9]+")
_INT = re.compile(r"-?[0-9]+")


class InvalidPagingToken(ValueError):
    @classmethod
    def of(cls, token: str, reason: str) -> InvalidPagingToken:
        return cls(f"invalid paging token {token!r}: {reason}")


@dataclass
class PagingToken:
    sort_by: str = ""
    reverse: bool = False
    limit: int = 0
    offset: int = 0
    after: tuple[int, str] | None = None

    def encode(self) -> str:
        raw = f"{self.sort_by}:{'Y' if self.reverse else 'N'}:{self.limit}:{self.offset}"
        if self.after is not None:
            raw += f":{self.after[0]}:{self.after[1]}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PagingToken:
        encoded = token.replace("\r", "").replace("\n", "")
        if not _RAW_URL_BASE64.fullmatch(encoded):
            raise InvalidPagingToken.of(token, "failed to decode paging token")
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidPagingToken.of(token, "failed to decode paging token") from None
        parts = raw.split(":")
        if len(parts) not in (4, 6):
            raise InvalidPagingToken.of(token, "invalid number of parts")
        limit, offset = (int(part) if _UINT.fullmatch(part) else -1 for part in parts[2:4])
        if not (0 <= limit <= _MAX_UINT32 and 0 <= offset <= _MAX_UINT32):
            raise InvalidPagingToken.of(token, "malformed token")
        after = None
        if len(parts) == 6:
            if not _INT.fullmatch(parts[4]) or not INT64_MIN <= int(parts[4]) <= INT64_MAX:
                raise InvalidPagingToken.of(token, "malformed token")
            after = (int(parts[4]), parts[5])
        return cls(sort_by=parts[0], reverse=parts[1] == "Y", limit=limit, offset=offset, after=after)
