"""Node configuration: defaults < YAML file < BACALHAU_<KEY> environment < flags < -c Key=Value.

Every test passes its own data directory and environment, so the real ~/.bacalhau and os.environ are never read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bacalhau.config import BacalhauConfig, load_config, parse_duration
from bacalhau.errors import BacalhauError


def load(tmp_path: Path, yaml_text: str | None = None, **kwargs: object) -> BacalhauConfig:
    """load_config with tmp_path as the data dir, an empty environment unless given, and an optional config.yaml."""
    if yaml_text is not None:
        (tmp_path / "config.yaml").write_text(yaml_text)
    kwargs.setdefault("environ", {})
    return load_config(data_dir=str(tmp_path), **kwargs)  # type: ignore[arg-type]


# --- Defaults -----------------------------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    """The original's defaults, durations as Go prints them."""
    config = load(tmp_path)
    assert (config.api.host, config.api.port) == ("0.0.0.0", 1234)
    assert config.name_provider == "puuid"
    assert config.data_dir == str(tmp_path)
    assert not config.orchestrator.enabled and not config.compute.enabled
    assert (config.orchestrator.host, config.orchestrator.port) == ("0.0.0.0", 4222)
    assert config.orchestrator.node_manager.disconnect_timeout == "1m0s"
    assert config.orchestrator.scheduler.housekeeping_interval == "30s"
    assert config.compute.orchestrators == ["nats://127.0.0.1:4222"]
    assert config.compute.heartbeat.interval == "15s"
    assert config.compute.allocated_capacity.gpu == "100%"
    assert (config.publishers.types.local.address, config.publishers.types.local.port) == ("127.0.0.1", 6001)
    assert (config.logging.level, config.logging.mode) == ("info", "default")
    assert config.labels == {}
    wire = config.to_wire()  # keys for features this node does not have are shown too
    assert wire["Orchestrator"]["Scheduler"]["QueueBackoff"] == "1m0s"
    assert wire["Compute"]["Heartbeat"]["InfoUpdateInterval"] == "1m0s"
    assert wire["UpdateConfig"]["Interval"] == "24h0m0s"
    assert wire["WebUI"] == {"Enabled": False, "Listen": "0.0.0.0:8438", "Backend": ""}


@pytest.mark.parametrize("job_type", ["batch", "ops", "daemon", "service"])
def test_job_defaults(tmp_path: Path, job_type: str) -> None:
    """Every job type defaults to priority 0, 500m CPU and 512Mb memory (the v1.7+ values)."""
    defaults = getattr(load(tmp_path).job_defaults, job_type)
    assert defaults.priority == 0
    assert (defaults.task.resources.cpu, defaults.task.resources.memory) == ("500m", "512Mb")
    assert (defaults.task.resources.disk, defaults.task.resources.gpu) == ("", "")
    assert defaults.task.publisher.type == ""


def test_config_keys_are_pascal_case(tmp_path: Path) -> None:
    """The wire form uses the original's key names."""
    wire = load(tmp_path).to_wire()
    assert (wire["API"]["Host"], wire["API"]["Port"]) == ("0.0.0.0", 1234)
    assert wire["API"]["TLS"]["CAFile"] == "" and wire["API"]["TLS"]["UseTLS"] is False
    assert wire["API"]["Auth"]["Users"] == [] and wire["Compute"]["TLS"]["RequireTLS"] is False
    assert wire["Orchestrator"]["TLS"]["CACert"] == ""
    assert "NameProvider" in wire and "DataDir" in wire and "JobDefaults" in wire and "UpdateConfig" in wire
    assert wire["Orchestrator"]["NodeManager"]["DisconnectTimeout"] == "1m0s"
    assert wire["JobDefaults"]["Batch"]["Task"]["Resources"]["CPU"] == "500m"


def test_data_path_expands_and_resolves(tmp_path: Path) -> None:
    """data_path is absolute."""
    assert load(tmp_path).data_path == tmp_path.resolve()
    somewhere = BacalhauConfig.defaults().with_settings({"DataDir": "~/somewhere"})
    assert somewhere.data_path == (Path.home() / "somewhere").resolve()


# --- Config file --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "yaml_text",
    [
        "API:\n  Port: 1000\n",
        "api:\n  port: 1000\n",
        "API:\n  PORT: 1000\n",
        "aPi:\n  pOrT: 1000\n",
    ],
)
def test_file_keys_in_any_case(tmp_path: Path, yaml_text: str) -> None:
    """YAML keys match case-insensitively at every level."""
    assert load(tmp_path, yaml_text).api.port == 1000


