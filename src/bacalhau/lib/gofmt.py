"""Go's ``fmt`` (``Sprint``, ``Sprintln``, ``Sprintf``) for the values a job template holds, so that ``print`` and
``printf`` in a template write what the original's would, error texts such as ``%!d(string=x)`` included.

Go values as Python holds them: ``str`` (a Go string; bytes that are not UTF-8 kept as surrogate escapes), ``bool``,
``int``, :class:`GoByte` (``uint8``, from indexing a string), ``float`` (``float64``), ``complex`` (``complex128``),
``dict[str, str]`` (the template's data, a ``map[string]string``) and ``None`` (``nil``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MAX_WIDTH = 10**6  # Go ignores a width or precision above this (as "crazy long")
_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


class GoByte(int):
    """A Go ``uint8``: what ``index`` gives for a string."""


def to_bytes(text: str) -> bytes:
    """A Go string's bytes (Go's ``len`` and indexes count bytes)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no byte stands for: Go would see its three bytes
        return text.encode("utf-8", "surrogatepass")


def from_bytes(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def type_name(value: Any) -> str:
    """The Go type's name, as errors and ``%T`` show it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoByte):
        return "uint8"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, complex):
        return "complex128"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map[string]string"
    return "<nil>"


def quote(text: str, *, ascii_only: bool = False, mark: str = '"') -> str:
    """Go's ``strconv.Quote`` (``QuoteToASCII`` with ``ascii_only``; ``mark="'"`` for runes)."""
    out = [mark]
    for char in from_bytes(to_bytes(text)):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in (mark, "\\"):
            out.append("\\" + char)
        elif char.isprintable() and (code < 0x80 or not ascii_only):
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(mark)
    return "".join(out)


def quote_rune(code: int, *, ascii_only: bool = False) -> str:
    """Go's ``strconv.QuoteRune``: an invalid rune becomes U+FFFD."""
    return quote(chr(_valid_rune(code)), ascii_only=ascii_only, mark="'")


def _valid_rune(code: int) -> int:
    return code if 0 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else 0xFFFD


def rune_repr(char: str) -> str:
    """Go's ``%#U``: ``U+0041 'A'``, without the quoted character when it is not printable."""
    code = ord(char)
    return f"U+{code:04X} '{char}'" if char.isprintable() else f"U+{code:04X}"


# ---- floats


def _shortest_digits(value: float) -> tuple[str, int]:
    """The fewest decimal digits that read back as ``value`` (> 0), and where the point goes: 0.DIGITS x 10^point."""
    _, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(str(d) for d in digits).rstrip("0") or "0"
    assert isinstance(exponent, int)
    return text, len(digits) + exponent


def _exponent(exp: int) -> str:
    return f"e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def format_float(value: float, verb: str = "g", precision: int = -1) -> str:
    """Go's ``strconv.FormatFloat`` for the verbs e, E, f, F, g, G (``precision`` -1: the shortest exact one)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    upper = verb in "EG"
    kind = verb.lower() if verb != "F" else "f"
    if precision >= 0:
        text = f"{value:.{precision}{kind}}"
        return text.upper() if upper else text
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    value = abs(value)
    digits, point = _shortest_digits(value) if value else ("0", 1)
    exp = point - 1 if value else 0
    if kind == "e" or (kind == "g" and (exp < -4 or exp >= 6)):
        text = digits[0] + ("." + digits[1:] if len(digits) > 1 else "") + _exponent(exp)
        return sign + (text.upper() if upper else text)
    if point <= 0:
        text = "0." + "0" * -point + digits
    elif point >= len(digits):
        text = digits + "0" * (point - len(digits))
    else:
        text = digits[:point] + "." + digits[point:]
    return sign + text


def _hex_float(value: float, upper: bool) -> str:
    """Go's ``%x`` for a float: ``0x1.8p+00`` (the shortest mantissa, an exponent of at least two digits)."""
    if value == 0:
        text = "-0x0p+00" if math.copysign(1.0, value) < 0 else "0x0p+00"
    else:
        mantissa, _, exp = value.hex().partition("p")
        mantissa = mantissa.rstrip("0").rstrip(".")
        number = int(exp)
        text = f"{mantissa}p{'-' if number < 0 else '+'}{abs(number):02d}"
    return text.upper() if upper else text


def _binary_float(value: float) -> str:
    """Go's ``%b`` for a float: a decimal mantissa and a power of two, ``4503599627370496p-52``."""
    if value == 0:
        return "-0p-1074" if math.copysign(1.0, value) < 0 else "0p-1074"
    fraction, exp = math.frexp(abs(value))
    mantissa, power = int(fraction * 2**53), exp - 53
    if power < -1074:  # subnormal: Go keeps the exponent at its minimum
        mantissa, power = mantissa >> (-1074 - power), -1074
    return f"{'-' if value < 0 else ''}{mantissa}p{'+' if power >= 0 else '-'}{abs(power)}"


# ---- the printer


@dataclass
class _Flags:
    plus: bool = False
    minus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    width: int | None = None
    precision: int | None = None
    sharp_v: bool = False


class _Printer:
    """One call's formatting: Go's verbs on our value types."""

    def __init__(self) -> None:
        self.flags = _Flags()

    def pad(self, text: str, *, zero_ok: bool = False) -> str:
        flags = self.flags
        if flags.width is None or len(text) >= flags.width:
            return text
        fill = flags.width - len(text)
        if flags.minus:
            return text + " " * fill
        if flags.zero and zero_ok:
            sign = text[0] if text[:1] in ("-", "+", " ") else ""
            return sign + "0" * fill + text[len(sign) :]
        return (("0" if flags.zero else " ") * fill) + text

    def arg(self, value: Any, verb: str) -> str:
        if value is None:
            return self.pad("<nil>") if verb in "Tv" else self.bad_verb(value, verb)
        if verb == "T":
            return self.pad(type_name(value))
        if isinstance(value, bool):
            return self.pad("true" if value else "false") if verb in "tv" else self.bad_verb(value, verb)
        if isinstance(value, int):
            return self.integer(value, verb, unsigned=isinstance(value, GoByte))
        if isinstance(value, float):
            return self.floating(value, verb)
        if isinstance(value, complex):
            return self.complex_number(value, verb)
        if isinstance(value, str):
            return self.string(value, verb)
        if isinstance(value, dict):
            return self.mapping(value, verb)
        return self.bad_verb(value, verb)

    def bad_verb(self, value: Any, verb: str) -> str:
        if value is None:
            return f"%!{verb}(<nil>)"
        return f"%!{verb}({type_name(value)}={self.arg(value, 'v')})"

    def integer(self, value: int, verb: str, *, unsigned: bool) -> str:
        flags = self.flags
        if verb == "v" and flags.sharp_v and unsigned:
            return self.pad("0x" + format(value, "x"))
        bases = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}
        if verb == "c":
            return self.pad(chr(_valid_rune(value)))
        if verb == "q":
            return self.pad(quote_rune(value, ascii_only=flags.plus))
        if verb == "U":
            code = value if value >= 0 else value & 0xFFFFFFFFFFFFFFFF
            text = f"U+{code:04X}"
            if flags.sharp and 0 <= value <= 0x10FFFF and chr(value).isprintable():
                text += f" '{chr(value)}'"
            return self.pad(text)
        if verb not in bases:
            return self.bad_verb(value, verb)
        if flags.precision == 0 and value == 0:  # nothing but the padding
            return " " * (flags.width or 0)
        base = bases[verb]
        negative = value < 0
        digits = format(abs(value), "X" if verb == "X" else {10: "d", 2: "b", 8: "o", 16: "x"}[base])
        minimum = flags.precision
        if minimum is None and flags.zero and not flags.minus and flags.width is not None:
            minimum = flags.width - (1 if negative or flags.plus or flags.space else 0)
        if minimum is not None and len(digits) < minimum:
            digits = "0" * (minimum - len(digits)) + digits
        prefix = ""
        if flags.sharp:
            if base == 2:
                prefix = "0b"
            elif base == 8 and verb == "o" and not digits.startswith("0"):
                prefix = "0"
            elif base == 16:
                prefix = "0x" if verb == "x" else "0X"
        if verb == "O":
            prefix = "0o"
        sign = "-" if negative else "+" if flags.plus else " " if flags.space else ""
        zero, flags.zero = flags.zero, False  # zeros went in as precision
        try:
            return self.pad(sign + prefix + digits)
        finally:
            flags.zero = zero

    def floating(self, value: float, verb: str) -> str:
        flags = self.flags
        if verb == "v":
            verb = "g"
        if verb in "xX":
            text = _hex_float(value, verb == "X")
        elif verb == "b":
            text = _binary_float(value)
        elif verb in "eEfFgG":
            default = -1 if verb in "gG" else 6
            text = format_float(value, verb, flags.precision if flags.precision is not None else default)
        else:
            return self.bad_verb(value, verb)
        if flags.plus and not text.startswith(("-", "+")):
            text = "+" + text
        elif flags.space and not text.startswith(("-", "+")):
            text = " " + text
        elif not flags.plus and text.startswith("+") and text != "+Inf":
            text = text[1:]
        return self.pad(text, zero_ok=math.isfinite(value))

    def complex_number(self, value: complex, verb: str) -> str:
        """Each part formatted (and padded) as a float; the imaginary one always has its sign."""
        if verb not in "vbgGxXfFeE":
            return self.bad_verb(value, verb)
        plus = self.flags.plus
        real = self.floating(value.real, verb)
        self.flags.plus = True
        imaginary = self.floating(value.imag, verb)
        self.flags.plus = plus
        return f"({real}{imaginary}i)"

    def string(self, value: str, verb: str) -> str:
        flags = self.flags
        if verb == "v" and flags.sharp_v:
            verb = "q"
        if verb in "sv":
            if flags.precision is not None:
                value = from_bytes(to_bytes(value))[: flags.precision]
            return self.pad(value)
        if verb in "xX":
            data = to_bytes(value)
            if flags.precision is not None:
                data = data[: flags.precision]
            digits = "%02x" if verb == "x" else "%02X"
            prefix = ("0x" if verb == "x" else "0X") if flags.sharp else ""
            if flags.space:
                text = " ".join(prefix + digits % byte for byte in data)
            else:
                text = (prefix if data else "") + "".join(digits % byte for byte in data)
            return self.pad(text)
        if verb == "q":
            if flags.precision is not None:
                value = from_bytes(to_bytes(value))[: flags.precision]
            if flags.sharp and _can_backquote(value):
                return self.pad(f"`{value}`")
            return self.pad(quote(value, ascii_only=flags.plus))
        return self.bad_verb(value, verb)

    def mapping(self, value: dict[str, str], verb: str) -> str:
        if self.flags.sharp_v:
            items = ", ".join(f"{quote(key)}:{quote(item)}" for key, item in sorted(value.items()))
            return "map[string]string{" + items + "}"
        ordered = sorted(value.items(), key=lambda entry: to_bytes(entry[0]))
        items = " ".join(f"{self.arg(key, verb)}:{self.arg(item, verb)}" for key, item in ordered)
        return f"map[{items}]"


