"""The memory budget (issue 19, item 10): free RAM, the cgroup limit (v1 and v2) and
RLIMIT_AS / RLIMIT_DATA, whichever is smallest, decide dense or sparse EASE and how the search
index is stored.

Before the fix the EASE planner read free RAM only: under `ulimit -v 6000000` a 40k-item
EASE with `memory_fraction=0.5, dense_max_items=50000` planned dense from ~21 GB "available"
and died with `_ArrayMemoryError: Unable to allocate 5.96 GiB`; with the fix it plans sparse
(budget 50% of the 4.2 GB left under the limit) and finishes at 1.8 GB. The subprocess test
below is that case scaled down.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from recsys.core import memory
from recsys.core.memory import (
    MemoryBudget,
    cgroup_headroom,
    memory_budget,
    rlimit_headrooms,
)
from recsys.models import baselines
from recsys.models.baselines import EASEMemoryError, plan_ease

GB = 2**30
ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- reading the limits ---------------------------------------------------------------------------
def test_cgroup_v2_limit_minus_what_is_not_reclaimable(tmp_path: Path):
    root, proc = tmp_path / "cgroup", tmp_path / "proc-cgroup"
    write(proc, "0::/app/worker\n")
    write(root / "app" / "worker" / "memory.max", "max\n")             # no limit of its own
    write(root / "app" / "memory.max", f"{6 * GB}\n")                  # the container's
    write(root / "app" / "memory.current", f"{3 * GB}\n")
    write(root / "app" / "memory.stat", f"anon 123\ninactive_file {1 * GB}\nactive_file 5\n")
    # 6 GB - (3 GB used - 1 GB of page cache the kernel can drop) = 4 GB
    assert cgroup_headroom(root, proc) == 4 * GB
    # a tighter limit further down wins
    write(root / "app" / "worker" / "memory.max", f"{2 * GB}\n")
    write(root / "app" / "worker" / "memory.current", f"{GB // 2}\n")
    assert cgroup_headroom(root, proc) == GB + GB // 2


def test_cgroup_v1_limit_and_no_limit(tmp_path: Path):
    root, proc = tmp_path / "cgroup", tmp_path / "proc-cgroup"
    write(proc, "12:pids:/\n4:memory:/docker/abc\n1:name=systemd:/\n")
    group = root / "memory" / "docker" / "abc"
    write(group / "memory.limit_in_bytes", f"{6 * GB}\n")
    write(group / "memory.usage_in_bytes", f"{2 * GB}\n")
    write(group / "memory.stat", f"cache 1\ntotal_inactive_file {GB // 2}\n")
    assert cgroup_headroom(root, proc) == 4 * GB + GB // 2
    # v1 writes "no limit" as a huge number; a host without any limit has no headroom to report
    write(group / "memory.limit_in_bytes", "9223372036854771712\n")
    write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")
    assert cgroup_headroom(root, proc) is None
    assert cgroup_headroom(tmp_path / "nothing", tmp_path / "no-file") is None


def test_rlimits_count_what_is_already_mapped(tmp_path: Path, monkeypatch):
    status = tmp_path / "status"
    write(status, "Name:\tpython\nVmSize:\t 1048576 kB\nVmData:\t  524288 kB\n")
    limits = {resource.RLIMIT_AS: (6 * GB, resource.RLIM_INFINITY),
              resource.RLIMIT_DATA: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)}
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: limits[which])
    assert rlimit_headrooms(status) == {"RLIMIT_AS": 5 * GB}
    limits[resource.RLIMIT_DATA] = (2 * GB, resource.RLIM_INFINITY)
    assert rlimit_headrooms(status) == {"RLIMIT_AS": 5 * GB, "RLIMIT_DATA": GB + GB // 2}


def test_the_smallest_headroom_decides(monkeypatch):
    monkeypatch.setattr(memory, "system_available", lambda: 20 * GB)
    monkeypatch.setattr(memory, "cgroup_headroom", lambda: 6 * GB)
    monkeypatch.setattr(memory, "rlimit_headrooms", lambda: {"RLIMIT_AS": 8 * GB})
    budget = memory_budget()
    assert budget == MemoryBudget(6 * GB, "cgroup", {"system": 20 * GB, "cgroup": 6 * GB,
                                                      "RLIMIT_AS": 8 * GB})
    assert "6.0 GB" in budget.describe() and "cgroup" in budget.describe()
    monkeypatch.setattr(memory, "rlimit_headrooms", lambda: {"RLIMIT_DATA": 1 * GB})
    assert memory_budget().source == "RLIMIT_DATA"
    monkeypatch.setattr(memory, "cgroup_headroom", lambda: None)
    monkeypatch.setattr(memory, "rlimit_headrooms", lambda: {})
    assert memory_budget() == MemoryBudget(20 * GB, "system", {"system": 20 * GB})


def test_this_process_reads_a_real_budget():
    budget = memory_budget()
    assert 0 < budget.available <= memory.system_available() + GB
    assert budget.source in budget.headrooms


# -- the EASE planner ------------------------------------------------------------------------------
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


# -- the search index ------------------------------------------------------------------------------
def test_index_storage_follows_the_budget():
    from recsys.search.vector_index import (
        VectorIndexError,
        index_build_bytes,
        plan_storage,
    )

    n, width = 200_000, 512
    need32 = index_build_bytes(n, width, "float32", True)
    roomy = plan_storage(n, width, "float32", True, available=4 * need32)
    assert (roomy.storage, roomy.ann) == ("float32", True) and "fits" in roomy.reason
    half = index_build_bytes(n, width, "float16", True)
    tight = plan_storage(n, width, "float32", True, available=int(2.05 * half))
    assert (tight.storage, tight.ann) == ("float16", True)
    assert "built as float16" in tight.reason
    flat = index_build_bytes(n, width, "float16", False)
    tighter = plan_storage(n, width, "float32", True, available=int(2.05 * flat))
    assert (tighter.storage, tighter.ann) == ("float16", False)
    assert "exact search only" in tighter.reason
    with pytest.raises(VectorIndexError, match=r"200,000 products \(512 numbers each\) needs "
                                               r"about [\d.]+ GB"):
        plan_storage(n, width, "float32", True, available=flat)


def test_search_index_is_built_as_float16_when_float32_would_not_fit(ready_demo_db: Path,
                                                                      tmp_path: Path,
                                                                      monkeypatch):
    import shutil

    from recsys.search.item_index import ItemIndex
    from recsys.search.vector_index import index_build_bytes
    from recsys.store import Store

    path = tmp_path / "recsys.duckdb"
    shutil.copy(ready_demo_db, path)
    store = Store(path)
    try:
        sets = store.embedding_sets("demo")
        width = int(sum(store.embedding_dims("demo", sets["encoder"].iloc[0],
                                             sets["version"].iloc[0]).values()))
        n = int(sets["n_items"].max())
        # room for a float16 build, not for a float32 one (50% of the budget may be used)
        room = (index_build_bytes(n, width, "float32", False)
                + index_build_bytes(n, width, "float16", False))
        monkeypatch.setattr(memory, "memory_budget",
                            lambda: MemoryBudget(room, "cgroup", {"cgroup": room}))
        index = ItemIndex.from_store(store, "demo", storage="float32")
        assert index.vectors.storage == "float16"
        assert "built as float16" in index.vectors.meta["memory_plan"]
        assert len(index) == n
        hits = index.vectors.search({"image": index.vectors.rows(np.array([0]))[
            0, :index.vectors.dims["image"]]}, k=3)
        assert len(hits.slots) == 3
        # no room at all: a clear refusal, not an allocation error
        monkeypatch.setattr(memory, "memory_budget",
                            lambda: MemoryBudget(1000, "RLIMIT_AS", {"RLIMIT_AS": 1000}))
        from recsys.search.vector_index import VectorIndex, VectorIndexError

        with pytest.raises(VectorIndexError, match="Free memory"):
            VectorIndex.for_dataset(store, "demo", storage="float16", persist=False)
    finally:
        store.close()


def test_matrix_copies_and_the_ab_replay_respect_the_budget(ready_demo_db: Path, tmp_path: Path,
                                                           monkeypatch):
    import shutil

    from recsys import usecases
    from recsys.search.vector_index import VectorIndex, VectorIndexError
    from recsys.simulation.abtest import ExperimentError
    from recsys.store import Store

    index = VectorIndex({"image": 4})
    index.add(["a", "b"], {"image": np.eye(2, 4, dtype=np.float32)})
    assert index.matrix("image").shape == (2, 4)
    tiny = MemoryBudget(16, "cgroup", {"cgroup": 16})
    monkeypatch.setattr(memory, "memory_budget", lambda: tiny)
    with pytest.raises(VectorIndexError, match="needs 0.0 GB, over half the"):
        index.matrix("image")

    path = tmp_path / "recsys.duckdb"
    shutil.copy(ready_demo_db, path)
    store = Store(path)
    try:
        with pytest.raises(ExperimentError, match=r"hidden tastes of 90 simulated shoppers for "
                                                  r"64 products.*Simulate fewer shoppers"):
            usecases.hidden_tastes(store, "demo")
    finally:
        store.close()
