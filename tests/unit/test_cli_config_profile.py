"""``bacalhau config list|set``, ``profile ...``, ``completion``, ``version`` and where the CLI connects, through
click's CliRunner. No server is involved: every test has its own data directory and a clean environment."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bacalhau.cli.context import CliContext, base_url
from bacalhau.cli.main import cli, run
from bacalhau.config import config_keys, format_duration, lookup_key, parse_duration_ns
from bacalhau.config.profiles import Profile, ProfileStore
from bacalhau.errors import BacalhauError
from bacalhau.version import API_VERSION
from tests.certs import TestCA


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh $BACALHAU_DIR, and none of the caller's BACALHAU_* settings."""
    for name in list(os.environ):
        if name.startswith("BACALHAU_") or name == "LOG_LEVEL":
            monkeypatch.delenv(name)
    directory = tmp_path / "bacalhau"
    monkeypatch.setenv("BACALHAU_DIR", str(directory))
    yield directory


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """Run the CLI; errors stay exceptions (``result.exception``) so tests can check their fields."""
    return CliRunner().invoke(cli, list(args), env=env, input=input, standalone_mode=False, prog_name="bacalhau")


def ok(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> str:
    result = invoke(*args, env=env, input=input)
    assert result.exception is None, f"{result.exception!r}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def error(*args: str, env: dict[str, str] | None = None) -> BacalhauError:
    result = invoke(*args, env=env)
    assert isinstance(result.exception, BacalhauError), f"{result.exception!r}\n{result.stdout}"
    return result.exception


def closed_port() -> int:
    """A loopback port with nothing listening (the kernel chose it free, and we let it go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---- config set ---------------------------------------------------------------------------------------------------


def test_set_key_value_writes_the_data_dir_config_in_lower_case(data_dir: Path) -> None:
    """As the original (viper) writes it: nested lower-case keys, read back case-insensitively."""
    out = ok("config", "set", "API.Port=5678")
    path = data_dir / "config.yaml"
    assert out == f"Writing config to {path}\n"
    assert yaml.safe_load(path.read_text()) == {"api": {"port": 5678}}
    listed = {entry["Key"]: entry for entry in json.loads(ok("config", "list", "--output", "json"))}
    assert listed["API.Port"] == {
        "Key": "API.Port",
        "Value": 5678,
        "Description": lookup_key("API.Port").help,
    }


def test_set_is_additive_and_merges_keys_spelled_in_another_case(data_dir: Path) -> None:
    """Other settings stay; ``API:`` written by hand and ``api.port`` end up in one section."""
    data_dir.mkdir(parents=True)
    (data_dir / "config.yaml").write_text("API:\n  Host: 10.0.0.1\nLabels: {Zone: EU}\n")
    ok("config", "set", "api.port=1")
    ok("config", "set", "nameprovider=hostname")
    written = yaml.safe_load((data_dir / "config.yaml").read_text())
    assert written == {"api": {"host": "10.0.0.1", "port": 1}, "labels": {"Zone": "EU"}, "nameprovider": "hostname"}


@pytest.mark.parametrize(
    ("args", "key", "expected"),
    [
        (["compute.orchestrators", "nats://a:1", "nats://b:2"], "Compute.Orchestrators", ["nats://a:1", "nats://b:2"]),
        (["compute.orchestrators=nats://a:1,nats://b:2"], "Compute.Orchestrators", ["nats://a:1", "nats://b:2"]),
        (["labels=foo=bar,Baz=buz"], "Labels", {"foo": "bar", "Baz": "buz"}),
        (["labels", "foo=bar"], "Labels", {"foo": "bar"}),
        (["orchestrator.enabled=true"], "Orchestrator.Enabled", True),
        (["Compute.Enabled=F"], "Compute.Enabled", False),
        (["jobdefaults.batch.priority=-1"], "JobDefaults.Batch.Priority", -1),
        (["JobDefaults.Batch.Priority", "-1"], "JobDefaults.Batch.Priority", -1),
        (["orchestrator.nodemanager.disconnecttimeout=90s"], "Orchestrator.NodeManager.DisconnectTimeout", "1m30s"),
        (["updateconfig.interval=0"], "UpdateConfig.Interval", "0s"),
        (["publishers.disabled="], "Publishers.Disabled", []),
        (["NameProvider=a=b"], "NameProvider", "a=b"),
    ],
)  # fmt: skip
def test_set_values_are_typed_as_the_key_expects(args: list[str], key: str, expected: Any) -> None:
    """Lists take several values or commas, maps k=v pairs, durations are normalised as Go prints them."""
    ok("config", "set", *args)
    [entry] = [item for item in json.loads(ok("config", "list", "--output", "json")) if item["Key"] == key]
    assert entry["Value"] == expected


def test_the_space_separated_form_is_deprecated() -> None:
    """``config set KEY VALUE`` still works, with the original's deprecation notice (on stderr here)."""
    result = invoke("config", "set", "api.host", "1.2.3.4")
    assert result.exception is None
    assert "DEPRECATED: use key=value instead of space-separated key value" in result.stderr
    assert "DEPRECATED" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["invalid.key=value"], '"invalid.key" is not a valid config key'),
        (["API.Nope", "1"], '"api.nope" is not a valid config key'),
        (["compute.heartbeat=1s"], '"compute.heartbeat" is not a valid config key'),
        (["api.port=abc"], 'config key: "api.port" expects an integer value, received: "abc"'),
        (["api.port=1_000"], 'config key: "api.port" expects an integer value, received: "1_000"'),
        (["compute.enabled=yes"], 'config key: "compute.enabled" expects a boolean value, received: "yes"'),
        (["compute.heartbeat.interval=soon"],
         'config key: "compute.heartbeat.interval" expects a valid duration value, received: "soon"'),
        (["labels=novalue"], "expected 'key=value'"),
        (["labels=a=b=c"], "expected one '='"),
        (["compute.orchestrators=a,,b"], "empty item"),
        (["api.port", "1", "2"], 'config key "api.port" takes one value, received 2'),
        (["api.port"], "must provide both key and value, or key=value"),
        (["api.port=1", "extra"], "unexpected arguments after 'api.port=1': extra"),
        (["datadir=$HOME/x"], "contains a '$' character"),
    ],
)  # fmt: skip
def test_set_rejects_bad_keys_and_values(data_dir: Path, args: list[str], message: str) -> None:
    """One clear error naming the key (lower case, as the original quotes it) and nothing written."""
    caught = error("config", "set", *args)
    assert message in caught.message
    assert not (data_dir / "config.yaml").exists()


