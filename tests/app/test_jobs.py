"""Jobs in the app: a training started on the Train page goes on when the page is left, the
sidebar shows it on the other pages, and its result is on the Train page when it is done."""

from __future__ import annotations

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
