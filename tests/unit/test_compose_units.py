"""Durations (Go syntax) and byte sizes (Docker's binary units)."""

import pytest

from swarmpy.compose.units import parse_bytes, parse_cpus, parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [("10s", 10), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("1h5m30s20ms", 3930.02), ("0", 0),
     ("1.5h", 5400), ("250us", 0.00025), ("100ns", 1e-7), ("2m", 120), ("-1s", -1)],
)
def test_durations_in_go_syntax(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "ten seconds", "1x", "s", "1m 30s", "1.2.3s"])
def test_bad_durations_say_what_a_duration_looks_like(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "value, size",
    [("512m", 512 << 20), ("1g", 1 << 30), ("1.5GB", 3 << 29), ("100k", 100 << 10), (1024, 1024),
     ("50M", 52428800), ("2b", 2), ("1024kb", 1 << 20), ("300", 300), ("1gib", 1 << 30)],
)
def test_byte_sizes_use_binary_units(value, size):
    assert parse_bytes(value) == size


@pytest.mark.parametrize("value", ["lots", "-1m", "1.5.1g", "1x", True, -5])
def test_bad_byte_sizes(value):
    with pytest.raises(ValueError, match="byte size"):
        parse_bytes(value)


def test_cpus_as_string_or_number():
    assert parse_cpus("0.5") == 0.5
    assert parse_cpus(2) == 2.0
    with pytest.raises(ValueError):
        parse_cpus("half")
    with pytest.raises(ValueError):
        parse_cpus(-1)
