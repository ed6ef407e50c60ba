"""Paging tokens: base64url (no padding) of ``<sortBy>:<Y|N>:<limit>:<offset>``, as the original encodes them.

Job-list tokens also carry the sort key and ID of the page's last job (two more parts), so that the next page
starts right after it: items inserted or removed meanwhile can then neither repeat nor skip an item, as offsets
would. Tokens with only the original's four parts are still accepted.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

_MAX_UINT32 = 2**32 - 1


class InvalidPagingToken(ValueError):
    pass


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
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidPagingToken(f"invalid paging token {token!r}: failed to decode paging token") from None
        parts = raw.split(":")
        if len(parts) not in (4, 6):
            raise InvalidPagingToken(f"invalid paging token {token!r}: invalid number of parts")
        try:
            limit, offset = int(parts[2]), int(parts[3])
            after = (int(parts[4]), parts[5]) if len(parts) == 6 else None
        except ValueError:
            raise InvalidPagingToken(f"invalid paging token {token!r}: malformed token") from None
        if not (0 <= limit <= _MAX_UINT32 and 0 <= offset <= _MAX_UINT32):
            raise InvalidPagingToken(f"invalid paging token {token!r}: malformed token")
        return cls(sort_by=parts[0], reverse=parts[1] == "Y", limit=limit, offset=offset, after=after)
