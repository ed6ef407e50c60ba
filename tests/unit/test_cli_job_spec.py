"""``bacalhau job run`` and ``job validate`` with spec files, through click's CliRunner and the real entry point (for
what the user sees): Go templates filled from -V and -E as the original fills them, their errors in the original's
words, and YAML syntax errors in one line. No server: ``--dry-run`` prints the spec it would submit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bacalhau.cli.main import cli, run
from bacalhau.errors import BacalhauError

SPEC = """\
Type: batch
Name: '{{ .Name }}'
Tasks:
  - Name: main
    Engine: {Type: noop}
    Env: {GREETING: '{{ .Greeting | printf "%s!" }}'}
"""


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("BACALHAU_", "TPL_")) or name in ("Name", "Greeting"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BACALHAU_DIR", str(tmp_path / "bacalhau"))
    yield


def spec_file(tmp_path: Path, text: str = SPEC, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def invoke(*args: str, env: dict[str, str] | None = None, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, standalone_mode=False, prog_name="bacalhau")


def dry_run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> dict[str, Any]:
    result = invoke("job", "run", "--dry-run", *args, env=env, input=input)
    assert result.exception is None, f"{result.exception!r}\n{result.stderr}"
    spec: dict[str, Any] = yaml.safe_load(result.stdout)
    return spec


def refusal(*args: str, env: dict[str, str] | None = None) -> str:
    result = invoke(*args, env=env)
    assert isinstance(result.exception, BacalhauError), f"{result.exception!r}\n{result.stdout}"
    return result.exception.message


def greeting(spec: dict[str, Any]) -> str:
    value: str = spec["Tasks"][0]["Env"]["GREETING"]
    return value


def test_vars_and_environment_fill_the_template(tmp_path: Path) -> None:
    path = str(spec_file(tmp_path))
    spec = dry_run(path, "-V", "Name=hello", "--template-vars", "Greeting=hi")
    assert (spec["Name"], greeting(spec)) == ("hello", "hi!")
    assert greeting(dry_run(path, "-V", "Name=n,Greeting=csv")) == "csv!"
    assert greeting(dry_run(path, "-V", 'Name=n,"Greeting=a,b"')) == "a,b!"
    environment = {"TPL_GREETING": "env", "Greeting": "from-env", "Name": "n"}
    assert greeting(dry_run(path, "-E", "^(Name|Greeting)$", env=environment)) == "from-env!"
    assert greeting(dry_run(path, "-E", "*", env=environment)) == "from-env!"
    assert greeting(dry_run(path, "-E", "ame|eeting", env=environment)) == "from-env!"  # found anywhere in a name
    assert greeting(dry_run(path, "-E", "*", "-V", "Greeting=flag", env=environment)) == "flag!"  # -V wins
    assert greeting(dry_run("-V", "Name=n", "-V", "Greeting=stdin", input=SPEC)) == "stdin!"


def test_no_template_leaves_the_spec_as_it_is(tmp_path: Path) -> None:
    text = SPEC.replace("'{{ .Name }}'", "plain")
    assert greeting(dry_run("--no-template", str(spec_file(tmp_path, text)))) == '{{ .Greeting | printf "%s!" }}'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-V", "Name=n"],
            'the job provided is invalid: failed to execute template: template: :6:24: executing "" at <.Greeting>: '
            'map has no entry for key "Greeting"',
        ),
        (["-V", "Name"], 'invalid argument "Name" for "-V, --template-vars" flag: Name must be formatted as key=value'),
        (
            ["-V", "a=1,b,c=2"],
            'invalid argument "a=1,b,c=2" for "-V, --template-vars" flag: b must be formatted as key=value',
        ),
        (
            ["-V", 'a=1,b"=2'],
            'invalid argument "a=1,b\\"=2" for "-V, --template-vars" flag: parse error on line 1, column 6: '
            'bare " in non-quoted-field',
        ),
        (["-E", "("], "failed to create template parser: failed to compile environment variable pattern: "),
    ],
)
def test_template_errors_are_the_originals(tmp_path: Path, args: list[str], message: str) -> None:
    assert refusal("job", "run", "--dry-run", str(spec_file(tmp_path)), *args).startswith(message)


def test_a_template_error_is_the_originals_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["job", "run", "--dry-run", str(spec_file(tmp_path)), "-V", "Greeting=hi"]) == 1
    assert [line for line in capsys.readouterr().err.splitlines() if line.strip()] == [
        'Error: the job provided is invalid: failed to execute template: template: :2:10: executing "" at <.Name>: '
        'map has no entry for key "Name"'
    ]


def test_a_malformed_template_is_a_parse_error(tmp_path: Path) -> None:
    path = str(spec_file(tmp_path, SPEC.replace("{{ .Name }}", '{{ .Name | default "x" }}')))
    assert refusal("job", "run", "--dry-run", path) == (
        'the job provided is invalid: failed to parse template: template: :2: function "default" not defined'
    )
    unclosed = str(spec_file(tmp_path, "Type: batch\nName: {{ .Name\n"))
    assert refusal("job", "run", "--dry-run", unclosed).endswith(
        "failed to parse template: template: :3: unclosed action started at :2"
    )


# ---- YAML syntax errors


BAD_YAML = "Type: batch\nName: x\nTasks: a: b\n"


def test_a_yaml_syntax_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """File, line, column and the problem: no excerpt of the document, no traceback, no hint to read the docs."""
    path = spec_file(tmp_path, BAD_YAML, "bad.yaml")
    for command in (["job", "run", str(path)], ["job", "validate", str(path)]):
        assert run(command) == 1
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert lines == [
            f"Error: the job provided is invalid: {path}: invalid YAML at line 3, column 9: "
            "mapping values are not allowed here"
        ]


def test_yaml_errors_name_stdin_and_bytes_that_are_not_text(tmp_path: Path) -> None:
    assert refusal_stdin(BAD_YAML) == (
        "the job provided is invalid: stdin: invalid YAML at line 3, column 9: mapping values are not allowed here"
    )
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"Type: batch\nName: \xff\xfe\n")
    assert refusal("job", "validate", str(binary)).endswith(
        "binary.yaml: invalid YAML at line 2, column 7: the byte 0xff is not UTF-8"
    )
    deep = spec_file(tmp_path, "[" * 5000, "deep.yaml")
    assert refusal("job", "validate", str(deep)).endswith("deep.yaml: invalid YAML: nested too deeply")


def refusal_stdin(text: str) -> str:
    result = invoke("job", "run", "--no-template", input=text)
    assert isinstance(result.exception, BacalhauError), f"{result.exception!r}"
    return result.exception.message
