"""Go's ``text/template``, as the original CLI renders job specs with it: ``template.New("")`` with
``missingkey=error``, over a ``map[string]string``, and Go's builtin functions only (no sprig: ``default`` is "not
defined").

A lexer, a parser and an evaluator that follow Go's grammar, semantics, output and error texts (``template: :1:2:
executing "" at <.Missing>: map has no entry for key "Missing"``): text and actions with ``{{-``/``-}}`` trimming,
comments, fields, variables, literals, pipelines and parenthesised pipelines, ``if``/``else if``/``with``/``range``
(over the map, or over an int) with ``break``/``continue``, ``define``/``template``/``block``, and the functions and,
call, html, index, js, len, not, or, print, printf, println, slice, urlquery, eq, ne, lt, le, gt, ge.

The work a template may ask for is bounded, so that a hostile one fails with :class:`TemplateError` instead of
exhausting memory or time: its length (``MAX_TOKENS``), nesting (``MAX_NESTING``, ``MAX_DEPTH``), output and every
intermediate string (``MAX_OUTPUT``), and the number of steps (``MAX_STEPS``). Nothing else is ever raised.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple
from urllib.parse import quote_plus

from bacalhau.lib.gofmt import (
    GoByte,
    from_bytes,
    quote,
    rune_repr,
    sprint,
    sprintf,
    sprintln,
    to_bytes,
    type_name,
)

MAX_NESTING = 64  # control structures and parentheses inside each other, when parsing (Go allows 10000 parentheses)
MAX_DEPTH = 80  # the same when executing, template calls included (Go: 100000 template calls)
MAX_OUTPUT = 10 * 1024 * 1024  # characters of output, and of any string a template builds
MAX_STEPS = 1_000_000  # nodes walked and commands evaluated
MAX_TOKENS = 200_000  # tokens in a template: what its parse tree holds (a job spec has hundreds)
SPACES = " \t\r\n"


class TemplateError(Exception):
    """Any failure of a template; its text is Go's where Go has one."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TemplateParseError(TemplateError):
    """The template is malformed: the original says ``failed to parse template: ...``."""


class TemplateExecError(TemplateError):
    """Executing it failed: the original says ``failed to execute template: ...``."""


# ---- lexing


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


class _Lexer:
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


# ---- numbers and strings in Go's syntax


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _byte(value: int) -> str:
    """A byte in a Go string: itself when ASCII, else a surrogate escape."""
    return chr(value) if value < 0x80 else chr(0xDC00 + value)


def _unquote_char(text: str, index: int, mark: str) -> tuple[str, int, int]:
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
        char, _, index = _unquote_char(body, index, '"')
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


def _parse_int(text: str, *, signed: bool) -> int | None:
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


def _parse_float(text: str) -> float | None:
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


# ---- the parse tree


class Node:
    """A node of the tree; ``str()`` is Go's ``String()``, which error messages quote."""

    pos: int = 0


