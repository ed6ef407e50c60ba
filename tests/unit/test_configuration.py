"""Configuration: defaults < config file < BACALHAU_* environment < flags < -c Key=Value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.config import load_config, parse_duration
from bacalhau.errors import BacalhauError


def test_defaults(tmp_path: Path) -> None:
    config = load_config(data_dir=str(tmp_path), environ={})
    assert (config.api.host, config.api.port) == ("0.0.0.0", 1234)
    assert config.name_provider == "puuid"
    assert config.orchestrator.port == 4222 and not config.orchestrator.enabled
    assert config.compute.orchestrators == ["nats://127.0.0.1:4222"]
    assert config.compute.allocated_capacity.cpu == "80%"
    assert config.job_defaults.batch.task.resources.memory == "512Mb"
    assert config.to_wire()["UpdateConfig"]["Interval"] == "24h0m0s"


def test_precedence(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("api:\n  port: 1000\n  HOST: 10.0.0.1\nlabels:\n  a: b\n")
    from_file = load_config(data_dir=str(tmp_path), environ={})
    assert (from_file.api.port, from_file.api.host, from_file.labels) == (1000, "10.0.0.1", {"a": "b"})
    from_env = load_config(data_dir=str(tmp_path), environ={"BACALHAU_API_PORT": "2000"})
    assert from_env.api.port == 2000 and from_env.api.host == "10.0.0.1"
    from_flag = load_config(data_dir=str(tmp_path), environ={"BACALHAU_API_PORT": "2000"}, flags={"API.Port": 3000})
    assert from_flag.api.port == 3000
    overridden = load_config(
        data_dir=str(tmp_path), environ={"BACALHAU_API_PORT": "2000"}, flags={"API.Port": 3000},
        overrides=["api.port=4000", "Labels=x=y", "orchestrator.enabled"],
    )  # fmt: skip
    assert overridden.api.port == 4000 and overridden.labels == {"x": "y"} and overridden.orchestrator.enabled


def test_explicit_config_files_merge_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("Labels: {one: '1'}\nAPI: {Port: 1}\n")
    second.write_text("API: {Port: 2}\n")
    config = load_config(data_dir=str(tmp_path), config_files=[str(first), str(second)], environ={})
    assert config.api.port == 2 and config.labels == {"one": "1"}


def test_environment_lists_and_nested_keys(tmp_path: Path) -> None:
    config = load_config(
        data_dir=str(tmp_path),
        environ={"BACALHAU_COMPUTE_ORCHESTRATORS": "nats://a:1,nats://b:2", "BACALHAU_ORCHESTRATOR_AUTH_TOKEN": "t"},
    )
    assert config.compute.orchestrators == ["nats://a:1", "nats://b:2"]
    assert config.orchestrator.auth.token == "t"
    assert config.redacted()["Orchestrator"]["Auth"]["Token"] == "********"


def test_the_data_dir_comes_from_bacalhau_dir(tmp_path: Path) -> None:
    assert load_config(environ={"BACALHAU_DIR": str(tmp_path)}).data_path == tmp_path.resolve()


@pytest.mark.parametrize("override", ["Nope=1", "API.Nope=1", "API.Port.Deeper=1"])
def test_unknown_keys_are_rejected(tmp_path: Path, override: str) -> None:
    with pytest.raises(BacalhauError, match="is not a valid config key"):
        load_config(data_dir=str(tmp_path), overrides=[override], environ={})


def test_unknown_keys_in_files_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("Compute: {Nonsense: true}\n")
    with pytest.raises(BacalhauError, match=r"'Compute\.Nonsense' is not a valid config key"):
        load_config(data_dir=str(tmp_path), environ={})


def test_bad_values_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BacalhauError, match="invalid integer value 'abc'"):
        load_config(data_dir=str(tmp_path), overrides=["API.Port=abc"], environ={})
    (tmp_path / "config.yaml").write_text("- not\n- a mapping\n")
    with pytest.raises(BacalhauError, match="must hold a mapping"):
        load_config(data_dir=str(tmp_path), environ={})


@pytest.mark.parametrize(("text", "seconds"), [("1m", 60), ("1m30s", 90), ("24h0m0s", 86400), ("0.5s", 0.5),
                                               ("250ms", 0.25), ("15", 15), ("-2s", -2)])  # fmt: skip
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1x", "m1", "1m 2s"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_config_file_may_quote_numbers_and_booleans_as_the_original_accepts(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text('API:\n  Port: "1235"\nCompute:\n  Enabled: "true"\n')
    config = load_config(data_dir=str(tmp_path), config_files=[str(config_file)])
    assert config.api.port == 1235 and config.compute.enabled is True
