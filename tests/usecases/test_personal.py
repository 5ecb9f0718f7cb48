"""Beyond ranked lists (issue 13): personalised search, a new shopper's first picks (fold-in),
the catalog map with cluster purity, and the simulated A/B test.

Domain functions are checked on numbers whose right answer is known by hand; the use cases on
the tiny data set (`test_models_helpers`) or on the small demo (simulated shoppers with hidden
tastes, an aligned encoder); the commands with --json on the same databases.
"""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import usecases
from recsys.cli import main
from recsys.store import Store

from ..test_models_helpers import DATASET, GROUP, fill_store


def cli(*argv: str) -> tuple[int, dict | list | str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    text = out.getvalue()
    return code, (json.loads(text) if "--json" in argv and code == 0 else text), err.getvalue()


@pytest.fixture
def tiny(tmp_path: Path):
    """The tiny two-group data set in a store, with an EASE run."""
    store = Store(tmp_path / "tiny.duckdb")
    fill_store(store)
    usecases.train(store, DATASET, "ease")
    yield store
    store.close()


@pytest.fixture
def ready(ready_demo_db: Path, tmp_path: Path):
    """A private copy of the set-up demo: simulated shoppers, aligned encoder, vectors, the
    default model."""
    path = tmp_path / "recsys.duckdb"
    shutil.copy(ready_demo_db, path)
    store = Store(path)
    yield store
    store.close()


# -- personalised search: the blend ------------------------------------------------------------
class TestBlend:
    def test_taste_zero_is_the_query_order_and_one_the_taste_order(self):
        from recsys.search.personal import blend

        query = np.array([0.9, 0.8, 0.7, 0.6])
        liking = np.array([1.0, 3.0, 2.0, 4.0])
        assert list(blend(query, liking, 0.0).order) == [0, 1, 2, 3]
        assert list(blend(query, liking, 1.0).order) == [3, 1, 2, 0]
        half = blend(query, liking, 0.5)
        # rescaled: query (1, 2/3, 1/3, 0), taste (0, 2/3, 1/3, 1): item 1 scores 2/3
        assert list(half.order) == [1, 0, 3, 2]
        np.testing.assert_allclose(half.score, [2 / 3, 0.5, 0.5, 1 / 3])
        np.testing.assert_allclose(half.query_part + half.taste_part, half.score)
        np.testing.assert_allclose(half.query_share, [0.5, 1.0, 0.0, 0.5])
        assert (blend(query, liking, 0.0).query_share == 1.0).all()

    def test_bad_taste_weights_are_clear_errors(self):
        from recsys.search.personal import BlendError, blend

        with pytest.raises(BlendError, match="between 0"):
            blend(np.ones(3), np.ones(3), 1.5)

    def test_evaluation_finds_a_target_only_taste_can_lift(self):
        from recsys.search.personal import BlendCase, evaluate_blend

        query = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, -np.inf]])       # item 5: not a match
        liking = {0: np.array([0.0, 0.0, 0.0, 0.0, 9.0, 5.0])}       # loves 4, likes 5
        case = BlendCase(0, 0, np.array([4]), np.array([0]))       # item 0 already owned
        out = evaluate_blend(query, liking, [case], [0.0, 1.0], k=2, pool=5)
        assert out["ndcg@2 taste=0.00"] == 0.0                     # 4 is 4th of the matches
        assert out["ndcg@2 taste=1.00"] == 1.0
        assert out["ndcg@2 taste_only"] == 1.0 and out["pool_recall"] == 1.0


