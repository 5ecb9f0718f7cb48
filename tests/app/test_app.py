"""The dashboard as a whole (streamlit.testing.v1.AppTest on the small set-up demo): every page
renders and is in the navigation, a locked, truncated or internally damaged database is a
message on every page, the pages' inputs stay within their documented maxima and pass the app's
path policy to every use case that reads a path, the page icon is local, and the server freezes
its long-lived heap after a page."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from recsys.core import limits

from ..app_helpers import ROOT, app_test, html_of, problems
from ..conftest import DEMO_USERS
from ..damaged_files import DAMAGED, add_big_dataset, add_shoppers, damage, data_blocks

PAGES = ["app_pages/home.py", "app_pages/catalog.py", "app_pages/visual_search.py", "app_pages/user_picks.py",
         "app_pages/train.py", "app_pages/evaluate.py", "app_pages/data.py"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(app_db: Path, page: str):
    at = app_test(app_db, page)
    assert not problems(at), problems(at)
    assert at.title or "rs-hero" in html_of(at), f"{page} shows no heading"


def test_database_locked_by_another_process_is_a_message(tmp_path: Path):
    import subprocess
    import sys

    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; "
                               f"c = duckdb.connect({str(db)!r}); print('ok', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"ok"
        at = app_test(db)
        assert not problems(at)
        assert at.error and "in use by another process" in at.error[0].value
    finally:
        holder.kill()
        holder.wait()


def test_damaged_database_file_is_a_message_not_a_traceback(app_db: Path):
    # regression: a truncated database used to give a traceback on the Home page
    data = app_db.read_bytes()
    app_db.write_bytes(data[:len(data) // 3])
    at = app_test(app_db)
    assert not problems(at)
    assert at.error and "is damaged or incomplete" in at.error[0].value


def test_the_server_freezes_its_long_lived_heap_after_a_page(app_db: Path):
    """app.py ends every run with `resources.settle_heap()`: in a thread, once per process, the
    heavy libraries are imported and the heap alive after the first page is frozen, so full
    collections stop walking the ~600,000 objects of torch, plotly, pandas... (they cost
    330-390 ms each, one in almost every photo upload)."""
    import gc
    import sys

    from ui import resources

    at = app_test(app_db, "app_pages/visual_search.py")   # a page that ends with st.stop()
    assert not problems(at)
    settling = resources.settle_heap()              # the thread the page's run started
    settling.join(300)
    assert not settling.is_alive()
    assert gc.get_freeze_count() > 50_000
    assert {"torch", "plotly.graph_objects", "recsys.usecases.search"} <= set(sys.modules)


def test_page_icon_is_local():
    """A ":material/...:" page icon makes the browser fetch an SVG from fonts.gstatic.com on
    every page (an error offline); an emoji is drawn from a data URI. The browser test checks
    that the app makes no outside request at all."""
    import re

    source = (ROOT / "app.py").read_text()
    icon = re.search(r'^PAGE_ICON = "([^"]*)"', source, re.M)
    assert icon and not icon.group(1).startswith(":") and "page_icon=PAGE_ICON" in source


NEW_PAGES = ["app_pages/new_shopper.py", "app_pages/catalog_map.py", "app_pages/ab_test.py"]


def test_the_new_pages_are_in_the_navigation():
    from ui import state

    paths = [p.path for p in state.PAGES]
    assert all(p in paths for p in NEW_PAGES)
    assert all(Path(p).exists() or (Path(__file__).parents[2] / p).exists() for p in paths)


@pytest.mark.parametrize("page", NEW_PAGES)
def test_new_pages_render(app_db: Path, page: str):
    at = app_test(app_db, page)
    assert not problems(at), problems(at)
    assert at.title


EVERY_PAGE = ["app_pages/home.py", "app_pages/catalog.py", "app_pages/visual_search.py",
         "app_pages/catalog_map.py", "app_pages/user_picks.py", "app_pages/new_shopper.py",
         "app_pages/train.py", "app_pages/evaluate.py", "app_pages/ab_test.py",
         "app_pages/data.py"]


@pytest.fixture(scope="module")
def damaged_app_dbs(ready_demo_db: Path, tmp_path_factory) -> dict[str, Path]:
    """The set-up demo plus a large dataset 'big' (active), damaged two ways: the blocks of its
    titles (read by the pages), the blocks of its dataset column (read by the sidebar too)."""
    folder = tmp_path_factory.mktemp("damaged_app")
    healthy = folder / "healthy.duckdb"
    shutil.copy(ready_demo_db, healthy)
    add_big_dataset(healthy)
    add_shoppers(healthy, users=300, interactions=3000)
    out = {}
    for column in ("title", "dataset"):
        path = folder / column / "recsys.duckdb"
        path.parent.mkdir()
        shutil.copy(healthy, path)
        damage(path, data_blocks(path, "items", column), 4096)
        out[column] = path
    return out


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_every_page_shows_a_damaged_block_as_the_message(damaged_app_dbs, page: str):
    # the sidebar's query fails: before any page runs
    at = app_test(damaged_app_dbs["dataset"], page)
    assert not problems(at), problems(at)
    assert any(DAMAGED in e.value for e in at.error)
    # the page's own queries fail (the titles): the same message (never DuckDB's own words
    # alone, never a traceback), or the page did not need the titles
    at = app_test(damaged_app_dbs["title"], page)
    assert not problems(at), problems(at)
    assert all(DAMAGED in e.value for e in at.error if "checksum" in e.value)


def test_home_reads_the_damaged_titles_and_says_so(damaged_app_dbs):
    at = app_test(damaged_app_dbs["title"])
    assert not problems(at)
    assert [e.value for e in at.error if DAMAGED in e.value]


def test_page_inputs_stay_within_the_documented_maxima(app_db: Path):
    """A page's number widgets are bounded by Streamlit on the server: a value past the bound
    sent to the page (here through AppTest, as a crafted request would) is not used. Their
    bounds are within the use cases' maxima, and the page runs without an exception."""
    from ..app_helpers import app_test, problems

    at = app_test(app_db, "app_pages/ab_test.py")
    visits = at.slider(key="ab_visits")
    assert visits.max <= limits.MAX_VISITS and at.slider(key="ab_k").max <= limits.MAX_METRIC_K
    visits.set_value(10**9).run()
    at.button[0].click().run()
    assert not problems(at), problems(at)
    result = at.session_state["ab_result"][1]
    assert result.visits <= limits.MAX_VISITS
    assert result.population == DEMO_USERS and not at.error

    at.switch_page("app_pages/data.py")
    at.run()
    users = at.number_input(key="sim_users")
    assert users.max <= limits.MAX_SIMULATED_USERS
    users.set_value(10**9).run()
    assert at.number_input(key="sim_users").value <= limits.MAX_SIMULATED_USERS
    assert not problems(at), problems(at)