class ListNode(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos
        self.nodes: list[Node] = []

    def __str__(self) -> str:
        return "".join(str(node) for node in self.nodes)


class TextNode(Node):
    def __init__(self, pos: int, text: str) -> None:
        self.pos, self.text = pos, text

    def __str__(self) -> str:
        return self.text


class VariableNode(Node):
    def __init__(self, pos: int, ident: str) -> None:
        self.pos, self.ident = pos, ident.split(".")

    def __str__(self) -> str:
        return ".".join(self.ident)


class CommandNode(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos
        self.args: list[Node] = []

    def __str__(self) -> str:
        return " ".join(f"({arg})" if isinstance(arg, PipeNode) else str(arg) for arg in self.args)


class PipeNode(Node):
    def __init__(self, pos: int, line: int) -> None:
        self.pos, self.line = pos, line
        self.is_assign = False
        self.decl: list[VariableNode] = []
        self.cmds: list[CommandNode] = []

    def __str__(self) -> str:
        head = ""
        if self.decl:
            head = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(cmd) for cmd in self.cmds)


class ActionNode(Node):
    def __init__(self, pos: int, pipe: PipeNode) -> None:
        self.pos, self.pipe = pos, pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class IdentifierNode(Node):
    def __init__(self, pos: int, name: str) -> None:
        self.pos, self.name = pos, name

    def __str__(self) -> str:
        return self.name


class DotNode(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "."


class NilNode(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "nil"


class FieldNode(Node):
    def __init__(self, pos: int, ident: str) -> None:
        self.pos, self.ident = pos, ident[1:].split(".")

    def __str__(self) -> str:
        return "".join("." + name for name in self.ident)


class ChainNode(Node):
    def __init__(self, pos: int, node: Node) -> None:
        self.pos, self.node = pos, node
        self.fields: list[str] = []

    def __str__(self) -> str:
        head = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return head + "".join("." + name for name in self.fields)


class BoolNode(Node):
    def __init__(self, pos: int, value: bool) -> None:
        self.pos, self.value = pos, value

    def __str__(self) -> str:
        return "true" if self.value else "false"


class NumberNode(Node):
    """A number constant, with every Go type that can hold its value (as Go's ideal constants)."""

    def __init__(self, pos: int, text: str) -> None:
        self.pos, self.text = pos, text
        self.is_int = self.is_uint = self.is_float = self.is_complex = False
        self.int_value = 0
        self.float_value = 0.0
        self.complex_value = 0j

    def __str__(self) -> str:
        return self.text


class StringNode(Node):
    def __init__(self, pos: int, quoted: str, text: str) -> None:
        self.pos, self.quoted, self.text = pos, quoted, text

    def __str__(self) -> str:
        return self.quoted


class EndNode(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "{{end}}"


class ElseNode(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "{{else}}"


class BranchNode(Node):
    """``if``, ``range`` and ``with``."""

    keyword = ""

    def __init__(self, pipe: PipeNode, body: ListNode, orelse: ListNode | None) -> None:
        self.pos, self.pipe, self.body, self.orelse = pipe.pos, pipe, body, orelse

    def __str__(self) -> str:
        orelse = "{{else}}" + str(self.orelse) if self.orelse is not None else ""
        return "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.body) + orelse + "{{end}}"


class IfNode(BranchNode):
    keyword = "if"


class RangeNode(BranchNode):
    keyword = "range"


class WithNode(BranchNode):
    keyword = "with"


class BreakNode(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "{{break}}"


class ContinueNode(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "{{continue}}"


class TemplateNode(Node):
    def __init__(self, pos: int, name: str, pipe: PipeNode | None) -> None:
        self.pos, self.name, self.pipe = pos, name, pipe

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + quote(self.name) + "}}"
        return "{{template " + quote(self.name) + " " + str(self.pipe) + "}}"


def _is_empty_tree(node: Node | None) -> bool:
    """Nothing but space (and comments): Go lets a later definition replace such a template."""
    if node is None:
        return True
    if isinstance(node, ListNode):
        return all(_is_empty_tree(child) for child in node.nodes)
    if isinstance(node, TextNode):
        return not node.text.strip()
    return False


# ---- parsing


class _Stream:
    """The lexer's tokens, with the look-ahead and backing up Go's parser does (a few tokens at most: only the last
    ones are kept). The last token lexed gives the line of parse errors, as in Go."""

    KEEP = 16

    def __init__(self, text: str) -> None:
        self.source = _Lexer(text).tokens()
        self.items: list[Token] = []  # the latest tokens; items[0] is number `base`
        self.base = 0
        self.cursor = 0
        self.nesting = 0

    @property
    def line(self) -> int:
        return self.items[-1].line

    def next(self) -> Token:
        if self.cursor == self.base + len(self.items):
            token = next(self.source, None)
            if token is None:  # after EOF or an error: that again
                token = self.items[-1]
            elif self.cursor >= MAX_TOKENS:
                raise TemplateParseError(f"template: :{token.line}: longer than the limit of {MAX_TOKENS} tokens")
            self.items.append(token)
            if len(self.items) > 2 * self.KEEP:
                del self.items[: self.KEEP]
                self.base += self.KEEP
        token = self.items[self.cursor - self.base]
        self.cursor += 1
        return token

    def peek(self) -> Token:
        token = self.next()
        self.cursor -= 1
        return token

    def next_non_space(self) -> Token:
        token = self.next()
        while token.typ == T.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        token = self.next_non_space()
        self.cursor -= 1
        return token


class _Parser:
    """One template's parser (a ``define`` or ``block`` gets its own, on the same tokens)."""

    def __init__(self, stream: _Stream, name: str, trees: dict[str, ListNode]) -> None:
        self.stream = stream
        self.name = name
        self.trees = trees
        self.vars = ["$"]
        self.range_depth = 0
        self.action_line = 0

    def error(self, message: str) -> TemplateParseError:
        """Go's parse error: the line is that of the last token read."""
        return TemplateParseError(f"template: :{self.stream.line}: {message}")

    def unexpected(self, token: Token, context: str) -> TemplateParseError:
        if token.typ == T.ERROR:
            extra = ""
            if self.action_line and self.action_line != token.line:
                extra = f" in action started at :{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.error(f"{token}{extra}")
        return self.error(f"unexpected {token} in {context}")

    def expect(self, context: str, *expected: T) -> Token:
        token = self.stream.next_non_space()
        if token.typ not in expected:
            raise self.unexpected(token, context)
        return token

    def nest(self) -> None:
        self.stream.nesting += 1
        if self.stream.nesting > MAX_NESTING:
            raise self.error(f"actions nested deeper than {MAX_NESTING} levels")

    def add(self, root: ListNode) -> None:
        existing = self.trees.get(self.name)
        if existing is None or _is_empty_tree(existing):
            self.trees[self.name] = root
        elif not _is_empty_tree(root):
            raise self.error(f"template: multiple definition of template {quote(self.name)}")

    def parse(self) -> None:
        """The top level: text, actions and ``define``s, up to the end."""
        stream = self.stream
        root = ListNode(stream.peek().pos)
        while stream.peek().typ != T.EOF:
            if stream.peek().typ == T.LEFT_DELIM:
                mark = stream.cursor
                stream.next()
                if stream.next_non_space().typ == T.DEFINE:
                    _Parser(stream, "definition", self.trees).parse_definition()
                    continue
                stream.cursor = mark
            node = self.text_or_action()
            if isinstance(node, EndNode | ElseNode):
                raise self.error(f"unexpected {node}")
            root.nodes.append(node)
        self.add(root)

    def parse_definition(self) -> None:
        context = "define clause"
        token = self.expect(context, T.STRING, T.RAW_STRING)
        self.name = self.unquote(token.val)
        self.expect(context, T.RIGHT_DELIM)
        self.nest()
        root, end = self.item_list()
        self.stream.nesting -= 1
        if not isinstance(end, EndNode):
            raise self.error(f"unexpected {end} in {context}")
        self.add(root)

    def unquote(self, literal: str) -> str:
        try:
            return unquote(literal)
        except ValueError as exc:
            raise self.error(str(exc)) from None

    def item_list(self) -> tuple[ListNode, Node]:
        """Text and actions up to ``{{end}}`` or ``{{else}}`` (returned apart)."""
        body = ListNode(self.stream.peek_non_space().pos)
        while self.stream.peek_non_space().typ != T.EOF:
            node = self.text_or_action()
            if isinstance(node, EndNode | ElseNode):
                return body, node
            body.nodes.append(node)
        raise self.error("unexpected EOF")

    def text_or_action(self) -> Node:
        token = self.stream.next_non_space()
        if token.typ == T.TEXT:
            return TextNode(token.pos, token.val)
        if token.typ == T.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        raise self.unexpected(token, "input")

    def action(self) -> Node:
        stream = self.stream
        token = stream.next_non_space()
        if token.typ in (T.BREAK, T.CONTINUE):
            word = "break" if token.typ == T.BREAK else "continue"
            following = stream.next_non_space()
            if following.typ != T.RIGHT_DELIM:
                raise self.unexpected(following, "{{" + word + "}}")
            if not self.range_depth:
                raise self.error("{{" + word + "}} outside {{range}}")
            return BreakNode(token.pos) if token.typ == T.BREAK else ContinueNode(token.pos)
        if token.typ == T.ELSE:
            peek = stream.peek_non_space()
            if peek.typ in (T.IF, T.WITH):  # "else if" and "else with": the if/with stays pending
                return ElseNode(peek.pos)
            return ElseNode(self.expect("else", T.RIGHT_DELIM).pos)
        if token.typ == T.END:
            return EndNode(self.expect("end", T.RIGHT_DELIM).pos)
        if token.typ in (T.IF, T.RANGE, T.WITH):
            return self.control(token.typ)
        if token.typ == T.TEMPLATE:
            return self.template_control()
        if token.typ == T.BLOCK:
            return self.block_control()
        stream.cursor -= 1
        return ActionNode(stream.peek().pos, self.pipeline("command", T.RIGHT_DELIM))

    def control(self, typ: T) -> BranchNode:
        """``if``, ``range`` or ``with``: the pipeline, the body, an else (or else if/with), the end."""
        context = {T.IF: "if", T.RANGE: "range", T.WITH: "with"}[typ]
        self.nest()
        mark = len(self.vars)
        try:
            pipe = self.pipeline(context, T.RIGHT_DELIM)
            if typ == T.RANGE:
                self.range_depth += 1
            body, end = self.item_list()
            if typ == T.RANGE:
                self.range_depth -= 1
            orelse = None
            if isinstance(end, ElseNode):
                pending = self.stream.peek().typ
                if typ != T.RANGE and pending == typ:  # else if / else with: one nested branch, one shared end
                    self.stream.next()
                    orelse = ListNode(end.pos)
                    orelse.nodes.append(self.control(typ))
                else:
                    orelse, end = self.item_list()
                    if not isinstance(end, EndNode):
                        raise self.error(f"expected end; found {end}")
        finally:
            del self.vars[mark:]
            self.stream.nesting -= 1
        node_type = {T.IF: IfNode, T.RANGE: RangeNode, T.WITH: WithNode}[typ]
        return node_type(pipe, body, orelse)

    def template_name(self, token: Token, context: str) -> str:
        if token.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(token, context)
        return self.unquote(token.val)

    def template_control(self) -> TemplateNode:
        context = "template clause"
        token = self.stream.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.stream.next_non_space().typ != T.RIGHT_DELIM:
            self.stream.cursor -= 1
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return TemplateNode(token.pos, name, pipe)

    def block_control(self) -> TemplateNode:
        """``{{block "name" pipeline}}body{{end}}``: define it, and call it here."""
        context = "block clause"
        token = self.stream.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        block = _Parser(self.stream, name, self.trees)
        self.nest()
        root, end = block.item_list()
        self.stream.nesting -= 1
        if not isinstance(end, EndNode):
            raise self.error(f"unexpected {end} in {context}")
        block.add(root)
        return TemplateNode(token.pos, name, pipe)

    def pipeline(self, context: str, end: T) -> PipeNode:
        stream = self.stream
        token = stream.peek_non_space()
        pipe = PipeNode(token.pos, token.line)
        while True:  # declarations: $x := ..., $x = ..., range $i, $e := ...
            variable = stream.peek_non_space()
            if variable.typ != T.VARIABLE:
                break
            mark = stream.cursor
            stream.next()
            following = stream.peek_non_space()
            if following.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = following.typ == T.ASSIGN
                stream.next_non_space()
                pipe.decl.append(VariableNode(variable.pos, variable.val))
                self.vars.append(variable.val)
            elif following.typ == T.CHAR and following.val == ",":
                stream.next_non_space()
                pipe.decl.append(VariableNode(variable.pos, variable.val))
                self.vars.append(variable.val)
                if context == "range" and len(pipe.decl) < 2:
                    if stream.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            else:  # $x is an operand, not a declaration
                stream.cursor = mark
            break
        operands = (
            T.BOOL, T.CHAR_CONSTANT, T.COMPLEX, T.DOT, T.FIELD, T.IDENTIFIER, T.NUMBER, T.NIL, T.RAW_STRING,
            T.STRING, T.VARIABLE, T.LEFT_PAREN,
        )  # fmt: skip
        while True:
            token = stream.next_non_space()
            if token.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ not in operands:
                raise self.unexpected(token, context)
            stream.cursor -= 1
            pipe.cmds.append(self.command())

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}")
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                raise self.error(f"non executable command in pipeline stage {stage}")

    def command(self) -> CommandNode:
        stream = self.stream
        cmd = CommandNode(stream.peek_non_space().pos)
        while True:
            stream.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = stream.next()
            if token.typ == T.SPACE:
                continue
            if token.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                stream.cursor -= 1
            elif token.typ != T.PIPE:
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        """A term, and the fields after it: ``.A.B``, ``$x.A``, ``(pipeline).A``."""
        node = self.term()
        if node is None:
            return None
        stream = self.stream
        if stream.peek().typ == T.FIELD:
            chain = ChainNode(stream.peek().pos, node)
            while stream.peek().typ == T.FIELD:
                chain.fields.append(stream.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(chain.pos, str(chain))
            if isinstance(node, VariableNode):
                return VariableNode(chain.pos, str(chain))
            if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
                raise self.error(f"unexpected . after term {quote(str(node))}")
            return chain
        return node

    def term(self) -> Node | None:
        token = self.stream.next_non_space()
        typ = token.typ
        if typ == T.IDENTIFIER:
            if token.val not in BUILTINS:
                raise self.error(f"function {quote(token.val)} not defined")
            return IdentifierNode(token.pos, token.val)
        if typ == T.DOT:
            return DotNode(token.pos)
        if typ == T.NIL:
            return NilNode(token.pos)
        if typ == T.VARIABLE:
            name = token.val.split(".")[0]
            if name not in self.vars:
                raise self.error(f"undefined variable {quote(name)}")
            return VariableNode(token.pos, token.val)
        if typ == T.FIELD:
            return FieldNode(token.pos, token.val)
        if typ == T.BOOL:
            return BoolNode(token.pos, token.val == "true")
        if typ in (T.CHAR_CONSTANT, T.COMPLEX, T.NUMBER):
            return self.number(token)
        if typ == T.LEFT_PAREN:
            self.nest()
            pipe = self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
            self.stream.nesting -= 1
            return pipe
        if typ in (T.STRING, T.RAW_STRING):
            return StringNode(token.pos, token.val, self.unquote(token.val))
        self.stream.cursor -= 1
        return None

    def number(self, token: Token) -> NumberNode:
        """A number constant with every Go type that can hold it, as Go's ideal constants."""
        text = token.val
        node = NumberNode(token.pos, text)
        if token.typ == T.CHAR_CONSTANT:
            try:
                _, code, end = _unquote_char(text, 1, "'")
            except ValueError as exc:
                raise self.error(str(exc)) from None
            if text[end:] != "'":
                raise self.error(f"malformed character constant: {text}")
            node.is_int = node.is_uint = node.is_float = True
            node.int_value, node.float_value = code, float(code)
            return node
        if token.typ == T.COMPLEX or text.endswith("i"):
            try:
                value = complex(text.replace("_", "")[:-1] + "j") if token.typ == T.COMPLEX else None
            except ValueError:
                raise self.error(f"illegal number syntax: {quote(text)}") from None
            imaginary = _parse_float(text[:-1]) if value is None else None
            if value is not None or imaginary is not None:
                node.is_complex = True
                node.complex_value = value if value is not None else complex(0, imaginary or 0.0)
                if node.complex_value.imag == 0:
                    self.set_float(node, node.complex_value.real)
                return node
        unsigned = _parse_int(text, signed=False)
        signed = _parse_int(text, signed=True)
        if signed is not None:
            node.is_int, node.int_value = True, signed
        if unsigned is not None or signed == 0:  # -0 too
            node.is_uint = True
        if node.is_int or node.is_uint:
            node.is_float = True
            node.float_value = float(signed if signed is not None else unsigned or 0)
        else:
            value = _parse_float(text)
            if value is not None:
                if not any(char in text for char in ".eEpP"):
                    raise self.error(f"integer overflow: {quote(text)}")
                self.set_float(node, value)
        if not (node.is_int or node.is_uint or node.is_float):
            raise self.error(f"illegal number syntax: {quote(text)}")
        return node

    @staticmethod
    def set_float(node: NumberNode, value: float) -> None:
        node.is_float, node.float_value = True, value
        if value.is_integer() and -(2**63) <= value < 2**63:
            node.is_int, node.int_value = True, int(value)
        if value.is_integer() and 0 <= value < 2**64:
            node.is_uint = True


# ---- the builtin functions


class _CallError(Exception):
    """A builtin's error: Go reports it as ``error calling NAME: ...``."""


_MISSING: Any = object()  # "no value piped in", as opposed to nil


def _truth(value: Any) -> bool:
    """Go's ``IsTrue``: the zero value of its type is false."""
    if value is None:
        return False
    if isinstance(value, str | dict):
        return len(value) > 0
    return bool(value)


def _kind(value: Any) -> str:
    """Go's basic kinds for comparisons ("" when none)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoByte):
        return "uint"
    for kind, cls in (("int", int), ("float", float), ("complex", complex), ("string", str)):
        if isinstance(value, cls):
            return kind
    return ""


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise _CallError("missing argument for comparison")
    kind = _kind(first)
    for other in others:
        if kind != _kind(other):
            if {kind, _kind(other)} == {"int", "uint"}:
                truth = first == other
            elif first is not None and other is not None:
                raise _CallError(f"incompatible types for comparison: {type_name(first)} and {type_name(other)}")
            else:
                truth = False
        elif kind == "string":
            truth = to_bytes(first) == to_bytes(other)
        elif kind:
            truth = first == other
        elif first is None or other is None:
            truth = first is None and other is None
        else:
            raise _CallError(f"non-comparable type {sprint([other])}: {type_name(other)}")
        if truth:
            return True
    return False


def _lt(first: Any, second: Any) -> bool:
    kinds = _kind(first), _kind(second)
    if not all(kinds):
        raise _CallError("invalid type for comparison")
    if kinds[0] != kinds[1]:
        if set(kinds) == {"int", "uint"}:
            return bool(first < second)
        raise _CallError(f"incompatible types for comparison: {type_name(first)} and {type_name(second)}")
    if kinds[0] in ("bool", "complex"):
        raise _CallError("invalid type for comparison")
    if kinds[0] == "string":
        return to_bytes(first) < to_bytes(second)
    return bool(first < second)


def _ne(first: Any, second: Any) -> bool:
    return not _eq(first, second)


def _le(first: Any, second: Any) -> bool:
    return _lt(first, second) or _eq(first, second)


def _gt(first: Any, second: Any) -> bool:
    return not _le(first, second)


def _ge(first: Any, second: Any) -> bool:
    return not _lt(first, second)


def _length(item: Any) -> int:
    if item is None:
        raise _CallError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str):
        return len(to_bytes(item))
    if isinstance(item, dict):
        return len(item)
    raise _CallError(f"len of type {type_name(item)}")


def _index_arg(index: Any, size: int) -> int:
    if index is None:
        raise _CallError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise _CallError(f"cannot index slice/array with type {type_name(index)}")
    if index < 0 or index > size:
        raise _CallError(f"index out of range: {index}")
    return int(index)


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise _CallError("index of untyped nil")
    for index in indexes:
        if isinstance(item, str):
            data = to_bytes(item)
            position = _index_arg(index, len(data))
            if position == len(data):
                raise _CallError("reflect: string index out of range")
            item = GoByte(data[position])
        elif isinstance(item, dict):
            if index is None:
                raise _CallError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise _CallError(f"value has type {type_name(index)}; should be string")
            item = item.get(index, "")
        else:
            raise _CallError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise _CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise _CallError(f"too many slice indexes: {len(indexes)}")
    if not isinstance(item, str):
        raise _CallError(f"can't slice item of type {type_name(item)}")
    if len(indexes) == 3:
        raise _CallError("cannot 3-index slice a string")
    data = to_bytes(item)
    bounds = [0, len(data)]
    for position, index in enumerate(indexes):
        bounds[position] = _index_arg(index, len(data))
    if bounds[0] > bounds[1]:
        raise _CallError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    return from_bytes(data[bounds[0] : bounds[1]])


def _call(name: str, function: Any, *args: Any) -> Any:
    """No value a job template holds is a function."""
    if function is None:
        raise _CallError("call of nil")
    raise _CallError(f"non-function {name} of type {type_name(function)}")


def _eval_args(args: tuple[Any, ...]) -> str:
    """The text of the escaping functions' arguments (nil reads ``<no value>`` here)."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(["<no value>" if arg is None else arg for arg in args])


_HTML = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def _html(*args: Any) -> str:
    return "".join(_HTML.get(char, char) for char in _eval_args(args))


def _js(*args: Any) -> str:
    out = []
    for char in from_bytes(to_bytes(_eval_args(args))):
        code = ord(char)
        if char in _JS:
            out.append(_JS[char])
        elif code < 0x20:
            out.append(f"\\u{code:04X}")
        elif code < 0x80 or char.isprintable() or 0xDC80 <= code <= 0xDCFF:
            out.append(char)
        else:
            out.append(f"\\u{code:04X}")
    return "".join(out)


def _urlquery(*args: Any) -> str:
    return quote_plus(to_bytes(_eval_args(args)), safe="")


@dataclass(frozen=True)
class _Builtin:
    """A builtin's Go signature: its fixed parameters' types, its variadic one's (if any)."""

    function: Callable[..., Any] | None  # None: and/or, which short-circuit where they are evaluated
    params: tuple[str, ...]
    variadic: str = ""


BUILTINS: dict[str, _Builtin] = {
    "and": _Builtin(None, ("value",), "value"),
    "or": _Builtin(None, ("value",), "value"),
    "call": _Builtin(_call, ("value",), "value"),
    "html": _Builtin(_html, (), "any"),
    "index": _Builtin(_index, ("value",), "value"),
    "slice": _Builtin(_slice, ("value",), "value"),
    "js": _Builtin(_js, (), "any"),
    "len": _Builtin(_length, ("value",)),
    "not": _Builtin(lambda value: not _truth(value), ("value",)),
    "print": _Builtin(lambda *args: sprint(list(args)), (), "any"),
    "printf": _Builtin(lambda template, *args: sprintf(template, list(args)), ("string",), "any"),
    "println": _Builtin(lambda *args: sprintln(list(args)), (), "any"),
    "urlquery": _Builtin(_urlquery, (), "any"),
    "eq": _Builtin(_eq, ("value",), "value"),
    "ge": _Builtin(_ge, ("value", "value")),
    "gt": _Builtin(_gt, ("value", "value")),
    "le": _Builtin(_le, ("value", "value")),
    "lt": _Builtin(_lt, ("value", "value")),
    "ne": _Builtin(_ne, ("value", "value")),
}


# ---- execution


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _State:
    """One execution: the variables in scope, the node being evaluated (for errors), the output and the budget."""

    def __init__(self, template: Template, data: Any, max_output: int, max_steps: int) -> None:
        self.template = template
        self.name = template.name
        self.vars: list[list[Any]] = [["$", data]]
        self.node: Node | None = None
        self.out: list[str] = []
        self.size = 0
        self.depth = 0
        self.steps = 0
        self.max_output = max_output
        self.max_steps = max_steps

    # -- errors and budget

    def at(self, node: Node) -> None:
        self.node = node

    def error(self, message: str) -> TemplateExecError:
        """Go's execution error: where (line and byte column), in which template, at which node."""
        assert self.node is not None  # every error comes after a node was reached
        text = self.template.text[: self.node.pos]
        line_start = text.rfind("\n") + 1
        location = f":{text.count(chr(10)) + 1}:{len(to_bytes(text[line_start:]))}"
        return TemplateExecError(f"template: {location}: executing {quote(self.name)} at <{self.node}>: {message}")

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise TemplateExecError(f"template: execution stopped after {self.max_steps} steps")

    def check_size(self, value: Any) -> Any:
        if isinstance(value, str) and len(value) > self.max_output:
            raise TemplateExecError(f"template: a value is longer than the limit of {self.max_output} characters")
        return value

    def write(self, text: str) -> None:
        self.size += len(text)
        if self.size > self.max_output:
            raise TemplateExecError(f"template: output longer than the limit of {self.max_output} characters")
        self.out.append(text)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"exceeded maximum template depth ({MAX_DEPTH})")

    # -- variables

    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        raise self.error(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        raise self.error(f"undefined variable: {name}")

    # -- walking the tree

    def walk(self, dot: Any, node: Node) -> None:
        self.step()
        self.at(node)
        if isinstance(node, ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.at(node)
                self.write("<no value>" if value is None else sprint([value]))
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, TextNode):
            self.write(node.text)
        elif isinstance(node, IfNode | WithNode):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue

    def walk_if_or_with(self, dot: Any, node: BranchNode) -> None:
        mark = len(self.vars)
        self.enter()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if _truth(value):
                self.walk(value if isinstance(node, WithNode) else dot, node.body)
            elif node.orelse is not None:
                self.walk(dot, node.orelse)
        finally:
            del self.vars[mark:]
            self.depth -= 1

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        self.at(node)
        outer = len(self.vars)
        self.enter()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            mark = len(self.vars)
            pipe = node.pipe
            if isinstance(value, int) and not isinstance(value, bool):
                if len(pipe.decl) > 1:
                    raise self.error(f"can't use {sprint([value])} to iterate over more than one variable")
                kind = type(value)
                items: Iterator[tuple[Any, Any]] = ((None, kind(number)) for number in range(max(int(value), 0)))
            elif isinstance(value, dict):
                items = ((key, value[key]) for key in sorted(value, key=to_bytes))
            elif value is None:
                items = iter(())
            else:
                raise self.error(f"range can't iterate over {sprint([value])}")
            ran = False
            for index, element in items:
                ran = True
                self.one_iteration(node, mark, index, element)
            if not ran and node.orelse is not None:
                self.walk(dot, node.orelse)
        except _Break:
            pass
        finally:
            del self.vars[outer:]
            self.depth -= 1

    def one_iteration(self, node: RangeNode, mark: int, index: Any, element: Any) -> None:
        decl = node.pipe.decl
        if decl:
            if node.pipe.is_assign:
                self.set_var(decl[0].ident[0], index if len(decl) > 1 else element)
            else:
                self.vars[mark - 1][1] = element
        if len(decl) > 1:
            if node.pipe.is_assign:
                self.set_var(decl[1].ident[0], element)
            else:
                self.vars[mark - 2][1] = index
        try:
            self.walk(element, node.body)
        except _Continue:
            pass
        finally:
            del self.vars[mark:]

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        self.at(node)
        tree = self.template.trees.get(node.name)
        if tree is None:
            raise self.error(f"template {quote(node.name)} not defined")
        self.enter()
        dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else None
        saved = self.name, self.vars, self.node
        self.name, self.vars = node.name, [["$", dot]]
        try:
            self.walk(dot, tree)
        finally:
            self.name, self.vars, self.node = saved
            self.depth -= 1

    # -- evaluating pipelines and commands

    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        self.at(pipe)
        self.enter()
        try:
            value = _MISSING
            for cmd in pipe.cmds:
                value = self.eval_command(dot, cmd, value)
        finally:
            self.depth -= 1
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable.ident[0], value)
            else:
                self.push(variable.ident[0], value)
        return value

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.error(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        self.step()
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.error("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        assert isinstance(first, StringNode)
        return first.text

    def ideal_constant(self, node: NumberNode) -> Any:
        """A number in a place that gives it no type: its syntax decides, as in Go."""
        self.at(node)
        text = node.text
        hex_int = text[:2].lower() == "0x" and not any(char in text for char in "pP")
        if node.is_complex:
            return node.complex_value
        if node.is_float and not hex_int and not text.startswith("'") and any(char in text for char in ".eEpP"):
            return node.float_value
        if node.is_int:
            return node.int_value
        if node.is_uint:
            raise self.error(f"{text} overflows int")
        return None

    def eval_chain(self, dot: Any, chain: ChainNode, args: list[Node] | None, final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, NilNode):
            raise self.error(f"indirection through explicit nil in {chain}")
        receiver = self.eval_arg(dot, "", chain.node)
        return self.eval_field_chain(dot, receiver, chain, chain.fields, args, final)

    def eval_variable(self, dot: Any, variable: VariableNode, args: list[Node] | None, final: Any) -> Any:
        self.at(variable)
        value = self.var_value(variable.ident[0])
        if len(variable.ident) == 1:
            self.not_a_function(args or [variable], final)
            return value
        return self.eval_field_chain(dot, value, variable, variable.ident[1:], args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: Node, names: list[str], args: list[Node] | None, final: Any
    ) -> Any:
        self.at(node)
        for name in names[:-1]:
            receiver = self.eval_field(name, None, _MISSING, receiver)
        return self.eval_field(names[-1], args, final, receiver)

    def eval_field(self, name: str, args: list[Node] | None, final: Any, receiver: Any) -> Any:
        """``.Name`` on a value: only the map has entries; a missing key is an error (``missingkey=error``)."""
        if receiver is None:
            raise self.error(f"nil data; no entry for key {quote(name)}")
        if isinstance(receiver, dict):
            if (args is not None and len(args) > 1) or final is not _MISSING:
                raise self.error(f"{name} is not a method but has arguments")
            if name not in receiver:
                raise self.error(f"map has no entry for key {quote(name)}")
            return receiver[name]
        raise self.error(f"can't evaluate field {name} in type {type_name(receiver)}")

    def eval_function(self, dot: Any, node: IdentifierNode, args: list[Node] | None, final: Any) -> Any:
        self.at(node)
        builtin = BUILTINS[node.name]
        name = node.name
        given = args[1:] if args is not None else []
        count = len(given) + (final is not _MISSING)
        fixed = len(builtin.params)
        if builtin.variadic:
            if count < fixed:
                raise self.error(f"wrong number of args for {name}: want at least {fixed} got {len(given)}")
        elif count != fixed:
            raise self.error(f"wrong number of args for {name}: want {fixed} got {count}")
        if builtin.function is None:  # and, or
            value = None
            for arg in given:
                value = self.eval_arg(dot, "value", arg)
                if _truth(value) == (name == "or"):
                    return value
            return value if final is _MISSING else final
        argv = [
            self.eval_arg(dot, builtin.params[i] if i < fixed else builtin.variadic, arg) for i, arg in enumerate(given)
        ]
        if final is not _MISSING:
            argv.append(self.validate(final, builtin.params[len(argv)] if len(argv) < fixed else builtin.variadic))
        if name == "call":
            argv.insert(0, str(given[0]) if given else sprint([final]))
        try:
            result = builtin.function(*argv)
        except _CallError as exc:
            self.at(node)
            raise self.error(f"error calling {name}: {exc}") from None
        return self.check_size(result)

    def validate(self, value: Any, typ: str) -> Any:
        """Go's check that a value fits a parameter: "string" takes strings; "value" and "any" take anything."""
        if typ == "string":
            if value is None:
                raise self.error("invalid value; expected string")
            if not isinstance(value, str):
                raise self.error(f"wrong type for value; expected string; got {type_name(value)}")
        return value

    def eval_arg(self, dot: Any, typ: str, node: Node) -> Any:
        """An argument for a parameter of type ``typ`` ("" when the receiver of a chain)."""
        self.at(node)
        if isinstance(node, DotNode):
            return self.validate(dot, typ)
        if isinstance(node, NilNode):
            if typ == "string":
                raise self.error("cannot assign nil to string")
            return None
        if isinstance(node, FieldNode):
            return self.validate(self.eval_field_chain(dot, dot, node, node.ident, [node], _MISSING), typ)
        if isinstance(node, VariableNode):
            return self.validate(self.eval_variable(dot, node, None, _MISSING), typ)
        if isinstance(node, PipeNode):
            return self.validate(self.eval_pipeline(dot, node), typ)
        if isinstance(node, IdentifierNode):
            return self.validate(self.eval_function(dot, node, None, _MISSING), typ)
        if isinstance(node, ChainNode):
            return self.validate(self.eval_chain(dot, node, None, _MISSING), typ)
        if typ == "string":
            if isinstance(node, StringNode):
                return node.text
            raise self.error(f"expected string; found {node}")
        if isinstance(node, BoolNode):
            return node.value
        if isinstance(node, NumberNode):
            return self.ideal_constant(node)
        assert isinstance(node, StringNode)
        return node.text


class Template:
    """A parsed template (``define``d ones included), ready to execute on data."""

    def __init__(self, text: str, name: str, trees: dict[str, ListNode]) -> None:
        self.text = text
        self.name = name
        self.trees = trees

    @classmethod
    def parse(cls, text: str) -> Template:
        """Parse as ``template.New("").Parse(text)``; raises :class:`TemplateParseError`."""
        trees: dict[str, ListNode] = {}
        try:
            _Parser(_Stream(text), "", trees).parse()
        except RecursionError:
            raise TemplateParseError("template: nested too deeply") from None
        return cls(text, "", trees)

    def execute(self, data: Mapping[str, str], *, max_output: int = MAX_OUTPUT, max_steps: int = MAX_STEPS) -> str:
        """Execute with ``missingkey=error`` on a map of strings; raises :class:`TemplateExecError`."""
        values = dict(data)
        state = _State(self, values, max_output, max_steps)
        try:
            state.walk(values, self.trees[self.name])
        except RecursionError:
            raise TemplateExecError("template: nested too deeply") from None
        return "".join(state.out)


def render(text: str, data: Mapping[str, str]) -> str:
    """Parse and execute ``text`` as the original CLI does a job spec."""
    return Template.parse(text).execute(data)
