"""The last long actions of the pages run as background jobs (like the others): the catalog
map's "Compare", User picks' "Train now" and the new-shopper measurement. Each starts a job of
the server's runner, goes on when the page is left (the sidebar shows it with Stop), and its
result is on the page when the visitor comes back."""

from __future__ import annotations

from pathlib import Path

from ..app_helpers import app_test, html_of, problems
from .test_train import log_only_db  # noqa: F401 - a fixture: a dataset without any model


def _leave_and_wait(at, job_id: int, kind: str):
    """Leave the page while the job runs, check it goes on, and wait for its end."""
    from ui import jobs

    at.switch_page("app_pages/home.py").run()
    assert not problems(at)
    job = jobs.runner().get(job_id)
    assert job is not None and job.kind == kind
    if job.active:                                       # the sidebar shows it, with Stop
        assert any(b.label == "Stop" for b in at.sidebar.button)
    job = jobs.runner().wait(job_id, timeout=300)
    assert job.status == "finished", job.error
    return job


def test_catalog_map_compare_runs_as_a_job(app_db: Path, monkeypatch):
    at = app_test(app_db, "app_pages/catalog_map.py")     # the map's own job, followed
    assert not problems(at)
    monkeypatch.setenv("RECSYS_JOB_FOLLOW", "0")          # the page hands the job over at once
    next(b for b in at.button if b.label == "Compare photo, text and fused").click().run()
    assert not problems(at) and not at.error
    pending = [k for k in at.session_state if str(k).startswith("map_purity:")
               and str(k).endswith(":job")]
    assert len(pending) == 1
    job = _leave_and_wait(at, at.session_state[pending[0]], "purity")
    assert {"vectors", "purity", "nmi"} <= set(job.result.columns)

    at.switch_page("app_pages/catalog_map.py").run()     # back: the comparison is drawn
    assert not problems(at) and not at.error
    assert "group products by type best" in html_of(at)


def test_user_picks_train_now_runs_as_a_job(log_only_db: Path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("RECSYS_JOB_FOLLOW", "0")
    at = app_test(log_only_db, "app_pages/user_picks.py")
    assert any("No trained model" in w.value for w in at.warning)
    next(b for b in at.button if b.label.startswith("Train ")).click().run()
    assert not problems(at) and not at.error
    job = _leave_and_wait(at, at.session_state["up_training"], "train")
    assert job.dataset == "log"

    at.switch_page("app_pages/user_picks.py").run()      # back: the picks are there
    assert not problems(at) and not at.error
    assert 'class="rs-weights"' in html_of(at)
    assert "up_training" not in at.session_state


def test_new_shopper_measurement_runs_as_a_job(app_db: Path, monkeypatch):
    monkeypatch.setenv("RECSYS_JOB_FOLLOW", "0")
    at = app_test(app_db, "app_pages/new_shopper.py")
    at.multiselect(key="ns_eval_models").set_value(["popularity", "content"]).run()
    at.number_input(key="ns_eval_n").set_value(10).run()
    next(b for b in at.button if b.label == "Measure").click().run()
    assert not problems(at) and not at.error
    job = _leave_and_wait(at, at.session_state["ns_eval_job"], "cold_start")
    assert set(job.result["model"]) == {"popularity", "content"}

    at.switch_page("app_pages/new_shopper.py").run()     # back: the measurement is drawn
    assert not problems(at) and not at.error
    frame = at.session_state["ns_eval"][1]
    assert set(frame["history"]) == {1, 3, 5}
    assert len(at.get("plotly_chart")) == 1
