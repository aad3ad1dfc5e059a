"""The explore report's plots: axes with units, log axes labelled once per decade, values printed with units."""

from __future__ import annotations

import pytest

from cosmic.explore import run_study, with_objectives
from cosmic.psa import load_psa
from cosmic.report import fmt_objective, fmt_value, render_html
from cosmic.report._html import LOG_AXIS, _convergence, _pareto


@pytest.fixture(scope="module")
def two_objective_study():
    space = with_objectives(load_psa("cosmic-s1-gpt3-175b-full"), ["step_time", "step_time*network_cost"])
    return run_study(space, "random", budget=300, seed=0, persist=False)


def test_convergence_axis_has_the_unit_and_decade_ticks(two_objective_study):
    s = two_objective_study
    fig = _convergence(s)
    assert fig.layout.yaxis.title.text == "step_time (s)"
    feas = [v[0] for v in s.values if v is not None]
    assert max(feas) / min(feas) > 20  # this study spans decades, so the axis is logarithmic
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.dtick == 1
    assert fig.layout.yaxis.minor.dtick == "D1" and fig.layout.yaxis.minor.ticks == "outside"


def test_pareto_front_has_log_axes_with_units(two_objective_study):
    fig = _pareto(two_objective_study)
    assert fig.layout.xaxis.title.text == "step_time (s)"
    assert fig.layout.yaxis.title.text == "step_time*network_cost (s·USD)"
    for ax in (fig.layout.xaxis, fig.layout.yaxis):
        assert ax.type == LOG_AXIS["type"] and ax.dtick == 1


def test_report_prints_values_with_units_not_tuples(two_objective_study):
    s = two_objective_study
    page = render_html(s)
    assert f"step_time = {fmt_objective('step_time', s.best_values[0])}" in page
    assert "s·USD" in page and f"({s.best_values[0]!r}," not in page
    assert fmt_value([166.66666666666666, 200.0]) == "[166.667, 200]"
