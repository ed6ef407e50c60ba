"""Resource quantities (api-models.md §4.5, checklist item 8): k8s-style CPU, go-humanize bytes, integer GPUs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bacalhau.models.resources import (
    Resources,
    ResourcesConfig,
    format_bytes,
    normalize_quantity,
    parse_bytes,
    parse_cpu,
)

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)

KB, MB, GB, TB, PB, EB = (1000**i for i in range(1, 7))
KI, MI, GI, TI, PI, EI = (1024**i for i in range(1, 7))

# --- CPU ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cores"),
    [
        ("100m", 0.1),
        ("0.1", 0.1),
        ("1", 1.0),
        ("2.5", 2.5),
        ("1500m", 1.5),
        ("0m", 0.0),
        ("1000m", 1.0),
        ("250m", 0.25),
        ("0.0005", 0.0),
        ("1.0009", 1.0),
        ("0.0015", 0.001),
        ("1e3", 1000.0),
        ("+100m", 0.1),
        ("-100m", -0.1),
        ("-1", -1.0),
    ],
)
def test_cpu_quantities(text: str, cores: float) -> None:
    """<int>m is millicores; anything else is a float of cores truncated to whole millicores."""
    assert parse_cpu(text) == pytest.approx(cores)


@pytest.mark.parametrize("text", ["1.5m", "abc", "", "m", "1500x", "1 core", "0.5mm", "1.2.3", "nan", "inf"])
def test_invalid_cpu_quantities(text: str) -> None:
    """A fractional millicore count or a non-number is an error."""
    with pytest.raises(ValueError):
        parse_cpu(text)


def test_cpu_with_digit_separators_is_invalid() -> None:
    """Go's strconv.ParseFloat rejects '1_000' (underscores need a base prefix); it is not 1000 cores."""
    with pytest.raises(ValueError):
        parse_cpu("1_000")


@DETERMINISTIC
@given(st.integers(0, 10**7))
def test_millicores_are_exact(millis: int) -> None:
    """N m is N/1000 cores."""
    assert parse_cpu(f"{millis}m") == pytest.approx(millis / 1000)


@DETERMINISTIC
@given(st.integers(0, 10**6))
def test_whole_cores(cores: int) -> None:
    """An integer is that many cores."""
    assert parse_cpu(str(cores)) == cores


# --- Memory and disk ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10mb", 10_000_000),
        ("10MB", 10_000_000),
        ("1Gi", 1_073_741_824),
        ("1gib", 1_073_741_824),
        ("1GiB", 1_073_741_824),
        ("1GB", GB),
        ("1gb", GB),
        ("1g", GB),
        ("512Mb", 512 * MB),
        ("100", 100),
        ("100b", 100),
        ("1k", KB),
        ("1kb", KB),
        ("1ki", KI),
        ("1kib", KI),
        ("1.5kb", 1500),
        ("1.5ki", 1536),
        ("0.5kb", 500),
        ("1.5b", 1),
        ("2t", 2 * TB),
        ("2ti", 2 * TI),
        ("3pb", 3 * PB),
        ("3pib", 3 * PI),
        ("2e", 2 * EB),
        ("1mi", MI),
        ("10 MB", 10 * MB),
        ("10MB ", 10 * MB),
        (".5k", 500),
        ("18eb", 18 * EB),
        ("15ei", 15 * EI),
    ],
)
def test_byte_quantities(text: str, size: int) -> None:
    """go-humanize ParseBytes: number, then an optional SI or IEC unit, case-insensitive, truncated to bytes."""
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["10zb", "10 zb", "1yb", "abc", "", "mb", "1x", "1.2.3mb", "1 2mb", "-1mb", "1 k b"])
def test_invalid_byte_quantities(text: str) -> None:
    """Unknown units, missing numbers and junk are errors."""
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_byte_quantities_beyond_uint64_are_errors() -> None:
    """ParseBytes refuses anything at or above MaxUint64."""
    with pytest.raises(ValueError, match="too large"):
        parse_bytes("20eb")


UNITS = {"": 1, "b": 1, "k": KB, "kb": KB, "ki": KI, "kib": KI, "m": MB, "mb": MB, "mi": MI, "mib": MI,
         "g": GB, "gb": GB, "gi": GI, "gib": GI, "t": TB, "tb": TB, "ti": TI, "tib": TI}  # fmt: skip


@DETERMINISTIC
@given(st.integers(0, 10**5), st.sampled_from(sorted(UNITS)), st.randoms(use_true_random=False))
def test_units_are_case_insensitive(amount: int, unit: str, rnd: random.Random) -> None:
    """Any casing of a unit means the same multiplier."""
    cased = "".join(c.upper() if rnd.random() < 0.5 else c for c in unit)
    assert parse_bytes(f"{amount}{cased}") == amount * UNITS[unit]


# --- Normalisation and ResourcesConfig ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized"),
    [("1GB", "1gb"), ("500M", "500m"), (" 1 Gi ", "1gi"), ("1\nGiB", "1gib"), ("", ""), ("0.5", "0.5")],
)
def test_normalize_quantity_lowercases_and_strips_spaces(text: str, normalized: str) -> None:
    """Normalize lowercases and removes spaces and newlines."""
    assert normalize_quantity(text) == normalized


def test_resources_config_normalize() -> None:
    """All four values are normalised; "1GB" becomes "1gb"."""
    config = ResourcesConfig(cpu=" 500M", memory="1GB", disk="10 GiB", gpu=" 1\n")
    config.normalize()
    assert (config.cpu, config.memory, config.disk, config.gpu) == ("500m", "1gb", "10gib", "1")


