"""PSA presets shipped as package data (``cosmic/catalog/presets/*.yaml``) and :func:`load_psa`.

A preset file is either one PSA (with ``knobs``) or a *family*: a compact declaration expanded into one PSA per
(system, model, mode), e.g. COSMIC's 48 ``cosmic-<system>-<model>-<mode>`` spaces (see ``presets/cosmic.yaml``).
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from cosmic import catalog
from cosmic.errors import ConfigError, UnknownNameError, extra_keys
from cosmic.psa.space import Space
from cosmic.yamlio import load as load_yaml
from cosmic.yamlio import read_yaml

_FAMILY_KEYS = {"family", "name", "description", "base", "systems", "models", "overrides", "modes"}


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@cache
def _files() -> tuple[tuple[str, str], ...]:
    root = resources.files("cosmic.catalog").joinpath("presets")
    out = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            out.append((entry.name, entry.read_text(encoding="utf-8")))
    return tuple(out)


@cache
def _presets() -> dict[str, tuple[str, dict[str, Any]]]:
    """preset name -> (source file, PSA mapping)."""
    table: dict[str, tuple[str, dict[str, Any]]] = {}
    for fname, text in _files():
        data = load_yaml(text) or {}
        src = f"presets/{fname}"
        if "family" in data:
            for name, psa in _expand_family(data, src):
                table[name] = (src, psa)
        else:
            name = str(data.get("name") or Path(fname).stem)
            table[name] = (src, data)
    return table


def _expand_family(data: dict[str, Any], src: str) -> list[tuple[str, dict[str, Any]]]:
    extra = extra_keys((k for k in data if not str(k).startswith("_")), _FAMILY_KEYS)
    if extra:
        raise ConfigError("unknown key in a preset family", file=src, key=str(extra[0]))
    out = []
    pattern = str(data["name"])
    desc = str(data.get("description", ""))
    for sname, sbase in data["systems"].items():
        for mname, mbase in data["models"].items():
            over = (data.get("overrides") or {}).get(f"{sname}-{mname}", {})
            base = _merge(_merge(_merge(data.get("base") or {}, sbase), mbase), over)
            _resolve_tp(base)
            for mode, body in data["modes"].items():
                fields = {"system": sname, "model": mname, "mode": mode}
                psa = copy.deepcopy(body)
                psa["name"] = pattern.format(**fields)
                psa["description"] = desc.format(**fields)
                psa["base"] = base
                out.append((psa["name"], psa))
    return out


def _resolve_tp(base: dict[str, Any]) -> None:
    """`tp: auto` in a family base = NPUs / (dp*pp*sp) of the base system (COSMIC derives TP this way)."""
    par = base.get("parallel") or {}
    if par.get("tp") != "auto":
        return
    sysd = catalog.get_system(str(base["system"]))
    n = 1
    for d in sysd["network"]["dims"]:
        n *= int(d["npus"])
    rest = int(par.get("dp", 1)) * int(par.get("pp", 1)) * int(par.get("sp", 1))
    par["tp"] = max(1, n // rest)


def list_presets(kind: str = "training") -> list[str]:
    """Names of the built-in PSA presets of `kind` (``training``, ``serving`` or ``all``).

    Example:
        >>> len([p for p in list_presets() if p.startswith("cosmic-")])
        48
        >>> "serve-llama3-70b-8xh100" in list_presets("serving")
        True
    """
    return sorted(n for n, (_src, d) in _presets().items() if kind == "all" or _kind(d) == kind)


def _kind(data: dict[str, Any]) -> str:
    return str(data.get("kind") or "training")


def preset_data(name: str) -> tuple[str, dict[str, Any]]:
    """(source file, PSA mapping) of preset `name`."""
    table = _presets()
    if name not in table:
        raise UnknownNameError("PSA preset", name, table)
    src, data = table[name]
    return src, copy.deepcopy(data)


@cache
def _load_preset(name: str) -> Space:
    src, data = preset_data(name)
    return _compile(data, file=f"{src}#{name}", name=name)


def _compile(data: Any, *, file: str, name: str | None = None, base_dir: Path | None = None) -> Any:
    """A `Space`, or a `ServingSpace` for a PSA of ``kind: serving``."""
    if isinstance(data, dict) and data.get("kind") == "serving":
        from cosmic.psa.serving import ServingSpace

        return ServingSpace(data, file=file, name=name, base_dir=base_dir)
    return Space(data, file=file, name=name, base_dir=base_dir)


def load_psa(source: str | Path) -> Space:
    """Compile a PSA from a preset name or a YAML file path (raises ConfigError, one line: file, key, problem).

    Presets are compiled once per process and shared (a Space is immutable apart from its sampling statistics).

    Example:
        >>> s = load_psa("cosmic-s1-gpt3-175b-full")
        >>> s.size_feasible < s.size_total
        True
    """
    text = str(source)
    p = Path(text)
    if isinstance(source, Path) or text.endswith((".yaml", ".yml")) or p.exists():
        data = read_yaml(p)
        return _compile(data, file=text, base_dir=p.parent)
    return _load_preset(text)
