"""The background job runner and the jobs table: progress, Stop through the progress callback,
writers of one dataset queue, a failure is recorded, a restart marks running jobs interrupted,
kinds run their use cases, `python -m recsys jobs` lists them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from recsys import usecases
from recsys.core.progress import report
from recsys.jobs.runner import JobRunner
from recsys.store import Store


def _wait_status(store: Store, job_id: int, status: str, timeout: float = 10) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        row = store.job(job_id)
        if row is not None and row["status"] == status:
            return row
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} is {store.job(job_id)['status']}, not {status}")


def test_a_job_runs_records_progress_and_keeps_its_result(store: Store):
    runner = JobRunner(store, every=0.0, summarise=lambda kind, r: {"total": r})

    def work(progress):
        for i in range(5):
            report(progress, i + 1, 5, f"step {i + 1}", stage="count", loss=0.5 / (i + 1))
        return 15

    job_id = runner.submit("demo-kind", work, dataset="d", params={"n": 5})
    job = runner.wait(job_id, timeout=10)
    assert job.status == "finished" and job.result == 15
    assert [e.metrics["loss"] for e in job.events] == [0.5, 0.25, 0.5 / 3, 0.125, 0.1]
    row = store.job(job_id)
    assert row["status"] == "finished" and row["done"] == 5 and row["total"] == 5
    assert row["message"] == "step 5" and row["seconds"] >= 0
    assert json.loads(row["result"]) == {"total": 15}
    assert json.loads(row["params"]) == {"n": 5}
    runner.shutdown()


def test_stop_raises_through_the_progress_callback(store: Store):
    runner = JobRunner(store, every=0.0)
    started, cleaned = threading.Event(), threading.Event()

    def work(progress):
        try:
            for i in range(10_000):
                started.set()
                report(progress, i, 10_000, "busy")
                time.sleep(0.01)
        finally:
            cleaned.set()            # the use case's own clean-up runs
        return "never"

    job_id = runner.submit("slow", work)
    assert started.wait(10)
    assert runner.stop(job_id)
    job = runner.wait(job_id, timeout=10)
    assert job.status == "stopped" and job.result is None and cleaned.is_set()
    assert store.job(job_id)["status"] == "stopped"
    assert not runner.stop(job_id)           # ended: nothing to stop
    runner.shutdown()


def test_stop_is_not_swallowed_by_a_broad_except(store: Store):
    runner = JobRunner(store, every=0.0)
    started = threading.Event()

    def work(progress):
        for i in range(10_000):
            started.set()
            try:
                report(progress, i, 10_000)
            except Exception:            # a use case's own error handling
                return "swallowed"
            time.sleep(0.01)

    job_id = runner.submit("slow", work)
    assert started.wait(10)
    runner.stop(job_id)
    assert runner.wait(job_id, timeout=10).status == "stopped"
    runner.shutdown()


def test_stopping_a_training_job_marks_its_run_interrupted(demo_store: Store):
    runner = JobRunner(demo_store, every=0.0, summarise=usecases.job_summary)
    job_id = usecases.start_job(runner, demo_store, "train", "bpr",
                                {"epochs": 500, "patience": 100}, dataset="demo")
    job = runner.get(job_id)
    end = time.monotonic() + 120
    while not job.events and job.active and time.monotonic() < end:
        time.sleep(0.05)
    assert job.events, job.error or "no epoch reported"
    runner.stop(job_id)
    assert runner.wait(job_id, timeout=60).status == "stopped"
    runs = demo_store.runs("demo", kind="model")
    assert runs.iloc[0]["model"] == "bpr" and runs.iloc[0]["status"] == "interrupted"
    runner.shutdown()


def test_writers_of_one_dataset_queue_others_run_alongside(store: Store):
    runner = JobRunner(store, workers=3, every=0.0)
    release = threading.Event()
    order: list[str] = []

    def blocking(name):
        def work(progress):
            order.append(f"{name} start")
            report(progress, 0, 1, "waiting")
            release.wait(10)
            order.append(f"{name} end")
        return work

    first = runner.submit("embed", blocking("first"), dataset="a", lock="dataset:a")
    _wait_status(store, first, "running")
    second = runner.submit("train", blocking("second"), dataset="a", lock="dataset:a")
    other = runner.submit("train", blocking("other"), dataset="b", lock="dataset:b")
    _wait_status(store, other, "running")            # another dataset: not held up
    time.sleep(0.2)
    assert store.job(second)["status"] == "queued"   # same dataset: waits its turn
    assert runner.get(second).status == "queued"
    release.set()
    for job_id in (first, second, other):
        assert runner.wait(job_id, timeout=10).status == "finished"
    assert order.index("first end") < order.index("second start")
    runner.shutdown()


def test_a_queued_job_can_be_stopped_before_it_starts(store: Store):
    runner = JobRunner(store, every=0.0)
    release = threading.Event()
    first = runner.submit("embed", lambda p: release.wait(10), dataset="a", lock="dataset:a")
    _wait_status(store, first, "running")
    ran = []
    second = runner.submit("train", lambda p: ran.append(1), dataset="a", lock="dataset:a")
    assert runner.stop(second)
    assert store.job(second)["status"] == "stopped"
    release.set()
    runner.wait(first, timeout=10)
    time.sleep(0.1)
    assert ran == []
    runner.shutdown()


def test_a_failure_is_recorded_with_its_message(store: Store):
    runner = JobRunner(store, every=0.0)

    def work(progress):
        raise ValueError("the file has no item_id column")

    job = runner.wait(runner.submit("import_catalog", work), timeout=10)
    assert job.status == "failed" and "no item_id column" in job.error
    row = store.job(job.job_id)
    assert row["status"] == "failed" and "no item_id column" in row["error"]
    runner.shutdown()


def test_jobs_left_running_by_a_dead_process_are_interrupted(tmp_path: Path):
    db = tmp_path / "jobs.duckdb"
    code = ("import os; from recsys.store import Store; s = Store(%r); "
            "j = s.add_job('embed', 'demo', {}); s.start_job(j); "
            "q = s.add_job('train', 'demo', {}); s.close(); os._exit(0)") % str(db)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    store = Store(db)
    try:
        rows = store.jobs()
        assert list(rows["status"]) == ["interrupted", "interrupted"]
        assert rows["error"].str.contains("stopped before the job ended").all()
        mine = store.add_job("map", "demo", {})      # this process's own: left alone
        Store(db).close()
        assert store.job(mine)["status"] == "queued"
    finally:
        store.close()


def test_start_job_runs_the_kinds_use_case(demo_store: Store):
    runner = JobRunner(demo_store, every=0.0, summarise=usecases.job_summary)
    job_id = usecases.start_job(runner, demo_store, "simulate", dataset="demo", users=50)
    job = runner.wait(job_id, timeout=60)
    assert job.status == "finished", job.error
    assert job.result["users"] == 50
    row = demo_store.job(job_id)
    assert json.loads(row["params"]) == {"args": ["demo"], "users": 50}
    assert json.loads(row["result"])["users"] == 50
    assert demo_store.counts("demo")["users"] == 50
    listed = usecases.list_jobs(demo_store)
    assert listed.iloc[0]["kind"] == "simulate" and listed.iloc[0]["progress"] == 1.0
    runner.shutdown()


def test_cli_lists_jobs(tmp_path: Path):
    from recsys.cli import main

    db = tmp_path / "cli.duckdb"
    store = Store(db)
    done = store.add_job("train", "demo", {"args": ["demo", "bpr"]})
    store.start_job(done)
    store.job_progress(done, 10, 10, "epoch 10/10")
    store.end_job(done, "finished", 3.5, {"run_id": 7})
    store.close()
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["jobs", "--db", str(db)]) == 0
    text = out.getvalue()
    assert "train" in text and "finished" in text and "100%" in text and "3.5" in text
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["jobs", "--db", str(db), "--active", "--json"]) == 0
    assert json.loads(out.getvalue()) == []


def test_the_runner_keeps_only_the_newest_ended_jobs(store: Store, monkeypatch):
    """Old ended jobs are pruned (table and memory) so the table does not grow forever; a
    running job is never pruned, however old, and once it ends it counts as new; the number
    kept is configurable."""
    from recsys.jobs.runner import KEEP_JOBS, keep_jobs

    release = threading.Event()
    runner = JobRunner(store, every=0.0, keep=3)
    long_id = runner.submit("slow", lambda progress: release.wait(10))
    ids = []
    for i in range(6):
        ids.append(runner.submit("quick", lambda progress, i=i: i))
        runner.wait(ids[-1], timeout=10)
    listed = store.jobs()
    assert set(listed["job_id"]) == {long_id, *ids[-3:]}
    assert store.job(long_id)["status"] == "running"
    assert runner.get(ids[0]) is None and runner.get(ids[-1]).result == 5
    release.set()
    runner.wait(long_id, timeout=10)
    assert set(store.jobs()["job_id"]) == {long_id, ids[-1], ids[-2]}   # the 3 ended last
    assert runner.get(long_id) is not None and runner.get(ids[-3]) is None
    assert len(JobRunner(store, keep=1).store.jobs()) == 1     # a new runner prunes at once
    monkeypatch.setenv("RECSYS_KEEP_JOBS", "7")
    assert keep_jobs() == 7 and JobRunner(store).keep == 7
    monkeypatch.setenv("RECSYS_KEEP_JOBS", "lots")
    assert keep_jobs() == KEEP_JOBS
    assert keep_jobs(0) == KEEP_JOBS
