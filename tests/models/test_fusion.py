"""Content and fusion models over any modalities: any subset by name, attention weights per
modality, files saved before modalities were a setting, a clear refusal without vectors, the CF
fallback over noise content (saved with the model, cold items keep their content place), and
fold-in over any modalities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.models import create_model
from recsys.models.base import Recommender

from ..test_models_helpers import COLD_A, COLD_B, GROUP, N_USERS, fast_params, tiny_data


# -- any subset of modalities -------------------------------------------------------------------
def tiny_with(extra: dict[str, np.ndarray], keep: tuple[str, ...] = ("image", "text")):
    data = tiny_data()
    vectors = {m: v for m, v in data.vectors.items() if m in keep}
    vectors.update(extra)
    data.vectors = vectors
    data.present = {m: np.abs(v).sum(axis=1) > 0 for m, v in vectors.items()}
    return data


@pytest.mark.parametrize("name", ["content", "content-knn", "content-lr", "early-fusion",
                                  "late-fusion", "attention-fusion"])
def test_content_and_fusion_models_take_any_modalities_by_name(name):
    base = tiny_data()
    style = base.content("image")[:, ::-1].copy()           # a third modality, named freely
    data = tiny_with({"style": style}, keep=("text",))
    model = create_model(name, **fast_params(name)).fit(data)
    assert model.config.modalities == ("text", "style")
    assert model.requires - {"cf"} == {"text", "style"}
    weights = model.modality_weights(3, np.array([1, 5, COLD_A]))
    assert set(weights) <= model.requires and "style" in weights
    path_scores = model.score(np.arange(N_USERS))
    assert np.isfinite(path_scores).all()
    one = create_model(name, **fast_params(name), modalities="style").fit(data)
    assert one.requires - {"cf"} == {"style"}


def test_attention_weights_have_one_column_per_modality():
    data = tiny_with({"style": tiny_data().content("image")}, keep=("text",))
    model = create_model("attention-fusion", **fast_params("attention-fusion")).fit(data)
    scores, alpha = model.attention(np.array([0, 15]))
    assert alpha.shape[-1] == 3 and model.signal_names == ("cf", "text", "style")
    np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-5)


def test_models_saved_before_modalities_were_a_setting_load_with_image_and_text(tmp_path):
    data = tiny_data()
    model = create_model("late-fusion", **fast_params("late-fusion")).fit(data)
    path = tmp_path / "old.npz"
    model.save(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__meta__"].tobytes().decode())
    del meta["config"]["modalities"]                        # as written by the old code
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    loaded = Recommender.load(path)
    assert loaded.config.modalities == ("image", "text")
    np.testing.assert_array_equal(loaded.score(np.arange(N_USERS)),
                                  model.score(np.arange(N_USERS)))


def test_content_models_refuse_data_without_vectors_with_what_to_do():
    bare = tiny_data(with_vectors=False)
    with pytest.raises(Exception, match="has no item vectors.*python -m recsys embed"):
        create_model("late-fusion").fit(bare)
    with pytest.raises(Exception, match="no style vectors.*import-features"):
        create_model("content-knn", modalities="style").fit(tiny_data())


# -- never worse than the CF part --------------------------------------------------------------
def noise_data(seed: int = 0, n_users: int = 300, n_items: int = 120, dim: int = 16):
    """Strong co-occurrence structure (users buy within one of 6 item clusters), content
    vectors that are pure noise."""
    import scipy.sparse as sp

    from recsys.data.interactions import InteractionData

    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, 6, n_items)
    mats = [[], [], []]
    for u in range(n_users):
        mine = np.flatnonzero(clusters == u % 6)
        picks = rng.choice(mine, min(len(mine), 10), replace=False)
        for n, i in enumerate(picks):
            mats[0 if n < 8 else (1 if n == 8 else 2)].append((u, i))
    shape = (n_users, n_items)
    split = [sp.csr_matrix((np.ones(len(p), np.float32), tuple(zip(*p))), shape=shape)
             for p in mats]
    noise = rng.normal(size=(n_items, dim)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return InteractionData("noise", "stored", np.array([f"u{u}" for u in range(n_users)],
                                                       dtype=object),
                           np.array([f"i{i}" for i in range(n_items)], dtype=object), *split,
                           vectors={"text": noise})


@pytest.mark.parametrize("name", ["late-fusion", "attention-fusion"])
def test_fusion_over_noise_content_does_not_lose_to_its_cf_part(name):
    from recsys.evaluation.ranking import evaluate_model

    data = noise_data()
    params = {"epochs": 12, "patience": 3} if name == "attention-fusion" else {}
    model = create_model(name, **params).fit(data)
    cf = model.scorers["cf"]

    def ndcg(m) -> float:
        frame = evaluate_model(m, data, (10,))
        return float(frame[(frame.slice == "all") & (frame.metric == "ndcg")]["value"].iloc[0])

    assert ndcg(model) >= ndcg(cf) - 0.01
    if model.cf_fallback:
        # the fallback ranks exactly as the CF part; content only breaks its ties
        np.testing.assert_array_equal(np.argsort(-model.score([0]))[0][:10],
                                      np.argsort(-cf.score([0]))[0][:10])
        assert model.modality_weights(0, np.array([1]))["cf"][0] == 1.0


def test_fallback_is_saved_with_the_model(tmp_path):
    data = noise_data()
    model = create_model("late-fusion").fit(data)
    model.exported["cf_only"][:] = 1
    model.save(tmp_path / "m.npz")
    assert Recommender.load(tmp_path / "m.npz").cf_fallback


def test_cold_items_keep_their_content_place_after_a_fallback():
    data = tiny_data()
    model = create_model("attention-fusion", **fast_params("attention-fusion")).fit(data)
    model.exported["cf_only"] = np.ones(1, np.float32)
    scores = model.score(np.arange(N_USERS))
    right = np.r_[scores[:GROUP, COLD_A] > scores[:GROUP, COLD_B],
                  scores[GROUP:, COLD_B] > scores[GROUP:, COLD_A]]
    assert right.mean() >= 0.75
    assert model.modality_weights(0, np.array([COLD_A]))["cf"][0] == 0.0


@pytest.mark.parametrize("name", ["early-fusion", "late-fusion", "attention-fusion"])
def test_fold_in_over_any_modalities_reproduces_a_trained_user(name):
    """A new shopper's picks (`score_history`) work with imported modalities by name, and a
    trained user's own history gives their scores, fallen back to CF or not."""
    data = tiny_with({"style": tiny_data().content("image")[:, ::-1].copy()}, keep=("text",))
    model = create_model(name, **fast_params(name)).fit(data)
    for fallback in (0.0, 1.0):
        model.exported["cf_only"] = np.full(1, fallback, np.float32)
        row = data.train[2]
        np.testing.assert_allclose(model.score_history(row.indices, row.data),
                                   model.score([2])[0], rtol=1e-4, atol=1e-4)
