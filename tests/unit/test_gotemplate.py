"""Go's text/template as the original CLI renders job specs (lib/gotemplate): output and error texts case by case,
as Go's text/template gives them with ``missingkey=error`` over a map of strings; the bounds on hostile templates;
and a property: whatever the text, only the module's own error comes out."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bacalhau.lib import gotemplate
from bacalhau.lib.gotemplate import Template, TemplateError, TemplateExecError, TemplateParseError, render
from tests.strategies import template_text

DATA = {"A": "x", "B": "b", "E": "", "N": "2", "Pct": "x%d", "Word": "héllo"}

OUTPUTS = [
    # text, trimming, comments
    ("plain text, no actions", "plain text, no actions"),
    ("This is a {{.A}}", "This is a x"),
    ("{{ .A }}{{.B}}", "xb"),
    ("{{.}}", "map[A:x B:b E: N:2 Pct:x%d Word:héllo]"),
    ("{{$}} {{$.A}}", "map[A:x B:b E: N:2 Pct:x%d Word:héllo] x"),
    ("a  {{- .A }}  b", "ax  b"),
    ("a  {{ .A -}}  \n b", "a  xb"),
    ("a\n\t {{- .A -}} \n\tb", "axb"),
    ("{{-3}}", "-3"),
    ("{{- 3 -}}", "3"),
    ("x {{- /* a comment */ -}} y", "xy"),
    ("{{/* multi\nline */}}z", "z"),
    # literals
    ('{{"tab\\there"}}', "tab\there"),
    ("{{`raw\\n`}}", "raw\\n"),
    ("{{true}} {{false}}", "true false"),
    ("{{42}} {{-7}} {{0x1F}} {{0o17}} {{0b101}} {{1_000}} {{017}}", "42 -7 31 15 5 1000 15"),
    (
        "{{1.5}} {{1e3}} {{1e6}} {{.5}} {{1e-7}} {{123456789.0}} {{100000.0}}",
        "1.5 1000 1e+06 0.5 1e-07 1.23456789e+08 100000",
    ),
    ("{{'a'}} {{'\\n'}} {{'é'}}", "97 10 233"),
    ("{{1+2i}} {{2i}}", "(1+2i) (0+2i)"),
    # pipelines
    ('{{.A | printf "%s!"}}', "x!"),
    ('{{"a" | printf "%s-%s" "b"}}', "b-a"),
    ("{{.Word | len}}", "6"),
    ("{{(len .A)}} {{(len .A) | print}}", "1 1"),
    # functions
    ("{{len .Word}} {{len .}} {{len .E}}", "6 6 0"),
    ('{{index . "A"}}[{{index . "Missing"}}] {{index .B 0}} {{index . "Word" 1}}', "x[] 98 195"),
    ('{{slice "abcd" 1 3}} {{slice "abcd" 2}} {{slice "abcd"}}', "bc cd abcd"),
    ("{{not .A}} {{not .E}} {{not 0}}", "false true true"),
    ("{{and .A .B}}|{{and .E .B}}|{{or .E .B}}|{{or .E 0}}|{{and 1 2 3}}", "b||b|0|3"),
    ('{{print "a" 1 2 "b" 3 nil true}}', "a1 2b3 <nil> true"),
    ('{{println "a" 1}}', "a 1\n"),
    (
        '{{printf "%d|%5d|%-5d|%05d|%x|%X|%#x|%o|%#o|%b|%c|%q|%U|%+d" 42 42 42 42 255 255 255 8 8 5 65 65 65 7}}',
        "42|   42|42   |00042|ff|FF|0xff|10|010|101|A|'A'|U+0041|+7",
    ),
    (
        '{{printf "%s|%q|%v|%6s|%-6s|%.2s|%x|% x|%#q" "go" "go" "go" "go" "go" "golang" "go" "go" "go"}}',
        'go|"go"|go|    go|go    |go|676f|67 6f|`go`',
    ),
    ('{{printf "%t %v %5t" true false true}}', "true false  true"),
    (
        '{{printf "%+.1e|%x|%.*s|%08.3f|%-8.2f|" 12345.0 1.5 2 "abc" -3.14159 2.5}}',
        "+1.2e+04|0x1.8p+00|ab|-003.142|2.50    |",
    ),
    ("{{1_0.5}} {{lt 1.5 2.5}} {{0x1p-2}}", "10.5 true 0.25"),
    (
        '{{printf "%.2f|%e|%g|%8.3f|%v|%G" 3.14159 1234.5678 0.000012 2.5 0.1 1e21}}',
        "3.14|1.234568e+03|1.2e-05|   2.500|0.1|1E+21",
    ),
    (
        '{{printf "%d" "x"}} {{printf "%s %s" "a"}} {{printf "%s" "a" "b"}}',
        "%!d(string=x) a %!s(MISSING) a%!(EXTRA string=b)",
    ),
    ('{{printf "100%%"}} {{printf "%z" 1}} {{printf "%"}} {{printf "%!"}}', "100% %!z(int=1) %!(NOVERB) %!!(MISSING)"),
    (
        '{{printf "%[2]s %[1]s" "a" "b"}} {{printf "%*d|%-*d|" 4 1 3 2}} {{printf "%[3]d" 1}}',
        "b a    1|2  | %!d(BADINDEX)",
    ),
    ('{{printf "%v %T %T %T" . .A 1 1.5}}', "map[A:x B:b E: N:2 Pct:x%d Word:héllo] string int float64"),
    (
        '{{printf "%#v %#v %v" .A . nil}}',
        '"x" map[string]string{"A":"x", "B":"b", "E":"", "N":"2", "Pct":"x%d", "Word":"héllo"} <nil>',
    ),
    ('{{printf "%d %s" nil true}}', "%!d(<nil>) %!s(bool=true)"),
    ("{{printf .Pct}}", "x%!d(MISSING)"),
    ('{{html "<a href=\\"x\\">&\'"}}', "&lt;a href=&#34;x&#34;&gt;&amp;&#39;"),
    ('{{js "it\'s <b>\\"x\\" & y=1\\\\"}}', 'it\\\'s \\u003Cb\\u003E\\"x\\" \\u0026 y\\u003D1\\\\'),
    ('{{urlquery "a b/c?d=e&f~"}} {{html 1 "<" 2}}', "a+b%2Fc%3Fd%3De%26f~ 1&lt;2"),
    (
        '{{eq .A "x"}} {{eq .A "y" "x"}} {{ne .A "x"}} {{lt "a" "b"}} {{le 2 2}} {{gt 3 2}} {{ge 1 2}}',
        "true true false true true true false",
    ),
    ("{{eq 1 (index .Word 0)}} {{eq 104 (index .Word 0)}} {{eq nil nil}} {{eq .A nil}}", "false true true false"),
    # if, with, range
    ("{{if .A}}yes{{end}}|{{if .E}}yes{{end}}", "yes|"),
    ("{{if .E}}yes{{else}}no{{end}}", "no"),
    ('{{if eq .N "1"}}one{{else if eq .N "2"}}two{{else}}many{{end}}', "two"),
    ('{{if eq .N "1"}}one{{else if eq .N "3"}}three{{else}}many{{end}}', "many"),
    ('{{if and .A (eq .B "b")}}ok{{end}}', "ok"),
    ('{{if 0}}a{{else}}b{{end}} {{if "0"}}a{{end}} {{if (index . "Missing")}}a{{else}}b{{end}}', "b a b"),
    ("{{with .A}}[{{.}}]{{end}}{{with .E}}[{{.}}]{{end}}", "[x]"),
    ("{{with .E}}x{{else}}empty{{end}} {{with .E}}x{{else with .B}}{{.}}{{end}}", "empty b"),
    ("{{with $x := .A}}{{$x}}{{.}}{{end}}", "xx"),
    ("{{range $k, $v := .}}{{$k}}={{$v}};{{end}}", "A=x;B=b;E=;N=2;Pct=x%d;Word=héllo;"),
    ("{{range .}}{{.}},{{end}}", "x,b,,2,x%d,héllo,"),
    ("{{range 3}}{{.}}{{end}} {{range $i := 3}}{{$i}}{{end}}", "012 012"),
    ("{{range 0}}x{{else}}none{{end}} {{range -2}}x{{else}}nothing{{end}}", "none nothing"),
    ("{{range 5}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}", "012"),
    ("{{range 5}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}", "0234"),
    ('{{range $k, $v := .}}{{if eq $k "B"}}{{$.A}}{{end}}{{end}}', "x"),
    # variables
    ("{{$x := .A}}{{$x}}", "x"),
    ('{{$x := "a"}}{{$x = "b"}}{{$x}}', "b"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}", "21"),
    ('{{ $x := "v" }}{{ with .A }}{{ $x }}{{ . }}{{ end }}', "vx"),
    # define, template, block
    ('{{define "t"}}[{{.}}]{{end}}{{template "t" .A}}', "[x]"),
    ('{{define "t"}}[{{.}}]{{end}}{{template "t"}}', "[<no value>]"),
    ('{{block "b" .A}}<{{.}}>{{end}}', "<x>"),
    ('{{define "t"}}{{$}}{{end}}{{$y := 1}}{{template "t" .B}}', "b"),
]


def at(location: str, node: str, message: str) -> str:
    """Go's execution error: ``template: :LINE:COLUMN: executing "" at <NODE>: MESSAGE``."""
    return f'template: :{location}: executing "" at <{node}>: {message}'


