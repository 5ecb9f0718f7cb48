"""EASE past 35k items: its memory plan (the budget, the container limit, a real address-space
limit), the dense and sparse variants against the textbook formula, and the fusion models'
CF part and validation scores within the memory budget."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.core import memory
from recsys.core.memory import (
    MemoryBudget,
)
from recsys.models import baselines, create_model
from recsys.models.baselines import (
    EASEMemoryError,
    dense_ease,
    dense_ease_bytes,
    plan_ease,
    sparse_ease,
)

from ..test_models_helpers import tiny_data

GB = 2**30
ROOT = Path(__file__).resolve().parents[2]


def test_plan_follows_the_memory_budget():
    # 10k items need ~0.5 GB dense: fits 25% of 8 GB, not 25% of 1 GB
    assert plan_ease(10_000, available=8 * GB).mode == "dense"
    low = plan_ease(10_000, available=1 * GB)
    assert low.mode == "sparse" and "budget" in low.reason
    assert low.needed_bytes == dense_ease_bytes(10_000) > low.budget_bytes == GB // 4
    # a bigger share of the same memory lets dense through again
    assert plan_ease(10_000, memory_fraction=0.9, available=1 * GB).mode == "dense"
    # above dense_max_items auto switches whatever the memory (the inverse is O(n^3))
    big = plan_ease(25_000, available=200 * GB, dense_max_items=20_000)
    assert big.mode == "sparse" and "dense_max_items" in big.reason
    assert plan_ease(50, mode="sparse", available=200 * GB).mode == "sparse"
    # dense on request, over budget: a clear refusal with the numbers, no numpy traceback
    with pytest.raises(EASEMemoryError, match=r"54,305 items needs about [\d.]+ GB.*budget is 4\.0 GB.*mode=sparse"):
        plan_ease(54_305, mode="dense", available=16 * GB)
    with pytest.raises(Exception, match="mode must be one of"):
        plan_ease(10, mode="huge")


def random_clicks(users: int, items: int, density: float, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((users, items)) < density).astype(np.float32))


def test_dense_ease_in_place_matches_the_textbook_formula():
    x = random_clicks(500, 120, 0.05)
    gram = (x.T @ x).toarray().astype(np.float32)
    gram[np.diag_indices(120)] += 30.0
    inv = np.linalg.inv(gram.astype(np.float64))
    expect = inv / -np.diag(inv)[None, :]
    expect[np.diag_indices(120)] = 0.0
    np.testing.assert_allclose(dense_ease(x, 30.0), expect, atol=1e-6)


def test_sparse_ease_is_exact_when_every_item_is_a_neighbour():
    # dense co-occurrence and support >= items: each column is EASE's own ridge regression
    x = random_clicks(400, 40, 0.3, seed=1)
    np.testing.assert_allclose(sparse_ease(x, 5.0, support=64).toarray(), dense_ease(x, 5.0),
                               atol=2e-6)
    # a small support keeps at most that many weights per target item
    w = sparse_ease(x, 5.0, support=8)
    assert (w.getnnz(axis=0) <= 8).all() and w.diagonal().sum() == 0


def test_ease_switches_to_sparse_under_a_small_memory_budget(monkeypatch, tmp_path):
    data = tiny_data()
    monkeypatch.setattr(baselines, "memory_budget", lambda: MemoryBudget(64 * GB, "system"))
    roomy = create_model("ease").fit(data)
    assert roomy.variant == "dense" and isinstance(roomy.weights, np.ndarray)
    monkeypatch.setattr(baselines, "memory_budget",
                        lambda: MemoryBudget(1000, "system"))      # 1 kB free
    tight = create_model("ease").fit(data)
    assert tight.variant == "sparse" and sp.issparse(tight.weights)
    assert tight.describe()["variant"] == "sparse"
    # the sparse model still ranks each user's own taste group first
    top = tight.recommend("u00", k=3)
    assert len(top) == 3
    assert all(int(i[1:]) < 10 for i, _ in top)
    with pytest.raises(EASEMemoryError, match="Dense EASE"):
        create_model("ease", mode="dense").fit(data)
    path = tmp_path / "ease.npz"
    tight.save(path)
    again = type(tight).load(path)
    assert again.variant == "sparse"
    np.testing.assert_allclose(again.score([0, 1]), tight.score([0, 1]))


def test_fusion_models_take_the_sparse_cf_part_when_memory_is_short(monkeypatch):
    monkeypatch.setattr(baselines, "memory_budget", lambda: MemoryBudget(1000, "system"))
    data = tiny_data()
    late = create_model("late-fusion", epochs=2).fit(data)
    assert late.config.cf_model == "ease" and late.scorers["cf"].variant == "sparse"
    attention = create_model("attention-fusion", epochs=1).fit(data)
    assert attention.scorers["cf"].variant == "sparse"


def test_validation_scores_stay_within_their_memory_budget(monkeypatch):
    monkeypatch.setattr(baselines, "SCORE_BUDGET_BYTES", 4 * 22 * 5)     # 5 users x 22 items
    model = create_model("ease")
    users = model._validation_users(tiny_data(), np.random.default_rng(0))
    assert len(users) <= 100 and len(users) == len(np.unique(users))
    monkeypatch.setattr(baselines, "SCORE_BUDGET_BYTES", 10**9)
    assert len(model._validation_users(tiny_data(), np.random.default_rng(0))) == 20


# -- EASE's plan under a container or an address-space limit --------------------------------------
def test_ease_plans_sparse_under_a_container_limit(monkeypatch):
    """10k items need ~0.5 GB dense: dense on 20 GB of free RAM, sparse when the container
    allows 1 GB (25% of it is the budget), whatever the machine has free."""
    monkeypatch.setattr(memory, "system_available", lambda: 20 * GB)
    monkeypatch.setattr(memory, "rlimit_headrooms", lambda: {})
    monkeypatch.setattr(memory, "cgroup_headroom", lambda: None)
    assert plan_ease(10_000).mode == "dense"
    monkeypatch.setattr(memory, "cgroup_headroom", lambda: 1 * GB)
    plan = plan_ease(10_000)
    assert plan.mode == "sparse" and plan.budget_bytes == GB // 4
    assert "cgroup" in plan.reason
    with pytest.raises(EASEMemoryError, match=r"budget is 0\.2 GB \(25% of the 1\.0 GB this "
                                              r"process may still use \(the container's memory "
                                              r"limit, cgroup\)\)"):
        plan_ease(10_000, mode="dense")
    monkeypatch.setattr(memory, "rlimit_headrooms", lambda: {"RLIMIT_AS": GB // 2})
    assert "RLIMIT_AS" in plan_ease(10_000).reason


def test_ease_trains_sparse_under_a_real_address_space_limit(tmp_path: Path):
    """A child process with RLIMIT_AS set 300 MB above what it has mapped fits EASE on 8,000
    items: dense would need ~0.36 GB (more than the limit leaves), so it must plan sparse and
    finish. Without the limit in the plan it planned dense (free RAM) and died allocating."""
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(ROOT)!r})
        import numpy as np, scipy.sparse as sp
        from recsys.data.interactions import InteractionData
        from recsys.models.baselines import dense_ease_bytes

        rng = np.random.default_rng(0)
        users, items = 3000, 8000
        x = sp.random(users, items, density=0.002, format="csr", random_state=1,
                      dtype=np.float32)
        x.data[:] = 1.0
        empty = sp.csr_matrix((users, items), dtype=np.float32)
        data = InteractionData("synthetic", "random", np.array([f"u{{i}}" for i in range(users)]),
                               np.array([f"i{{i}}" for i in range(items)]), x, empty, empty)
        from recsys.models import create_model
        # the model (and torch behind the registry) before the limit, as in the app
        model = create_model("ease", memory_fraction=0.95, dense_max_items=100000)
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                mapped = int(line.split()[1]) * 1024
        limit = mapped + 300 * 2**20
        assert dense_ease_bytes(items) > 300 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
        model.fit(data)
        print(model.variant, model.plan.reason)
        print(model.recommend("u0", k=5)[0][0])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    first = done.stdout.splitlines()[0]
    assert first.startswith("sparse") and "RLIMIT_AS" in first
