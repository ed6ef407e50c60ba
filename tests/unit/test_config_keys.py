"""The table of config keys (``bacalhau.config.keys``): the original's 130 keys and ours, each with a default of its
own type and a description; every key loads from a file and from ``config set``; the typed attributes the node reads
match the table; and the original's kinds of node config files load (our own files in tests/data/config)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from bacalhau.config import KEYS, BacalhauConfig, ConfigKey, Support, config_keys, load_config
from bacalhau.config.keys import CHILDREN
from bacalhau.config.kinds import MASK, Boolean, Choice, Duration, Integer, Struct, StructList, Text, TextList, TextMap
from bacalhau.config.load import file_settings
from bacalhau.config.model import Part, Parts, Section, Setting, StructSection
from bacalhau.config.set import cast_value, write_setting
from bacalhau.errors import BacalhauError
from bacalhau.node import Node

DATA = Path(__file__).resolve().parents[1] / "data" / "config"
ORIGINAL = [key for key in KEYS if not key.ours]


def load_files(tmp_path: Path, *names: str) -> BacalhauConfig:
    return load_config(data_dir=str(tmp_path), config_files=[str(DATA / name) for name in names], environ={})


# ---- the table


def test_the_original_has_130_keys_and_all_are_known() -> None:
    assert len(ORIGINAL) == 130
    names = {key.name for key in ORIGINAL}
    for name in (
        "API.TLS.AutoCertCachePath", "WebUI.Listen", "JobAdmissionControl.Locality", "StrictVersionMatch",
        "Engines.Types.Docker.ManifestCache.TTL", "Orchestrator.Cluster.Peers", "ResultDownloaders.Timeout",
        "Publishers.Types.S3Managed.Bucket", "Compute.Network.PortRangeStart", "DisableAnalytics",
        "JobDefaults.Batch.Task.Publisher.Params", "Logging.LogDebugInfoInterval",
    ):  # fmt: skip
        assert name in names
    assert "Orchestrator.JobLimits.MaxCount" not in names and config_keys()["orchestrator.joblimits.maxcount"].ours
    assert len(config_keys()) == len(KEYS)  # no two keys differ only in case


def test_a_file_with_every_key_of_the_original_sets_exactly_those() -> None:
    """all_keys.yaml, written from the original's types, sets the 130 keys, each to a value other than its default."""
    settings = file_settings(DATA / "all_keys.yaml")
    assert set(settings) == {key.name for key in ORIGINAL}
    assert [name for name, value in settings.items() if value == config_keys()[name.lower()].default] == []


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.name)
def test_each_key_is_well_formed(key: ConfigKey) -> None:
    """A default of its own type (as loading would hold it), a sentence of description, and a name that is a leaf:
    no key is a part of another, and none has an underscore (the environment variables rely on it)."""
    assert key.kind.check(key.default) == key.default
    assert key.description[:1].isupper() and key.description.endswith(".")
    assert "_" not in key.name
    assert not any(other.name.startswith(key.name + ".") for other in KEYS)


# Text for ``config set`` in each kind's syntax, not the default.
SAMPLES: dict[str, str] = {
    "API.Auth.Users": json.dumps(
        [{"Username": "alice", "Password": "a-password", "Capabilities": [{"Actions": ["*"]}]}]
    ),
    "API.Auth.Methods": '{"Password": {"Type": "ask", "PolicyPath": "/etc/policy.rego"}}',
}