def test_resources_config_parse() -> None:
    """Strings become the computed Resources."""
    resources, errors = ResourcesConfig(cpu="500m", memory="1Gi", disk="10GB", gpu="2").parse()
    assert errors == []
    assert resources == Resources(cpu=0.5, memory=GI, disk=10 * GB, gpu=2)


def test_empty_resources_config_is_zero() -> None:
    """Empty strings leave their dimension at zero."""
    resources, errors = ResourcesConfig().parse()
    assert errors == [] and resources.is_zero()


@pytest.mark.parametrize(
    ("config", "errors"),
    [
        (ResourcesConfig(cpu="abc"), ["invalid CPU value: abc"]),
        (ResourcesConfig(cpu="ABC"), ["invalid CPU value: abc"]),
        (ResourcesConfig(cpu="1.5m"), ["invalid CPU value: 1.5m"]),
        (ResourcesConfig(memory="10 zb"), ["invalid memory value: 10zb"]),
        (ResourcesConfig(disk="lots"), ["invalid disk value: lots"]),
        (ResourcesConfig(gpu="1.5"), ["invalid GPU value: 1.5"]),
        (ResourcesConfig(gpu="-1"), ["invalid GPU value: -1"]),
        (ResourcesConfig(gpu="one"), ["invalid GPU value: one"]),
        (ResourcesConfig(cpu="abc", memory="xyz", disk="q"),
         ["invalid CPU value: abc", "invalid memory value: xyz", "invalid disk value: q"]),
        (ResourcesConfig(cpu="-1"), ["invalid CPU value: -1.000000"]),
        (ResourcesConfig(cpu="-100m"), ["invalid CPU value: -0.100000"]),
        (ResourcesConfig(cpu="-1", memory="bad"), ["invalid memory value: bad"]),
        (ResourcesConfig(cpu="abc", memory="bad", gpu="x"), ["invalid GPU value: x"]),
    ],
)  # fmt: skip
def test_resources_config_errors_match_the_original(config: ResourcesConfig, errors: list[str]) -> None:
    """Messages as ToResources/Validate word them: normalised values, GPU errors replace the others, and the
    negative-CPU check (%f) only runs when everything parsed."""
    assert config.parse()[1] == errors


@pytest.mark.parametrize("gpu", ["0", "1", "8", "18446744073709551615"])
def test_gpu_is_an_unsigned_integer(gpu: str) -> None:
    """GPU parses with ParseUint(10, 64)."""
    assert ResourcesConfig(gpu=gpu).to_resources().gpu == int(gpu)


def test_gpu_beyond_uint64_is_invalid() -> None:
    """ParseUint(…, 10, 64) overflows above 2^64-1."""
    assert ResourcesConfig(gpu="18446744073709551616").parse()[1] == ["invalid GPU value: 18446744073709551616"]


def test_to_resources_raises_with_every_message() -> None:
    """to_resources() raises a ValueError joining the messages with newlines."""
    with pytest.raises(ValueError) as caught:
        ResourcesConfig(cpu="abc", memory="xyz").to_resources()
    assert str(caught.value) == "invalid CPU value: abc\ninvalid memory value: xyz"


# --- Computed Resources -------------------------------------------------------------------------------------------


def test_add_and_sub() -> None:
    """Sums per dimension; differences are floored at zero."""
    a = Resources(cpu=1.5, memory=2 * GB, disk=10, gpu=1)
    b = Resources(cpu=0.5, memory=3 * GB, disk=4, gpu=2)
    assert a.add(b) == Resources(cpu=2.0, memory=5 * GB, disk=14, gpu=3)
    assert a.sub(b) == Resources(cpu=1.0, memory=0, disk=6, gpu=0)


def test_sub_cpu_has_no_float_dust() -> None:
    """0.3 - 0.1 is 0.2, not 0.19999999999999998."""
    assert Resources(cpu=0.3).sub(Resources(cpu=0.1)).cpu == 0.2


def test_scale_truncates_integers() -> None:
    """Multiply keeps CPU a float and truncates the byte and GPU counts."""
    assert Resources(cpu=1.0, memory=3, disk=5, gpu=3).scale(0.5) == Resources(cpu=0.5, memory=1, disk=2, gpu=1)


def test_fits_in_and_exceeded_dimensions() -> None:
    """Every dimension must be at or below the limit; CPU sums get float slack."""
    limit = Resources(cpu=1.0, memory=GB, disk=GB, gpu=1)
    assert Resources(cpu=0.1 + 0.2 + 0.7, memory=GB, disk=0, gpu=1).fits_in(limit)
    too_big = Resources(cpu=1.5, memory=GB + 1, disk=0, gpu=2)
    assert not too_big.fits_in(limit)
    assert too_big.exceeded_dimensions(limit) == ["CPU", "memory", "GPU"]
    assert Resources().exceeded_dimensions(limit) == []


def test_is_zero() -> None:
    """Zero in every dimension."""
    assert Resources().is_zero()
    assert not Resources(disk=1).is_zero()


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (9, "9 B"), (10, "10 B"), (999, "999 B"), (1000, "1.0 kB"), (1500, "1.5 kB"),
     (82_854_982, "83 MB"), (GI, "1.1 GB"), (GB, "1.0 GB"), (10 * GB, "10 GB")],
)  # fmt: skip
def test_format_bytes_matches_go_humanize(size: int, text: str) -> None:
    """humanize.Bytes: SI units, one decimal below 10."""
    assert format_bytes(size) == text


def test_describe_matches_go_string() -> None:
    """Resources.String(): "{CPU: %.2f, Memory: %s, Disk: %s, GPU: %d}"."""
    assert Resources(cpu=0.5, memory=GI, gpu=1).describe() == "{CPU: 0.50, Memory: 1.1 GB, Disk: 0 B, GPU: 1}"
