"""Executing a parsed template on the job's data as Go does, ``missingkey=error`` over a ``map[string]string``, with
Go's error texts (``template: :1:2: executing "" at <.Missing>: map has no entry for key "Missing"``); it bounds the
work a template may ask for: depth (``MAX_DEPTH``), output and every string built (``MAX_OUTPUT``), and steps
(``MAX_STEPS``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bacalhau.lib.gofmt import quote, sprint, to_bytes, type_name
from bacalhau.lib.gotemplate.builtins import BUILTINS, CallError, is_true
from bacalhau.lib.gotemplate.errors import TemplateExecError
from bacalhau.lib.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
)

if TYPE_CHECKING:
    from bacalhau.lib.gotemplate.template import Template

MAX_DEPTH = 80  # parse.MAX_NESTING's bound when executing, template calls included (Go: 100000 template calls)
MAX_OUTPUT = 10 * 1024 * 1024  # characters of output, and of any string a template builds
MAX_STEPS = 1_000_000  # nodes walked and commands evaluated

_MISSING: Any = object()  # "no value piped in", as opposed to nil


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class State:
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
            if is_true(value):
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
                if is_true(value) == (name == "or"):
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
        except CallError as exc:
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