def test_unknown_key_error_has_a_hint_and_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Through the real entry point: ``Error: ...`` plus a hint, exit code 1, no traceback."""
    assert run(["config", "set", "api.nope=1"]) == 1
    err = capsys.readouterr().err
    assert 'Error: "api.nope" is not a valid config key' in err
    assert "Hint:  run 'bacalhau config list'" in err
    assert "Traceback" not in err


def test_set_writes_the_file_given_with_config(tmp_path: Path, data_dir: Path) -> None:
    """``config set --config FILE`` (or the root ``-c FILE``) writes that file, which need not exist yet."""
    explicit, root = tmp_path / "explicit.yaml", tmp_path / "root.yml"
    ok("config", "set", "--config", str(explicit), "api.host=2.2.2.2")
    ok("-c", str(root), "config", "set", "api.port=7")
    assert yaml.safe_load(explicit.read_text()) == {"api": {"host": "2.2.2.2"}}
    assert yaml.safe_load(root.read_text()) == {"api": {"port": 7}}
    assert not (data_dir / "config.yaml").exists()
    assert (
        "must end with '.yaml' or '.yml'" in error("config", "set", "-c", str(tmp_path / "x.txt"), "api.port=1").message
    )


def test_set_data_dir_is_stored_absolute(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The original stores DataDir as an absolute path."""
    monkeypatch.chdir(tmp_path)
    ok("config", "set", "DataDir=relative/dir")
    assert yaml.safe_load((data_dir / "config.yaml").read_text()) == {"datadir": str(tmp_path / "relative/dir")}


def test_set_refuses_to_extend_a_broken_file(data_dir: Path) -> None:
    """An existing file with an unknown key is reported, not silently rewritten."""
    data_dir.mkdir(parents=True)
    (data_dir / "config.yaml").write_text("Bogus: 1\n")
    assert "'Bogus' is not a valid config key" in error("config", "set", "api.port=1").message
    assert (data_dir / "config.yaml").read_text() == "Bogus: 1\n"


