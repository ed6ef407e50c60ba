"""Hypothesis strategies for hostile input: job specs whose every field may be a trap.

Mostly plausible values (so that the pipeline gets past its first check and deep into validation, storage and
scheduling), each sometimes replaced by something an attacker would send: strings with NUL, lone surrogates, path
tricks or thousands of characters; integers beyond Go's int64; deep or oddly typed structures.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from bacalhau.models import limits

PATH_TRICKS = ["/", "..", ".", "../..", "../../../etc/passwd", "/var/lib", "a/../../b", "./x", "a\\b", "~", "//"]
ODD_TEXT = ["", " ", "\x00", "a\x00b", "\ud800", "\udfff", "\ufffd", "\u202e", "\r\n", "%00", "${HOME}", "{{.x}}"]
RESERVED = ["stdout", "stderr", "exitCode", "bacalhau.org/orchestrator.id", "BACALHAU_JOB_ID"]
EDGE_INTS = [
    0, -1, 1, 2**31, 2**32, 2**53 + 1, limits.MAX_DURATION_SECONDS, limits.MAX_DURATION_SECONDS + 1,
    2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 2**70, 10**9, limits.DEFAULT_MAX_COUNT + 1,
]  # fmt: skip


def long_text(minimum: int = 200, maximum: int = 70_000) -> st.SearchStrategy[str]:
    """A character repeated: long enough to pass a limit without costing the generator much."""
    return st.builds(lambda char, size: char * size, st.characters(), st.integers(minimum, maximum))


hostile_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(PATH_TRICKS + ODD_TEXT + RESERVED),
    st.text(st.characters(exclude_categories=[]), max_size=20),  # any code point, lone surrogates included
    long_text(),
)
# For query strings: what a URL can carry (a lone surrogate cannot be encoded), and not longer than a few kilobytes,
# beyond which the HTTP server refuses the request line before the API sees it.
hostile_query_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from([text for text in PATH_TRICKS + ODD_TEXT + RESERVED if text.isprintable() or "\x00" in text]),
    st.text(max_size=20),
    long_text(200, 2000).filter(lambda text: not 0xD800 <= ord(text[0]) <= 0xDFFF),
)
hostile_int: st.SearchStrategy[int] = st.one_of(st.sampled_from(EDGE_INTS), st.integers(-(2**70), 2**70))


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value] if depth % 2 else {"k": value}
    return value


hostile_value: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    hostile_int,
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
    st.integers(limits.MAX_PARAMS_DEPTH - 2, 300).map(nested),
    st.recursive(
        st.one_of(st.none(), st.booleans(), hostile_int, hostile_text),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3),
        max_leaves=8,
    ),
)


NAMES = st.sampled_from(["main", "task", "outputs", "out", "data", "x"])
ENV_NAMES = st.sampled_from(["A", "FOO", "MY_VAR", "lower", "BACALHAU_X", "1A", "A=B"])
PATHS = st.sampled_from(["/outputs", "/data", "/in", "/a/../b"])
QUANTITIES = st.sampled_from(["", "1m", "100m", "1", "0.5", "1e306", "-1", "1gb", "10 zb", "1ki", "abc", "1e-9"])
SOURCES = st.sampled_from(["inline", "INLINE", "urlDownload", "s3", "local", "ipfs", "s3PreSigned", "noop"])


def source_spec() -> st.SearchStrategy[dict[str, Any]]:
    inline = st.fixed_dictionaries({"Type": st.just("inline"), "Params": st.just({"URL": "data:,hello"})})
    other = st.fixed_dictionaries(
        {"Type": SOURCES}, optional={"Params": st.dictionaries(st.sampled_from(["URL", "Bucket", "Key"]), NAMES)}
    )
    return st.one_of(inline, other)


def task_spec() -> st.SearchStrategy[dict[str, Any]]:
    engine = st.fixed_dictionaries(
        {"Type": st.sampled_from(["noop", "noop", "noop", "wasm", "docker", "NoOp", "nope"])},
        optional={
            "Params": st.fixed_dictionaries(
                {},
                optional={
                    "EntryModule": st.just("/app/main.wasm"),
                    "Image": st.just("busybox"),
                    "Parameters": st.lists(NAMES, max_size=3),
                },
            )
        },
    )
    return st.fixed_dictionaries(
        {"Name": NAMES, "Engine": engine},
        optional={
            "Publisher": st.fixed_dictionaries({"Type": st.sampled_from(["local", "noop", "ipfs", "s3managed"])}),
            "Env": st.dictionaries(ENV_NAMES, st.sampled_from(["value", "env:HOME", ""]), max_size=3),
            "Meta": st.dictionaries(NAMES, NAMES, max_size=3),
            "InputSources": st.lists(
                st.fixed_dictionaries({"Source": source_spec(), "Target": PATHS}, optional={"Alias": NAMES}),
                max_size=3,
            ),
            "ResultPaths": st.lists(st.fixed_dictionaries({"Name": NAMES, "Path": PATHS}), max_size=3),
            "Resources": st.fixed_dictionaries(
                {}, optional={"CPU": QUANTITIES, "Memory": QUANTITIES, "GPU": st.sampled_from(["", "0", "1", "x"])}
            ),
            "Timeouts": st.fixed_dictionaries(
                {},
                optional={
                    "ExecutionTimeout": st.integers(0, 600),
                    "QueueTimeout": st.integers(0, 600),
                    "TotalTimeout": st.integers(0, 600),
                },
            ),
            "Network": st.fixed_dictionaries(
                {"Type": st.sampled_from(["None", "Full", "HTTP", "Host", "Bridge", "bogus"])},
                optional={
                    "Domains": st.lists(st.sampled_from(["example.com", "*.example.org", "not a domain"]), max_size=2),
                    "Ports": st.lists(
                        st.fixed_dictionaries(
                            {"Name": st.sampled_from(["WEB", "web_2", "", "1X", "A" * 240])},
                            optional={
                                "Static": st.sampled_from([0, 80, 1024, 20000, 65535, 65536, -1]),
                                "Target": st.sampled_from([0, 80, 8080, -1, 70000]),
                                "HostNetwork": st.sampled_from(["127.0.0.1", "::1", "localhost", ""]),
                            },
                        ),
                        max_size=3,
                    ),
                },
            ),
        },
    )


def plausible_job() -> st.SearchStrategy[dict[str, Any]]:
    """A job spec such as a client might well send: often valid, sometimes breaking one of the original's rules."""
    return st.fixed_dictionaries(
        {
            "Type": st.sampled_from(["batch", "batch", "service", "ops", "daemon", "Batch"]),
            "Tasks": st.lists(task_spec(), min_size=1, max_size=2),
        },
        optional={
            "Count": st.integers(0, 3),
            "Priority": st.integers(-5, 5),
            "Name": NAMES,
            "Namespace": st.sampled_from(["default", "fuzz"]),
            "ID": st.just("j-mine"),
            "Labels": st.dictionaries(NAMES, NAMES, max_size=3),
            "Meta": st.dictionaries(NAMES, NAMES, max_size=3),
            "Constraints": st.lists(
                st.fixed_dictionaries(
                    {"Key": NAMES, "Operator": st.sampled_from(["=", "in", "exists", "gt", "~"])},
                    optional={"Values": st.lists(NAMES, max_size=3)},
                ),
                max_size=2,
            ),
            "State": st.just({"StateType": "Running"}),
            "Revision": st.integers(0, 3),
        },
    )


