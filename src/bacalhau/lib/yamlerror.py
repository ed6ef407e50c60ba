"""YAML syntax errors in one line: where (line and column, counted from 1) and what, instead of PyYAML's multi-line
excerpt of the document."""

from __future__ import annotations

import yaml


def describe_yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """``invalid YAML at line 3, column 5: mapping values are not allowed here`` (``text``: the document read)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid syntax"
        if mark is None:
            return f"invalid YAML: {problem}"
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    if isinstance(exc, yaml.reader.ReaderError):
        position = min(exc.position, len(text))
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
        where = f"invalid YAML at line {line}, column {column}"
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, read with surrogateescape
            return f"{where}: the byte 0x{code - 0xDC00:02x} is not UTF-8"
        return f"{where}: unacceptable character #x{code:04x}: {exc.reason}"
    return f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
