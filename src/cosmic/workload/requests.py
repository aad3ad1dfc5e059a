"""The requests a serving deployment receives: prompt and output lengths, arrival times.

Lengths are fixed, uniform or lognormal (clipped to ``[min, max]``), or read from a trace file; arrivals are a
Poisson process at the offered rate, all at once (``offline``, MLPerf's Offline scenario), or the trace's own
times. A trace is CSV with a header or JSON Lines, one request per line, with the fields ``input_tokens``,
``output_tokens`` and, for trace arrivals, ``arrival_s`` (seconds from the start, non-decreasing)::

    arrival_s,input_tokens,output_tokens
    0.00,512,128
    0.13,1024,64

A bad line is an error naming the file and the line.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cosmic.errors import ConfigError

Tokens = Annotated[int, Field(gt=0, le=10_000_000)]
MAX_REQUESTS = 10_000_000


class LengthDist(BaseModel):
    """A token-length distribution: ``fixed`` (`mean`), ``uniform`` (`min`..`max`) or ``lognormal`` (`mean` and
    the log-space `sigma`, clipped to `min`..`max`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dist: Literal["fixed", "uniform", "lognormal"] = "fixed"
    mean: Tokens | None = None
    min: Tokens | None = None
    max: Tokens | None = None
    sigma: Annotated[float, Field(gt=0, le=10)] = 0.5

    @model_validator(mode="before")
    @classmethod
    def _number(cls, data: Any) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"dist": "fixed", "mean": data}
        return data

    @model_validator(mode="after")
    def _check(self) -> LengthDist:
        if self.dist == "uniform" and (self.min is None or self.max is None):
            raise ValueError("uniform lengths need min and max")
        if self.dist != "uniform" and self.mean is None:
            raise ValueError(f"{self.dist} lengths need mean")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) exceeds max ({self.max})")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` lengths as int64 tokens (at least 1)."""
        if self.dist == "fixed":
            x = np.full(n, float(self.mean or 1))
        elif self.dist == "uniform":
            x = rng.integers(self.min or 1, (self.max or 1) + 1, size=n).astype(float)
        else:
            mu = math.log(self.mean or 1) - self.sigma ** 2 / 2  # E[exp(N(mu, s^2))] = exp(mu + s^2/2) = mean
            x = np.rint(rng.lognormal(mu, self.sigma, size=n))
        return np.clip(x, self.min or 1, self.max or np.inf).astype(np.int64)


class RequestWorkload(BaseModel):
    """The requests: how many, their lengths (or a trace file), their arrivals and the random seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: Annotated[int, Field(gt=0, le=MAX_REQUESTS)] = 1000
    arrival: Literal["poisson", "offline", "trace"] = "poisson"
    rate: Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)] | None = Field(
        default=None, description="offered rate, requests/s (Poisson arrivals)")
    input: LengthDist | None = Field(default=None, description="prompt lengths, tokens")
    output: LengthDist | None = Field(default=None, description="generated tokens per request")
    trace: str | None = Field(default=None, description="CSV or JSONL file of requests (see docs/serving.md)")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> RequestWorkload:
        if self.arrival == "poisson" and self.rate is None:
            raise ValueError("poisson arrivals need rate (requests/s)")
        if self.trace is None:
            if self.arrival == "trace":
                raise ValueError("trace arrivals need a trace file")
            if self.input is None or self.output is None:
                raise ValueError("give input and output lengths, or a trace file")
        return self


@dataclass(frozen=True, slots=True)
class Requests:
    """Arrival time (s), prompt tokens and output tokens of every request, in arrival order."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival_s)


def generate(w: RequestWorkload, base_dir: Path | None = None) -> Requests:
    """The requests of `w` (deterministic for its seed)."""
    rng = np.random.default_rng(w.seed)
    if w.trace is not None:
        path = Path(w.trace)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        t_arr, t_in, t_out = read_trace(path, need_arrival=w.arrival == "trace")
        n = min(w.requests, len(t_in))
        t_in, t_out = t_in[:n], t_out[:n]
        arrival = t_arr[:n] if w.arrival == "trace" else _arrivals(w, rng, n)
        return Requests(arrival, t_in, t_out)
    assert w.input is not None and w.output is not None
    arrival = _arrivals(w, rng, w.requests)
    return Requests(arrival, w.input.sample(rng, w.requests), w.output.sample(rng, w.requests))


def _arrivals(w: RequestWorkload, rng: np.random.Generator, n: int) -> np.ndarray:
    if w.arrival == "offline":
        return np.zeros(n)
    assert w.rate is not None
    return np.cumsum(rng.exponential(1.0 / w.rate, size=n))


_FIELDS = ("arrival_s", "input_tokens", "output_tokens")


def read_trace(path: Path, *, need_arrival: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(arrival_s, input_tokens, output_tokens) of a CSV or JSONL trace; ConfigError naming the file and line."""
    if not path.is_file():
        raise ConfigError("trace file not found", file=str(path))
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = _jsonl_rows(text, str(path))
    else:
        rows = _csv_rows(text, str(path))
    if not rows:
        raise ConfigError("trace holds no request", file=str(path))
    arr, inp, outp = [], [], []
    prev = -math.inf
    for line, rec in rows:
        a = _field(rec, "arrival_s", str(path), line, float, required=need_arrival)
        if need_arrival and a < prev:
            raise ConfigError(f"arrival_s {a} is before the previous request's {prev}", file=str(path),
                              key=f"line {line}")
        prev = a if a is not None else prev
        arr.append(a or 0.0)
        inp.append(_field(rec, "input_tokens", str(path), line, int, required=True))
        outp.append(_field(rec, "output_tokens", str(path), line, int, required=True))
    return np.array(arr, dtype=float), np.array(inp, dtype=np.int64), np.array(outp, dtype=np.int64)


def _csv_rows(text: str, file: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    missing = [f for f in _FIELDS[1:] if f not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"header lacks column {missing[0]!r} (needs input_tokens, output_tokens, optional "
                          "arrival_s)", file=file, key="line 1")
    return [(i + 2, dict(r)) for i, r in enumerate(reader)]


def _jsonl_rows(text: str, file: str) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for i, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not JSON ({exc.msg})", file=file, key=f"line {i}") from None
        if not isinstance(rec, dict):
            raise ConfigError("each line must be a JSON object", file=file, key=f"line {i}")
        out.append((i, rec))
    return out


def _field(rec: dict[str, Any], name: str, file: str, line: int, kind: type, *, required: bool) -> Any:
    v = rec.get(name)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise ConfigError(f"{name} is missing", file=file, key=f"line {line}")
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} {v!r} is not a number", file=file, key=f"line {line}") from None
    if not math.isfinite(x) or x < 0 or (kind is int and (x != int(x) or x < 1)):
        what = "a positive integer" if kind is int else "a finite number >= 0"
        raise ConfigError(f"{name} {v!r} must be {what}", file=file, key=f"line {line}")
    return kind(x)