# -- the simulator's choice model and the A/B statistics -------------------------------------------
class TestChoiceAndStatistics:
    def test_click_probability_of_a_shown_item_follows_the_two_step_choice(self):
        from recsys.simulation.shoppers import SimulationConfig, shown_list_choice

        config = SimulationConfig()
        affinity = np.log(np.array([1.0, 2.0, 3.0, 4.0]))          # weights 1, 2, 3, 4
        types = np.array([0, 0, 1, 1])
        pref = np.array([0.25, 0.75])
        p = shown_list_choice(affinity, types, pref, np.array([2]), config, attention=1.0)
        # shown item 2 (type 1, weight 3) on rank 1: exposure 1 + 1/log2(2) = 2, weight 6;
        # only a type-1 session (probability 0.75) looks at it: 6 / (6 + 4)
        assert p["click"][0] == pytest.approx(0.75 * 6 / 10)
        two = shown_list_choice(affinity, types, pref, np.array([3, 0]), config, attention=1.0)
        # item 3 (type 1, weight 4, exposure 2): 0.75 * 8 / (3 + 8); item 0 (type 0, weight 1,
        # rank 2: exposure 1 + 1/log2(3)): 0.25 * e / (e + 2)
        e = 1 + 1 / np.log2(3)
        np.testing.assert_allclose(two["click"], [0.75 * 8 / 11, 0.25 * e / (e + 2)])
        assert p["purchase"][0] == pytest.approx(p["cart"][0] * config.purchase_rate)
        assert 0 < p["cart"][0] < p["click"][0]

    def test_a_list_the_shopper_likes_gets_more_clicks(self):
        from recsys.simulation.shoppers import SimulationConfig, shown_list_choice

        rng = np.random.default_rng(0)
        affinity = rng.normal(size=200)
        types = rng.integers(0, 5, 200)
        pref = np.full(5, 0.2)
        order = np.argsort(-affinity)
        best = shown_list_choice(affinity, types, pref, order[:10], SimulationConfig())
        worst = shown_list_choice(affinity, types, pref, order[-10:], SimulationConfig())
        assert best["click"].sum() > 5 * worst["click"].sum()
        assert best["click"].sum() < 1.0

    def test_sample_size_matches_the_textbook_number(self):
        from recsys.simulation.abtest import needed_per_arm

        # 10% vs 12%, alpha 0.05 two-sided, power 0.8: about 3,840 per arm
        assert needed_per_arm(0.02, 0.1 * 0.9, 0.12 * 0.88) == 3839
        assert needed_per_arm(0.0, 0.1, 0.1) is None

    def test_comparison_is_a_paired_test_over_shoppers_with_a_lift_interval(self):
        from scipy import stats

        from recsys.simulation.abtest import compare

        # row i is the same shopper in both arms: 100 click in both, 30 more only with B
        a = np.r_[np.ones(100), np.zeros(900)]
        b = np.r_[np.ones(130), np.zeros(870)]
        c = compare("click", a, b, a * 0 + 0.1, b * 0 + 0.13)
        assert c.a.rate == pytest.approx(0.10) and c.b.rate == pytest.approx(0.13)
        assert c.lift == pytest.approx(0.3)
        assert c.p_value == pytest.approx(stats.ttest_rel(b, a).pvalue)
        assert c.significant and c.lift_low < 0.3 < c.lift_high
        assert c.expected_lift == pytest.approx(0.3)
        # a live split test would need more shoppers per arm than this paired one has
        assert c.needed_per_arm > 1000
        same = compare("click", a, a.copy(), a * 0 + 0.1, a * 0 + 0.1)
        assert same.p_value == pytest.approx(1.0) and not same.significant
        assert same.needed_per_arm is None and same.lift == pytest.approx(0.0)
        with pytest.raises(Exception, match="same shoppers"):
            compare("click", a, b[:10], a * 0, b[:10] * 0)


# -- a new shopper's first picks -------------------------------------------------------------------
def test_new_shopper_picks_come_from_the_liked_group(tiny: Store):
    picks = usecases.new_shopper_picks(tiny, DATASET, ["i01", "i02", "i03"], model="ease", k=5)
    ids = list(picks.items["item_id"])
    assert len(ids) == 5 and not {"i01", "i02", "i03"} & set(ids)
    assert sum(int(i[1:]) < GROUP for i in ids) >= 4
    assert all(set(r) <= {"i01", "i02", "i03"} for r in picks.items["resembles"])
    assert list(picks.liked["item_id"]) == ["i01", "i02", "i03"]


