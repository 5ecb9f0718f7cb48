"""The new-arrivals protocol: a seeded share of the items held out with all their
interactions, only those ranked, collaborative-only models not applicable (never zeros), and
the random / category popularity / category profile baselines right on a hand-made case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.cli import main
from recsys.data.attributes import category_matrix, item_categories
from recsys.data.interactions import InteractionData, load_data, new_item_ids
from recsys.evaluation.new_items import (
    AttributePopularity,
    AttributeProfile,
    RandomOrder,
    fit_baselines,
)
from recsys.evaluation.ranking import evaluate_users
from recsys.usecases import evaluate, evaluation_summary

from ..test_models_helpers import DATASET, fill_store


def _store_with_types(store) -> None:
    """The tiny data set with an article type per item (group A shirts, group B shoes)."""
    fill_store(store)
    with store.transaction() as cur:
        cur.execute("UPDATE items SET article_type = CASE WHEN title LIKE '%(A)%' "
                    "THEN 'Shirts' ELSE 'Shoes' END")


# -- the split ---------------------------------------------------------------------------------
def test_the_held_out_items_keep_all_their_interactions_and_are_the_only_candidates(store):
    _store_with_types(store)
    data = load_data(store, DATASET, "new-items", seed=3)
    pairs = store.implicit_pairs(DATASET)
    held = new_item_ids(pairs, 3)
    interacted = pairs["item_id"].nunique()
    assert len(held) == round(0.2 * interacted)
    cols = pd.Index(data.item_ids).get_indexer(held)
    assert data.candidates is not None and set(np.flatnonzero(data.candidates)) == set(cols)
    # every interaction of a held-out item is in test, none in train or validation
    assert data.train[:, cols].nnz == 0 and data.valid[:, cols].nnz == 0
    assert data.test[:, cols].nnz == pairs["item_id"].isin(set(held)).sum()
    # and the test split holds nothing else
    assert data.test.nnz == data.test[:, cols].nnz
    assert data.train.nnz + data.valid.nnz + data.test.nnz == len(pairs)
    assert data.valid.nnz > 0


def test_the_draw_is_seeded(store):
    _store_with_types(store)
    pairs = store.implicit_pairs(DATASET)
    assert list(new_item_ids(pairs, 0)) == list(new_item_ids(pairs, 0))
    draws = {tuple(new_item_ids(pairs, seed)) for seed in range(5)}
    assert len(draws) > 1


def test_only_the_new_items_are_ranked(store):
    _store_with_types(store)
    data = load_data(store, DATASET, "new-items", seed=0)

    class Everything:                  # scores the old items far above the new ones
        def score(self, users):
            return np.tile(np.where(data.candidates, 0.0, 10.0), (len(users), 1))

    um = evaluate_users(Everything(), data, ks=(5,))[0]
    # a model that would list old items first still gets every new item into its top 5
    users, recall = um.values(("all", "recall", 5))
    assert len(users) and np.allclose(recall, 1.0)


# -- the baselines on a hand-made case ----------------------------------------------------------
def _hand_made() -> tuple[InteractionData, sp.csr_matrix]:
    """4 items: 0 and 1 are old (0 a comedy, 1 a drama), 2 and 3 are new (2 a comedy, 3 a
    drama). User 0 watched the comedy, users 1 and 2 the drama."""
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]], np.float32))
    empty = sp.csr_matrix((3, 4), dtype=np.float32)
    test = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1]], np.float32))
    data = InteractionData("hand", "new-items", np.array(["a", "b", "c"], dtype=object),
                           np.array(["i0", "i1", "i2", "i3"], dtype=object), train, empty,
                           test, candidates=np.array([False, False, True, True]))
    items = pd.DataFrame({"item_id": ["i0", "i1", "i2", "i3"],
                          "description": ["Genres: Comedy", "Genres: Drama",
                                          "Genres: Comedy", "Genres: Drama"]})
    categories, names = category_matrix(items, list(data.item_ids))
    assert names == ["comedy", "drama"]
    return data, categories


def test_the_category_profile_is_the_cosine_of_histograms():
    data, categories = _hand_made()
    scores = AttributeProfile(data, categories).score(np.arange(3))
    assert scores[0, 2] == pytest.approx(1.0, abs=1e-5) and scores[0, 3] == pytest.approx(0, abs=1e-5)
    assert scores[1, 3] == pytest.approx(1.0, abs=1e-5) and scores[1, 2] == pytest.approx(0, abs=1e-5)
    um = evaluate_users(AttributeProfile(data, categories), data, ks=(1,))[0]
    assert np.allclose(um.values(("all", "ndcg", 1))[1], 1.0)


def test_category_popularity_follows_the_training_counts_for_everyone():
    data, categories = _hand_made()
    scores = AttributePopularity(data, categories).score(np.arange(3))
    # drama has 2 training interactions of 3, comedy 1 of 3: the same list for everyone
    assert np.allclose(scores[:, 3], 2 / 3, atol=1e-5) and np.allclose(scores[:, 2], 1 / 3,
                                                                       atol=1e-5)
    um = evaluate_users(AttributePopularity(data, categories), data, ks=(1,))[0]
    users, ndcg = um.values(("all", "ndcg", 1))
    assert dict(zip(users.tolist(), ndcg.tolist())) == {0: 0.0, 1: 1.0, 2: 1.0}


def test_random_order_is_seeded_and_differs_between_shoppers():
    data, categories = _hand_made()
    one = RandomOrder(data, categories, seed=1).score(np.arange(3))
    assert np.array_equal(one, RandomOrder(data, categories, seed=1).score(np.arange(3)))
    assert not np.array_equal(one, RandomOrder(data, categories, seed=2).score(np.arange(3)))
    assert not np.array_equal(one[0], one[1])


def test_genres_and_the_type_column_are_categories_and_none_means_no_category_baselines():
    items = pd.DataFrame({"item_id": ["1", "2"], "article_type": ["Shirts", None],
                          "description": ["Genres: Action, Comedy", "A plain text"]})
    assert item_categories(items) == [("action", "comedy", "shirts"), ()]
    data, _ = _hand_made()
    bare = pd.DataFrame({"item_id": ["i0", "i1", "i2", "i3"], "description": [None] * 4})
    fitted, notes = fit_baselines(data, bare)
    assert list(fitted) == ["random"] and "no category" in notes[0]


# -- the use case, the command line ---------------------------------------------------------------
def test_evaluate_reports_content_models_and_lists_cf_ones_as_not_applicable(store):
    _store_with_types(store)
    frame = evaluate(store, DATASET, ["ease", "content-text"], ks=(5, 10),
                     protocol="new-items", n_boot=200)
    assert set(frame["protocol"]) == {"new-items"}
    assert set(frame["model"]) == {"random", "attr-popularity", "attr-profile", "content-text"}
    assert frame.attrs["not_applicable"] == ["ease"]
    assert any("Not applicable to new items" in n and "EASE" in n for n in frame.attrs["notes"])
    ndcg = frame[(frame["slice"] == "all") & (frame["metric"] == "ndcg") & (frame["k"] == 10)]
    content = ndcg[ndcg["model"] == "content-text"].iloc[0]
    assert content["baseline"] == "attr-profile" and np.isfinite(content["p_value"])
    assert np.isfinite(content["ci_low"]) and content["ci_low"] <= content["value"]
    # stored like any evaluation: the summary compares the content model with the profile
    summary = evaluation_summary(store, DATASET, "new-items", 10)
    assert summary is not None and summary.best == "content-text"
    assert summary.baseline == "attr-profile" and "categories alone" in summary.sentence
    # the content model's run is recorded under the protocol
    runs = store.runs(DATASET, kind="model")
    assert "new-items" in runs[runs["model"] == "content-text"]["config"].iloc[0]


def test_the_command_takes_the_protocol(store, capsys):
    _store_with_types(store)
    path = str(store.path)
    store.close()
    code = main(["evaluate", "--db", path, "--dataset", DATASET, "--protocol", "new-items",
                 "--models", "itemknn", "content-text", "--k", "10"])
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert code == 0
    assert "only the held-out new items ranked" in out
    assert "attr-profile" in out and "content-text" in out
    assert "Not applicable to new items: Behaviour: similar items" in out
    assert "\nitemknn " not in out


@pytest.mark.parametrize("command", ["evaluate", "train", "tune"])
def test_the_split_help_prints(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0 and "new-items" in capsys.readouterr().out


def test_a_model_trained_for_new_items_does_not_replace_the_served_one(store):
    from recsys.recommend.training import load_model, train_model

    _store_with_types(store)
    served = train_model(store, DATASET, "content-text", {}, protocol="random")
    evaluate(store, DATASET, ["content-text"], ks=(10,), protocol="new-items", n_boot=100)
    assert load_model(store, DATASET, "content-text").run_id == served.run_id
    # asked for by its split, the new-items run is there
    newer = load_model(store, DATASET, "content-text", protocol="new-items")
    assert newer.run_id != served.run_id and newer.config["protocol"] == "new-items"


def test_validation_under_new_items_ranks_the_known_items(store):
    """The validation pairs are of the items kept in training: they are ranked among all
    items (restricting them to the new ones would leave nothing to validate on)."""
    _store_with_types(store)
    data = load_data(store, DATASET, "new-items", seed=0)

    class Knows:                       # scores each user's validation items highest
        def score(self, users):
            return data.valid[users].toarray().astype(np.float32)

    um = evaluate_users(Knows(), data, ks=(1,), split="valid")[0]
    users, hits = um.values(("all", "hit_rate", 1))
    assert len(users) == np.count_nonzero(data.valid.getnnz(axis=1))
    assert np.allclose(hits, 1.0)
