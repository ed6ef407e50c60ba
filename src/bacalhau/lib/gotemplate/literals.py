"""Numbers and strings in Go's syntax (``strconv``'s ``Unquote``, ``UnquoteChar``, ``ParseInt``, ``ParseUint``
and ``ParseFloat``), with which the parser reads a template's constants as Go does."""

from __future__ import annotations

import math

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _byte(value: int) -> str:
    """A byte in a Go string: itself when ASCII, else a surrogate escape."""
    return chr(value) if value < 0x80 else chr(0xDC00 + value)


def unquote_char(text: str, index: int, mark: str) -> tuple[str, int, int]:
    """Go's ``strconv.UnquoteChar`` at ``index``: the text it stands for in a string, its value as a rune, and where
    the next one starts. Raises ValueError ("invalid syntax")."""
    char = text[index]
    if char == mark:
        raise ValueError("invalid syntax")
    if char != "\\":
        code = ord(char)
        return char, (0xFFFD if 0xD800 <= code <= 0xDFFF else code), index + 1  # a byte not UTF-8 reads as U+FFFD
    escape = text[index + 1 : index + 2]
    if escape and escape in _SIMPLE_ESCAPES:
        simple = _SIMPLE_ESCAPES[escape]
        return simple, ord(simple), index + 2
    if escape and escape in "xuU":
        size = {"x": 2, "u": 4, "U": 8}[escape]
        digits = text[index + 2 : index + 2 + size]
        if len(digits) != size or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise ValueError("invalid syntax")
        value = int(digits, 16)
        if escape == "x":
            return _byte(value), value, index + 4
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise ValueError("invalid syntax")
        return chr(value), value, index + 2 + size
    if escape and escape in "01234567":
        digits = text[index + 1 : index + 4]
        if len(digits) != 3 or any(d not in "01234567" for d in digits) or int(digits, 8) > 255:
            raise ValueError("invalid syntax")
        return _byte(int(digits, 8)), int(digits, 8), index + 4
    if escape and escape == mark:
        return escape, ord(escape), index + 2
    raise ValueError("invalid syntax")


def unquote(literal: str) -> str:
    """Go's ``strconv.Unquote`` for a double-quoted or raw string literal."""
    if literal.startswith("`"):
        return literal[1:-1].replace("\r", "")
    body = literal[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char, _, index = unquote_char(body, index, '"')
        out.append(char)
    return "".join(out)


def _underscores_ok(text: str) -> bool:
    """Go's rule: an underscore only between digits, or between a base prefix and a digit."""
    index = 1 if text[:1] in ("+", "-") and text else 0
    saw = "^"
    hexadecimal = False
    if len(text) - index >= 2 and text[index] == "0" and text[index + 1].lower() in "box":
        hexadecimal = text[index + 1].lower() == "x"
        index += 2
        saw = "0"
    for char in text[index:]:
        if "0" <= char <= "9" or (hexadecimal and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


def parse_int(text: str, *, signed: bool) -> int | None:
    """Go's ``strconv.ParseInt`` (``signed``) or ``ParseUint``, base 0, 64 bits; None on any error."""
    body = text
    negative = False
    if body[:1] in ("+", "-") and body:
        if not signed:
            return None
        negative, body = body[0] == "-", body[1:]
    if not body:
        return None
    base, digits = 10, body
    if body[0] == "0" and len(body) > 1:
        if len(body) >= 3 and body[1].lower() in "box":
            base, digits = {"b": 2, "o": 8, "x": 16}[body[1].lower()], body[2:]
        else:
            base, digits = 8, body[1:]
    allowed = "0123456789abcdef"[:base]
    if any(char != "_" and char.lower() not in allowed for char in digits):
        return None
    if "_" in body and not _underscores_ok(body):
        return None
    plain = digits.replace("_", "")
    value = int(plain, base) if plain else 0
    value = -value if negative else value
    if signed:
        return value if -(2**63) <= value < 2**63 else None
    return value if value < 2**64 else None


def parse_float(text: str) -> float | None:
    """Go's ``strconv.ParseFloat`` for what the lexer accepts; None on error or overflow."""
    if "_" in text and not _underscores_ok(text):
        return None
    body = text.replace("_", "")
    try:
        unsigned = body.lstrip("+-")
        if unsigned[:2].lower() == "0x":
            if "p" not in unsigned.lower():
                return None
            value = float.fromhex(body)
        else:
            if not unsigned or unsigned.lower() in ("inf", "infinity", "nan") or unsigned[0] not in "0123456789.":
                return None
            value = float(body)
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None