# ---- config list --------------------------------------------------------------------------------------------------


def test_list_table_is_sorted_with_the_originals_columns() -> None:
    """KEY, VALUE, DESCRIPTION; keys in CamelCase, sorted; Go-style list and map values."""
    lines = ok("config", "list", "--no-style").splitlines()
    assert lines[0].split() == ["KEY", "VALUE", "DESCRIPTION"]
    keys = [line.split()[0] for line in lines[1:]]
    assert keys == sorted(keys) and len(keys) == len(config_keys())
    rows = {line.split()[0]: line.split(maxsplit=2)[1] for line in lines[1:]}
    assert rows["UpdateConfig.Interval"] == "24h0m0s"
    assert rows["Compute.Orchestrators"] == "[nats://127.0.0.1:4222]"
    assert rows["Orchestrator.Enabled"] == "false"


def test_list_shows_the_effective_values(data_dir: Path, tmp_path: Path) -> None:
    """defaults < config file < BACALHAU_* environment < flags < -c Key=Value."""
    data_dir.mkdir(parents=True)
    (data_dir / "config.yaml").write_text("api: {port: 1000, host: 10.0.0.1}\nnameprovider: fromfile\nlabels: {a: b}\n")

    def values(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        return {e["Key"]: e["Value"] for e in json.loads(ok(*args, "config", "list", "--output", "json", env=env))}

    assert values()["API.Port"] == 1000 and values()["Labels"] == {"a": "b"}
    from_env = values(env={"BACALHAU_API_PORT": "2000", "BACALHAU_NAMEPROVIDER": "fromenv"})
    assert (from_env["API.Port"], from_env["API.Host"], from_env["NameProvider"]) == (2000, "10.0.0.1", "fromenv")
    assert values("--api-port", "3000", env={"BACALHAU_API_PORT": "2000"})["API.Port"] == 3000
    assert values("--api-port", "3000", "-c", "API.Port=4000")["API.Port"] == 4000
    assert values("-c", "Orchestrator.Enabled")["Orchestrator.Enabled"] is True
    assert values()["DataDir"] == str(data_dir.resolve())
    other = tmp_path / "other.yaml"
    other.write_text("API: {Port: 5}\n")
    assert values("-c", str(other))["API.Port"] == 5  # an explicit file replaces $BACALHAU_DIR/config.yaml


def test_list_yaml_is_the_whole_config_and_csv_has_rows() -> None:
    """--output yaml prints the effective config document (PascalCase), as the original does."""
    document = yaml.safe_load(ok("config", "list", "--output", "yaml"))
    assert (document["API"]["Host"], document["API"]["Port"]) == ("0.0.0.0", 1234)
    assert document["UpdateConfig"] == {"Interval": "24h0m0s"}
    csv_lines = ok("config", "list", "--output", "csv").splitlines()
    assert csv_lines[0] == "KEY,VALUE,DESCRIPTION" and len(csv_lines) == len(config_keys()) + 1


def test_list_reports_a_bad_value_in_the_config_file(data_dir: Path) -> None:
    """A value of the wrong type is one configuration error naming the key and the file."""
    data_dir.mkdir(parents=True)
    (data_dir / "config.yaml").write_text("compute: {heartbeat: {interval: soon}}\n")
    caught = error("config", "list")
    assert caught.message == (
        "invalid configuration: invalid duration 'soon' for Compute.Heartbeat.Interval "
        f"in config file {data_dir / 'config.yaml'}"
    )


# ---- durations as Go prints them ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"), (1, "1ns"), (1_500, "1.5µs"), (300_000_000, "300ms"), (1_500_000_000, "1.5s"),
        (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"), (86400 * 10**9, "24h0m0s"), (-90 * 10**9, "-1m30s"),
        (9_930_500_000_000, "2h45m30.5s"),
    ],
)  # fmt: skip
def test_format_duration_matches_go(nanoseconds: int, text: str) -> None:
    """Go's Duration.String(), and it parses back to the same length."""
    assert format_duration(nanoseconds) == text
    assert parse_duration_ns(text) == nanoseconds


# ---- profiles -----------------------------------------------------------------------------------------------------


