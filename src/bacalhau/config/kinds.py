"""What a config key's value may be: one class per type, each checking a value from any source.

A config file is read as the original's loader (viper, with weakly typed decoding) reads it: ``Port: "1234"`` is the
number 1234 and ``CPU: 2`` the string ``"2"``. An environment variable or ``-c Key=Value`` is text, spelled as the
original takes it there (lists with commas, maps as ``k=v,k2=v2``, structures as YAML or JSON). Every check raises
``Invalid`` saying what is wrong, and where inside a structured value.
"""

from __future__ import annotations

import re
from typing import Any

from bacalhau.config.durations import format_duration, parse_duration_ns

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
MASK = "********"
# Far more values than any real config holds, and few enough to walk at once: YAML aliases can make a small document
# stand for an enormous one (each ``*alias`` repeats what its anchor names), or for one that contains itself.
MAX_YAML_VALUES = 100_000

_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")  # longer is out of every range (and slow for int() to read)
_TRUE = ("1", "t", "true", "y", "yes", "on")
_FALSE = ("0", "f", "false", "n", "no", "off")


class Invalid(ValueError):
    """A value a key cannot take: ``problem``, found at ``where`` inside the value (``[0].Username``) if anywhere."""

    def __init__(self, problem: str, where: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.where = where

    def inside(self, step: str) -> Invalid:
        return Invalid(self.problem, step + self.where)


def brief(value: object) -> str:
    """A value as an error quotes it: whole if short, else its start (a config file may hold anything)."""
    text = repr(value)
    return text if len(text) <= 64 else text[:60] + "..."


def what(value: object) -> str:
    """A YAML value's type, as an error names it."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def load_yaml(text: str | bytes) -> object:
    """A YAML (or JSON) document, refused if it is nested too deeply or stands for more than ``MAX_YAML_VALUES``."""
    import yaml  # only when there is YAML to read

    from bacalhau.lib.yamlerror import describe_yaml_error

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        read = text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else text
        raise Invalid(f"has {describe_yaml_error(exc, read)}") from None
    except ValueError as exc:  # a scalar Python cannot hold (a 5000-digit number)
        raise Invalid(f"is not valid YAML: {exc}") from None
    except RecursionError:
        raise Invalid("is nested too deeply") from None
    pending, seen = [document], 0
    while pending:
        value = pending.pop()
        seen += 1
        if seen > MAX_YAML_VALUES:
            raise Invalid(f"stands for more than {MAX_YAML_VALUES} values (once its aliases are expanded)")
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return document


class Kind:
    """One type of value; ``name`` is how ``config set`` tells them apart."""

    name = "string"

    def zero(self) -> Any:
        """Go's zero value: what a field left out of a structure holds."""
        return ""

    def check(self, value: object) -> Any:
        """A value from a config file (or a flag), normalised; ``Invalid`` if it cannot be one of these."""
        raise NotImplementedError

    def parse(self, text: str) -> Any:
        """A value from an environment variable or ``-c Key=Value``."""
        return self.check(text)

    def shown(self, value: Any) -> Any:
        """The value as ``/agent/config`` and ``config list`` show it: secrets masked."""
        return value


class Text(Kind):
    """A string. Numbers become their text, as viper's weak decoding makes them; ``secret`` ones are never shown."""

    def __init__(self, *, secret: bool = False) -> None:
        self.secret = secret

    def check(self, value: object) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise Invalid(f"expected a string, got {what(value)}")

    def shown(self, value: Any) -> Any:
        return MASK if self.secret and value else value


class Integer(Kind):
    """A whole number within Go's type (``int``, ``uint64``) or tighter bounds where more would break the node."""

    name = "int"

    def zero(self) -> int:
        return 0

    def __init__(self, low: int = INT64_MIN, high: int = INT64_MAX) -> None:
        self.low, self.high = low, high

    def check(self, value: object) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            number = int(value.strip())
        if number is None:
            raise Invalid(f"invalid integer value {brief(value)}")
        if not self.low <= number <= self.high:
            raise Invalid(f"{number} is out of range: it must be from {self.low} to {self.high}")
        return number


class Boolean(Kind):
    """True or false; also the words viper and YAML take for them (``"true"``, ``yes``, ``1``)."""

    name = "bool"

    def zero(self) -> bool:
        return False

    def check(self, value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
            return value.strip().lower() in _TRUE
        raise Invalid(f"invalid boolean value {brief(value)}")


class Duration(Kind):
    """A Go duration (``1m30s``; a bare number is seconds), kept as Go prints it (``90s`` is ``1m30s``)."""

    name = "duration"

    def zero(self) -> str:
        return "0s"

    def check(self, value: object) -> str:
        try:
            nanoseconds = parse_duration_ns(value) if isinstance(value, str) else None
        except ValueError:
            nanoseconds = None
        if nanoseconds is None or not INT64_MIN <= nanoseconds <= INT64_MAX:
            raise Invalid(f"invalid duration {brief(value)}")
        return format_duration(nanoseconds)


class Choice(Text):
    """One of a few words, matched as Go's parsers match them: trimmed, in any case."""

    def __init__(self, *choices: str) -> None:
        super().__init__()
        self.choices = choices

    def check(self, value: object) -> str:
        text = super().check(value).strip().lower()
        if text not in self.choices:
            raise Invalid(f"invalid value {brief(value)}: it must be one of {', '.join(self.choices)}")
        return text


class TextList(Kind):
    """A list of strings; one string alone is a list of one. From text: comma-separated."""

    name = "list"

    def zero(self) -> list[str]:
        return []

    def check(self, value: object) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise Invalid(f"expected a list of strings, got {what(value)}")
        result = []
        for index, item in enumerate(items):
            try:
                result.append(TEXT.check(item))
            except Invalid as exc:
                raise exc.inside(f"[{index}]") from None
        return result

    def parse(self, text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]


class TextMap(Kind):
    """Strings by name (labels, parameters): the names are data, and keep their case. From text: ``k=v,k2=v2``."""

    name = "map"

    def zero(self) -> dict[str, str]:
        return {}

    def check(self, value: object) -> dict[str, str]:
        if not isinstance(value, dict):
            raise Invalid(f"expected a mapping of names to strings, got {what(value)}")
        result = {}
        for name, item in value.items():
            try:
                result[TEXT.check(name)] = TEXT.check(item)
            except Invalid as exc:
                raise exc.inside(f"[{brief(name)}]") from None
        return result

    def parse(self, text: str) -> dict[str, str]:
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        return {key.strip(): (value[0].strip() if value else "") for key, *value in pairs}


class Structured(Kind):
    """A value with parts of its own (API users, authentication methods): from text, written as YAML or JSON."""

    name = "structured"

    def parse(self, text: str) -> Any:
        try:
            document = load_yaml(text)
        except Invalid as exc:
            raise Invalid(f"the value {exc.problem}") from None
        return self.check(document)


class Struct(Structured):
    """A mapping of known fields, matched in any case; a field left out holds its zero value, an unknown one is an
    error (a misspelt ``Pasword`` would otherwise leave a user without one)."""

    def __init__(self, **fields: Kind) -> None:
        self.fields = fields
        self.spelling = {name.lower(): name for name in fields}  # how each field is spelt, by its lower-case name

    def zero(self) -> dict[str, Any]:
        return {name: kind.zero() for name, kind in self.fields.items()}

    def check(self, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid(f"expected a mapping of {', '.join(self.fields)}, got {what(value)}")
        result = self.zero()
        for given, item in value.items():
            name = self.spelling.get(str(given).lower())
            if name is None:
                raise Invalid(f"unknown field {brief(str(given))} (expected {', '.join(self.fields)})")
            if item is not None:
                try:
                    result[name] = self.fields[name].check(item)
                except Invalid as exc:
                    raise exc.inside(f".{name}") from None
        return result

    def shown(self, value: Any) -> Any:
        return {name: self.fields[name].shown(item) for name, item in value.items()}


class StructList(Structured):
    """A list of structures."""

    def __init__(self, item: Kind) -> None:
        self.item = item

    def zero(self) -> list[Any]:
        return []

    def check(self, value: object) -> list[Any]:
        if not isinstance(value, list):
            raise Invalid(f"expected a list, got {what(value)}")
        result = []
        for index, item in enumerate(value):
            try:
                result.append(self.item.check(item))
            except Invalid as exc:
                raise exc.inside(f"[{index}]") from None
        return result

    def shown(self, value: Any) -> Any:
        return [self.item.shown(item) for item in value]


class StructMap(Structured):
    """Structures by name."""

    def __init__(self, item: Kind) -> None:
        self.item = item

    def zero(self) -> dict[str, Any]:
        return {}

    def check(self, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid(f"expected a mapping of names, got {what(value)}")
        result = {}
        for name, item in value.items():
            try:
                result[TEXT.check(name)] = self.item.check(item)
            except Invalid as exc:
                raise exc.inside(f"[{brief(name)}]") from None
        return result

    def shown(self, value: Any) -> Any:
        return {name: self.item.shown(item) for name, item in value.items()}


TEXT = Text()