ERRORS = [
    # parse errors: "failed to parse template: ..." in the CLI
    ("{{.A", "template: :1: unclosed action"),
    ("{{.A}", "template: :1: bad character U+007D '}'"),
    ("{{ .A }", 'template: :1: unexpected "}" in operand'),
    ("a\n{{.A\n\nb}}", 'template: :4: function "b" not defined'),
    ("{{.A\n\n", "template: :3: unclosed action started at :1"),
    ('{{ .Key | default "x" }}', 'template: :1: function "default" not defined'),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("x\n{{end}}", "template: :2: unexpected {{end}}"),
    ("{{if .A}}x", "template: :1: unexpected EOF"),
    ("{{if .A}}x{{else}}y{{else}}z{{end}}", "template: :1: expected end; found {{else}}"),
    ("{{(1}}", "template: :1: unclosed left paren"),
    ("{{1)}}", "template: :1: unexpected right paren"),
    ("{{.A.}}", "template: :1: unexpected <.> in operand"),
    ('{{"open}}', "template: :1: unterminated quoted string"),
    ("{{`open}}", "template: :1: unterminated raw quoted string"),
    ("{{'a}}", "template: :1: unterminated character constant"),
    ("{{ $x := }}", "template: :1: missing value for command"),
    ("{{ .A := 1 }}", 'template: :1: unexpected ":=" in operand'),
    ("{{ @ }}", 'template: :1: unexpected "@" in command'),
    ("{{ € }}", "template: :1: unrecognized character in action: U+20AC '€'"),
    ("{{ .A\x00 }}", "template: :1: bad character U+0000"),
    ('{{ "\\q" }}', "template: :1: invalid syntax"),
    ("{{ 'ab' }}", "template: :1: malformed character constant: 'ab'"),
    ("{{ 08 }}", 'template: :1: integer overflow: "08"'),
    ("{{ 99999999999999999999 }}", 'template: :1: integer overflow: "99999999999999999999"'),
    ("{{ 1a }}", 'template: :1: bad number syntax: "1a"'),
    ("{{ nil.A }}", 'template: :1: unexpected . after term "nil"'),
    ('{{ "x".A }}', 'template: :1: unexpected . after term "\\"x\\""'),
    ('{{ "x" | "y" }}', "template: :1: non executable command in pipeline stage 2"),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{if true}}{{$x := 1}}{{end}}{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{range 1}}{{else}}{{continue}}{{end}}", "template: :1: {{continue}} outside {{range}}"),
    ('{{if true}}{{define "x"}}{{end}}{{end}}', "template: :1: unexpected <define> in command"),
    ('{{define "a"}}x{{end}}{{define "a"}}y{{end}}', 'template: :1: template: multiple definition of template "a"'),
    ("{{/* open", "template: :1: unclosed comment"),
    ("{{/* c */ .A}}", "template: :1: comment ends before closing delimiter"),
    ("{{range $i, $e, $f := .}}{{end}}", "template: :1: too many declarations in range"),
    # execution errors: "failed to execute template: ..." in the CLI
    ("{{.Missing}}", at("1:2", ".Missing", 'map has no entry for key "Missing"')),
    ("A: {{ .A }}\nB: {{ .Nope }}", at("2:6", ".Nope", 'map has no entry for key "Nope"')),
    ("é {{ .Nope }}", at("1:6", ".Nope", 'map has no entry for key "Nope"')),
    ("{{ .A.B }}", at("1:5", ".A.B", "can't evaluate field B in type string")),
    (
        '{{ (index . "A").B }}',
        'template: :1:16: executing "" at <(index . "A").B>: can\'t evaluate field B in type string',
    ),
    ("{{ .A 1 }}", at("1:3", ".A", "A is not a method but has arguments")),
    ("{{ .A | .B }}", at("1:8", ".B", "B is not a method but has arguments")),
    ("{{ 1 2 }}", at("1:3", "1", "can't give argument to non-function 1")),
    ("{{nil}}", at("1:2", "nil", "nil is not a command")),
    ("{{if nil}}x{{end}}", at("1:5", "nil", "nil is not a command")),
    (
        "{{ 18446744073709551615 }}",
        'template: :1:3: executing "" at <18446744073709551615>: 18446744073709551615 overflows int',
    ),
    ("{{len 3}}", at("1:2", "len", "error calling len: len of type int")),
    ("{{len .Missing}}", at("1:6", ".Missing", 'map has no entry for key "Missing"')),
    ("{{index .A 5}}", at("1:2", "index", "error calling index: index out of range: 5")),
    (
        "{{index .A 1.5}}",
        'template: :1:2: executing "" at <index>: error calling index: cannot index slice/array with type float64',
    ),
    ("{{index 1 1}}", at("1:2", "index", "error calling index: can't index item of type int")),
    ("{{slice .A 1 0}}", at("1:2", "slice", "error calling slice: invalid slice index: 1 > 0")),
    (
        "{{eq .A 1}}",
        'template: :1:2: executing "" at <eq>: error calling eq: incompatible types for comparison: string and int',
    ),
    ("{{lt true false}}", at("1:2", "lt", "error calling lt: invalid type for comparison")),
    ("{{eq .A}}", at("1:2", "eq", "error calling eq: missing argument for comparison")),
    ("{{lt 1}}", at("1:2", "lt", "wrong number of args for lt: want 2 got 1")),
    ("{{and}}", at("1:2", "and", "wrong number of args for and: want at least 1 got 0")),
    ("{{not 1 2}}", at("1:2", "not", "wrong number of args for not: want 1 got 2")),
    ("{{printf}}", at("1:2", "printf", "wrong number of args for printf: want at least 1 got 0")),
    ("{{printf 3}}", at("1:9", "3", "expected string; found 3")),
    ("{{1 | printf}}", at("1:6", "printf", "wrong type for value; expected string; got int")),
    ("{{call .A}}", at("1:2", "call", "error calling call: non-function .A of type string")),
    ("{{range .A}}x{{end}}", at("1:8", ".A", "range can't iterate over x")),
    (
        "{{range $i, $e := 3}}{{end}}",
        'template: :1:18: executing "" at <3>: can\'t use 3 to iterate over more than one variable',
    ),
    ('{{template "nope"}}', at("1:11", '{{template "nope"}}', 'template "nope" not defined')),
    (
        '{{define "r"}}{{template "r"}}{{end}}{{template "r"}}',
        'template: :1:25: executing "r" at <{{template "r"}}>: exceeded maximum template depth (80)',
    ),
]


