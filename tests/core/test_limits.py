"""Unbounded sizes (issue 19, item 7): a billion results, visits, shoppers, clusters or epochs
asked through the command line, the use cases the pages call, and the pages themselves.

Result sizes are lowered to what there is (the catalog) or to their documented maximum, with a
note; work sizes beyond their maximum are refused with a message that says the range; seeds
outside numpy's range are refused instead of a `ValueError` traceback. Before the fix
`search --k 1000000000` and `abtest --visits 1000000000` died allocating 3.7 / 7.5 GB,
`abtest --k 1000000000` and `bench --k ...` peaked at 2.6-2.7 GB, `evaluate --k ...` asked
for 3.7 TB and `simulate --users 1000000000` ran until killed.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from recsys import usecases
from recsys.core import limits
from recsys.core.limits import LimitError
from recsys.store import Store

from ..cli_helpers import cli
from ..conftest import DEMO_ITEMS, DEMO_USERS
from ..test_models_helpers import DATASET, N_ITEMS, fill_store

BILLION = "1000000000"



@pytest.fixture
def ready(ready_demo_db: Path, tmp_path: Path):
    """A private copy of the set-up demo (64 products with vectors, 90 simulated shoppers)."""
    path = tmp_path / "recsys.duckdb"
    shutil.copy(ready_demo_db, path)
    store = Store(path)
    yield store
    store.close()


@pytest.fixture
def tiny(tmp_path: Path):
    store = Store(tmp_path / "tiny.duckdb")
    fill_store(store)
    yield store
    store.close()


# -- the rules ------------------------------------------------------------------------------------
def test_sizes_are_whole_numbers_in_range():
    assert limits.as_int(1e9, "k") == 1_000_000_000 and limits.as_int("12", "k") == 12
    for bad in (math.nan, math.inf, 2.5, True, "ten", None):
        with pytest.raises(LimitError, match="whole number"):
            limits.as_int(bad, "k")
    notes: list[str] = []
    assert limits.clamp(10**9, "k", 320, limits.MAX_RESULTS, "products", notes) == 320
    assert notes == ["k 1,000,000,000 was lowered to 320: there are 320 products."]
    assert limits.clamp(10**9, "k", 10**6, limits.MAX_RESULTS, notes=notes) == \
        limits.MAX_RESULTS and "the maximum is 10,000" in notes[-1]
    assert limits.clamp(7, "k", 320, notes=notes) == 7 and len(notes) == 2
    with pytest.raises(LimitError, match="at least 1"):
        limits.clamp(0, "k", 320)
    with pytest.raises(LimitError, match=r"visits must be between 1 and 1,000, got 1,000,000,000"):
        limits.check_range(10**9, "visits", 1, limits.MAX_VISITS)
    with pytest.raises(LimitError, match="between 0 and 4,294,967,295"):
        limits.check_seed(-1)
    with pytest.raises(LimitError, match="at most 50 values"):
        limits.check_list(range(51), "K")


# -- the command line ---------------------------------------------------------------------------
def test_a_billion_through_the_command_line(ready: Store, tmp_path: Path):
    db = str(ready.path)
    ready.close()
    # search: every product with vectors, a note; no 3.7 GB allocation
    code, out, err = cli("search", "--db", db, "--text", "red", "--k", BILLION, "--json")
    assert code == 0, err
    assert len(out["results"]) == DEMO_ITEMS
    assert out["notes"] == [f"k 1,000,000,000 was lowered to {DEMO_ITEMS}: there are "
                            f"{DEMO_ITEMS} products with vectors."]
    assert f"note: k 1,000,000,000 was lowered to {DEMO_ITEMS}" in err
    code, text, err = cli("search", "--db", db, "--text", "red", "--k", BILLION)
    assert code == 0 and f"Top {DEMO_ITEMS} of" in text and "note: k 1,000,000,000" in err
    # abtest: visits refused with the range; k lowered to the catalog
    code, _, err = cli("abtest", "--db", db, "--visits", BILLION, "--json")
    assert code == 2 and "visits must be between 1 and 1,000" in err
    assert "Traceback" not in err
    code, out, err = cli("abtest", "--db", db, "--a", "popularity", "--b", "popularity",
                         "--k", BILLION, "--json")
    assert code == 0, err
    assert out["k"] == DEMO_ITEMS and "was lowered" in out["notes"][0]
    # seeds numpy cannot take: a message, not a ValueError traceback
    for argv in (("abtest", "--seed", "-1"), ("coldstart-eval", "--seed", "-3"),
                 ("map", "--seed", "-1"), ("evaluate", "--models", "popularity",
                                           "--split-seed", "-1")):
        code, _, err = cli(*argv, "--db", db)
        assert code == 2 and "must be between 0 and 4,294,967,295" in err, (argv, err)
    # work sizes: refused at once with the range
    for argv, words in ((("simulate", "--users", BILLION), "users must be between 1 and 100,000"),
                        (("init-demo", "--items", BILLION, "--force"),
                         "items must be between 24 and 5,000"),
                        (("init-demo", "--users", BILLION, "--force"),
                         "users must be between 1 and 100,000"),
                        (("map", "--clusters", BILLION), "clusters must be between 2 and 200"),
                        (("purity", "--clusters", BILLION), "clusters must be between 2 and 200"),
                        (("embed", "--batch-size", BILLION), "batch size must be between 1"),
                        (("train-encoder", "--epochs", BILLION),
                         "epochs must be between 1 and 1,000"),
                        (("eval-encoder", "--phone-shots", BILLION),
                         "phone-style queries must be between 1 and 10,000")):
        code, _, err = cli(*argv, "--db", db)
        assert code == 2 and words in err, (argv, err)
    # the demo was not rebuilt by the refused init-demo
    store = Store(db)
    assert store.counts("demo")["items"] == DEMO_ITEMS
    store.close()


def test_metric_cutoffs_past_the_maximum_are_lowered(tiny: Store):
    db = str(tiny.path)
    tiny.close()
    code, out, err = cli("evaluate", "--db", db, "--models", "popularity", "--k", "5", BILLION,
                         "--json")
    assert code == 0, err
    assert {r["k"] for r in out if r.get("k")} == {5, limits.MAX_METRIC_K}
    assert "note: K 1,000,000,000 was lowered to 100: the maximum is 100." in err
    code, out, err = cli("bench", "--db", db, "--models", "popularity", "--users", BILLION,
                         "--k", BILLION, "--json")
    assert code == 0, err
    assert out["k"] == limits.MAX_METRIC_K and out["latency_users"] == 20
    assert any("users 1,000,000,000 was lowered to 20" in n for n in out["notes"])


# -- the use cases the pages call ---------------------------------------------------------------
def test_use_cases_lower_result_sizes_with_a_note(ready: Store):
    user = ready.users("demo")["user_id"].iloc[0]
    recs = usecases.recommend_for(ready, "demo", user, "popularity", 10**9,
                                  train_if_missing=True)
    assert recs.notes and "lowered to 64" in recs.notes[0]
    assert 0 < len(recs.items) <= DEMO_ITEMS and recs.to_dict()["notes"] == recs.notes
    hits = usecases.search_for_shopper(ready, "demo", user_id=user, text="red", k=10**9,
                                       pool=10**9, model="popularity")
    assert len(hits.results) == DEMO_ITEMS
    assert [n.split(" was")[0] for n in hits.notes] == ["k 1,000,000,000", "pool 1,000,000,000"]
    liked = [str(i) for i in ready.item_ids("demo")[:2]]
    picks = usecases.new_shopper_picks(ready, "demo", liked, model="popularity", k=10**9)
    assert len(picks.items) <= DEMO_ITEMS and "lowered to 64" in picks.notes[0]
    page = usecases.search_catalog(ready, "demo", query="a bag", k=10**9)
    assert len(page.items) == DEMO_ITEMS and "the maximum is 10,000" in page.notes[0]
    cmap = usecases.catalog_map(ready, "demo", clusters=200, method="tsne")
    assert cmap.clusters["cluster"].nunique() <= DEMO_ITEMS
    assert "clusters 200 was lowered to 64" in cmap.notes[0]
    with pytest.raises(LimitError, match="visits must be between 1 and 1,000"):
        usecases.ab_test(ready, "demo", "popularity", "popularity", visits=10**9)
    with pytest.raises(LimitError, match="users must be between 1 and 100,000"):
        usecases.simulate(ready, "demo", users=10**9)
    with pytest.raises(LimitError, match="whole number"):
        usecases.search_similar(ready, "demo", text="red", k=float("nan"))
    assert ready.counts("demo")["users"] == DEMO_USERS         # nothing was replaced


def test_evaluation_of_a_small_catalog_keeps_k_past_its_size(tiny: Store):
    """K larger than the catalog is measured as asked (recall@K is 1 there); only K past
    `MAX_METRIC_K` is lowered."""
    frame = usecases.evaluate(tiny, DATASET, ["popularity"], ks=(5, N_ITEMS + 10))
    assert set(frame["k"].dropna()) == {5, N_ITEMS + 10} and not frame.attrs["notes"]


# -- the pages ---------------------------------------------------------------------------------
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
