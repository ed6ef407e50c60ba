"""Go's ``text/template`` parser: tokens into one tree per template (``define``d and ``block`` ones too), with Go's
error texts; it bounds a template's length (``MAX_TOKENS``) and nesting (``MAX_NESTING``)."""

from __future__ import annotations

from bacalhau.lib.gofmt import quote
from bacalhau.lib.gotemplate.builtins import BUILTINS
from bacalhau.lib.gotemplate.errors import TemplateParseError
from bacalhau.lib.gotemplate.lexer import Lexer, T, Token
from bacalhau.lib.gotemplate.literals import parse_float, parse_int, unquote, unquote_char
from bacalhau.lib.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    ElseNode,
    EndNode,
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
    is_empty_tree,
)

MAX_NESTING = 64  # control structures and parentheses inside each other, when parsing (Go allows 10000 parentheses)
MAX_TOKENS = 200_000  # tokens in a template: what its parse tree holds (a job spec has hundreds)


class Stream:
    """The lexer's tokens, with the look-ahead and backing up Go's parser does (a few tokens at most: only the last
    ones are kept). The last token lexed gives the line of parse errors, as in Go."""

    KEEP = 16

    def __init__(self, text: str) -> None:
        self.source = Lexer(text).tokens()
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


class Parser:
    """One template's parser (a ``define`` or ``block`` gets its own, on the same tokens)."""

    def __init__(self, stream: Stream, name: str, trees: dict[str, ListNode]) -> None:
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
        if existing is None or is_empty_tree(existing):
            self.trees[self.name] = root
        elif not is_empty_tree(root):
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
                    Parser(stream, "definition", self.trees).parse_definition()
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
        block = Parser(self.stream, name, self.trees)
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
                _, code, end = unquote_char(text, 1, "'")
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
            imaginary = parse_float(text[:-1]) if value is None else None
            if value is not None or imaginary is not None:
                node.is_complex = True
                node.complex_value = value if value is not None else complex(0, imaginary or 0.0)
                if node.complex_value.imag == 0:
                    self.set_float(node, node.complex_value.real)
                return node
        unsigned = parse_int(text, signed=False)
        signed = parse_int(text, signed=True)
        if signed is not None:
            node.is_int, node.int_value = True, signed
        if unsigned is not None or signed == 0:  # -0 too
            node.is_uint = True
        if node.is_int or node.is_uint:
            node.is_float = True
            node.float_value = float(signed if signed is not None else unsigned or 0)
        else:
            value = parse_float(text)
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