@pytest.mark.parametrize(("text", "expected"), OUTPUTS)
def test_output_is_gos(text: str, expected: str) -> None:
    assert render(text, DATA) == expected


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors_are_gos(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(text, DATA)
    assert caught.value.message == message
    kind = TemplateParseError if " executing " not in message else TemplateExecError
    assert type(caught.value) is kind


def test_parse_and_execute_apart() -> None:
    """A template parses once and executes on any data; a missing key is an execution error."""
    template = Template.parse("{{.Greeting}}, {{.Name}}!")
    assert template.execute({"Greeting": "Hello", "Name": "world"}) == "Hello, world!"
    with pytest.raises(TemplateExecError, match='no entry for key "Name"'):
        template.execute({"Greeting": "Hello"})


# ---- bounds on hostile templates


def test_output_is_bounded() -> None:
    with pytest.raises(TemplateExecError, match="output longer than the limit of 1000 characters"):
        Template.parse("{{range 1000}}{{$.A}}{{$.A}}{{end}}").execute(DATA, max_output=1000)
    two_widths = '{{printf "%9000000d" 1}}{{printf "%9000000d" 1}}'
    with pytest.raises(TemplateExecError, match="output longer than the limit"):
        render(two_widths, DATA)


def test_intermediate_strings_are_bounded() -> None:
    """Doubling a string in a loop stops at the limit instead of taking the memory."""
    doubling = '{{$x := "ab"}}{{range 64}}{{$x = print $x $x}}{{end}}{{len $x}}'
    with pytest.raises(TemplateExecError, match="a value is longer than the limit"):
        render(doubling, DATA)


def test_work_is_bounded() -> None:
    with pytest.raises(TemplateExecError, match="execution stopped after 1000 steps"):
        Template.parse("{{range 1000000000}}{{end}}").execute(DATA, max_steps=1000)


@pytest.mark.parametrize(
    "text",
    [
        "{{if 1}}" * 70 + "{{end}}" * 70,
        "{{" + "(" * 70 + "1" + ")" * 70 + "}}",
        "{{" + "(" * 100_000,
        "{{range 1}}" * 40 + "{{with 1}}" * 40 + "{{end}}" * 80,
    ],
)
def test_nesting_is_bounded(text: str) -> None:
    with pytest.raises(TemplateParseError, match=f"nested deeper than {gotemplate.MAX_NESTING} levels"):
        render(text, DATA)


def test_length_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a parse tree may hold: a long text costs nothing, many tokens are refused."""
    monkeypatch.setattr("bacalhau.lib.gotemplate.parse.MAX_TOKENS", 1000)  # where the parser reads it
    assert render("x" * 100_000, DATA) == "x" * 100_000
    with pytest.raises(TemplateParseError, match="longer than the limit of 1000 tokens"):
        render("{{.A}}" * 400, DATA)
    with pytest.raises(TemplateParseError, match="longer than the limit of 1000 tokens"):
        render("{{print " + "1 " * 600 + "}}", DATA)


def test_the_deepest_nesting_allowed_executes() -> None:
    depth = gotemplate.MAX_NESTING
    assert render("{{if 1}}" * depth + "ok" + "{{end}}" * depth, DATA) == "ok"
    assert render("{{" + "(" * (depth - 1) + ".A" + ")" * (depth - 1) + "}}", DATA) == "x"


HOSTILE = settings(
    max_examples=400, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@HOSTILE
@given(template_text)
def test_any_text_renders_or_fails_with_the_modules_error(text: str) -> None:
    try:
        output = Template.parse(text).execute(DATA, max_output=100_000, max_steps=20_000)
    except TemplateError as exc:
        assert exc.message.startswith("template: ")
    else:
        assert isinstance(output, str)


@HOSTILE
@given(st.text().filter(lambda text: "{{" not in text))
def test_text_without_actions_is_itself(text: str) -> None:
    assert render(text, DATA) == text