def sample(key: ConfigKey) -> str:
    kind = key.kind
    if key.name in SAMPLES:
        return SAMPLES[key.name]
    if isinstance(kind, Choice):
        return next(choice for choice in kind.choices if choice != key.default)
    if isinstance(kind, Boolean):
        return "true"
    if isinstance(kind, Integer):
        return str(kind.low + 1 if kind.low > 0 else 7)
    if isinstance(kind, Duration):
        return "90s"
    if isinstance(kind, TextList):
        return "a,b"
    if isinstance(kind, TextMap):
        return "a=b,c=d"
    assert isinstance(kind, Text), key.name
    return "/tmp/some-value"


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.name)
def test_every_key_is_set_then_loaded_from_the_file(tmp_path: Path, key: ConfigKey) -> None:
    """config set checks the value in the key's syntax and writes it; the file loads with that value."""
    value = cast_value(key, [sample(key)])
    path = tmp_path / "config.yaml"
    write_setting(path, key, value)
    loaded = load_config(config_files=[str(path)], environ={"BACALHAU_DIR": str(tmp_path / "data")})
    assert (
        loaded.to_wire()
        == BacalhauConfig.defaults().with_settings({"DataDir": str(tmp_path / "data"), key.name: value}).to_wire()
    )
    assert loaded.unsupported_settings() == ([key.name] if key.support is Support.UNSUPPORTED else [])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("JobAdmissionControl.Locality=nearby", "invalid value 'nearby': it must be one of local, anywhere"),
        ("Logging.Mode=xml", "it must be one of default, json, cmd"),
        ("API.Port=65536", "65536 is out of range: it must be from 0 to 65535"),
        ("Orchestrator.Scheduler.WorkerCount=0", "0 is out of range: it must be from 1 to 1024"),
        ("Engines.Types.Docker.ManifestCache.Size=-1", "out of range"),
        ("API.Auth.Users=[{Username: a, Pasword: b}]", "unknown field 'Pasword'"),
        ("API.Auth.Users={not: a list}", "expected a list"),
        ("API.Auth.Methods=[unclosed", "the value has invalid YAML at line 1"),
    ],
)
def test_config_set_refuses_values_the_key_cannot_take(setting: str, message: str) -> None:
    name, _, text = setting.partition("=")
    with pytest.raises(BacalhauError) as caught:
        cast_value(config_keys()[name.lower()], [text])
    assert message in caught.value.message


def test_enum_values_are_matched_in_any_case(tmp_path: Path) -> None:
    config = load_config(data_dir=str(tmp_path), environ={"BACALHAU_JOBADMISSIONCONTROL_LOCALITY": " Local "})
    assert config.to_wire()["JobAdmissionControl"]["Locality"] == "local"
    assert cast_value(config_keys()["logging.level"], ["DEBUG"]) == "debug"


def test_structured_values_come_from_the_environment_as_yaml(tmp_path: Path) -> None:
    users = '[{username: bob, password: bob-password, capabilities: [{actions: ["read:*"]}]}]'
    config = load_config(data_dir=str(tmp_path), environ={"BACALHAU_API_AUTH_USERS": users})
    [bob] = config.api.auth.users
    assert (bob.username, bob.password, bob.alias, bob.api_key) == ("bob", "bob-password", "", "")
    assert [capability.actions for capability in bob.capabilities] == [["read:*"]]


# ---- the attributes the node reads


KIND_TYPES: dict[type, Any] = {
    Text: str, Choice: str, Duration: str, Integer: int, Boolean: bool, TextList: list[str], TextMap: dict[str, str],
}  # fmt: skip


def attributes(section: type[Section], parent: str) -> dict[str, Any]:
    """Every key an attribute reads (under ``parent``), with the attribute's type; sections are walked into."""
    found: dict[str, Any] = {}
    for attribute, value in vars(section).items():
        if isinstance(value, Setting | Part | Parts):
            name = CHILDREN[parent][attribute.replace("_", "")]
            if isinstance(value, Part):
                found.update(attributes(value.section, name))
            else:
                found[name] = value if isinstance(value, Parts) else get_args(value.__orig_class__)[0]
    return found


def test_every_attribute_reads_a_used_key_of_its_type() -> None:
    read = attributes(BacalhauConfig, "")
    for name, python_type in read.items():
        key = config_keys()[name.lower()]
        assert key.support is Support.USED, name
        if isinstance(python_type, Parts):
            assert isinstance(key.kind, StructList) and key.kind.item is python_type.section.kind, name
        else:
            assert KIND_TYPES[type(key.kind)] == python_type, name
    oauth2 = {key.name for key in KEYS if key.name.startswith("API.Auth.Oauth2.")}  # read whole, for authconfig
    assert {key.name for key in KEYS if key.support is Support.USED} - set(read) - oauth2 == set()


