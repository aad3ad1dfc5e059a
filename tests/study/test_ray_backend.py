"""The Ray backend gives the same results as the local process pool for the same jobs and seeds.

Ray is a test dependency (``cosmic[test]`` pulls ``ray``), so this test runs in CI rather than skipping.
"""

from __future__ import annotations

import pytest

from cosmic.explore.backends import LocalBackend, RayBackend
from cosmic.study import Job, run_job


@pytest.fixture(scope="module")
def ray_backend():  # type: ignore[no-untyped-def]
    be = RayBackend(workers=2)
    yield be
    be.shutdown()


def test_ray_matches_local(ray_backend: RayBackend) -> None:
    jobs = [Job("cosmic-paper", "full-depth", "s3", "vit-base", "full", "ga", seed, 200) for seed in (0, 1)]
    jobs.append(Job("cosmic-paper", "cosmic", "s3", "vit-base", "workload", "random", 0, 50))
    done: list[int] = []
    remote = ray_backend.map(run_job, jobs, on_done=lambda i, r: done.append(i))
    local = LocalBackend(2).map(run_job, jobs)
    assert sorted(done) == [0, 1, 2]
    assert [r.job for r in remote] == jobs
    for a, b in zip(remote, local, strict=True):
        assert a.best_objective == b.best_objective
        assert a.best_point == b.best_point
        assert a.trials == b.trials and len(a.trials) == a.job.budget
    assert remote[0].trials != remote[1].trials  # the seed matters
