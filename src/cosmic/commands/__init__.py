"""CLI sub-commands contributed by each concept; `cosmic.cli` registers them all.

Each module defines plain functions and a ``register(app)`` that adds them to the typer app. Add one line to
``MODULES`` per module.
"""

from __future__ import annotations

import importlib

import typer

MODULES: tuple[str, ...] = (
    "cosmic.commands.collective",     # issue 8 (ASTRA-sim interop)
    "cosmic.commands.psa",            # issue 3 (PSA)
    "cosmic.commands.explore",        # issue 4 (agents, explore)
    "cosmic.commands.validate",       # issue 5 (validation)
    "cosmic.commands.study",          # issue 6 (case studies)
    "cosmic.commands.serve",          # issue 18 (serving)
)


def register_all(app: typer.Typer) -> None:
    for name in MODULES:
        importlib.import_module(name).register(app)
