"""Resource strings parsed as the original parses them (Kubernetes CPU quantities, go-humanize byte sizes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bacalhau.models.resources import ResourcesConfig, format_bytes, parse_bytes, parse_cpu


@pytest.mark.parametrize(
    ("text", "cores"), [("100m", 0.1), ("0.1", 0.1), ("1", 1.0), ("2.5", 2.5), ("1500m", 1.5), ("0.0005", 0.0)]
)
def test_cpu(text: str, cores: float) -> None:
    assert parse_cpu(text) == pytest.approx(cores)


@pytest.mark.parametrize("text", ["1.5m", "abc", "", "m", "1e400"])
def test_invalid_cpu(text: str) -> None:
    with pytest.raises(ValueError, match="invalid CPU value"):
        parse_cpu(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10mb", 10_000_000), ("1gi", 1_073_741_824), ("1gib", 1_073_741_824), ("1gb", 1_000_000_000),
        ("512", 512), ("1.5kb", 1500), ("2ki", 2048), ("1,000b", 1000), ("3t", 3 * 10**12),
    ],
)  # fmt: skip
def test_bytes(text: str, size: int) -> None:
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["10zb", "-1mb", "", "mb", "1.2.3gb"])
def test_invalid_bytes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_config_is_normalised_to_lower_case_without_spaces() -> None:
    config = ResourcesConfig(cpu=" 500M ", memory="1 GB", disk="10Gi\n", gpu="1")
    config.normalize()
    assert (config.cpu, config.memory, config.disk, config.gpu) == ("500m", "1gb", "10gi", "1")


def test_config_parses_every_field_and_reports_every_error() -> None:
    resources, errors = ResourcesConfig(cpu="2", memory="1Gi", disk="10mb", gpu="1").parse()
    assert (resources.cpu, resources.memory, resources.disk, resources.gpu) == (2.0, 1_073_741_824, 10_000_000, 1)
    assert errors == []
    _, errors = ResourcesConfig(cpu="x", memory="y").parse()
    assert errors == ["invalid CPU value: x", "invalid memory value: y"]
    _, errors = ResourcesConfig(gpu="1.5").parse()
    assert errors == ["invalid GPU value: 1.5"]
    _, errors = ResourcesConfig(cpu="-1").parse()
    assert errors == ["invalid CPU value: -1.000000"]


def test_human_readable_sizes() -> None:
    assert format_bytes(0) == "0 B"
    assert format_bytes(1_000_000_000) == "1.0 GB"
    assert format_bytes(64 * 10**9) == "64 GB"


@given(st.integers(min_value=0, max_value=10**6))
def test_millicores_round_trip(millis: int) -> None:
    assert parse_cpu(f"{millis}m") == pytest.approx(millis / 1000)
