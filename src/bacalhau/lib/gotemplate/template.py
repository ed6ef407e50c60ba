"""What callers use: a template parsed once (the lexer and parser), then executed (the evaluator), and ``render``,
both as the original CLI does with a job spec."""

from __future__ import annotations

from collections.abc import Mapping

from bacalhau.lib.gotemplate.errors import TemplateExecError, TemplateParseError
from bacalhau.lib.gotemplate.execute import MAX_OUTPUT, MAX_STEPS, State
from bacalhau.lib.gotemplate.nodes import ListNode
from bacalhau.lib.gotemplate.parse import Parser, Stream


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
            Parser(Stream(text), "", trees).parse()
        except RecursionError:
            raise TemplateParseError("template: nested too deeply") from None
        return cls(text, "", trees)

    def execute(self, data: Mapping[str, str], *, max_output: int = MAX_OUTPUT, max_steps: int = MAX_STEPS) -> str:
        """Execute with ``missingkey=error`` on a map of strings; raises :class:`TemplateExecError`."""
        values = dict(data)
        state = State(self, values, max_output, max_steps)
        try:
            state.walk(values, self.trees[self.name])
        except RecursionError:
            raise TemplateExecError("template: nested too deeply") from None
        return "".join(state.out)


def render(text: str, data: Mapping[str, str]) -> str:
    """Parse and execute ``text`` as the original CLI does a job spec."""
    return Template.parse(text).execute(data)
