"""Parameter Set Architecture (PSA): declarative, validated search spaces over the four stacks.

A PSA file declares a base configuration, searched knobs (domain + dimension mode) grouped by stack, derived knobs,
constraints in a small safe expression language, objectives and the memory-fit switch. :func:`load_psa` compiles it
(or a built-in preset) into a :class:`Space`: an integer encoding whose every point satisfies the equality
constraints, a uniform feasible sampler, encode/decode, neighbourhoods, Gymnasium and Optuna adapters and the size of
the space. See ``docs/psa.md``.
"""

from cosmic.psa.domain import DimMode, Domain, Knob
from cosmic.psa.objectives import OBJECTIVE_NAMES, Objective
from cosmic.psa.presets import list_presets, load_psa
from cosmic.psa.space import Constraint, Derived, Space

__all__ = [
    "OBJECTIVE_NAMES",
    "Constraint",
    "Derived",
    "DimMode",
    "Domain",
    "Knob",
    "Objective",
    "Space",
    "list_presets",
    "load_psa",
]