def _can_backquote(text: str) -> bool:
    """Go's ``strconv.CanBackquote``: no backquote, no control character but tab, valid UTF-8, no BOM."""
    return not any(
        char == "`" or char == "\ufeff" or (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F
        or 0xD800 <= ord(char) <= 0xDFFF
        for char in text
    )  # fmt: skip


def sprint(args: list[Any]) -> str:
    """Go's ``fmt.Sprint``: spaces between operands when neither is a string."""
    printer = _Printer()
    out: list[str] = []
    previous_string = False
    for index, value in enumerate(args):
        is_string = isinstance(value, str)
        if index and not is_string and not previous_string:
            out.append(" ")
        out.append(printer.arg(value, "v"))
        previous_string = is_string
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    """Go's ``fmt.Sprintln``: spaces between all operands, and a newline."""
    printer = _Printer()
    return " ".join(printer.arg(value, "v") for value in args) + "\n"


def _parse_number(text: str, start: int) -> tuple[int | None, int]:
    """Digits at ``start``: (their value or None, where they end); a crazy long number swallows the rest."""
    number, index = 0, start
    found = False
    while index < len(text) and "0" <= text[index] <= "9":
        if number > MAX_WIDTH:
            return None, len(text)
        number = number * 10 + ord(text[index]) - 48
        found = True
        index += 1
    return (number if found else None), index


class _Formatter:
    """One ``Sprintf``: the format walked as Go's ``doPrintf`` walks it."""

    def __init__(self, template: str, args: list[Any]) -> None:
        self.template = template
        self.args = args
        self.printer = _Printer()
        self.out: list[str] = []
        self.arg_number = 0
        self.reordered = False
        self.good_arg_number = True

    def arg_index(self, index: int) -> tuple[int, bool]:
        """``[n]`` at ``index``: where it ends and whether one was there; sets the next argument."""
        text = self.template
        if index >= len(text) or text[index] != "[":
            return index, False
        self.reordered = True
        close = text.find("]", index + 1)
        if close < 0:
            self.good_arg_number = False
            return index + 1, False
        number, end = _parse_number(text, index + 1)
        if number is None or end != close or not 1 <= number <= len(self.args):
            self.good_arg_number = False
            return close + 1, number is not None and end == close
        self.arg_number = number - 1
        return close + 1, True

    def int_argument(self) -> int | None:
        """``*``: the next argument as a width or precision, None if it is not a (sane) int."""
        if self.arg_number >= len(self.args):
            return None
        value = self.args[self.arg_number]
        self.arg_number += 1
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_WIDTH:
            return value
        return None

    def run(self) -> str:
        text, out = self.template, self.out
        index = 0
        while index < len(text):
            percent = text.find("%", index)
            if percent < 0:
                out.append(text[index:])
                break
            out.append(text[index:percent])
            index = self.verb(percent + 1)
        if not self.reordered and self.arg_number < len(self.args):
            extra = ", ".join(
                "<nil>" if value is None else f"{type_name(value)}={_Printer().arg(value, 'v')}"
                for value in self.args[self.arg_number :]
            )
            out.append(f"%!(EXTRA {extra})")
        return "".join(out)

    def verb(self, index: int) -> int:
        """One directive after its ``%``; returns where the format goes on."""
        text = self.template
        flags = self.printer.flags = _Flags()
        self.good_arg_number = True
        while index < len(text) and text[index] in "#0+- ":
            char = text[index]
            if char == "#":
                flags.sharp = True
            elif char == "0":
                flags.zero = not flags.minus
            elif char == "+":
                flags.plus = True
            elif char == "-":
                flags.minus, flags.zero = True, False
            else:
                flags.space = True
            index += 1
        index, after_index = self.arg_index(index)
        if index < len(text) and text[index] == "*":
            index += 1
            width = self.int_argument()
            if width is None:
                self.out.append("%!(BADWIDTH)")
            elif width < 0:
                flags.width, flags.minus, flags.zero = -width, True, False
            else:
                flags.width = width
            after_index = False
        else:
            flags.width, index = _parse_number(text, index)
            if after_index and flags.width is not None:
                self.good_arg_number = False
        if index + 1 < len(text) and text[index] == ".":
            index += 1
            if after_index:
                self.good_arg_number = False
            index, after_index = self.arg_index(index)
            if index < len(text) and text[index] == "*":
                index += 1
                precision = self.int_argument()
                if precision is None or precision < 0:
                    flags.precision = None
                    self.out.append("%!(BADPREC)")
                else:
                    flags.precision = precision
                after_index = False
            else:
                flags.precision, index = _parse_number(text, index)
                if flags.precision is None:
                    flags.precision = 0
        if not after_index:
            index, after_index = self.arg_index(index)
        if index >= len(text):
            self.out.append("%!(NOVERB)")
            return index
        verb = text[index]
        index += 1
        if verb == "%":
            self.out.append("%")
        elif not self.good_arg_number:
            self.out.append(f"%!{verb}(BADINDEX)")
        elif self.arg_number >= len(self.args):
            self.out.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":  # %#v is Go syntax; %+v matters only for structs
                flags.sharp_v, flags.sharp, flags.plus = flags.sharp, False, False
            self.out.append(self.printer.arg(self.args[self.arg_number], verb))
            self.arg_number += 1
        return index


def sprintf(template: str, args: list[Any]) -> str:
    """Go's ``fmt.Sprintf``."""
    return _Formatter(template, args).run()
