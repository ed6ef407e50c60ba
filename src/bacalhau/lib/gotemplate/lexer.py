"""Go's ``text/template`` lexer: the text cut into tokens with Go's types, positions, lines and error texts, as the
parser and its error messages need them."""

from __future__ import annotations

import bisect
import re
from collections.abc import Generator, Iterator
from enum import IntEnum
from typing import NamedTuple

from bacalhau.lib.gofmt import from_bytes, quote, rune_repr, to_bytes

SPACES = " \t\r\n"


class T(IntEnum):
    """Token types; the keywords come after KEYWORD, as Go orders them (it matters for how tokens print)."""

    ERROR = 0
    BOOL = 1
    CHAR = 2
    CHAR_CONSTANT = 3
    COMPLEX = 4
    ASSIGN = 5
    DECLARE = 6
    EOF = 7
    FIELD = 8
    IDENTIFIER = 9
    LEFT_DELIM = 10
    LEFT_PAREN = 11
    NUMBER = 12
    PIPE = 13
    RAW_STRING = 14
    RIGHT_DELIM = 15
    RIGHT_PAREN = 16
    SPACE = 17
    STRING = 18
    TEXT = 19
    VARIABLE = 20
    KEYWORD = 21
    BLOCK = 22
    BREAK = 23
    CONTINUE = 24
    DOT = 25
    DEFINE = 26
    ELSE = 27
    END = 28
    IF = 29
    NIL = 30
    RANGE = 31
    TEMPLATE = 32
    WITH = 33


KEYWORDS = {
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "nil": T.NIL,
    "range": T.RANGE,
    "template": T.TEMPLATE,
    "with": T.WITH,
}


class Token(NamedTuple):
    typ: T
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        """As Go's parser names a token in its errors."""
        if self.typ == T.EOF:
            return "EOF"
        if self.typ == T.ERROR:
            return self.val
        if self.typ > T.KEYWORD:
            return f"<{self.val}>"
        if len(to_bytes(self.val)) > 10:
            return quote(from_bytes(to_bytes(self.val))[:10]) + "..."
        return quote(self.val)


def _is_alphanumeric(char: str) -> bool:
    return char == "_" or char.isalpha() or char.isdecimal()


