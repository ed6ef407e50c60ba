"""The one error a template ever raises, and its two kinds, which the CLI reports as the original does
(``failed to parse template: ...``, ``failed to execute template: ...``); the text is Go's."""

from __future__ import annotations


class TemplateError(Exception):
    """Any failure of a template; its text is Go's where Go has one."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TemplateParseError(TemplateError):
    """The template is malformed: the original says ``failed to parse template: ...``."""


class TemplateExecError(TemplateError):
    """Executing it failed: the original says ``failed to execute template: ...``."""
