"""Fuzzing `cosmic simulate` and the Python API: a one-line error naming the file, or a sane result; never a
traceback, another exit code, NaN/inf/negative numbers, or a slow case. (`benchmarks/fuzz.py` runs 10,000 cases.)"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.generators import (
    EXPANDED_SEEDS,
    Case,
    _deepcopy,
    _get,
    _paths,
    api_cases,
    argv_cases,
    check_case,
    config_cases,
    extreme_cases,
    yaml_cases,
)

FUZZ = settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def assert_ok(case: Case) -> None:
    o = check_case(case)
    assert not o.problems, f"{case.describe()}\n{o.problems[0]}"


@FUZZ
@given(config_cases())
def test_mutated_configs(case: Case) -> None:
    assert_ok(case)


@FUZZ
@given(extreme_cases())
def test_valid_configs_with_extreme_numbers(case: Case) -> None:
    assert_ok(case)


@FUZZ
@given(yaml_cases())
def test_random_yaml(case: Case) -> None:
    assert_ok(case)


@FUZZ
@given(api_cases())
def test_python_api_raises_only_cosmic_errors(case: Case) -> None:
    assert_ok(case)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(argv_cases())
def test_command_lines(case: Case) -> None:
    assert_ok(case)


EXTREMES = [0, 1e-6, 5e-324, 1e-300, 1e9, 1e12, 1e300, math.inf, 2**24]


@pytest.mark.parametrize("value", EXTREMES, ids=str)
def test_every_number_of_a_config_at_an_extreme(value: float) -> None:
    """Each numeric key of a written-out config set to `value`: a one-line error or finite, non-negative output."""
    base = EXPANDED_SEEDS[len(EXPANDED_SEEDS) // 2]
    for path in _paths(base):
        old = _get(base, path) if path else None
        if not path or isinstance(old, bool) or not isinstance(old, (int, float)):
            continue
        d = _deepcopy(base)
        _get(d, path[:-1])[path[-1]] = value
        assert_ok(Case("api", d))


REGRESSIONS = {
    "integer of 5,000 digits": b"model: " + b"9" * 5000 + b"\n",
    "catalog name of 10^6 characters": b"system: " + b"x" * 1_000_000 + b"\nmodel: gpt3-13b\n",
    "newline inside a value": b"system: cosmic-s1\nmodel: gpt3-175b\nparallel: {rank_order: \"a\\nb\"}\n"
                              b"training: {global_batch: 8}\n",
    "kernel overhead inf": b"model: gpt3-13b\naccelerator: {base: a100-80gb, kernel_overhead_us: .inf}\n"
                           b"network: {dims: [{topology: Switch, npus: 1, link_gbps: 1}]}\n"
                           b"training: {global_batch: 8}\n",
    "denormal bandwidth": b"model: gpt3-13b\naccelerator: a100-80gb\n"
                          b"network: {dims: [{topology: Switch, npus: 1, link_gbps: 5.0e-324}]}\n"
                          b"training: {global_batch: 8}\n",
}


@pytest.mark.parametrize("text", REGRESSIONS.values(), ids=REGRESSIONS.keys())
def test_regressions(text: bytes) -> None:
    o = check_case(Case("config", text=text))
    assert not o.problems, o.problems[0]
    assert o.code == 2


@pytest.mark.parametrize("argv", [["simulate"], ["psa", "sample", "cosmic-s1-gpt3-13b-network", "-n", "0"],
                                  ["simulate", "a.yaml", "b.yaml"]], ids=" ".join)
def test_usage_errors_are_one_line(argv: list[str]) -> None:
    o = check_case(Case("argv", argv=argv))
    assert not o.problems, o.problems[0]
    assert o.code == 2 and o.stderr.startswith("error: ")
