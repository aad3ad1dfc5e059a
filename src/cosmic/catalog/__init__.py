"""Built-in catalogs (package data): models, accelerators, fabrics, systems and PSA presets."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from cosmic.errors import UnknownNameError
from cosmic.yamlio import load as load_yaml


@cache
def _load(name: str) -> dict[str, Any]:
    text = resources.files("cosmic.catalog").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = load_yaml(text) or {}
    return {str(k): v for k, v in data.items()}


def _get(kind: str, file: str, name: str) -> dict[str, Any]:
    table = _load(file)
    key = str(name).strip().lower()
    if key not in table:
        raise UnknownNameError(kind, str(name), table)
    return dict(table[key])


def model_names() -> list[str]:
    return sorted(_load("models"))


def accelerator_names() -> list[str]:
    return sorted(_load("accelerators"))


def fabric_names() -> list[str]:
    return sorted(_load("fabrics"))


def system_names() -> list[str]:
    return sorted(_load("systems"))


def get_model(name: str) -> dict[str, Any]:
    """Raw catalog entry of model `name` (raises UnknownNameError with a suggestion)."""
    d = _get("model", "models", name)
    d.setdefault("name", str(name).lower())
    return d


def get_accelerator(name: str) -> dict[str, Any]:
    d = _get("accelerator", "accelerators", name)
    d.setdefault("name", str(name).lower())
    return d


def get_fabric(name: str) -> dict[str, Any]:
    return _get("fabric", "fabrics", name)


def get_system(name: str) -> dict[str, Any]:
    return _get("system", "systems", name)


EVIDENCE_FILE = "evidence.json"
"""The evidence table (package data): per validated regime, the published runs and their signed error p50/p90.
Built by ``python -m cosmic.validate.evidence build`` from the validation files; never computed at run time."""


@cache
def evidence_table() -> dict[str, Any]:
    """The shipped evidence table (``{}`` when the package has none)."""
    import json

    path = resources.files("cosmic.catalog").joinpath(EVIDENCE_FILE)
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
