"""Go's notions of whitespace and quoting, so that checks and error messages match the original byte for byte.

Python's ``str.isspace``/``str.strip`` also count the ASCII separators ``\\x1c``-``\\x1f`` as space, and ``repr`` or
``json.dumps`` escape differently from ``strconv.Quote``; both show up in validation results clients compare.
"""

from __future__ import annotations

# unicode.IsSpace: the Latin-1 spaces plus the other code points with the Unicode White_Space property.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_GO_SPACE_SET = frozenset(GO_SPACE)

_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def trim_space(text: str) -> str:
    """``strings.TrimSpace``."""
    return text.strip(GO_SPACE)


def has_space(text: str) -> bool:
    """``strings.IndexFunc(s, unicode.IsSpace) != -1``."""
    return not _GO_SPACE_SET.isdisjoint(text)


def _escape(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    if char.isprintable():  # the same categories as Go's strconv.IsPrint (L, M, N, P, S and ASCII space)
        return char
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"  # Go's JSON decoder has already turned a lone surrogate into U+FFFD, which is printable
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def quote(text: str) -> str:
    """``strconv.Quote`` (Go's ``%q``): control bytes as ``\\xNN``, printable Unicode kept as it is."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + "".join(_escape(char) for char in text) + '"'