def test_new_shopper_errors_are_clear(tiny: Store):
    from recsys.core.errors import RecsysError

    with pytest.raises(RecsysError, match="at least one product"):
        usecases.new_shopper_picks(tiny, DATASET, [], model="ease")
    with pytest.raises(RecsysError, match="Unknown product nope"):
        usecases.new_shopper_picks(tiny, DATASET, ["nope"], model="ease")


def test_cold_start_evaluation_beats_popularity_on_two_taste_groups(tiny: Store):
    frame = usecases.evaluate_cold_start(tiny, DATASET, ["popularity", "ease", "content"],
                                         lengths=[1, 3], users=8, k=5)
    assert set(frame["model"]) == {"popularity", "ease", "content"}
    assert set(frame["history"]) == {1, 3} and (frame["users"] == 8).all()
    ndcg = frame[frame["metric"] == "ndcg"].set_index(["model", "history"])["value"]
    # popularity ignores the history: its numbers do not depend on its length
    assert ndcg[("popularity", 1)] == pytest.approx(ndcg[("popularity", 3)])
    assert ndcg[("ease", 3)] > ndcg[("popularity", 3)]
    assert ndcg[("content", 3)] > ndcg[("popularity", 3)]


def test_cold_start_holds_the_shoppers_out_of_training(tiny: Store):
    from recsys.data.interactions import load_data
    from recsys.recommend.foldin import holdout_users, without_users

    data = load_data(tiny, DATASET)
    held = holdout_users(data, 5, 3)
    rest = without_users(data, held)
    assert rest.train[held].nnz == 0 and rest.valid[held].nnz == 0
    assert (rest.test[held] != data.test[held]).nnz == 0
    others = np.setdiff1d(np.arange(data.n_users), held)
    assert (rest.train[others] != data.train[others]).nnz == 0


# -- personalised search (needs the aligned encoder of the demo) -----------------------------------
def test_search_as_a_shopper_reorders_the_query_matches(ready: Store):
    users = ready.users("demo")
    a, b = users["user_id"].iloc[0], users["user_id"].iloc[40]
    plain = usecases.search_similar(ready, "demo", text="shoes", k=30)
    query_only = usecases.search_for_shopper(ready, "demo", user_id=a, text="shoes",
                                             taste=0.0, k=10, pool=30)
    assert list(query_only.results["item_id"]) == list(plain.results["item_id"][:10])
    assert (query_only.results["query_share"] == 1.0).all()
    mostly = usecases.search_for_shopper(ready, "demo", user_id=a, text="shoes", taste=1.0,
                                         k=30, pool=30)
    assert set(mostly.results["item_id"]) == set(plain.results["item_id"])   # same matches
    assert list(mostly.results["taste_score"]) == sorted(mostly.results["taste_score"],
                                                         reverse=True)
    other = usecases.search_for_shopper(ready, "demo", user_id=b, text="shoes", taste=1.0,
                                        k=30, pool=30)
    assert list(other.results["item_id"]) != list(mostly.results["item_id"])
    half = usecases.search_for_shopper(ready, "demo", user_id=a, text="shoes", taste=0.5,
                                       k=10, pool=30)
    np.testing.assert_allclose(half.results["query_share"] + half.results["taste_share"], 1.0)
    new = usecases.search_for_shopper(ready, "demo", history=list(mostly.results["item_id"][:2]),
                                      text="shoes", taste=0.7, k=5, pool=30,
                                      hide_history=True)
    assert not set(new.history) & set(new.results["item_id"])