def test_profile_workflow(data_dir: Path) -> None:
    """save, list, show, select, update, delete: the original's messages and files."""
    assert ok("profile", "list") == "No profiles found\n"
    assert ok("profile", "save", "production", "--endpoint", "https://prod.example.com:443",
              "--description", "Production cluster", "--timeout", "60s") == 'Profile "production" saved\n'  # fmt: skip
    assert ok("profile", "save", "staging", "--endpoint", "https://staging.example.com:443", "--insecure",
              "--select") == 'Profile "staging" saved\nSwitched to profile "staging"\n'  # fmt: skip
    profiles = data_dir / "profiles"
    assert yaml.safe_load((profiles / "production.yaml").read_text()) == {
        "endpoint": "https://prod.example.com:443", "description": "Production cluster", "timeout": "60s",
    }  # fmt: skip
    assert (profiles / "production.yaml").stat().st_mode & 0o777 == 0o600
    assert (profiles / "current").is_symlink() and str((profiles / "current").readlink()) == "staging.yaml"

    table = ok("profile", "list", "--no-style").splitlines()
    assert table[0].split() == ["CURRENT", "NAME", "ENDPOINT", "AUTH"]
    assert table[1].split() == ["production", "https://prod.example.com:443"]
    assert table[2].split() == ["*", "staging", "https://staging.example.com:443"]

    shown = ok("profile", "show", "production")
    assert shown == (
        "Name:        production\nEndpoint:    https://prod.example.com:443\nAuth:        none\n"
        "TLS:         secure\nTimeout:     60s\nDescription: Production cluster\n"
    )
    current = ok("profile", "show")
    assert "Name:        staging (current)" in current and "TLS:         insecure" in current
    assert "Timeout:     30s" in current

    assert ok("profile", "select", "production") == 'Switched to profile "production"\n'
    assert "production (current)" in ok("profile", "show")

    ok("profile", "save", "staging", "--description", "Updated staging description")
    updated = ProfileStore(profiles).load("staging")
    assert (updated.description, updated.endpoint, updated.insecure) == (
        "Updated staging description", "https://staging.example.com:443", True,
    )  # fmt: skip

    assert ok("profile", "delete", "staging", "--force") == 'Profile "staging" deleted\n'
    assert "staging" not in ok("profile", "list")


def test_profile_tokens_are_redacted_unless_asked_for() -> None:
    """show redacts all but four characters at each end; list only says there is a token. The token is read from
    stdin (an argument would show in ps), and removed with --no-token."""
    ok("profile", "save", "p", "--endpoint", "h:1", "--token-stdin", "--select", input="super-secret-token-12345678\n")
    shown = ok("profile", "show")
    assert "Auth:        token (supe****5678)" in shown and "super-secret-token-12345678" not in shown
    assert "super-secret-token-12345678" in ok("profile", "show", "--show-token")
    assert ok("profile", "list", "--no-style").splitlines()[1].split() == ["*", "p", "h:1", "token"]
    ok("profile", "save", "short", "--endpoint", "h:1", "--token-stdin", input="abc")
    assert "Auth:        token (****)" in ok("profile", "show", "short")
    ok("profile", "save", "short", "--no-token")
    assert "Auth:        none" in ok("profile", "show", "short")


def test_profile_list_json_and_yaml() -> None:
    """Lower-case keys, as the original's JSON tags; an empty list is an empty array."""
    assert json.loads(ok("profile", "list", "--output", "json")) == []
    ok("profile", "save", "test", "--endpoint", "https://test.example.com:443", "--select")
    assert json.loads(ok("profile", "list", "--output", "json")) == [
        {"current": "*", "name": "test", "endpoint": "https://test.example.com:443", "auth": ""}
    ]
    assert "endpoint: https://test.example.com:443" in ok("profile", "list", "--output", "yaml")