def test_nested_file_keys(tmp_path: Path) -> None:
    """Deeply nested keys and lists."""
    config = load(
        tmp_path,
        "compute:\n  enabled: true\n  orchestrators: [nats://a:1, nats://b:2]\n  heartbeat: {interval: 5s}\n"
        "jobdefaults:\n  batch:\n    task:\n      resources: {memory: 2Gb}\n",
    )
    assert config.compute.enabled
    assert config.compute.orchestrators == ["nats://a:1", "nats://b:2"]
    assert config.compute.heartbeat.interval == "5s"
    assert config.compute.allocated_capacity.gpu == "100%"
    assert config.job_defaults.batch.task.resources.memory == "2Gb"
    assert config.job_defaults.batch.task.resources.cpu == "500m"


def test_label_keys_are_data(tmp_path: Path) -> None:
    """Labels keep their own keys, case and all."""
    assert load(tmp_path, "Labels:\n  Zone: EU\n  gpu: 'yes'\n").labels == {"Zone": "EU", "gpu": "yes"}


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    """An empty YAML document changes nothing."""
    assert load(tmp_path, "").api.port == 1234


def test_explicit_files_replace_the_default_file_and_merge_in_order(tmp_path: Path) -> None:
    """--config files are read in order (later wins); the data dir's config.yaml is then not read."""
    (tmp_path / "config.yaml").write_text("API: {Host: 9.9.9.9}\n")
    first, second = tmp_path / "one.yaml", tmp_path / "two.yaml"
    first.write_text("API: {Port: 1}\nNameProvider: hostname\n")
    second.write_text("API: {Port: 2}\n")
    config = load(tmp_path, config_files=[str(first), str(second)])
    assert config.api.port == 2
    assert config.name_provider == "hostname"
    assert config.api.host == "0.0.0.0"


def test_the_config_file_comes_from_bacalhau_dir(tmp_path: Path) -> None:
    """Without --config, $BACALHAU_DIR/config.yaml is read."""
    (tmp_path / "config.yaml").write_text("API: {Port: 4321}\n")
    config = load_config(environ={"BACALHAU_DIR": str(tmp_path)})
    assert config.api.port == 4321
    assert config.data_path == tmp_path.resolve()


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("Nope: 1\n", "'Nope'"),
        ("API: {Nope: 1}\n", "'API.Nope'"),
        ("Compute: {Heartbeat: {Bogus: 1s}}\n", "'Compute.Heartbeat.Bogus'"),
    ],
)
def test_unknown_file_keys_are_rejected(tmp_path: Path, yaml_text: str, key: str) -> None:
    """An unknown key, at any depth, is a configuration error naming its path."""
    with pytest.raises(BacalhauError, match="is not a valid config key") as caught:
        load(tmp_path, yaml_text)
    assert key in caught.value.message


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    """A missing file, broken YAML, or a non-mapping document is a configuration error."""
    with pytest.raises(BacalhauError, match="cannot read config file"):
        load(tmp_path, config_files=[str(tmp_path / "missing.yaml")])
    with pytest.raises(BacalhauError, match="has invalid YAML at line 2, column 1: expected ',' or ']'"):
        load(tmp_path, "API: [unclosed\n")
    with pytest.raises(BacalhauError, match="must hold a mapping"):
        load(tmp_path, "- a\n- b\n")


# --- Environment --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "check"),
    [
        ("BACALHAU_API_PORT", "2000", lambda c: c.api.port == 2000),
        ("BACALHAU_API_HOST", "127.0.0.1", lambda c: c.api.host == "127.0.0.1"),
        ("BACALHAU_NAMEPROVIDER", "hostname", lambda c: c.name_provider == "hostname"),
        ("BACALHAU_ORCHESTRATOR_ENABLED", "true", lambda c: c.orchestrator.enabled),
        ("BACALHAU_COMPUTE_ENABLED", "1", lambda c: c.compute.enabled),
        ("BACALHAU_COMPUTE_ENABLED", "false", lambda c: not c.compute.enabled),
        ("BACALHAU_COMPUTE_ORCHESTRATORS", "nats://a:1,nats://b:2",
         lambda c: c.compute.orchestrators == ["nats://a:1", "nats://b:2"]),
        ("BACALHAU_ORCHESTRATOR_AUTH_TOKEN", "secret", lambda c: c.orchestrator.auth.token == "secret"),
        ("BACALHAU_ORCHESTRATOR_NODEMANAGER_DISCONNECTTIMEOUT", "90s",
         lambda c: c.orchestrator.node_manager.disconnect_timeout == "1m30s"),
        ("BACALHAU_JOBDEFAULTS_BATCH_TASK_RESOURCES_MEMORY", "2Gb",
         lambda c: c.job_defaults.batch.task.resources.memory == "2Gb"),
        ("BACALHAU_LABELS", "a=1,b=2", lambda c: c.labels == {"a": "1", "b": "2"}),
    ],
)  # fmt: skip
def test_environment_variables(tmp_path: Path, name: str, value: str, check: object) -> None:
    """BACALHAU_<KEY> with dots as underscores, converted to the key's type."""
    assert check(load(tmp_path, environ={name: value}))  # type: ignore[operator]


