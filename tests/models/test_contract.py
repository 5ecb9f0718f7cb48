"""The shared model contract: every registered recommender passes these on tiny known data."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.core.errors import RecsysError
from recsys.data.interactions import UnknownUser
from recsys.models import (
    UnknownModel,
    create_model,
    describe_models,
    get_spec,
    model_names,
)
from recsys.models.base import Recommender

from ..test_models_helpers import (
    COLD_A,
    COLD_B,
    GROUP,
    N_ITEMS,
    N_USERS,
    fast_params,
    tiny_data,
)

ALL = model_names()
CONTENT_USING = [n for n in ALL if get_spec(n).requires - {"cf", "ratings"}]
PERSONALISED = [n for n in ALL if get_spec(n).personalised]
EXACT_FOLD_IN = [n for n in ALL if get_spec(n).exact_fold_in]
"""Models whose fold-in of a trained user's own history reproduces that user's scores."""


@pytest.fixture(scope="module")
def data():
    return tiny_data()


@pytest.fixture(scope="module")
def fitted(data):
    """Every model fitted once on the tiny data (module-scoped: tests only read them)."""
    return {name: create_model(name, **fast_params(name)).fit(data) for name in ALL}


class TestModelContract:
    @pytest.mark.parametrize("name", ALL)
    def test_scores_have_one_row_per_user_and_one_column_per_item(self, fitted, name):
        scores = fitted[name].score(np.arange(N_USERS))
        assert scores.shape == (N_USERS, N_ITEMS)
        assert np.isfinite(scores).all()

    @pytest.mark.parametrize("name", ALL)
    def test_recommend_excludes_the_users_history(self, fitted, data, name):
        model = fitted[name]
        recs = model.recommend("u03", k=5)
        assert len(recs) == 5
        seen = {data.item_ids[i] for i in data.train[3].indices}
        assert not seen & {item for item, _ in recs}
        assert [s for _, s in recs] == sorted((s for _, s in recs), reverse=True)
        with_seen = {item for item, _ in model.recommend("u03", k=N_ITEMS, exclude_seen=False)}
        assert seen <= with_seen

    @pytest.mark.parametrize("name", PERSONALISED)
    def test_personalised_models_recommend_the_users_own_group(self, fitted, name):
        model = fitted[name]
        right = 0
        for u in range(N_USERS):
            top = [int(i[1:]) for i, _ in model.recommend(f"u{u:02d}", k=2)]
            own = range(0, GROUP) if u < GROUP else range(GROUP, 2 * GROUP)
            right += sum(i in own or i in (COLD_A, COLD_B) for i in top)
        assert right >= 0.75 * 2 * N_USERS

    @pytest.mark.parametrize("name", [n for n in ALL if n not in PERSONALISED])
    def test_models_that_are_not_personalised_score_every_user_alike(self, fitted, name):
        scores = fitted[name].score(np.arange(N_USERS))
        assert len(scores) == N_USERS
        np.testing.assert_array_equal(scores, np.broadcast_to(scores[0], scores.shape))

    def test_the_specs_say_which_models_read_one_signal_and_fold_in_exactly(self):
        single = [n for n in ALL if get_spec(n).single_signal]
        assert "ease" in single and "content-text" in single
        assert "content" not in single and "late-fusion" not in single   # photo + text
        assert all(len(get_spec(n).requires) == 1 for n in single)
        assert "popularity" not in PERSONALISED and "popularity" in EXACT_FOLD_IN
        assert set(EXACT_FOLD_IN) < set(ALL)

    def test_popularity_ranks_the_most_popular_item_first(self, fitted):
        scores = fitted["popularity"].score([15])[0]
        assert int(np.argmax(scores)) == 0

    @pytest.mark.parametrize("name", CONTENT_USING)
    def test_content_models_place_cold_items_by_their_look(self, fitted, name):
        scores = fitted[name].score(np.arange(N_USERS))
        group_a = scores[:GROUP, COLD_A] > scores[:GROUP, COLD_B]
        group_b = scores[GROUP:, COLD_B] > scores[GROUP:, COLD_A]
        assert np.concatenate([group_a, group_b]).mean() >= 0.75

    @pytest.mark.parametrize("name", ALL)
    def test_same_seed_gives_the_same_model(self, data, fitted, name):
        again = create_model(name, **fast_params(name)).fit(data)
        np.testing.assert_allclose(again.score(np.arange(N_USERS)),
                                   fitted[name].score(np.arange(N_USERS)), rtol=1e-5, atol=1e-6)

    @pytest.mark.parametrize("name", ALL)
    def test_save_load_round_trip_gives_identical_scores(self, fitted, name, tmp_path):
        path = tmp_path / f"{name}.npz"
        fitted[name].save(path)
        loaded = Recommender.load(path)
        assert type(loaded) is type(fitted[name]) and loaded.name == name
        assert loaded.config == fitted[name].config
        np.testing.assert_array_equal(loaded.score(np.arange(N_USERS)),
                                      fitted[name].score(np.arange(N_USERS)))
        assert loaded.recommend("u12", 3) == fitted[name].recommend("u12", 3)

    @pytest.mark.parametrize("name", ALL)
    def test_unknown_user_is_a_clear_error(self, fitted, name):
        with pytest.raises(UnknownUser, match="Unknown user 'nobody'.*u00"):
            fitted[name].recommend("nobody")

    @pytest.mark.parametrize("name", ALL)
    def test_modality_weights_sum_to_one_over_the_models_signals(self, fitted, name):
        model = fitted[name]
        items = np.array([1, 5, COLD_A])
        weights = model.modality_weights(2, items)
        assert set(weights) <= model.requires
        np.testing.assert_allclose(sum(weights.values()), 1.0, atol=1e-5)

    @pytest.mark.parametrize("name", ALL)
    def test_iterative_models_record_epochs_and_keep_the_best(self, fitted, name):
        model = fitted[name]
        assert model.history, "every fit records at least one validation step"
        assert all(h.val_ndcg is not None for h in model.history)
        if model.iterative:   # the best by the model's stopping metric (validation NDCG@20,
            # or RMSE for rating models)
            best = max(model._stop_metric(h) for h in model.history)
            kept = next(h for h in model.history if h.epoch == model.best_epoch)
            assert model._stop_metric(kept) == best


class TestFoldIn:
    """`score_history`: a history that is not in the training data, scored without retraining."""

    @pytest.mark.parametrize("name", EXACT_FOLD_IN)
    def test_a_trained_users_own_history_gives_their_scores(self, fitted, data, name):
        model = fitted[name]
        for user in (2, 13):
            row = data.train[user]
            np.testing.assert_allclose(model.score_history(row.indices, row.data),
                                       model.score([user])[0], rtol=1e-4, atol=1e-4)

    @pytest.mark.parametrize("name", PERSONALISED)
    def test_a_new_shopper_who_likes_group_a_gets_group_a(self, fitted, name):
        model = fitted[name]
        history = np.array([1, 2, 3])
        scores = model.score_history(history)
        assert scores.shape == (N_ITEMS,) and np.isfinite(scores).all()
        scores[history] = -np.inf
        top = np.argsort(-scores)[:5]
        assert sum(i < GROUP or i == COLD_A for i in top) >= 4, (name, top)

    def test_popularity_gives_a_new_shopper_the_bestsellers(self, fitted):
        scores = fitted["popularity"].score_history([15, 16])
        assert int(np.argmax(scores)) == 0

    @pytest.mark.parametrize("name", CONTENT_USING)
    def test_a_history_of_one_cold_item_is_placed_by_its_look(self, fitted, name):
        scores = fitted[name].score_history([COLD_A])
        assert scores[1:GROUP].mean() > scores[GROUP:2 * GROUP].mean()

    def test_weights_count_like_training_confidence(self, fitted):
        model = fitted["content"]
        light = model.score_history([1, 15], [1.0, 5.0])
        heavy = model.score_history([1, 15], [5.0, 1.0])
        assert heavy[2] - heavy[12] > light[2] - light[12]

    def test_repeated_items_merge_and_bad_histories_are_clear_errors(self, fitted):
        from recsys.models.errors import ModelError

        model = fitted["ease"]
        np.testing.assert_allclose(model.score_history([1, 1, 2]), model.score_history([2, 1]))
        with pytest.raises(ModelError, match="at least one product"):
            model.score_history([])
        with pytest.raises(ModelError, match="between 0 and 21"):
            model.score_history([99])
        with pytest.raises(ModelError, match="positive"):
            model.score_history([1, 2], [1.0, -1.0])

    def test_the_base_fold_in_borrows_the_most_similar_training_users(self, fitted):
        model = fitted["ease"]
        scores = Recommender._score_history(model, np.array([1, 2, 3]), np.ones(3, np.float32))
        # only group-A users share these items: their mean scores rank group A first
        scores[[1, 2, 3]] = -np.inf
        assert all(i < GROUP for i in np.argsort(-scores)[:5])
        # a history nobody shares falls back on the mean row of spread users
        lonely = Recommender._score_history(model, np.array([COLD_B]), np.ones(1, np.float32))
        np.testing.assert_allclose(lonely, model.score(np.arange(N_USERS)).mean(0), rtol=1e-5)

    def test_attention_fold_in_works_for_files_saved_without_the_attention_weight(
            self, fitted, data, tmp_path):
        model = fitted["attention-fusion"]
        path = tmp_path / "old.npz"
        model.save(path)
        old = Recommender.load(path)
        old.exported.pop("attention_weight")
        row = data.train[4]
        np.testing.assert_allclose(old.score_history(row.indices, row.data),
                                   model.score([4])[0], rtol=1e-4, atol=1e-4)


def test_content_models_refuse_data_without_vectors():
    bare = tiny_data(with_vectors=False)
    for name in CONTENT_USING:
        with pytest.raises(RecsysError, match="python -m recsys embed"):
            create_model(name, **fast_params(name)).fit(bare)


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(UnknownModel, match="Known models: popularity, itemknn"):
        create_model("magic")


def test_hyperparameters_are_checked_and_converted():
    model = create_model("bpr", dim="32", lr="0.01")
    assert model.config.dim == 32 and model.config.lr == 0.01
    with pytest.raises(RecsysError, match="Unknown hyperparameter 'depth'"):
        create_model("bpr", depth=3)
    with pytest.raises(RecsysError, match="outside"):
        create_model("bpr", dim=0)


def test_descriptions_carry_everything_a_form_needs():
    models = {m["name"]: m for m in describe_models()}
    assert set(models) == set(ALL)
    assert models["content-image"]["requires"] == ["image"]
    assert models["popularity"]["requires"] == ["cf"]
    # fusion takes every vector modality the dataset has (any one of them will do)
    assert set(models["attention-fusion"]["requires"]) == {"cf", "vectors"}
    assert models["content-text"]["requires"] == ["text"]
    for m in models.values():
        for p in m["params"]:
            assert {"name", "type", "default", "low", "high", "help"} <= set(p)
            assert p["help"]
    lr = next(p for p in models["bpr"]["params"] if p["name"] == "lr")
    assert lr["type"] == "float" and lr["low"] < lr["default"] < lr["high"]


def test_attention_weights_are_the_models_own_and_cold_items_share_one_id_vector(fitted):
    model = fitted["attention-fusion"]
    scores, alpha = model.attention(np.array([0, 15]))
    np.testing.assert_allclose(scores, model.score([0, 15]), rtol=1e-5)
    np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-5)
    # a cold item keeps its CF modality (the prior: nobody consumed it) with the learned
    # "unknown item" vector in place of its ID embedding
    part_cf = model.exported["part_cf"]
    np.testing.assert_allclose(part_cf[COLD_A], part_cf[COLD_B], atol=1e-6)
    assert model.exported["available"][COLD_A, 0] == 1
    weights = model.modality_weights(0, np.array([COLD_A]))
    assert weights["cf"][0] == pytest.approx(alpha[0, COLD_A, 0], abs=1e-5)


def test_sparse_propagation_matches_dense_forward_and_backward():
    import scipy.sparse as sp
    import torch

    from recsys.models.neural import SparseMatMul

    rng = np.random.default_rng(0)
    a = sp.random(30, 30, density=0.2, random_state=0, dtype=np.float32).tocsr()
    x = torch.from_numpy(rng.normal(size=(30, 4)).astype(np.float32)).requires_grad_()
    SparseMatMul.apply(x, a, a.T.tocsr()).pow(2).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    (torch.from_numpy(a.toarray()) @ x2).pow(2).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)


def test_fits_run_torch_single_threaded_and_restore_the_setting(data, monkeypatch):
    import torch

    from recsys.models.base import torch_threads

    before = torch.get_num_threads()
    with torch_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