def _unicode_repr(char: str) -> str:
    """``%#U`` of the rune Go would decode here (a byte that is not UTF-8 reads as U+FFFD)."""
    return rune_repr("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char)


class Lexer:
    """Go's lexer: the same tokens, positions, lines and errors; it stops after an error."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [match.start() for match in re.finditer("\n", text)]
        self.pos = 0
        self.paren_depth = 0

    def token(self, typ: T, start: int, end: int) -> Token:
        return Token(typ, start, self.text[start:end], bisect.bisect_left(self.newlines, start) + 1)

    def error(self, start: int, message: str) -> Token:
        return Token(T.ERROR, start, message, bisect.bisect_left(self.newlines, start) + 1)

    def at(self, index: int) -> str:
        """The character at ``index``, "" at the end."""
        return self.text[index] if index < len(self.text) else ""

    def space_at(self, index: int) -> bool:
        return index < len(self.text) and self.text[index] in SPACES

    def skip_spaces(self, index: int) -> int:
        while self.space_at(index):
            index += 1
        return index

    def left_trim(self, index: int) -> bool:
        """``- `` after ``{{``: trim the space before."""
        return self.at(index) == "-" and self.space_at(index + 1)

    def at_right_delim(self, index: int) -> tuple[bool, bool]:
        """At ``}}``, or at `` -}}`` (the second: trim the space after)."""
        if self.space_at(index) and self.at(index + 1) == "-" and self.text.startswith("}}", index + 2):
            return True, True
        return self.text.startswith("}}", index), False

    def at_terminator(self, index: int) -> bool:
        """What may follow an identifier, field or variable."""
        char = self.at(index)
        return char == "" or char in SPACES or char in ".,|:)(" or self.text.startswith("}}", index)

    def tokens(self) -> Iterator[Token]:
        text = self.text
        while True:
            start = self.pos
            found = text.find("{{", start)
            if found < 0:
                if start < len(text):
                    yield self.token(T.TEXT, start, len(text))
                yield self.token(T.EOF, len(text), len(text))
                return
            end = found
            if found > start and self.left_trim(found + 2):
                end = len(text[start:found].rstrip(SPACES)) + start
            if end > start:
                yield self.token(T.TEXT, start, end)
            inside = found + 2 + (2 if self.left_trim(found + 2) else 0)
            if text.startswith("/*", inside):
                error = self.comment(inside)
                if error is not None:
                    yield error
                    return
                continue
            yield self.token(T.LEFT_DELIM, found, found + 2)
            self.pos = inside
            ok = yield from self.action()
            if not ok:
                return

    def comment(self, start: int) -> Token | None:
        close = self.text.find("*/", start + 2)
        if close < 0:
            return self.error(start, "unclosed comment")
        index = close + 2
        delim, trim = self.at_right_delim(index)
        if not delim:
            return self.error(start, "comment ends before closing delimiter")
        index += 4 if trim else 2
        self.pos = self.skip_spaces(index) if trim else index
        return None

    def action(self) -> Generator[Token, None, bool]:
        """The tokens of one action, up to and including ``}}``; returns False after an error."""
        text = self.text
        self.paren_depth = 0
        while True:
            start = self.pos
            delim, trim = self.at_right_delim(start)
            if delim:
                if self.paren_depth:
                    yield self.error(start, "unclosed left paren")
                    return False
                start += 2 if trim else 0
                yield self.token(T.RIGHT_DELIM, start, start + 2)
                self.pos = self.skip_spaces(start + 2) if trim else start + 2
                return True
            if start >= len(text):
                yield self.error(start, "unclosed action")
                return False
            token = self.action_token(start, text[start])
            if token is None:  # a single space before " -}}": the delimiter comes next
                continue
            yield token
            if token.typ == T.ERROR:
                return False
            self.pos = token.pos + len(token.val)

    def action_token(self, start: int, char: str) -> Token | None:
        """The token at ``start`` inside an action."""
        singles = {"=": T.ASSIGN, "|": T.PIPE, "(": T.LEFT_PAREN, ")": T.RIGHT_PAREN}
        if char in SPACES:
            return self.space(start)
        if char in singles:
            if char == "(":
                self.paren_depth += 1
            elif char == ")":
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    return self.error(start, "unexpected right paren")
            return self.token(singles[char], start, start + 1)
        if char == ":":
            if self.at(start + 1) != "=":
                return self.error(start, "expected :=")
            return self.token(T.DECLARE, start, start + 2)
        if char in "\"'":
            return self.quoted(start, char)
        if char == "`":
            close = self.text.find("`", start + 1)
            if close < 0:
                return self.error(start, "unterminated raw quoted string")
            return self.token(T.RAW_STRING, start, close + 1)
        if char == "$":
            if self.at_terminator(start + 1):
                return self.token(T.VARIABLE, start, start + 1)
            return self.field_or_variable(start, T.VARIABLE)
        if char == "." and self.at(start + 1) != "" and not "0" <= self.at(start + 1) <= "9":
            if self.at_terminator(start + 1):
                return self.token(T.DOT, start, start + 1)
            return self.field_or_variable(start, T.FIELD)
        if char in "+-." or "0" <= char <= "9":
            return self.number(start)
        if _is_alphanumeric(char):
            return self.identifier(start)
        if ord(char) < 0x7F and char.isprintable():
            return self.token(T.CHAR, start, start + 1)
        return self.error(start, f"unrecognized character in action: {_unicode_repr(char)}")

    def space(self, start: int) -> Token | None:
        end = self.skip_spaces(start)
        if self.at(end) == "-" and self.text.startswith("}}", end + 1):  # " -}}": leave its space to it
            end -= 1
            if end == start:
                return None
        return self.token(T.SPACE, start, end)

    def quoted(self, start: int, mark: str) -> Token:
        index = start + 1
        while True:
            char = self.at(index)
            if char == "\\":
                index += 1
                char = self.at(index)
                if char in ("", "\n"):
                    break
            elif char in ("", "\n"):
                break
            elif char == mark:
                return self.token(T.STRING if mark == '"' else T.CHAR_CONSTANT, start, index + 1)
            index += 1
        return self.error(start, "unterminated quoted string" if mark == '"' else "unterminated character constant")

    def field_or_variable(self, start: int, typ: T) -> Token:
        """``.Name`` or ``$name`` (the ``.`` or ``$`` at ``start``, something other than a terminator after it)."""
        end = start + 1
        while _is_alphanumeric(self.at(end)):
            end += 1
        if not self.at_terminator(end):
            return self.error(start, f"bad character {_unicode_repr(self.text[end])}")
        return self.token(typ, start, end)

    def identifier(self, start: int) -> Token:
        end = start
        while _is_alphanumeric(self.at(end)):
            end += 1
        if not self.at_terminator(end):
            return self.error(start, f"bad character {_unicode_repr(self.text[end])}")
        word = self.text[start:end]
        typ = KEYWORDS.get(word, T.BOOL if word in ("true", "false") else T.IDENTIFIER)
        return self.token(typ, start, end)

    def scan_number(self, index: int) -> tuple[bool, int]:
        """Go's (lenient) number scanner; the parser checks what it accepted."""

        def accept(valid: str) -> bool:
            nonlocal index
            if self.at(index) != "" and self.at(index) in valid:
                index += 1
                return True
            return False

        def run(valid: str) -> None:
            while accept(valid):
                pass

        accept("+-")
        digits = "0123456789_"
        if accept("0"):
            if accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif accept("oO"):
                digits = "01234567_"
            elif accept("bB"):
                digits = "01_"
        run(digits)
        if accept("."):
            run(digits)
        if len(digits) == 11 and accept("eE"):
            accept("+-")
            run("0123456789_")
        if len(digits) == 23 and accept("pP"):
            accept("+-")
            run("0123456789_")
        accept("i")
        if _is_alphanumeric(self.at(index)):
            return False, index + 1
        return True, index

    def number(self, start: int) -> Token:
        ok, end = self.scan_number(start)
        if ok and self.at(end) in ("+", "-") and self.at(end):  # complex: 1+2i
            ok, end = self.scan_number(end)
            if ok and self.text[end - 1] == "i":
                return self.token(T.COMPLEX, start, end)
            ok = False
        if not ok:
            return self.error(start, f"bad number syntax: {quote(self.text[start:end])}")
        return self.token(T.NUMBER, start, end)
