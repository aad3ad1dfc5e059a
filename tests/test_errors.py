"""Every error cosmic raises on bad input survives pickling (a process-pool worker or a Ray task raises it and the
parent rebuilds it), with its message and attributes; found by walking the whole package, not listed by hand."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from typing import Any

import pytest

import cosmic
from cosmic import errors
from cosmic.errors import CosmicError, KeyedValueError, UnknownNameError


def _walk_package() -> list[str]:
    """Import every module of cosmic (a module whose optional extra is not installed is left out)."""
    names = []
    for info in pkgutil.walk_packages(cosmic.__path__, prefix="cosmic."):
        try:
            importlib.import_module(info.name)
        except ImportError:
            continue
        names.append(info.name)
    return names


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return sorted(set(out), key=lambda c: (c.__module__, c.__qualname__))


def _sample(param: inspect.Parameter) -> Any:
    """A value for a constructor argument, from its annotation's text (names, lists of names, numbers)."""
    ann = str(param.annotation)
    if "Iterable" in ann or "list" in ann or "Sequence" in ann:
        return ["alpha", "beta"]
    if ann.startswith("int") or ann == "int":
        return 3
    if ann.startswith("float"):
        return 1.5
    return f"{param.name}-value\nsecond line"


def _instance(cls: type[Exception]) -> Exception:
    sig = inspect.signature(cls.__init__)
    args, kwargs = [], {}
    for p in list(sig.parameters.values())[1:]:
        if p.kind is p.VAR_POSITIONAL:
            args.append("message")
        elif p.kind is p.VAR_KEYWORD or p.default is not p.empty:
            continue
        elif p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = _sample(p)
        else:
            args.append(_sample(p))
    return cls(*args, **kwargs)


def test_the_walk_finds_the_errors_module_and_every_subclass_in_it() -> None:
    names = _walk_package()
    assert "cosmic.errors" in names and "cosmic.study" in names and len(names) > 40
    found = set(_subclasses(CosmicError))
    local = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, CosmicError)}
    assert local - {CosmicError} <= found and len(local) >= 5


@pytest.mark.parametrize("cls", [CosmicError, *(_walk_package() and _subclasses(CosmicError))],
                         ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_cosmic_error_round_trips_through_pickle(cls: type[CosmicError]) -> None:
    err = _instance(cls)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert str(back) == str(err) and back.args == err.args
    assert vars(back) == vars(err)
    assert "\n" not in str(back)


def test_unknown_name_error_keeps_its_suggestion_and_fields_across_processes() -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool:
        fut = pool.submit(_raise_unknown, "gpt3-17b")
        with pytest.raises(UnknownNameError) as info:
            fut.result()
    msg = str(info.value)
    assert msg == ("--models: unknown model 'gpt3-17b' (did you mean 'gpt3-175b'?); known: gpt3-13b, gpt3-175b, "
                   "vit-base")
    assert info.value.key == "--models" and info.value.detail.startswith("unknown model")


def _raise_unknown(name: str) -> None:
    raise UnknownNameError("model", name, ["gpt3-13b", "gpt3-175b", "vit-base"], key="--models")


def test_keyed_value_error_round_trips() -> None:
    back = pickle.loads(pickle.dumps(KeyedValueError("parallel.tp", "must divide the heads")))
    assert back.key == "parallel.tp" and str(back) == "must divide the heads"
