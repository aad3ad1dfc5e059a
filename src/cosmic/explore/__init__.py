"""Exploration: evaluate PSA points, run resumable studies stored in Optuna's storage.

    from cosmic.psa import load_psa
    from cosmic.explore import run_study
    summary = run_study(load_psa("cosmic-s1-gpt3-175b-full"), "ga", budget=2000, seed=0)
    summary.best_objective, summary.best_config
    load_trial(space, 17, study_name=summary.study_name).config(space)   # any stored trial, rebuilt
"""

from cosmic.explore._objective import (
    FEATURE_NAMES,
    Evaluation,
    Evaluator,
    with_objectives,
    with_risk,
)
from cosmic.explore._rl import make_env, reward_of
from cosmic.explore._storage import History, StudyStore, storage_url
from cosmic.explore._study import Progress, StudySummary, pareto_front, run_study
from cosmic.explore._trials import StoredTrial, figures, load_trial, result_from_figures, space_fingerprint

__all__ = [
    "FEATURE_NAMES",
    "Evaluation",
    "Evaluator",
    "History",
    "Progress",
    "StoredTrial",
    "StudyStore",
    "StudySummary",
    "figures",
    "load_trial",
    "make_env",
    "pareto_front",
    "result_from_figures",
    "reward_of",
    "run_study",
    "space_fingerprint",
    "storage_url",
    "with_objectives",
    "with_risk",
]