def test_show_follows_the_profile_flag_and_environment() -> None:
    """name argument > --profile > BACALHAU_PROFILE > the current profile."""
    ok("profile", "save", "dev", "--endpoint", "http://localhost:1234")
    ok("profile", "save", "prod", "--endpoint", "https://prod.example.com:443", "--select")
    assert "Name:        dev\n" in ok("--profile", "dev", "profile", "show")
    assert "Name:        dev\n" in ok("profile", "show", "--profile", "dev")  # after the command, as in the original
    assert "Name:        dev\n" in ok("profile", "show", env={"BACALHAU_PROFILE": "dev"})
    assert "Name:        prod (current)" in ok("--profile", "dev", "profile", "show", "prod")
    assert "Name:        dev\n" in ok("--profile", "dev", "profile", "show", env={"BACALHAU_PROFILE": "prod"})
    assert error("profile", "show", env={"BACALHAU_PROFILE": "nonexistent"}).message == (
        'profile "nonexistent" not found'
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profile", "show"], "no current profile set"),
        (["profile", "show", "nope"], 'profile "nope" not found'),
        (["profile", "select", "nope"], 'profile "nope" not found'),
        (["profile", "delete", "nope"], 'profile "nope" not found'),
        (["profile", "save", "new"], "endpoint is required when creating a new profile"),
        (["profile", "save", "../evil", "--endpoint", "h:1"], 'invalid profile name "../evil"'),
        (["profile", "save", "current", "--endpoint", "h:1"], 'invalid profile name "current"'),
        (["profile", "save", "x", "--endpoint", "ftp://h"], "the scheme must be http or https"),
        (["profile", "save", "x", "--endpoint", "h:notaport"], 'invalid endpoint "h:notaport"'),
        (["profile", "save", "x", "--endpoint", "h:1", "--timeout", "soon"], 'invalid timeout "soon"'),
    ],
)
def test_profile_errors(args: list[str], message: str) -> None:
    assert message in error(*args).message


def test_deleting_the_current_profile_asks_first(data_dir: Path) -> None:
    """[y/N]: anything but y/yes keeps it; deleting it clears the selection."""
    ok("profile", "save", "dev", "--endpoint", "h:1", "--select")
    asked = ok("profile", "delete", "dev", input="n\n")
    assert asked == 'Profile "dev" is the current profile. Delete anyway? [y/N]: n\nDeletion cancelled\n'
    assert ok("profile", "delete", "dev", input="y\n").endswith('Profile "dev" deleted\n')
    assert not (data_dir / "profiles" / "current").is_symlink()
    assert ok("profile", "list") == "No profiles found\n"


# ---- where the client connects ------------------------------------------------------------------------------------


def endpoint(monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None, **flags: Any) -> str:
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return CliContext(**flags).endpoint().url


def test_endpoint_priority(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flags > environment > profile > config file > 127.0.0.1:1234 (click turns the environment into flags)."""
    assert endpoint(monkeypatch) == "http://127.0.0.1:1234"
    data_dir.mkdir(parents=True)
    (data_dir / "config.yaml").write_text("API: {Host: 10.0.0.1, Port: 1000}\n")
    assert endpoint(monkeypatch) == "http://10.0.0.1:1000"
    store = ProfileStore(data_dir / "profiles")
    store.save("current-one", Profile("cluster:2000"))
    store.select("current-one")
    store.save("other", Profile("https://other.example.com"))
    assert endpoint(monkeypatch) == "http://cluster:2000"
    assert endpoint(monkeypatch, profile="other") == "https://other.example.com"
    assert endpoint(monkeypatch, config_values=("API.Port=3000",)) == "http://10.0.0.1:3000"
    assert endpoint(monkeypatch, api_port=4000) == "http://10.0.0.1:4000"
    assert endpoint(monkeypatch, api_host="node", profile="other") == "http://node:1000"


def test_environment_beats_profiles_through_the_cli(data_dir: Path) -> None:
    """Through the real CLI: the profile is used, until BACALHAU_API_PORT (or --api-port) says otherwise."""
    profile_port, env_port, flag_port = closed_port(), closed_port(), closed_port()
    ok("profile", "save", "p", "--endpoint", f"127.0.0.1:{profile_port}", "--select")

    def tried(*args: str, env: dict[str, str] | None = None) -> str:
        result = invoke(*args, "version", env=env)
        assert result.exception is None
        return result.stderr

    assert f"http://127.0.0.1:{profile_port}" in tried()
    assert f"http://127.0.0.1:{env_port}" in tried(env={"BACALHAU_API_PORT": str(env_port)})
    assert f"http://127.0.0.1:{flag_port}" in tried("--api-port", str(flag_port), env={"BACALHAU_API_PORT": "1"})


def test_a_profile_named_explicitly_must_exist_but_a_broken_selection_is_ignored(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--profile nope is an error; a ``current`` link to a deleted file falls back to the config."""
    with pytest.raises(BacalhauError, match='profile "nope" not found'):
        endpoint(monkeypatch, profile="nope")
    profiles = data_dir / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "current").symlink_to("gone.yaml")
    assert endpoint(monkeypatch) == "http://127.0.0.1:1234"


