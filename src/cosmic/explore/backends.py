"""Where agent runs execute: a local process pool (default) or a Ray cluster.

A backend runs many independent jobs (one job = one agent run of a few hundred to a few thousand evaluations) and
returns their results in submission order, so the caller's output does not depend on which job finished first. The
unit shipped to a worker is a whole agent run: evaluations stay batched inside it (a Ray task per evaluation would
cost more in scheduling than the microseconds an evaluation takes).

    from cosmic.explore.backends import make_backend
    results = make_backend("local").map(run_one, jobs, on_done=lambda i, r: ...)

``make_backend("ray", address=...)`` connects to an existing cluster (``ray://host:10001`` or ``host:6379``; with no
address, the ``RAY_ADDRESS`` environment variable, else a Ray started on this machine). Ray is imported only then
(extra ``cosmic[ray]``). Results are identical on both backends for the same jobs: each job is a pure function of
its arguments (seeded agent, deterministic simulator).

Every worker limits BLAS/OpenMP/torch to one thread (``_one_thread``): with two or more processes per machine the
default thread pools oversubscribe the cores, and Optuna's GP sampler (agent ``bo``) becomes 30x slower.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from cosmic.errors import ConfigError

J = TypeVar("J")
R = TypeVar("R")

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
BACKENDS = ("local", "ray")


def _one_thread() -> None:
    """Pin numeric libraries of this process to one thread (called in every worker before a job runs)."""
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    try:
        import torch
    except ImportError:
        return
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _call(fn: Callable[[Any], Any], job: Any) -> Any:
    _one_thread()
    return fn(job)


class Backend(Protocol):
    """Runs ``fn(job)`` for every job; results in submission order."""

    name: str
    workers: int

    def map(self, fn: Callable[[J], R], jobs: Sequence[J], *,
            on_done: Callable[[int, R], None] | None = None) -> list[R]: ...


class LocalBackend:
    """A ``concurrent.futures.ProcessPoolExecutor`` on this machine (``workers`` default: ``os.cpu_count()``).

    With one worker the jobs run in this process, one after another (no pool to start, easiest to debug). `fn` and
    the jobs must pickle (a module-level function and plain data).
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        n = int(workers or os.cpu_count() or 1)
        if n < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.workers = n

    def map(self, fn: Callable[[J], R], jobs: Sequence[J], *,
            on_done: Callable[[int, R], None] | None = None) -> list[R]:
        jobs = list(jobs)
        results: list[Any] = [None] * len(jobs)
        if self.workers == 1 or len(jobs) <= 1:
            for i, job in enumerate(jobs):
                results[i] = _call(fn, job)
                if on_done is not None:
                    on_done(i, results[i])
            return results
        with ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)), initializer=_one_thread) as pool:
            index: dict[Future[Any], int] = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
            pending = set(index)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: index[f]):
                    i = index[fut]
                    results[i] = fut.result()
                    if on_done is not None:
                        on_done(i, results[i])
        return results


class RayBackend:
    """One Ray task per job on a Ray cluster: an existing one (`address`, else ``RAY_ADDRESS``) or a local one.

    Args:
        address: ``"auto"``, ``"host:6379"`` or ``"ray://host:10001"``; ``None`` reads ``RAY_ADDRESS`` and, when that
            is unset too, starts Ray on this machine with `workers` CPUs (default ``os.cpu_count()``).
        workers: CPUs of a locally started Ray (ignored when connecting to a cluster, whose size decides).

    The cluster's workers need cosmic installed (same version) and write study files to the paths the jobs name,
    on their own disks; results come back through Ray's object store.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("backend 'ray' needs Ray: pip install 'cosmic[ray]'") from None
        self._ray = ray
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers = int(workers or os.cpu_count() or 1)
        self._started = False
        if not ray.is_initialized():
            env = {"env_vars": {v: "1" for v in _THREAD_VARS}}
            kw: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False, "runtime_env": env,
                                  "include_dashboard": False}
            if self.address is None:
                kw["num_cpus"] = self.workers
            else:
                kw["address"] = self.address
            try:
                ray.init(**kw)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"cannot connect to Ray at {self.address or 'a local Ray'}: {exc}") from None
            self._started = True
        if self.address is not None:
            self.workers = int(ray.cluster_resources().get("CPU", self.workers))

    def map(self, fn: Callable[[J], R], jobs: Sequence[J], *,
            on_done: Callable[[int, R], None] | None = None) -> list[R]:
        ray = self._ray
        remote = ray.remote(num_cpus=1, max_retries=0)(_call)
        fn_ref = ray.put(fn)
        refs = [remote.remote(fn_ref, job) for job in jobs]
        index = {r: i for i, r in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index[ref]
                results[i] = ray.get(ref)
                if on_done is not None:
                    on_done(i, results[i])
        return results

    def shutdown(self) -> None:
        """Stop the Ray this backend started (a no-op when connected to a running cluster or not started here)."""
        if self._started and self.address is None:
            self._ray.shutdown()
            self._started = False


def make_backend(name: str = "local", *, workers: int | None = None, address: str | None = None) -> Any:
    """A backend by name: ``local`` (process pool) or ``ray`` (`address`, else ``RAY_ADDRESS``, else local Ray)."""
    key = str(name).strip().lower()
    if key == "local":
        if address:
            raise ConfigError("--ray-address needs --backend ray")
        return LocalBackend(workers)
    if key == "ray":
        return RayBackend(address, workers)
    import difflib

    hint = difflib.get_close_matches(key, BACKENDS, n=1)
    raise ConfigError(f"unknown backend {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                      + f"; known: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "LocalBackend", "RayBackend", "make_backend"]