def _places(value: Any) -> list[tuple[dict[str, Any] | list[Any], Any]]:
    """Every (container, key or index) in a decoded JSON value: where a mutation can go."""
    places: list[tuple[dict[str, Any] | list[Any], Any]] = []
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            places += [(item, key) for key in item]
            pending += list(item.values())
        elif isinstance(item, list):
            places += [(item, index) for index in range(len(item))]
            pending += item
    return places


@st.composite
def job_spec(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible job spec with up to three hostile mutations: a string swapped for a hostile string (the spec's
    shape kept, so that it gets deep), a number for a hostile number, any value for any type, a key added or one
    removed."""
    spec = draw(plausible_job())
    for _ in range(draw(st.integers(0, 3))):
        places = _places(spec)
        strings = [(c, k) for c, k in places if isinstance(c[k], str)]
        numbers = [(c, k) for c, k in places if isinstance(c[k], int) and not isinstance(c[k], bool)]
        action = draw(st.sampled_from(["text", "text", "text", "number", "replace", "add", "remove"]))
        if action == "text" and strings:
            container, key = draw(st.sampled_from(strings))
            container[key] = draw(hostile_text)
            continue
        if action == "number" and numbers:
            container, key = draw(st.sampled_from(numbers))
            container[key] = draw(hostile_int)
            continue
        container, key = draw(st.sampled_from(places))
        if action == "add" and isinstance(container, dict):
            container[draw(hostile_text)] = draw(hostile_value)
        elif action == "remove" and isinstance(container, dict):
            del container[key]
        else:
            container[key] = draw(hostile_value)
    return spec


# ---- job templates (Go's text/template)

TEMPLATE_FUNCTIONS = [
    "and", "call", "html", "index", "js", "len", "not", "or", "print", "printf", "println", "slice", "urlquery", "eq",
    "ne", "lt", "le", "gt", "ge",
]  # fmt: skip
TEMPLATE_PIECES = [
    *TEMPLATE_FUNCTIONS, "{{", "}}", "{{- ", " -}}", "{{/*", "*/}}", "/*", " ", "\n", "\t", ".", ".A", ".B", ".Missing",
    ".A.B", "$", "$x", "$y", ":=", "=", "|", "(", ")", ",", "if", "else", "end", "range", "with", "define", "template",
    "block", "break", "continue", "nil", "true", "false", '"s"', '"t"', '"%d %s %q %v %x %[2]*d %!"', "`raw`", "'c'",
    "'\\n'", "1", "-1", "0", "1.5", "1e9", "0x1F", "08", "1+2i", "3i", "1000000000", "99999999999999999999", "default",
    "@", "€", "\x00", "\udcff", "\ud800", "é",
]  # fmt: skip
template_text: st.SearchStrategy[str] = st.lists(
    st.one_of(st.sampled_from(TEMPLATE_PIECES), st.text(max_size=3)), max_size=40
).map("".join)


def _operand(depth: int) -> st.SearchStrategy[str]:
    literals = st.sampled_from(
        [
            '"s"', '"%d%s%v%q%x%c%U%e%g%*d%[2]v"', "`r`", "'c'", "1", "-1", "0", "255", "1.5", "1e9", "0x1F", "2i",
            "1+2i", "nil", "true", "false", ".", ".A", ".E", ".Missing", "$", "$.A", "$x", ".A.B",
        ]
    )  # fmt: skip
    if depth <= 0:
        return literals
    return st.one_of(literals, _pipeline(depth - 1).map(lambda pipe: f"({pipe})"))


def _pipeline(depth: int) -> st.SearchStrategy[str]:
    functions = st.sampled_from(TEMPLATE_FUNCTIONS)
    command = st.one_of(
        st.builds(lambda name, args: " ".join([name, *args]), functions, st.lists(_operand(depth), max_size=4)),
        _operand(depth),
    )
    return st.lists(command, min_size=1, max_size=3).map(" | ".join)


def _actions(depth: int) -> st.SearchStrategy[str]:
    pipe = _pipeline(2)
    simple = st.one_of(
        pipe.map(lambda p: "{{" + p + "}}"),
        pipe.map(lambda p: "{{$x := " + p + "}}"),
        pipe.map(lambda p: "{{$x = " + p + "}}"),
        st.sampled_from(["{{break}}", "{{continue}}", '{{template "t" .}}', "{{- .A -}}", "{{/* c */}}"]),
        st.text(max_size=5),
    )
    if depth <= 0:
        return simple
    body = st.lists(_actions(depth - 1), max_size=3).map("".join)
    keyword = st.sampled_from(["if", "with", "range", "range $i, $e :=", "range $e :="])
    control = st.builds(
        lambda word, p, then, orelse: "{{" + word + " " + p + "}}" + then + (f"{{{{else}}}}{orelse}" if orelse else "")
        + "{{end}}",
        keyword, pipe, body, st.one_of(st.none(), body),
    )  # fmt: skip
    return st.one_of(simple, control)


# Templates made of well-formed actions (with mistakes inside), which get past the parser into execution.
template_programs: st.SearchStrategy[str] = st.lists(
    st.one_of(_actions(3), st.just('{{define "t"}}[{{.}}]{{end}}')), max_size=4
).map("".join)