def test_personal_search_evaluation_reports_every_taste_weight(ready: Store):
    out = usecases.evaluate_personal_search(ready, "demo", tastes=(0.0, 1.0), k=10, pool=50)
    assert out["cases"] > 0 and out["queries"] > 0
    keys = set(out["ndcg"])
    assert {"ndcg@10 taste=0.00", "ndcg@10 taste=1.00", "ndcg@10 taste_only",
            "pool_recall"} == keys
    assert all(0.0 <= v <= 1.0 for v in out["ndcg"].values())


# -- the catalog map -----------------------------------------------------------------------------
def test_purity_counts_majority_labels():
    from recsys.explore.projection import name_clusters, purity

    labels = np.array([0, 0, 0, 1, 1, 1])
    truth = ["a", "a", "b", "c", "c", "c"]
    assert purity(labels, truth) == pytest.approx(5 / 6)
    assert purity(np.zeros(6, int), truth) == pytest.approx(3 / 6)
    items = pd.DataFrame({"article_type": truth, "gender": ["Men"] * 3 + ["Women"] * 3,
                          "base_colour": ["Red", "Blue", "Green", "Black", "Black", "Black"]})
    named = name_clusters(labels, items).set_index("cluster")
    assert named.loc[0, "name"] == "a · Men" and named.loc[1, "name"] == "c · Black"
    assert named.loc[0, "size"] == 3 and named.loc[1, "share_base_colour"] == 1.0


def test_catalog_map_is_cached_named_and_overlays_a_shopper(ready: Store):
    user = ready.users("demo")["user_id"].iloc[3]
    first = usecases.catalog_map(ready, "demo", method="tsne", clusters=5, user_id=user, k=5)
    assert len(first.points) == 64 and set(first.points["cluster"]) == set(range(5))
    assert {"x", "y", "cluster_name", "image_path"} <= set(first.points.columns)
    assert len(first.clusters) == 5 and first.clusters["name"].str.len().min() > 0
    assert 0 < first.purity <= 1 and not first.cached
    assert len(first.overlay["picks"]) == 5 and first.overlay["history"]
    again = usecases.catalog_map(ready, "demo", method="tsne", clusters=5)
    assert again.cached and again.seconds == 0.0
    np.testing.assert_array_equal(again.points[["x", "y"]], first.points[["x", "y"]])


def test_cluster_purity_compares_photo_text_and_fused_vectors(ready: Store):
    frame = usecases.cluster_purity(ready, "demo", clusters=[4, 8])
    assert set(frame["vectors"]) == {"fused", "image", "text"} and set(frame["k"]) == {4, 8}
    assert frame["purity"].between(0, 1).all() and frame["nmi"].between(0, 1).all()


# -- the simulated A/B test -------------------------------------------------------------------------
def test_replay_recovers_the_hidden_tastes_and_caches_them(ready: Store):
    from recsys.core import config

    hidden = usecases.hidden_tastes(ready, "demo")
    assert hidden.affinity.shape == (90, 64) and hidden.type_pref.shape[0] == 90
    np.testing.assert_allclose(hidden.type_pref.sum(1), 1.0, rtol=1e-5)
    files = list(config.artifacts_dir(ready.path, "simulator").glob("demo-*.npz"))
    assert len(files) == 1


def test_changed_interactions_refuse_an_ab_test(ready: Store):
    from recsys.simulation.abtest import ExperimentError

    frame = ready.interactions("demo").iloc[:-5]
    with ready.transaction() as cur:
        cur.execute("DELETE FROM interactions WHERE dataset = 'demo'")
        cur.register("_x", frame.assign(dataset="demo"))
        cur.execute("INSERT INTO interactions BY NAME SELECT * FROM _x")
        cur.unregister("_x")
    with pytest.raises(ExperimentError, match="Simulate the shoppers again"):
        usecases.hidden_tastes(ready, "demo")


