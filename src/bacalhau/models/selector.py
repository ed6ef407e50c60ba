"""Kubernetes label-selector syntax (``env=prod,tier in (a,b),!legacy,gpu>1``), used for list filters and
job constraints."""

from __future__ import annotations

import re

from bacalhau.models.spec import LabelSelectorRequirement, parse_int64

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_OPERATORS = ("!=", "==", "=", ">", "<")


class SelectorError(ValueError):
    pass


def validate_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise SelectorError(f"invalid label key {key!r}: prefix must be a DNS subdomain")
    if not name or len(name) > 63 or not _NAME.match(name):
        raise SelectorError(
            f"invalid label key {key!r}: name part must be 63 characters or less, start and end with an "
            "alphanumeric character, and contain only alphanumerics, '-', '_' or '.'"
        )


def validate_value(value: str) -> None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        raise SelectorError(
            f"invalid label value {value!r}: must be 63 characters or less, start and end with an alphanumeric "
            "character, and contain only alphanumerics, '-', '_' or '.'"
        )


def _split_requirements(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced parentheses in selector {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise SelectorError(f"unbalanced parentheses in selector {text!r}")
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _parse_one(text: str) -> LabelSelectorRequirement:
    if not text:
        raise SelectorError("empty requirement in selector")
    if text.startswith("!"):
        key = text[1:].strip()
        validate_key(key)
        return LabelSelectorRequirement(key=key, operator="!")
    words = re.match(r"^(\S+)\s+(in|notin)\s*\((.*)\)$", text)
    if words:
        key, operator, body = words.groups()
        validate_key(key)
        values = sorted({v.strip() for v in body.split(",")})  # "()" is the set {""}, as in k8s
        for value in values:
            validate_value(value)
        return LabelSelectorRequirement(key=key, operator=operator, values=values)
    for symbol in _OPERATORS:
        key, found, value = text.partition(symbol)
        if found:
            key, value = key.strip(), value.strip()
            validate_key(key)
            if symbol in (">", "<") and parse_int64(value) is None:
                raise SelectorError(f"{symbol} requires an integer value in {text!r}")
            validate_value(value)  # k8s checks Gt/Lt values as label values too, so "-5" is refused
            if symbol in (">", "<"):
                return LabelSelectorRequirement(key=key, operator="gt" if symbol == ">" else "lt", values=[value])
            return LabelSelectorRequirement(key=key, operator=symbol, values=[value])
    validate_key(text)
    return LabelSelectorRequirement(key=text, operator="exists")


def parse_selector(text: str) -> list[LabelSelectorRequirement]:
    """Parse a selector; an empty string selects everything."""
    if not text.strip():
        return []
    return [_parse_one(part) for part in _split_requirements(text)]


def matches(requirements: list[LabelSelectorRequirement], labels: dict[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)
