"""Jobs in the app: a training started on the Train page goes on when the page is left, the
sidebar shows it on the other pages, and its result is on the Train page when it is done."""

from __future__ import annotations

import re
from pathlib import Path

from recsys.store import Store

from ..app_helpers import app_test, problems


def test_a_job_survives_a_page_switch_and_its_result_appears(app_db: Path, monkeypatch):
    monkeypatch.setenv("RECSYS_JOB_FOLLOW", "0")   # the page hands the job over at once
    at = app_test(app_db, "app_pages/train.py")
    at.selectbox(key="tr_model").set_value("bpr").run()
    at.number_input(key="tr_bpr_epochs").set_value(30).run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not problems(at) and not at.error
    job_id, model = at.session_state["tr_running"]
    assert model == "bpr"

    at.switch_page("app_pages/home.py").run()          # leave the page: the job goes on
    assert not problems(at)
    from ui import jobs

    runner = jobs.runner()
    job = runner.get(job_id)
    assert job is not None and job.kind == "train"
    if job.active:                                     # the sidebar shows it, with Stop
        assert any(b.label == "Stop" for b in at.sidebar.button)
    assert runner.wait(job_id, timeout=300).status == "finished", job.error

    at.switch_page("app_pages/train.py").run()         # back: the result is there
    assert not problems(at) and not at.error
    assert any("saved" in s.value for s in at.success)
    run_id = job.result.run.run_id
    assert at.session_state["tr_last"] == run_id
    store = Store(app_db)
    try:
        assert store.job(job_id)["status"] == "finished"
        runs = store.runs("demo", kind="model")
        assert runs[runs.run_id == run_id]["status"].iloc[0] == "finished"
    finally:
        store.close()


class _Bar:
    """Records the texts a progress bar showed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def progress(self, value, text=None):
        self.texts.append(text or "")

    def empty(self):
        pass


def test_the_progress_text_keeps_up_with_a_fast_job_when_drawing_is_slow(monkeypatch):
    """A training whose epochs (10 ms) are faster than the page draws its live chart (60 ms):
    the page draws once per refresh for all new epochs, so the progress text shows the
    epochs while the job runs (it stayed on the bare label until the end when every epoch's
    chart was drawn before the text, and the browser never saw "epoch N/200" in time to
    press Stop)."""
    import threading
    import time

    from recsys.core.progress import Progress
    from recsys.jobs.runner import Job
    from ui import jobs

    job = Job(job_id=1, kind="train", dataset="demo", params={}, lock=None,
              work=lambda progress: None, status="running")

    def epochs() -> None:
        for epoch in range(1, 201):
            p = Progress(epoch, 200, f"epoch {epoch}/200", metrics={"epoch": epoch})
            job.progress = p
            job.events.append(p)
            time.sleep(0.01)
        job.status = "finished"
        job.ended.set()

    class _Runner:
        def get(self, job_id):
            return job

        def stop(self, job_id):
            pass

    bar = _Bar()
    monkeypatch.setattr(jobs, "runner", lambda: _Runner())
    monkeypatch.setattr(jobs.st, "progress", lambda *a, **k: bar)
    monkeypatch.setattr(jobs.st, "session_state", {})
    batches: list[int] = []

    def draw(events) -> None:
        batches.append(len(events))
        time.sleep(0.06)             # a plotly chart of the curves so far

    worker = threading.Thread(target=epochs)
    worker.start()
    assert jobs.follow(1, "Training X", on_metrics=draw) is job
    worker.join()
    shown = [t for t in bar.texts if re.search(r"epoch \d+/200", t)]
    assert len(shown) >= 3, bar.texts            # the text moved on while the job ran
    assert sum(batches) == 200                   # every event handed over, once
    assert len(batches) < 200 / 2                # in batches, not one drawing per epoch
