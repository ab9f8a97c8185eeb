"""Background jobs with one lifecycle: :meth:`JobRunner.run` is started by the server (in each
worker), :meth:`JobRunner.stop` ends it on shutdown (SIGTERM), letting a job that is running
finish within a grace period.

Per-worker jobs run in every worker (e.g. flushing that worker's download counts). Exclusive
jobs (purges, retention, later GC and webhook delivery) run in one worker of all workers and
replicas at a time: the one holding the runner's lock (see :mod:`cargobay.metadata.locks`).
The others retry taking it every ``retry`` seconds, so when the holder stops or dies another
worker takes over.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread

from cargobay.ports.maintenance import JobLock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    interval: float
    run: Callable[[], Awaitable[object]]
    exclusive: bool = True


class JobRunner:
    def __init__(self, lock: JobLock | None, *, retry: float = 5.0, grace: float = 10.0) -> None:
        self.lock = lock
        self.retry = retry
        self.grace = grace
        self.jobs: list[Job] = []
        self._stopping: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self._leader = False
        #: Completed runs per job (for tests and status pages).
        self.runs: dict[str, int] = {}

    def add(
        self,
        name: str,
        interval: float,
        run: Callable[[], Awaitable[object]],
        *,
        exclusive: bool = True,
    ) -> None:
        self.jobs.append(Job(name, interval, run, exclusive))

    @property
    def leader(self) -> bool:
        """Whether this worker runs the exclusive jobs now."""
        return self._leader

    async def run(self) -> None:
        """Run every job on its interval until :meth:`stop`."""
        self._stopping = anyio.Event()
        self._stopped = anyio.Event()
        try:
            async with anyio.create_task_group() as tasks:
                if self.lock is not None and any(j.exclusive for j in self.jobs):
                    tasks.start_soon(self._elect)
                for job in self.jobs:
                    tasks.start_soon(self._loop, job)
        finally:
            if self.lock is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.lock.release)
            self._leader = False
            self._stopped.set()

    async def stop(self) -> None:
        """Stop taking new runs; wait up to ``grace`` seconds for the running ones."""
        if self._stopping is None or self._stopped is None:
            return
        self._stopping.set()
        with anyio.move_on_after(self.grace):
            await self._stopped.wait()

    async def _wait(self, seconds: float) -> bool:
        """Sleep; False once stopping."""
        assert self._stopping is not None
        with anyio.move_on_after(seconds):
            await self._stopping.wait()
        return not self._stopping.is_set()

    async def _elect(self) -> None:
        assert self.lock is not None
        lock = self.lock
        while True:
            try:
                self._leader = await anyio.to_thread.run_sync(
                    lock.held if self._leader else lock.try_acquire
                )
            except Exception:
                log.warning("background jobs: the job lock is unavailable", exc_info=True)
                self._leader = False
            if not await self._wait(self.retry):
                return

    async def _loop(self, job: Job) -> None:
        while await self._wait(job.interval):
            if job.exclusive and self.lock is not None and not self._leader:
                continue
            try:
                await job.run()
            except Exception:
                log.exception("background job %s failed", job.name)
            self.runs[job.name] = self.runs.get(job.name, 0) + 1
