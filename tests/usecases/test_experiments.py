"""The simulated A/B test use cases: the simulator's hidden tastes replayed and cached (a damaged
cache replayed again, within the memory budget), refusals when the interactions changed or
there are no simulated shoppers, and personal picks beating bestsellers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys import usecases
from recsys.core import memory
from recsys.core.memory import (
    MemoryBudget,
)
from recsys.store import Store

from ..damaged_files import write_npz
from ..test_models_helpers import DATASET


def test_replay_recovers_the_hidden_tastes_and_caches_them(ready_store: Store):
    from recsys.core import config

    hidden = usecases.hidden_tastes(ready_store, "demo")
    assert hidden.affinity.shape == (90, 64) and hidden.type_pref.shape[0] == 90
    np.testing.assert_allclose(hidden.type_pref.sum(1), 1.0, rtol=1e-5)
    files = list(config.artifacts_dir(ready_store.path, "simulator").glob("demo-*.npz"))
    assert len(files) == 1


def test_changed_interactions_refuse_an_ab_test(ready_store: Store):
    from recsys.simulation.abtest import ExperimentError

    frame = ready_store.interactions("demo").iloc[:-5]
    with ready_store.transaction() as cur:
        cur.execute("DELETE FROM interactions WHERE dataset = 'demo'")
        cur.register("_x", frame.assign(dataset="demo"))
        cur.execute("INSERT INTO interactions BY NAME SELECT * FROM _x")
        cur.unregister("_x")
    with pytest.raises(ExperimentError, match="Simulate the shoppers again"):
        usecases.hidden_tastes(ready_store, "demo")


def test_ab_test_personal_picks_beat_bestsellers(ready_store: Store):
    result = usecases.ab_test(ready_store, "demo", "popularity", "itemknn", k=10, visits=5, seed=1)
    # every shopper sees both arms (the simulator's parallel worlds)
    assert result.shoppers == {"A": 90, "B": 90} and result.population == 90
    clicks = result.comparisons["click"]
    assert clicks.b.expected > clicks.a.expected          # tastes favour personal picks
    assert clicks.a.low <= clicks.a.rate <= clicks.a.high
    assert result.offline["B"] > result.offline["A"]
    assert result.verdict.summary
    same = usecases.ab_test(ready_store, "demo", "itemknn", "itemknn", k=10, seed=1)
    assert same.runs["A"] == same.runs["B"]


def test_ab_test_needs_simulated_shoppers(tiny_ease: Store):
    from recsys.simulation.abtest import ExperimentError

    with pytest.raises(ExperimentError, match="no simulated shoppers"):
        usecases.ab_test(tiny_ease, DATASET, "popularity", "ease")


def test_a_damaged_tastes_cache_is_replayed(tmp_path: Path):
    from recsys.usecases.experiments import _read_tastes

    path = tmp_path / "t.npz"
    arrays = {"user_ids": np.array(["u1", "u2"]), "item_ids": np.array(["a", "b", "c"]),
              "affinity": np.zeros((2, 3)), "type_pref": np.zeros((2, 2)),
              "type_idx": np.array([0, 1, 1])}
    write_npz(path, arrays)
    assert _read_tastes(path) is not None
    for change in ({"affinity": np.zeros((3, 2))}, {"type_idx": np.array([0, 5, 1])},
                   {"type_pref": np.full((2, 2), np.inf)}):
        write_npz(path, {**arrays, **change})
        assert _read_tastes(path) is None
    path.write_bytes(b"PK\x03\x04 not really")
    assert _read_tastes(path) is None


def test_the_ab_replay_respects_the_budget(ready_demo_db: Path, tmp_path: Path, monkeypatch):
    import shutil

    from recsys import usecases
    from recsys.simulation.abtest import ExperimentError
    from recsys.store import Store

    tiny = MemoryBudget(16, "cgroup", {"cgroup": 16})
    monkeypatch.setattr(memory, "memory_budget", lambda: tiny)
    path = tmp_path / "recsys.duckdb"
    shutil.copy(ready_demo_db, path)
    store = Store(path)
    try:
        with pytest.raises(ExperimentError, match=r"hidden tastes of 90 simulated shoppers for "
                                                  r"64 products.*Simulate fewer shoppers"):
            usecases.hidden_tastes(store, "demo")
    finally:
        store.close()