def test_ab_test_personal_picks_beat_bestsellers(ready: Store):
    result = usecases.ab_test(ready, "demo", "popularity", "itemknn", k=10, visits=5, seed=1)
    # every shopper sees both arms (the simulator's parallel worlds)
    assert result.shoppers == {"A": 90, "B": 90} and result.population == 90
    clicks = result.comparisons["click"]
    assert clicks.b.expected > clicks.a.expected          # tastes favour personal picks
    assert clicks.a.low <= clicks.a.rate <= clicks.a.high
    assert result.offline["B"] > result.offline["A"]
    assert result.verdict.summary
    same = usecases.ab_test(ready, "demo", "itemknn", "itemknn", k=10, seed=1)
    assert same.runs["A"] == same.runs["B"]


def test_ab_test_needs_simulated_shoppers(tiny: Store):
    from recsys.simulation.abtest import ExperimentError

    with pytest.raises(ExperimentError, match="no simulated shoppers"):
        usecases.ab_test(tiny, DATASET, "popularity", "ease")


# -- the commands -----------------------------------------------------------------------------------
def test_commands_answer_in_json(tiny: Store, ready: Store):
    tiny_db, demo_db = str(tiny.path), str(ready.path)
    tiny.close()
    ready.close()
    code, out, err = cli("new-shopper", "--db", tiny_db, "--likes", "i01", "i02", "--model",
                         "ease", "--k", "3", "--json")
    assert code == 0, err
    assert len(out["items"]) == 3 and out["model"] == "ease"
    code, out, err = cli("coldstart-eval", "--db", tiny_db, "--models", "popularity", "ease",
                         "--lengths", "1", "--users", "5", "--k", "5", "--json")
    assert code == 0, err
    assert {r["model"] for r in out} == {"popularity", "ease"}
    code, out, err = cli("abtest", "--db", tiny_db, "--json")
    assert code == 2 and "no simulated shoppers" in err
    probe = Store(demo_db)
    user = probe.users("demo")["user_id"].iloc[0]
    probe.close()
    code, out, err = cli("search-as", "--db", demo_db, "--user", user, "--text", "red",
                         "--taste", "0.6", "--k", "4", "--json")
    assert code == 0, err
    assert len(out["results"]) == 4 and out["taste"] == 0.6
    code, out, err = cli("abtest", "--db", demo_db, "--a", "popularity", "--b", "itemknn",
                         "--json")
    assert code == 0, err
    assert set(out["metrics"]) == {"click", "cart", "purchase"} and out["verdict"]["summary"]
    code, out, err = cli("map", "--db", demo_db, "--method", "tsne", "--clusters", "4",
                         "--json")
    assert code == 0, err
    assert len(out["points"]) == 64 and len(out["clusters"]) == 4
    code, text, err = cli("purity", "--db", demo_db, "--clusters", "4")
    assert code == 0 and "fused" in text and "image" in text


def test_verdict_flags_offline_and_online_disagreeing():
    from recsys.simulation.abtest import compare, verdict

    a = np.r_[np.ones(50), np.zeros(950)]
    b = np.r_[np.ones(52), np.zeros(948)]
    # offline B is 3x better, yet the noise-free click rates are equal: they disagree
    c = compare("click", a, b, a * 0 + 0.05, b * 0 + 0.0505)
    v = verdict("A", "B", 0.037, 0.111, c, 10)
    assert v.agree is None and v.truth_agree is False and v.disagree
    assert "practically equal" in v.summary and "disagree" in v.summary
    # B better offline and truly better online: they agree
    c = compare("click", a, b, a * 0 + 0.05, b * 0 + 0.06)
    v = verdict("A", "B", 0.10, 0.12, c, 10)
    assert v.truth_agree and not v.disagree and "the direction offline predicts" in v.summary
    # a significant online result the other way round
    worse = np.r_[np.ones(20), np.zeros(980)]
    c = compare("click", a, worse, a * 0 + 0.05, worse * 0 + 0.02)
    v = verdict("A", "B", 0.10, 0.12, c, 10)
    assert v.agree is False and v.disagree and "opposite" in v.summary