@pytest.mark.parametrize("section", StructSection.__subclasses__(), ids=lambda cls: cls.__name__)
def test_structured_attributes_name_fields_of_their_kind(section: type[StructSection]) -> None:
    kind: Struct = section.kind
    for attribute, value in vars(section).items():
        if isinstance(value, Setting | Parts):
            assert attribute.replace("_", "") in kind.spelling, attribute


def test_attributes_read_and_write_the_values() -> None:
    config = BacalhauConfig.defaults()
    config.orchestrator.enabled = True
    assert config.to_wire()["Orchestrator"]["Enabled"] is True
    assert config.api.tls.ca_file == "" and config.job_defaults.service.task.resources.cpu == "500m"
    assert config.api.auth.oauth2.to_wire()["ProviderID"] == ""


# ---- the original's kinds of node config files


@pytest.mark.parametrize("name", sorted(path.name for path in DATA.glob("*.yaml")))
def test_each_kind_of_node_config_file_loads(tmp_path: Path, name: str) -> None:
    config = load_files(tmp_path, name)
    document = yaml.safe_load((DATA / name).read_text())
    assert config.to_wire()["NameProvider"] == document["NameProvider"]


def test_what_the_files_say_is_what_the_node_gets(tmp_path: Path) -> None:
    basic = load_files(tmp_path, "orchestrator.yaml")
    assert basic.orchestrator.enabled and basic.orchestrator.auth.token == "join-token-for-tests"
    assert basic.labels == {"zone": "north", "tier": "gold"} and basic.unsupported_settings() == []
    overridden = load_files(tmp_path, "orchestrator.yaml", "orchestrator_override.yaml")
    assert (overridden.name_provider, overridden.labels["tier"]) == ("hostname", "platinum")

    compute = load_files(tmp_path, "compute.yaml")
    assert compute.compute.orchestrators == ["nats://orchestrator.example:4222"] and compute.logging.level == "debug"
    users = load_files(tmp_path, "orchestrator_users.yaml").api.auth.users
    assert [(user.alias, user.username, bool(user.api_key)) for user in users] == [
        ("writer", "writerName", False), ("reader", "readerName", False), ("ci", "", True), ("", "", True),
    ]  # fmt: skip
    sso = load_files(tmp_path, "orchestrator_sso.yaml").api.auth.oauth2.to_wire()
    assert (sso["ProviderID"], sso["DeviceClientID"], sso["PollingInterval"]) == ("idp", "client-0123", 5)
    tls = load_files(tmp_path, "orchestrator_tls.yaml").orchestrator.tls
    assert (tls.server_cert, tls.server_timeout) == ("/certs/orchestrator.crt", 15)
    assert load_files(tmp_path, "compute_tls.yaml").compute.tls.require_tls is True


def test_keys_for_features_this_node_lacks_are_named_not_refused(tmp_path: Path) -> None:
    assert load_files(tmp_path, "orchestrator_reverse_proxy.yaml").unsupported_settings() == [
        "Orchestrator.SupportReverseProxy"
    ]
    managed = load_files(tmp_path, "orchestrator_managed_publisher.yaml")
    assert managed.unsupported_settings() == [
        "Publishers.Types.S3Managed.Bucket", "Publishers.Types.S3Managed.Key",
        "Publishers.Types.S3Managed.Region", "Publishers.Types.S3Managed.Endpoint",
    ]  # fmt: skip
    everything = load_files(tmp_path, "all_keys.yaml")
    unsupported = [key.name for key in KEYS if key.support is Support.UNSUPPORTED]
    assert everything.unsupported_settings() == unsupported
    assert "DisableAnalytics" not in unsupported and "UpdateConfig.Interval" not in unsupported


