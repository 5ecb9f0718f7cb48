"""The held-out-types ridge probe (benchmarks/encoder_gzsl_ridge.py) on tiny synthetic data."""

import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "encoder_gzsl_ridge.py"
_spec = importlib.util.spec_from_file_location("encoder_gzsl_ridge", _PATH)
probe_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe_mod)


def _world(seed=0, n_per=30, d_img=12, d_txt=6):
    """Photos are a fixed linear image of their type's text vector plus noise: a map learnt on
    seen types transfers to unseen ones, so unseen photos must land on their own names."""
    rng = np.random.default_rng(seed)
    types = [f"t{i}" for i in range(6)]
    names = probe_mod._norm(rng.normal(size=(len(types), d_txt)))
    lift = rng.normal(size=(d_txt, d_img))
    labels = np.repeat(np.asarray(types, dtype=object), n_per)
    idx = np.repeat(np.arange(len(types)), n_per)
    x = names[idx] @ lift + 0.05 * rng.normal(size=(len(labels), d_img))
    titles = probe_mod._norm(names[idx] + 0.05 * rng.normal(size=(len(labels), d_txt)))
    split = np.where(rng.random(len(labels)) < 0.2, "heldout", "train")
    return x, labels, split, titles, names, types


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5))
    w = rng.normal(size=(5, 3))
    assert np.allclose(probe_mod.ridge(x, x @ w, 1e-6), w, atol=1e-4)


def test_sweep_gamma_moves_photos_to_unseen_names_and_harmonic_is_right():
    types = ["a", "b"]
    scores = np.array([[0.9, 0.8], [0.9, 0.8], [0.9, 0.1]])   # b unseen
    labels = np.array(["b", "b", "a"], dtype=object)
    res = {g: (s, u, h) for g, s, u, h in probe_mod.sweep(
        scores, types, labels, np.array([False, True]), np.array([True, True, False]))}
    assert res[0.0] == (1.0, 0.0, 0.0)
    assert res[0.2] == (1.0, 1.0, 1.0)
    assert probe_mod.harmonic(0.5, 1.0) == 2 * 0.5 / 1.5


def test_probe_names_unseen_types_when_the_map_transfers():
    x, labels, split, titles, names, types = _world()
    unseen = ["t4", "t5"]
    res, among, r10u, r10s = probe_mod.probe(x, labels, split, titles, names, types, unseen,
                                             1.0, "title", "names")
    assert among == 1.0                      # among the unseen names only: all right
    best = max(res, key=lambda r: r[3])
    assert best[1] > 0.9 and best[2] > 0.9   # seen and unseen both named right at some gamma
    assert 0.0 <= r10u <= 1.0 and 0.0 <= r10s <= 1.0