def test_unrelated_environment_variables_are_ignored(tmp_path: Path) -> None:
    """Only BACALHAU_ names that match a key are used; others (and BACALHAU_DIR) are not config keys."""
    config = load(tmp_path, environ={"BACALHAU_NOT_A_KEY": "x", "BACALHAU_DIR": str(tmp_path), "API_PORT": "1"})
    assert config.api.port == 1234


def test_empty_and_lower_case_environment_variables_set_nothing(tmp_path: Path) -> None:
    """As viper reads the environment: upper-case names only, and an empty value is no value."""
    config = load(tmp_path, environ={"BACALHAU_API_PORT": "", "bacalhau_api_host": "10.0.0.1"})
    assert (config.api.port, config.api.host) == (1234, "0.0.0.0")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BACALHAU_API_PORT", "abc", "invalid integer value 'abc'"),
        ("BACALHAU_COMPUTE_ENABLED", "maybe", "invalid boolean value 'maybe'"),
    ],
)
def test_bad_environment_values(tmp_path: Path, name: str, value: str, message: str) -> None:
    """Values that do not fit the key's type are configuration errors."""
    with pytest.raises(BacalhauError, match=message):
        load(tmp_path, environ={name: value})


# --- Flags and -c overrides ---------------------------------------------------------------------------------------


def test_precedence_file_env_flag_override(tmp_path: Path) -> None:
    """Each layer beats the ones before it, key by key."""
    yaml_text = "API: {Port: 1000, Host: 10.0.0.1}\nNameProvider: fromfile\n"
    assert load(tmp_path, yaml_text).api.port == 1000
    env = {"BACALHAU_API_PORT": "2000", "BACALHAU_NAMEPROVIDER": "fromenv"}
    from_env = load(tmp_path, yaml_text, environ=env)
    assert (from_env.api.port, from_env.api.host, from_env.name_provider) == (2000, "10.0.0.1", "fromenv")
    from_flag = load(tmp_path, yaml_text, environ=env, flags={"API.Port": 3000})
    assert (from_flag.api.port, from_flag.name_provider) == (3000, "fromenv")
    overridden = load(tmp_path, yaml_text, environ=env, flags={"API.Port": 3000}, overrides=["API.Port=4000"])
    assert (overridden.api.port, overridden.api.host, overridden.name_provider) == (4000, "10.0.0.1", "fromenv")


def test_flags_set_to_none_are_ignored(tmp_path: Path) -> None:
    """An unset flag (None) leaves the lower layers alone."""
    assert load(tmp_path, environ={"BACALHAU_API_PORT": "2000"}, flags={"API.Port": None}).api.port == 2000


@pytest.mark.parametrize(
    ("override", "check"),
    [
        ("api.port=4000", lambda c: c.api.port == 4000),
        ("API.PORT=4000", lambda c: c.api.port == 4000),
        ("Orchestrator.Enabled", lambda c: c.orchestrator.enabled),
        ("orchestrator.enabled=false", lambda c: not c.orchestrator.enabled),
        ("Compute.Orchestrators=nats://x:1,nats://y:2",
         lambda c: c.compute.orchestrators == ["nats://x:1", "nats://y:2"]),
        ("Labels=zone=eu,tier=gold", lambda c: c.labels == {"zone": "eu", "tier": "gold"}),
        ("JobDefaults.Batch.Task.Resources.CPU=2", lambda c: c.job_defaults.batch.task.resources.cpu == "2"),
        ("Logging.Level=debug", lambda c: c.logging.level == "debug"),
        ("NameProvider=a=b", lambda c: c.name_provider == "a=b"),
    ],
)  # fmt: skip
def test_overrides(tmp_path: Path, override: str, check: object) -> None:
    """-c Key=Value: dotted keys in any case; a bare boolean key means true; values split at the first '='."""
    assert check(load(tmp_path, overrides=[override]))  # type: ignore[operator]


def test_later_overrides_win(tmp_path: Path) -> None:
    """Repeated -c flags apply in order."""
    assert load(tmp_path, overrides=["API.Port=1", "API.Port=2"]).api.port == 2


def test_data_dir_argument_beats_everything(tmp_path: Path) -> None:
    """--data-dir wins over BACALHAU_DIR and -c DataDir."""
    other = tmp_path / "other"
    config = load_config(data_dir=str(tmp_path), environ={"BACALHAU_DIR": str(other)}, overrides=[f"DataDir={other}"])
    assert config.data_dir == str(tmp_path)