# ---- secrets


def test_every_secret_is_masked(tmp_path: Path) -> None:
    shown = json.dumps(load_files(tmp_path, "all_keys.yaml").redacted())
    for secret in ("orchestrator-token", "compute-token", "admin-password"):
        assert secret not in shown
    redacted = load_files(tmp_path, "all_keys.yaml").redacted()
    assert redacted["Compute"]["Auth"]["Token"] == MASK and redacted["Orchestrator"]["Auth"]["Token"] == MASK
    assert redacted["API"]["Auth"]["Users"][0]["Username"] == "adminName"
    assert redacted["Publishers"]["Types"]["S3Managed"]["Key"] == "results/"  # an object prefix, not a credential


# ---- hostile files


def test_a_file_too_large_is_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("Labels:\n" + "".join(f"  k{index}: {'v' * 100}\n" for index in range(12_000)))
    with pytest.raises(BacalhauError, match="is larger than 1048576 bytes"):
        load_config(data_dir=str(tmp_path), config_files=[str(path)], environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Labels: " + "[" * 50_000, "nested too deeply"),
        ('a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
         + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)),
         "stands for more than 100000 values"),
        ("a: &a [*a]\n", "stands for more than 100000 values"),
    ],
    ids=["deep", "aliases", "cycle"],
)  # fmt: skip
def test_yaml_bombs_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    with pytest.raises(BacalhauError, match=message):
        load_config(data_dir=str(tmp_path), config_files=[str(path)], environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("API: {Port: [1]}\n", "invalid integer value [1] for API.Port in config file"),
        ("API: 5\n", "expected a mapping of keys for API, got a number, in config file"),
        ("Compute: {Orchestrators: {a: b}}\n", "expected a list of strings, got a mapping for Compute.Orchestrators"),
        ("API: {Auth: {Users: [{Username: a, Capabilities: [{Actions: [[1]]}]}]}}\n",
         "expected a string, got a list for API.Auth.Users[0].Capabilities[0].Actions[0]"),
        ("Labels: {zone: [a]}\n", "expected a string, got a list for Labels['zone']"),
        ("UpdateConfig: {Interval: 999999999h}\n", "invalid duration '999999999h'"),
        ("API: {Port: '" + "9" * 5000 + "'}\n", "invalid integer value '99999"),
        ("API: {Port: " + "9" * 5000 + "}\n", "is not valid YAML: Exceeds the limit"),
        ("Labels: {since: 2001-13-45}\n", "is not valid YAML: month must be in 1..12"),
        ("Labels: {since: 2001-12-14}\n", "expected a string, got date for Labels['since']"),
    ],
)  # fmt: skip
def test_bad_types_name_the_key_and_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    with pytest.raises(BacalhauError) as caught:
        load_config(data_dir=str(tmp_path), config_files=[str(path)], environ={})
    assert message in caught.value.message and str(path) in caught.value.message
    assert len(caught.value.message) < 300 + len(str(path))  # a value is quoted by its start only


def test_null_values_set_nothing(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("Labels:\nAPI:\n  Port:\nCompute:\n")
    assert load_config(data_dir=str(tmp_path), config_files=[str(path)], environ={}).api.port == 1234


def test_the_node_names_what_it_ignores_in_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """At start, before anything else: one WARN line naming every key it ignores."""
    config = load_files(tmp_path, "orchestrator_reverse_proxy.yaml").with_settings(
        {"DataDir": str(tmp_path), "StrictVersionMatch": True, "API.TLS.AutoCert": "api.example"}
    )
    with caplog.at_level(logging.WARNING, logger="bacalhau.node"), pytest.raises(BacalhauError, match="AutoCert"):
        asyncio.run(Node(config).start())  # AutoCert stops it, after the warning
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        "ignoring settings for features this node does not have: StrictVersionMatch, Orchestrator.SupportReverseProxy"
    ]
