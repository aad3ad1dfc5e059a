"""Fuzzing `cosmic psa show FILE`: mutated PSA files (a test space and presets with their base inline) give a
one-line error naming the file, or a space whose sampled configurations simulate to sane numbers."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.generators import PSA_SEEDS, Case, check_case, psa_cases


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(psa_cases())
def test_mutated_psa_files(case: Case) -> None:
    o = check_case(case)
    assert not o.problems, f"{case.describe()}\n{o.problems[0]}"


def _tiny(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(PSA_SEEDS[0])
    for path, value in changes.items():
        *head, last = path.split("__")
        node = d
        for k in head:
            node = node[k]
        node[last] = value
    return d


BIG = {"range": [1, 1_000_000]}
REGRESSIONS = {
    "list repetition of 10^9": _tiny(constraints={"c": "len([1] * 10**9) > 0"}),
    "string repetition of 10^12": _tiny(constraints={"c": "'a' * 10**12 != ''"}),
    "tower of powers": _tiny(constraints={"c": "((9**64)**64)**64 > 0"}),
    "per-dimension domain of 10^6 values": _tiny(knobs__network__latency_ns={**BIG, "mode": "per_dim"}),
    "micro-batch domain of 10^6 values": _tiny(knobs__workload__micro_batch=BIG),
    "infinite degree": _tiny(knobs__workload__pp={"values": [1, float("inf"), 4]}),
}


@pytest.mark.parametrize("data", REGRESSIONS.values(), ids=REGRESSIONS.keys())
def test_regressions(data: dict[str, Any]) -> None:
    o = check_case(Case("psa", data))
    assert not o.problems, o.problems[0]
    assert o.code == 2


def test_a_degree_domain_of_a_million_values_compiles_quickly() -> None:
    o = check_case(Case("psa", _tiny(knobs__workload__dp=BIG)))
    assert not o.problems, o.problems[0]
    assert o.code == 0
