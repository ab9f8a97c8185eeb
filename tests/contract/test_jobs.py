"""The background-job runner with the lock of each backend (a file lock next to SQLite, an
advisory lock on PostgreSQL): exclusive jobs run in one runner at a time, per-worker jobs in
every runner, a stopped holder hands over, and stop() lets a running job finish."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

from cargobay.metadata.locks import job_lock
from cargobay.services.jobs import JobRunner

pytestmark = pytest.mark.anyio


def runner(engine: sa.Engine, data_dir: Path, counts: dict[str, int], name: str) -> JobRunner:
    jobs = JobRunner(job_lock(engine, data_dir, "jobs"), retry=0.05, grace=5)

    async def exclusive() -> None:
        counts[name] = counts.get(name, 0) + 1
        counts["running"] = counts.get("running", 0) + 1
        assert counts["running"] == 1, "two runners ran the exclusive job at once"
        await anyio.sleep(0.02)
        counts["running"] -= 1

    async def everywhere() -> None:
        counts[f"{name}-local"] = counts.get(f"{name}-local", 0) + 1

    jobs.add("exclusive", 0.01, exclusive)
    jobs.add("local", 0.01, everywhere, exclusive=False)
    return jobs


async def test_one_runner_runs_exclusive_jobs_and_hands_over(
    engine: sa.Engine, tmp_path: Path
) -> None:
    counts: dict[str, int] = {}
    first = runner(engine, tmp_path, counts, "first")
    second = runner(engine, tmp_path, counts, "second")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(first.run)
        await anyio.sleep(0.2)  # the first takes the lock
        tasks.start_soon(second.run)
        await anyio.sleep(0.5)
        assert first.leader and not second.leader
        assert counts.get("first", 0) > 5 and counts.get("second", 0) == 0
        assert counts.get("first-local", 0) > 5 and counts.get("second-local", 0) > 5
        await first.stop()
        with anyio.fail_after(5):
            while not second.leader:
                await anyio.sleep(0.02)
        before = counts.get("second", 0)
        await anyio.sleep(0.3)
        assert counts["second"] > before
        await second.stop()
    assert counts["running"] == 0


async def test_stop_lets_the_running_job_finish(engine: sa.Engine, tmp_path: Path) -> None:
    jobs = JobRunner(job_lock(engine, tmp_path, "jobs"), retry=0.05, grace=5)
    states: list[str] = []

    async def slow() -> None:
        states.append("started")
        await anyio.sleep(0.5)
        states.append("finished")

    jobs.add("slow", 0.01, slow)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(jobs.run)
        with anyio.fail_after(5):
            while "started" not in states:
                await anyio.sleep(0.01)
        await jobs.stop()
    assert states == ["started", "finished"]
    assert not jobs.leader