@pytest.mark.parametrize("override", ["Nope=1", "API.Nope=1", "API.Port.Deeper=1", "Compute.Heartbeat=1s"])
def test_unknown_override_keys_are_rejected(tmp_path: Path, override: str) -> None:
    """A key that is not a leaf of the config tree is not a valid config key."""
    with pytest.raises(BacalhauError, match="is not a valid config key"):
        load(tmp_path, overrides=[override])


def test_unknown_override_key_message_matches_go(tmp_path: Path) -> None:
    """Go: bacerrors.New("%q is not a valid config key", strings.ToLower(key))."""
    with pytest.raises(BacalhauError) as caught:
        load(tmp_path, overrides=["API.Nope=1"])
    assert caught.value.message == '"api.nope" is not a valid config key'


def test_bad_override_values(tmp_path: Path) -> None:
    """Type errors in -c values are configuration errors."""
    with pytest.raises(BacalhauError, match="invalid integer value 'x'"):
        load(tmp_path, overrides=["API.Port=x"])
    with pytest.raises(BacalhauError, match="invalid boolean value 'perhaps'"):
        load(tmp_path, overrides=["Compute.Enabled=perhaps"])


def test_config_errors_have_the_configuration_code(tmp_path: Path) -> None:
    """Configuration errors carry code ConfigurationError."""
    with pytest.raises(BacalhauError) as caught:
        load(tmp_path, overrides=["Nope=1"])
    assert caught.value.code == "ConfigurationError"


def test_redacted_masks_tokens(tmp_path: Path) -> None:
    """/agent/config never shows auth tokens; empty tokens stay empty."""
    config = load(tmp_path, overrides=["Orchestrator.Auth.Token=s3cret"])
    redacted = config.redacted()
    assert redacted["Orchestrator"]["Auth"]["Token"] == "********"
    assert redacted["Compute"]["Auth"]["Token"] == ""
    assert config.orchestrator.auth.token == "s3cret"


# --- Durations ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("1s", 1.0),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h30m", 5400.0),
        ("24h0m0s", 86400.0),
        ("1.5h", 5400.0),
        ("0.5s", 0.5),
        ("300ms", 0.3),
        ("1us", 1e-6),
        ("1µs", 1e-6),
        ("1ns", 1e-9),
        ("2h45m30.5s", 9930.5),
        ("1s1s", 2.0),
        ("+5s", 5.0),
        ("-5s", -5.0),
        ("-1m30s", -90.0),
        ("15", 15.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    """time.ParseDuration syntax, in seconds (a bare number is taken as seconds, our documented extension)."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1μs", 1e-6), (".5s", 0.5), ("1.s", 1.0), ("-.5m", -30.0)],
    ids=["greek-mu", "leading-dot", "trailing-dot", "negative-leading-dot"],
)
def test_more_go_duration_spellings(text: str, seconds: float) -> None:
    """ParseDuration also accepts U+03BC for micro, and fractions without leading or trailing digits."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-", "+", "1x", "m1", "1m 2s", "1h-2m", "s", ".s", "1.2.3s", "1d", "1M"])
def test_invalid_durations(text: str) -> None:
    """Anything else is a ValueError."""
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["--5s", "+-5s", "-+5s", "++5s"])
def test_only_one_sign_is_allowed(text: str) -> None:
    """ParseDuration takes at most one leading sign."""
    with pytest.raises(ValueError):
        parse_duration(text)


@settings(derandomize=True, database=None, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999))
def test_composed_durations(hours: int, minutes: int, seconds: int, millis: int) -> None:
    """Go's Duration.String() shape (e.g. 2h3m4.005s) parses back to the same length of time."""
    text = f"{hours}h{minutes}m{seconds}.{millis:03d}s"
    assert parse_duration(text) == pytest.approx(hours * 3600 + minutes * 60 + seconds + millis / 1000)
    assert parse_duration("-" + text) == pytest.approx(-parse_duration(text))


def test_secrets_are_masked_wherever_the_config_is_shown(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "Orchestrator: {Auth: {Token: tok-s3cr3t}}\n"
        "API:\n  Auth:\n    Users:\n"
        "      - {Username: alice, Password: pw-s3cr3t-123, Capabilities: [{Actions: ['*']}]}\n"
        "      - {Alias: ci, APIKey: key-s3cr3t-0123456789, Capabilities: [{Actions: ['read:*']}]}\n",
    )
    shown = str(config.redacted())
    assert "s3cr3t" not in shown and "alice" in shown and "read:*" in shown
    assert config.api.auth.users[1].api_key == "key-s3cr3t-0123456789"
