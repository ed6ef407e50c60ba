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

One module a job: ``lexer.py`` (tokens), ``literals.py`` (Go's syntax of numbers and strings), ``nodes.py`` (the
tree), ``parse.py`` (tokens to trees; the length and nesting bounds), ``builtins.py`` (Go's functions),
``execute.py`` (evaluation; the depth, output and step bounds), ``errors.py`` (the error types) and ``template.py``
(parse, then execute).
"""

from bacalhau.lib.gotemplate.errors import TemplateError, TemplateExecError, TemplateParseError
from bacalhau.lib.gotemplate.parse import MAX_NESTING
from bacalhau.lib.gotemplate.template import Template, render

__all__ = ["MAX_NESTING", "Template", "TemplateError", "TemplateExecError", "TemplateParseError", "render"]
