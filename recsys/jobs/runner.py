"""A small job runner on `concurrent.futures`, owned by one process (the Streamlit server).

Each job is a function `work(progress) -> result` with a `kind`, a `dataset` and plain
`params`. The runner records it in the store (`Store.add_job`...), runs it on a thread pool,
writes its progress (at most every `every` seconds) and keeps the latest `Progress` events and
the result in memory for the pages. `stop(job_id)` makes the job's next progress event raise
`JobStopped`: the use cases stop cleanly on an exception from their callback (a training run is
marked interrupted, embedding keeps its finished shards).

Two jobs that write the same dataset never run at once: a job with a `lock` key (the dataset it
writes) waits, `queued`, until the job before it with the same key has ended. DuckDB allows one
writer process: every job writes through the runner's own `Store`.

Ended jobs do not pile up: after each job ends, the runner keeps the newest `keep` ended jobs
that ended last (default `KEEP_JOBS`, or `$RECSYS_KEEP_JOBS`) in the table and in memory and
deletes the others; queued and running jobs are never pruned.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from recsys.core.errors import RecsysError
from recsys.core.progress import Progress, ProgressCallback

ENDED = ("finished", "failed", "stopped", "interrupted")
KEEP_JOBS = 200
"""Ended jobs kept by default (the newest); `$RECSYS_KEEP_JOBS` overrides it."""


def keep_jobs(value: int | str | None = None) -> int:
    """How many ended jobs a runner keeps: `value`, else `$RECSYS_KEEP_JOBS`, else
    `KEEP_JOBS` (a value that is not a whole number >= 1 falls back to the default)."""
    raw = os.environ.get("RECSYS_KEEP_JOBS") if value is None else value
    try:
        keep = int(raw) if raw is not None else KEEP_JOBS
    except (TypeError, ValueError):
        return KEEP_JOBS
    return keep if keep >= 1 else KEEP_JOBS


class JobStopped(BaseException):
    """Raised from a job's progress callback after Stop was pressed.

    A `BaseException`, like Ctrl-C and Streamlit leaving a page: the use cases mark their run
    interrupted (not failed) on those, and no `except Exception` on the way swallows it."""

    def __init__(self, job_id: int):
        super().__init__(f"Job {job_id} was stopped.")


@dataclass
class Job:
    """What the runner keeps in memory about a job it started."""

    job_id: int
    kind: str
    dataset: str | None
    params: dict
    lock: str | None
    work: Callable[[ProgressCallback], Any] = field(repr=False)
    status: str = "queued"
    progress: Progress = field(default_factory=lambda: Progress(0.0, 1.0))
    events: list[Progress] = field(default_factory=list, repr=False)  # those with metrics
    result: Any = None
    error: str | None = None
    started: float | None = None
    seconds: float | None = None
    ended_at: float | None = None                  # perf_counter() when it ended
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    ended: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


class JobRunner:
    """Runs jobs in the background, records them in `store` (see the module doc)."""

    def __init__(self, store, workers: int = 2, every: float = 0.5,
                 summarise: Callable[[str, Any], dict | None] | None = None,
                 keep: int | None = None):
        self.store = store
        self.every = every
        self.keep = keep_jobs(keep)
        self.summarise = summarise or (lambda kind, result: None)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recsys-job")
        self._lock = threading.RLock()      # _end (which prunes) runs under it in stop()
        self._jobs: dict[int, Job] = {}
        self._busy: set[str] = set()                 # lock keys of running (or due) jobs
        self._waiting: dict[str, deque[Job]] = {}    # lock key -> jobs queued behind
        self.prune()                 # a table that grew before (an older version, a crash)

    # -- starting, stopping, waiting --------------------------------------------------------
    def submit(self, kind: str, work: Callable[[ProgressCallback], Any], *,
               dataset: str | None = None, params: dict | None = None,
               lock: str | None = None) -> int:
        """Record and start a job (queued behind a running job with the same `lock`)."""
        params = dict(params or {})
        job_id = self.store.add_job(kind, dataset, params)
        job = Job(job_id, kind, dataset, params, lock, work)
        with self._lock:
            self._jobs[job_id] = job
            if lock is not None and lock in self._busy:
                self._waiting.setdefault(lock, deque()).append(job)
                return job_id
            if lock is not None:
                self._busy.add(lock)
        self._pool.submit(self._run, job)
        return job_id

    def stop(self, job_id: int) -> bool:
        """Ask a job to stop (at its next progress event; a queued job ends at once)."""
        job = self._jobs.get(int(job_id))
        if job is None or not job.active:
            return False
        job.stop.set()
        with self._lock:
            queue = self._waiting.get(job.lock or "")
            if queue is not None and job in queue:
                queue.remove(job)
                self._end(job, "stopped", error="stopped before it started")
        return True

    def wait(self, job_id: int, timeout: float | None = None) -> Job | None:
        """Block until the job ends (or `timeout`); the job, or None if unknown here."""
        job = self._jobs.get(int(job_id))
        if job is not None:
            job.ended.wait(timeout)
        return job

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(int(job_id))

    def recent(self, seconds: float) -> list[Job]:
        """Jobs of this runner that ended in the last `seconds`, newest first."""
        now = time.perf_counter()
        return sorted((j for j in list(self._jobs.values()) if not j.active
                       and j.ended_at is not None and now - j.ended_at < seconds),
                      key=lambda j: -j.job_id)

    def active(self) -> list[Job]:
        """Jobs of this runner not ended yet, oldest first."""
        return [j for j in list(self._jobs.values()) if j.active]

    def find(self, kind: str, dataset: str | None = None, params: dict | None = None,
             active_only: bool = True) -> Job | None:
        """The newest job of `kind` on `dataset` with exactly `params` (to re-attach a page to
        the job it started before it was left)."""
        for job in sorted(self._jobs.values(), key=lambda j: -j.job_id):
            if job.kind == kind and job.dataset == dataset and \
                    (params is None or job.params == params) and (job.active or not active_only):
                return job
        return None

    def shutdown(self) -> None:
        for job in self.active():
            self.stop(job.job_id)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- inside a worker --------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        try:
            if job.stop.is_set():
                self._end(job, "stopped", error="stopped before it started")
                return
            job.status = "running"
            job.started = time.perf_counter()
            self.store.start_job(job.job_id)
            last = [0.0]

            def progress(p: Progress) -> None:
                if job.stop.is_set():
                    raise JobStopped(job.job_id)
                job.progress = p
                if p.metrics:
                    job.events.append(p)
                now = time.perf_counter()
                if now - last[0] >= self.every or p.fraction >= 1.0:
                    last[0] = now
                    self.store.job_progress(job.job_id, p.done, p.total, p.message, p.stage)

            try:
                job.result = job.work(progress)
            except JobStopped:
                self._end(job, "stopped", error="stopped by a person")
            except RecsysError as exc:
                self._end(job, "stopped" if job.stop.is_set() else "failed", error=str(exc))
            except Exception as exc:  # noqa: BLE001 - recorded on the job, shown by the pages
                detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
                self._end(job, "stopped" if job.stop.is_set() else "failed", error=detail)
            else:
                try:
                    summary = self.summarise(job.kind, job.result)
                except Exception:  # noqa: BLE001 - a summary is a nicety, never a failure
                    summary = None
                self._end(job, "finished", result=summary)
        finally:
            self._next(job)

    def _end(self, job: Job, status: str, result: dict | None = None,
             error: str | None = None) -> None:
        job.status = status
        job.error = error
        job.ended_at = time.perf_counter()
        job.seconds = None if job.started is None else job.ended_at - job.started
        try:
            self.store.end_job(job.job_id, status, job.seconds, result, error)
        finally:
            try:
                self.prune()
            finally:
                job.ended.set()

    def prune(self) -> int:
        """Forget the ended jobs but the `keep` that ended last, in the table and in memory;
        returns how many rows were deleted. A failure to prune is never a job's."""
        with self._lock:
            ended = sorted((j for j in self._jobs.values() if not j.active),
                           key=lambda j: (-(j.ended_at or 0.0), -j.job_id))
            for old in ended[self.keep:]:
                self._jobs.pop(old.job_id, None)
        try:
            return self.store.prune_jobs(self.keep)
        except Exception:  # noqa: BLE001 - e.g. the database is busy: pruned next time
            return 0

    def _next(self, job: Job) -> None:
        """Start the job queued behind `job`'s lock, if any."""
        if job.lock is None:
            return
        with self._lock:
            queue = self._waiting.get(job.lock)
            nxt = queue.popleft() if queue else None
            if nxt is None:
                self._busy.discard(job.lock)
                self._waiting.pop(job.lock, None)
                return
        self._pool.submit(self._run, nxt)