def test_pages_pass_the_app_policy_to_every_use_case_reading_a_path():
    """A guard for pages to come: every call of a use case that reads a server path passes
    `path_policy` (directly or through a helper such as `with_progress`)."""
    reading = {"import_catalog", "import_interactions", "import_features",
               "load_myntra_sample", "embed"}
    missing = []
    for page in sorted((ROOT / "app_pages").glob("*.py")) + sorted((ROOT / "ui").glob("*.py")):
        for node in ast.walk(ast.parse(page.read_text())):
            if not isinstance(node, ast.Call):
                continue
            named = [a.attr for a in [node.func, *node.args]
                     if isinstance(a, ast.Attribute) and a.attr in reading]
            if named and not any(k.arg == "path_policy" for k in node.keywords):
                missing.append(f"{page.name}:{node.lineno} {named[0]}")
    assert not missing, missing


def test_the_first_start_sets_up_then_draws_home_and_freezes_the_heap_after_home(
        app_db: Path, monkeypatch):
    """On a database without the demo, app.py runs the set-up with its progress, then runs the
    page again on the new data; the heap freeze (a ~1 s thread of imports and a collection)
    starts only after that page, not between the set-up and Home."""
    from recsys import usecases
    from ui import resources

    calls: list[str] = []
    real = usecases.readiness

    def readiness(store, dataset=None):
        ready = real(store, dataset)
        if "set_up" not in calls:            # as an empty database would say
            return usecases.Readiness(None)
        return ready

    def set_up(store, progress=None, **kwargs):
        calls.append("set_up")
        return real(store)

    monkeypatch.setattr(usecases, "readiness", readiness)
    monkeypatch.setattr(usecases, "set_up", set_up)
    monkeypatch.setattr(resources, "settle_heap", lambda: calls.append("settle"))
    at = app_test(app_db)
    assert not problems(at), problems(at)
    assert calls == ["set_up", "settle"]
    assert "Setting up the demo" not in html_of(at)          # Home, on the new data
    assert "rs-card" in html_of(at)
