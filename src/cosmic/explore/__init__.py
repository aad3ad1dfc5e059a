"""Exploration: evaluate PSA points, run resumable studies stored in Optuna's storage.

    from cosmic.psa import load_psa
    from cosmic.explore import run_study
    summary = run_study(load_psa("cosmic-s1-gpt3-175b-full"), "ga", budget=2000, seed=0)
    summary.best_objective, summary.best_config
"""

from cosmic.explore._objective import (
    FEATURE_NAMES,
    Evaluation,
    Evaluator,
    with_objectives,
)
from cosmic.explore._rl import make_env, reward_of
from cosmic.explore._storage import History, StudyStore, storage_url
from cosmic.explore._study import Progress, StudySummary, pareto_front, run_study

__all__ = [
    "FEATURE_NAMES",
    "Evaluation",
    "Evaluator",
    "History",
    "make_env",
    "reward_of",
    "Progress",
    "StudyStore",
    "StudySummary",
    "pareto_front",
    "run_study",
    "storage_url",
    "with_objectives",
]
