"""Case studies: COSMIC's single-stack vs full-stack grid and the batch-scaling study, run end to end.

    from cosmic.explore.backends import make_backend
    from cosmic.study import run_case_study
    summary = run_case_study("cosmic-paper", "reports/paper", backend=make_backend("local"),
                             budget="ga=2000,tpe=500", estimate=True)
    summary["speedup_range"]

A study is a grid of jobs (cell x mode x agent x seed, one agent run each) run on a backend; the analysis takes the
best objective per mode and cell, the full-stack speedup over each single-stack mode, flags the cells where full
loses (with the reason) and lists what changed against the baseline. See ``docs/study.md``.
"""

from cosmic.study._analysis import analyse_cells, knob_changes, speedup_range
from cosmic.study._eta import Eta, format_duration
from cosmic.study._jobs import Job, JobResult, run_job
from cosmic.study._run import (
    DEFAULT_AGENTS,
    DEFAULT_BUDGETS,
    SCALING_BATCHES,
    SCALING_MODELS,
    STUDIES,
    budgets_for,
    make_jobs,
    parse_budget,
    run_case_study,
    run_jobs,
)
from cosmic.study._spaces import (
    MODES,
    OBJECTIVES,
    PAPER_MODELS,
    SETTINGS,
    SYSTEMS,
    baseline_config,
    study_space,
)

__all__ = [
    "DEFAULT_AGENTS",
    "DEFAULT_BUDGETS",
    "MODES",
    "OBJECTIVES",
    "PAPER_MODELS",
    "SCALING_BATCHES",
    "SCALING_MODELS",
    "SETTINGS",
    "STUDIES",
    "SYSTEMS",
    "Eta",
    "Job",
    "JobResult",
    "analyse_cells",
    "baseline_config",
    "budgets_for",
    "format_duration",
    "knob_changes",
    "make_jobs",
    "parse_budget",
    "run_case_study",
    "run_job",
    "run_jobs",
    "speedup_range",
    "study_space",
]
