"""Background jobs in the app: the server's one runner, starting a job from a page, following
it live in the page, and the sidebar panel that every page shows.

Long work (align + embed, training, evaluation, the catalog map, imports...) runs as a job of
the server process (`recsys.jobs.runner.JobRunner`, one per server: `st.cache_resource`), so
it goes on when the page is left, the tab closed or a second browser opened. A page that
starts a job follows it with a progress bar for up to `follow_seconds()` (then, or when the
page is left, the sidebar keeps showing it); the sidebar lists the running jobs with their
progress and a Stop button on every page, and reruns the page when one ends, so its results
appear.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import streamlit as st

from recsys import usecases
from recsys.core.progress import Progress
from recsys.jobs.runner import Job, JobRunner
from ui import resources

SEEN = "_jobs_seen"            # session key: ids of the active jobs the sidebar last drew
RECENT_SECONDS = 120           # ended jobs stay in the sidebar this long


@st.cache_resource(show_spinner=False)
def _runner(db: str) -> JobRunner:
    return JobRunner(resources.get_store(), workers=2, summarise=usecases.job_summary)


def runner() -> JobRunner:
    """The server's job runner (one per database, shared by every session)."""
    from recsys.core import config
    return _runner(str(config.db_path()))


def follow_seconds() -> float:
    """How long a page follows a job it started before leaving it to the sidebar
    (`RECSYS_JOB_FOLLOW`, default 3600 s)."""
    try:
        return max(0.0, float(os.environ.get("RECSYS_JOB_FOLLOW", "3600")))
    except ValueError:
        return 3600.0


def start(kind: str, *args: Any, dataset: str | None = None, **kwargs: Any) -> int:
    """Start `kind`'s use case as a background job (see `recsys.usecases.jobs`)."""
    job_id = usecases.start_job(runner(), resources.get_store(), kind, *args, dataset=dataset,
                                **kwargs)
    st.session_state.setdefault(SEEN, set()).add(job_id)
    return job_id


def find(kind: str, dataset: str | None, params: dict | None = None) -> Job | None:
    """A job of `kind` on `dataset` still queued or running (to re-attach a page to it)."""
    return runner().find(kind, dataset, params)


def follow(job_id: int, label: str,
           on_metrics: Callable[[list[Progress]], None] | None = None,
           stop_label: str = "Stop") -> Job | None:
    """Show the job's progress in the page until it ends (or `follow_seconds()` pass: then
    say it goes on in the background and return it still running). `on_metrics` gets the
    job's new events (epoch losses...) as a list, once per refresh (4 a second), so a
    slow drawing (a chart) never falls behind a fast job: the progress text shows the job's
    latest step, whatever the drawing costs. Leaving the page stops the following, never
    the job."""
    job = runner().get(job_id)
    if job is None:
        return None
    bar = st.progress(0.0, text=label)
    stop = st.empty()
    stop.button(stop_label, key=f"follow_stop_{job_id}", icon=":material/stop_circle:",
                on_click=runner().stop, args=(job_id,),
                help="Stops the job at its next step (a training run is marked interrupted).")
    seen = 0
    deadline = time.monotonic() + follow_seconds()
    while job.active and time.monotonic() < deadline:
        p = job.progress
        text = f"{label}: {p.message}" if p.message else label
        if job.status == "queued":
            text = f"{label}: waiting for another job on this dataset to end"
        bar.progress(min(1.0, p.fraction), text=text[:160])
        seen = _hand_over(job, seen, on_metrics)
        job.ended.wait(0.25)
    _hand_over(job, seen, on_metrics)
    stop.empty()
    if not job.active:      # the page shows the result itself: no rerun from the sidebar
        st.session_state.setdefault(SEEN, set()).discard(job_id)
    if job.active:
        bar.progress(min(1.0, job.progress.fraction),
                     text=f"{label}: goes on in the background (see the sidebar)")
    else:
        bar.empty()
    return job


def _hand_over(job: Job, seen: int, on_metrics: Callable[[list[Progress]], None] | None
               ) -> int:
    """Give `on_metrics` the events after the first `seen` in one list; the new count."""
    events = job.events[seen:]
    if on_metrics is not None and events:
        on_metrics(list(events))
    return seen + len(events)


def follow_pending(key: str, label: str, what: str) -> Job | None:
    """Follow the job this session started and keeps under session key `key` (its id):
    returns it once when it has finished (then forgets it); None when there is none, or it
    failed or was stopped (said in the page). While it runs past `follow_seconds()` the page
    stops here; coming back to the page follows it again."""
    job_id = st.session_state.get(key)
    if job_id is None:
        return None
    job = follow(job_id, label)
    if job is not None and job.active:
        st.stop()
    st.session_state.pop(key, None)
    if job is None:
        return None
    if job.status != "finished":
        ended_message(job, what)
        return None
    return job


def ended_message(job: Job, what: str) -> None:
    """Say how a job that did not finish ended (stopped, failed)."""
    if job.status == "stopped":
        st.warning(f"{what} was stopped.", icon=":material/stop_circle:")
    elif job.status in ("failed", "interrupted"):
        st.error(f"{what} failed: {job.error}", icon=":material/error:")


def sidebar() -> None:
    """The jobs panel of the sidebar (every page): running jobs with progress and Stop, the
    ones that ended in the last minutes; refreshes itself every second while jobs run."""
    jobs = runner()
    if not jobs.active() and not _recent(jobs) and not st.session_state.get(SEEN):
        return
    with st.sidebar:
        if jobs.active():
            _live_panel()
        else:
            _panel()


def _recent(jobs: JobRunner) -> list[Job]:
    return jobs.recent(RECENT_SECONDS)


@st.fragment(run_every=1.0)
def _live_panel() -> None:
    _panel()


def _panel() -> None:
    jobs = runner()
    active = jobs.active()
    seen: set[int] = st.session_state.setdefault(SEEN, set())
    if seen - {j.job_id for j in active}:
        # a job this session saw running has ended: rerun the page so its result appears
        st.session_state[SEEN] = {j.job_id for j in active}
        st.rerun(scope="app")
    seen.update(j.job_id for j in active)
    recent = _recent(jobs)
    if not active and not recent:
        return
    st.markdown("**Jobs**")
    for job in active:
        label = usecases.JOB_KINDS[job.kind].label
        where = f" · {job.dataset}" if job.dataset else ""
        p = job.progress
        text = "waiting for the dataset" if job.status == "queued" else (p.message or "running")
        st.progress(min(1.0, p.fraction), text=f"{label}{where}: {text}"[:120])
        st.button("Stop", key=f"job_stop_{job.job_id}", on_click=jobs.stop,
                  args=(job.job_id,), icon=":material/stop_circle:")
    for job in recent[:3]:
        label = usecases.JOB_KINDS[job.kind].label
        mark = {"finished": ":material/check:", "stopped": ":material/stop_circle:"}.get(
            job.status, ":material/error:")
        secs = f" in {job.seconds:.0f} s" if job.seconds is not None else ""
        st.caption(f"{mark} {label}{' · ' + job.dataset if job.dataset else ''}: "
                   f"{job.status}{secs}" + (f" ({job.error})" if job.status == "failed" else ""))
