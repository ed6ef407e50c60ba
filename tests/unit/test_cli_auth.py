"""The CLI's side of API users, without a node: which credentials it sends, ``auth hash-password`` from a pipe,
``auth info`` against a node it cannot reach, how a refusal reads, and that bcrypt stays out of its start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from click.testing import CliRunner, Result

from bacalhau.cli.main import cli
from bacalhau.client.auth import Credentials, explain_refusal, from_environment
from bacalhau.config.profiles import Profile, ProfileStore
from bacalhau.errors import BacalhauError, ConfigurationError


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("BACALHAU_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BACALHAU_DIR", str(tmp_path / "bacalhau"))
    yield tmp_path / "bacalhau"


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env=env, standalone_mode=False, prog_name="bacalhau")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"BACALHAU_API_KEY": "  key-1  "}, Credentials("Bearer key-1", "BACALHAU_API_KEY")),
        (
            {"BACALHAU_API_USERNAME": "snoopy", "BACALHAU_API_PASSWORD": "pass:word"},
            Credentials("Basic c25vb3B5OnBhc3M6d29yZA==", "BACALHAU_API_USERNAME/BACALHAU_API_PASSWORD"),
        ),
        ({"BACALHAU_API_KEY": "  ", "BACALHAU_API_USERNAME": ""}, None),  # blank is unset, as in the original
    ],
)
def test_credentials_from_the_environment(environ: dict[str, str], expected: Credentials | None) -> None:
    assert from_environment(environ) == expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"BACALHAU_API_KEY": "k", "BACALHAU_API_PASSWORD": "p"},
            "authentication error: can't use both BACALHAU_API_KEY and BACALHAU_API_USERNAME/BACALHAU_API_PASSWORD "
            "simultaneously",
        ),
        ({"BACALHAU_API_USERNAME": "u"}, "authentication error: BACALHAU_API_USERNAME provided but not "
         "BACALHAU_API_PASSWORD"),
        ({"BACALHAU_API_PASSWORD": "p"}, "authentication error: BACALHAU_API_PASSWORD provided but not "
         "BACALHAU_API_USERNAME"),
    ],
)  # fmt: skip
def test_credentials_that_mean_nothing_are_an_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        from_environment(environ)
    assert raised.value.message == message


def test_credentials_are_never_shown() -> None:
    assert "secret" not in repr(Credentials("Bearer secret", "BACALHAU_API_KEY"))


def test_a_refusal_says_what_to_set() -> None:
    forbidden = BacalhauError("Request Forbidden", hint="Check if user have access to this resource.", details={
        "reason": "user 'r' does not have the required capability 'write:job'"})  # fmt: skip
    assert explain_refusal(forbidden, 403, Credentials("Bearer k", "BACALHAU_API_KEY")) == (
        "Request Forbidden: user 'r' does not have the required capability 'write:job'",
        "Check if user have access to this resource. Use the credentials of a user that has this capability "
        "(BACALHAU_API_KEY, or BACALHAU_API_USERNAME and BACALHAU_API_PASSWORD)",
    )
    missing = BacalhauError("Request Unauthorized", details={"reason": "Missing Authorization header"})
    assert explain_refusal(missing, 401, None) == (
        "Request Unauthorized: Missing Authorization header",
        "the node needs credentials: set BACALHAU_API_KEY, or BACALHAU_API_USERNAME and BACALHAU_API_PASSWORD",
    )
    wrong = BacalhauError("Request Unauthorized")  # another server's body, without a reason
    assert explain_refusal(wrong, 401, Credentials("Bearer k", "the profile 'prod'"))[1].startswith(
        "the node does not accept the credentials from the profile 'prod': check them"
    )


def test_hash_password_from_a_pipe() -> None:
    result = invoke("auth", "hash-password", input="  my-password  \nignored second line\n")
    assert result.exception is None, result.stderr
    hashed = result.stdout.strip()
    assert hashed.startswith("$2a$10$") and len(hashed) == 60
    assert bcrypt.checkpw(b"my-password", hashed.encode())  # trimmed, as the original trims piped input


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("\n", "password cannot be empty"),
        ("", "password cannot be empty"),
        ("x" * 101, "password exceeds maximum length of 100 characters"),
        ("x" * 73, "failed to hash password: bcrypt: password length exceeds 72 bytes"),
    ],
)
def test_hash_password_refuses(typed: str, message: str) -> None:
    result = invoke("auth", "hash-password", input=typed)
    assert isinstance(result.exception, BacalhauError) and result.exception.message == message


def test_auth_info_without_a_node_and_with_a_profile(data_dir: Path) -> None:
    store = ProfileStore(data_dir / "profiles")
    store.save("prod", Profile("127.0.0.1:1", token="profile-token-123"))
    store.select("prod")
    result = invoke("auth", "info", env={"BACALHAU_API_KEY": "k", "BACALHAU_API_USERNAME": "u"})
    assert result.exception is None  # credentials that mean nothing do not stop it: it sends none
    assert result.stdout.splitlines() == [
        "",
        "Target environment: http://127.0.0.1:1",
        "",
        "Environment Variables:",
        "API Key: Set",
        "Username: Set",
        "Password: Not Set",
        "Profile 'prod' token: Set",
        "",
        "Server does not support Basic Auth, API Keys, or SSO logins",
    ]
    assert "profile-token-123" not in result.stdout


def test_the_cli_starts_without_bcrypt() -> None:
    code = "import sys, bacalhau.cli.main; sys.exit('bcrypt' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