def test_profile_token_timeout_and_tls_reach_the_client(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token is sent as a Bearer header (the BACALHAU_API_* variables win); timeout and --insecure are applied."""
    store = ProfileStore(data_dir / "profiles")
    store.save("p", Profile("https://secure:443", token="tok", timeout="5s", insecure=True))
    context = CliContext(profile="p")
    point = context.endpoint()
    assert (point.url, point.token, point.timeout, point.insecure, point.profile) == (
        "https://secure:443", "tok", 5.0, True, "p",
    )  # fmt: skip
    client = context.client()
    assert client._http.headers["Authorization"] == "Bearer tok"
    assert client.timeout == 5.0
    context.close()
    monkeypatch.setenv("BACALHAU_API_KEY", "from-env")
    with CliContext(profile="p").client() as client:
        assert client._http.headers["Authorization"] == "Bearer from-env"
    monkeypatch.delenv("BACALHAU_API_KEY")
    monkeypatch.setenv("BACALHAU_API_USERNAME", "user")
    monkeypatch.setenv("BACALHAU_API_PASSWORD", "pass:word")
    with CliContext(profile="p").client() as client:
        assert client._http.headers["Authorization"] == "Basic dXNlcjpwYXNzOndvcmQ="


def test_use_tls_and_the_ca_file_reach_the_endpoint(tmp_path: Path, test_ca: TestCA) -> None:
    settings = ("API.TLS.UseTLS=true", f"API.TLS.CAFile={test_ca.cert}", "API.Host=node")
    point = CliContext(data_dir=str(tmp_path), config_values=settings).endpoint()
    assert (point.url, point.ca_file, point.insecure) == ("https://node:1234", str(test_ca.cert), False)
    insecure = CliContext(data_dir=str(tmp_path), config_values=("API.TLS.Insecure=true",)).endpoint()
    assert (insecure.url, insecure.insecure) == ("http://127.0.0.1:1234", True)


def test_a_profile_says_https_itself_and_takes_the_configured_ca(tmp_path: Path, test_ca: TestCA) -> None:
    ProfileStore(tmp_path / "profiles").save("secure", Profile("https://cluster:443"))
    settings = (f"API.TLS.CAFile={test_ca.cert}", "API.TLS.Insecure=true")
    point = CliContext(data_dir=str(tmp_path), config_values=settings, profile="secure").endpoint()
    assert (point.url, point.ca_file, point.insecure) == ("https://cluster:443", str(test_ca.cert), False)


@pytest.mark.parametrize(
    ("host", "port", "use_tls", "url"),
    [
        ("0.0.0.0", 1234, False, "http://127.0.0.1:1234"),
        ("node", 99, False, "http://node:99"),
        ("node", 99, True, "https://node:99"),
        ("https://example.com", 1234, False, "https://example.com:1234"),  # the API port, as the original reads it
        ("https://example.com/", 8443, False, "https://example.com:8443"),
        ("http://example.com:1", 2, True, "http://example.com:1"),  # the URL's scheme and port win
        ("::1", 1234, True, "https://[::1]:1234"),
        ("https://[::1]:9", 1234, False, "https://[::1]:9"),
        ("https://[fe80::1]", 5, False, "https://[fe80::1]:5"),
    ],
)  # fmt: skip
def test_base_url(host: str, port: int, use_tls: bool, url: str) -> None:
    assert base_url(host, port, use_tls=use_tls) == url


def test_global_options_follow_any_command(tmp_path: Path, data_dir: Path) -> None:
    """As the original's persistent flags: before the command or after any (sub)command; the last wins, every -c
    counts in order."""
    other = tmp_path / "other.yaml"
    other.write_text("API: {Port: 5}\n")

    def value(*args: str, key: str = "API.Port") -> Any:
        return {e["Key"]: e["Value"] for e in json.loads(ok(*args, "--output", "json"))}[key]

    assert value("config", "list", "-c", "API.Port=1235") == 1235
    assert value("config", "-c", "API.Port=7", "list") == 7
    assert value("config", "list", "--config", str(other)) == 5
    assert value("config", "list", f"--config={other}", "-c", "API.Port=6") == 6
    assert value("-c", "API.Port=1", "config", "list", "-c", "API.Port=2") == 2
    assert value("--api-port", "1", "config", "--api-port", "2", "list", "--api-port", "3") == 3
    assert value("config", "list", "--data-dir", str(tmp_path / "elsewhere"), key="DataDir") == str(
        tmp_path / "elsewhere"
    )
    assert "-c, --config" in ok("job", "list", "--help") and "--api-port" in ok("node", "list", "--help")


def test_job_list_takes_config_after_the_command(tmp_path: Path) -> None:
    """``bacalhau job list --config x.yaml`` and ``job list -c API.Port=...`` choose the server to ask."""
    port, other_port = closed_port(), closed_port()
    config = tmp_path / "x.yaml"
    config.write_text(f"API: {{Port: {port}}}\n")
    assert f"127.0.0.1:{port}" in error("job", "list", "--config", str(config)).message
    assert f"127.0.0.1:{other_port}" in error("job", "list", "-c", f"API.Port={other_port}").message
    assert f"127.0.0.2:{port}" in error("job", "list", "--api-host", "127.0.0.2", "--api-port", str(port)).message
    assert 'profile "nope" not found' in error("job", "list", "--profile", "nope").message


def test_a_programs_own_c_stays_its_own() -> None:
    """After docker run's image, -c belongs to the container's command; before it, -c is the config flag."""
    spec = yaml.safe_load(ok("docker", "run", "--dry-run", "-c", "API.Port=9", "busybox", "sh", "-c", "echo hi"))
    assert spec["Tasks"][0]["Engine"]["Params"] == {"Image": "busybox", "Parameters": ["sh", "-c", "echo hi"]}
    spec = yaml.safe_load(ok("wasm", "run", "--dry-run", "main.wasm", "-c", "x", "--config", "API.Port=9"))
    assert spec["Tasks"][0]["Engine"]["Params"]["Parameters"] == ["-c", "x"]


# ---- version and completion ---------------------------------------------------------------------------------------


def test_version_without_a_server_shows_the_client_only() -> None:
    """An unreachable server is a warning, not a failure: the CLIENT column alone."""
    result = invoke("--api-port", str(closed_port()), "version")
    assert result.exception is None
    assert result.stdout.split() == ["CLIENT", API_VERSION]
    assert "Warning: could not get the server version: cannot reach the Bacalhau API" in result.stderr
    client_only = invoke("version", "--client", "--output", "json")
    assert client_only.stderr == ""
    document = json.loads(client_only.stdout)
    assert document["clientVersion"]["GitVersion"] == API_VERSION and "serverVersion" not in document


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    """A script for the shell that calls back into bacalhau with _BACALHAU_COMPLETE set."""
    script = ok("completion", shell)
    assert "_BACALHAU_COMPLETE" in script and "bacalhau" in script


def test_completion_for_an_unknown_shell_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["completion", "tcsh"], prog_name="bacalhau")
    assert result.exit_code == 2 and "'tcsh' is not one of" in result.stderr


def test_powershell_completion_is_a_script_or_a_clear_error() -> None:
    """Click 8.2+ writes PowerShell scripts; older click cannot, which must be said plainly."""
    result = invoke("completion", "powershell")
    if result.exception is None:
        assert "Register-ArgumentCompleter" in result.stdout
    else:
        assert isinstance(result.exception, BacalhauError)
        assert "powershell completion is not supported" in result.exception.message


def test_completion_offers_commands_and_config_keys() -> None:
    """The completion protocol itself: what the shell scripts ask bacalhau for."""

    def complete(words: str, index: int) -> str:
        env = {"_BACALHAU_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(index)}
        return CliRunner().invoke(cli, [], env=env, prog_name="bacalhau").stdout

    assert "plain,config" in complete("bacalhau con", 1).splitlines()
    assert complete("bacalhau config set api.p", 3).splitlines() == ["plain,API.Port"]
    assert "plain,API.TLS.CAFile" in complete("bacalhau config set api.", 3).splitlines()
    assert "plain,profile" in complete("bacalhau pro", 1).splitlines()
