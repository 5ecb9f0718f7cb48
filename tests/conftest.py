"""Shared fixtures: offline model hubs, throw-away stores, a small demo dataset, real datasets."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

# A missing model file must fail at once instead of retrying a hub for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Under pytest-xdist (`-n 2` in pyproject.toml) each worker is one process on one core: one
# thread each for torch, BLAS, faiss and the models, or the workers' thread pools fight over the
# two cores (set before torch or numpy is imported; a test that sets its own count still wins).
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1) > 1:
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "RECSYS_ENCODER_THREADS", "RECSYS_TORCH_THREADS", "RECSYS_INDEX_THREADS",
                  "RECSYS_IMPLICIT_THREADS"):
        os.environ.setdefault(_name, "1")

from recsys.core.config import shared_datasets_dir  # noqa: E402
from recsys.store import Store  # noqa: E402

DEMO_ITEMS = 64
DEMO_USERS = 90


@pytest.fixture
def store(tmp_path: Path):
    """An empty store in a temporary file."""
    s = Store(tmp_path / "test.duckdb")
    yield s
    s.close()


def built_once(tmp_path_factory, name: str, build) -> Path:
    """`build(folder) -> path`, run once per test run: under pytest-xdist the first worker to
    ask builds it in the run's shared temporary folder (a file lock) and the others wait and
    use it. Tests must never open the result itself (the other worker may be copying it):
    they use a private copy (`demo_store`, `app_db`, `ready_store`)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent
    done = root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if done.is_file():
            return Path(done.read_text())
        folder = root / name
        if folder.exists():                      # a build that failed half-way
            shutil.rmtree(folder)
        folder.mkdir()
        path = build(folder)
        done.write_text(str(path))
        return path


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """A small demo dataset (drawn products, simulated users), built once per test run (do not
    open it: copy it, e.g. with `demo_store`)."""
    from recsys.demo.catalog import build_demo

    def build(folder: Path) -> Path:
        path = folder / "demo.duckdb"
        s = Store(path)
        build_demo(s, n_items=DEMO_ITEMS, n_users=DEMO_USERS, seed=0)
        s.close()
        return path

    return built_once(tmp_path_factory, "demo", build)


@pytest.fixture
def demo_store(demo_db: Path, tmp_path: Path):
    """A private copy of the demo database that a test may change freely."""
    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, path)
    s = Store(path)
    yield s
    s.close()


@pytest.fixture(scope="session")
def ready_demo_db(demo_db: Path, tmp_path_factory) -> Path:
    """The small demo, set up once per test run as on a first start: aligned encoder, item
    vectors, the default model (do not open it: copy it, e.g. with `app_db`)."""
    from .app_helpers import build_app_db

    return built_once(tmp_path_factory, "app", lambda folder: build_app_db(demo_db, folder))


@pytest.fixture
def app_db(ready_demo_db: Path, tmp_path: Path) -> Path:
    """A private copy of the set-up demo (encoder, vectors, the default model) that a test
    may change."""
    path = tmp_path / "recsys.duckdb"
    shutil.copy(ready_demo_db, path)
    return path


@pytest.fixture
def ready_store(ready_demo_db: Path, tmp_path: Path):
    """A private copy of the set-up demo, open: simulated shoppers with hidden tastes, an
    aligned encoder, item vectors, the default model."""
    path = tmp_path / "recsys.duckdb"
    shutil.copy(ready_demo_db, path)
    s = Store(path)
    yield s
    s.close()


@pytest.fixture
def ten_item_shop(store: Store, tmp_path: Path) -> Store:
    """A dataset 'shop' of ten products, "0".."9" (a catalog without photos)."""
    import pandas as pd

    from recsys import usecases

    pd.DataFrame({"item_id": [str(i) for i in range(10)],
                  "title": [f"Product {i}" for i in range(10)]}).to_csv(tmp_path / "cat.csv",
                                                                         index=False)
    usecases.import_catalog(store, tmp_path / "cat.csv", dataset="shop")
    return store


@pytest.fixture
def good_db(tmp_path: Path) -> bytes:
    """The bytes of a small, valid, checkpointed database with a dataset and a run."""
    path = tmp_path / "good.duckdb"
    s = Store(path)
    with s.transaction() as cur:
        s.upsert_dataset(cur, "shop", "catalog")
        cur.execute("INSERT INTO items (dataset, item_id, title) SELECT 'shop', i::VARCHAR, "
                    "'item ' || i FROM range(20000) t(i)")
    s.close()
    return path.read_bytes()


@pytest.fixture
def tiny_store(store):
    """The tiny two-group data set (`test_models_helpers`) in the empty store."""
    from .test_models_helpers import fill_store

    fill_store(store)
    return store


@pytest.fixture
def tiny_ease(tmp_path: Path):
    """The tiny two-group data set (`test_models_helpers`) in a store, with an EASE run."""
    from recsys import usecases

    from .test_models_helpers import DATASET, fill_store

    s = Store(tmp_path / "tiny.duckdb")
    fill_store(s)
    usecases.train(s, DATASET, "ease")
    yield s
    s.close()


@pytest.fixture
def damaged_db(tmp_path: Path) -> Path:
    """A healthy database with the blocks of `items.dataset` damaged (read by `status`)."""
    from .damaged_files import add_big_dataset, damage, data_blocks

    path = tmp_path / "damaged.duckdb"
    add_big_dataset(path)
    damage(path, data_blocks(path, "items", "dataset"), 4096)
    return path


@pytest.fixture
def interactions_shop(tmp_path: Path) -> Store:
    """A store of 40 shoppers x 8 views (interactions only), so every model trains in well
    under a second."""
    from recsys import usecases

    from .damaged_files import interaction_log

    store = Store(tmp_path / "shop.duckdb")
    usecases.import_interactions(store, interaction_log(tmp_path / "log.csv"), dataset="shop")
    yield store
    store.close()


@pytest.fixture
def evil_store(app_db: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The set-up demo with a newer catalog-clip 'checkpoint' that is the malicious .pt, and
    item vectors of that version (so search uses it)."""
    import numpy as np

    from recsys.encoders.checkpoints import NAME

    from .evil_files import evil_checkpoint

    marker = tmp_path / "ran"
    path = evil_checkpoint(tmp_path / "evil-1.pt", marker)
    store = Store(app_db)
    ids = store.item_ids("demo")
    rng = np.random.default_rng(0)
    store.register_encoder(NAME, "evil-1", NAME, "demo", str(path), {})
    for modality in ("image", "text"):
        store.upsert_embeddings("demo", NAME, "evil-1", modality, ids,
                                rng.standard_normal((len(ids), 640)).astype(np.float32),
                                [None] * len(ids))
    store.close()
    return app_db, marker


@pytest.fixture
def path_tree(tmp_path: Path) -> SimpleNamespace:
    """A data root with a catalog, and beside it what an attacker would like to read: a folder
    outside, a sibling whose name starts like the root's, and links from inside to outside."""
    from recsys.core.paths import PathPolicy

    from .path_attacks import SECRET

    root = tmp_path / "data"
    root.mkdir()
    (root / "cat.csv").write_text("id,title\na,Alpha\nb,Beta\n")
    (root / "log.csv").write_text("user,item\nu1,a\nu2,b\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"id,title\ns1,{SECRET}\ns2,{SECRET}\n")
    (outside / "passwd").write_text(f"root:x:0:0:{SECRET}:/root:/bin/bash\n")
    evil = tmp_path / "data-evil"
    evil.mkdir()
    (evil / "cat.csv").write_text(f"id,title\ne1,{SECRET}\ne2,{SECRET}\n")
    os.symlink(outside / "secret.csv", root / "link.csv")
    os.symlink(outside, root / "linkdir")
    return SimpleNamespace(root=root, outside=outside, evil=evil, tmp=tmp_path,
                           policy=PathPolicy((root.resolve(),)))


@pytest.fixture
def outside_photo(tmp_path: Path) -> Path:
    """A private photo outside the images folder."""
    from .import_helpers import colour_png

    secret = tmp_path / "private"
    secret.mkdir()
    (secret / "secret.png").write_bytes(colour_png("black"))
    return secret / "secret.png"


@pytest.fixture(scope="session")
def frozen():
    """The unaligned towers (a real EfficientNet-Lite0 + MiniLM), loaded once per session."""
    from recsys.encoders import get_encoder
    return get_encoder("frozen")


@pytest.fixture
def shapes_store(tmp_path: Path):
    """A store holding the 24-product shapes catalog as dataset 'shapes'."""
    from .encoder_helpers import import_shapes

    s = Store(tmp_path / "shapes.duckdb")
    import_shapes(s, tmp_path)
    yield s
    s.close()


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """`../shared/datasets`, or skip: a user's clone does not have the real datasets."""
    root = shared_datasets_dir()
    if not root.is_dir():
        pytest.skip(f"real datasets not found at {root} (set RECSYS_SHARED_DATASETS)")
    return root


@pytest.fixture(scope="session")
def myntra_dir(shared_datasets: Path) -> Path:
    path = shared_datasets / "myntra_fashion"
    if not (path / "styles.csv").is_file():
        pytest.skip(f"Myntra catalog not found at {path}")
    return path


@pytest.fixture(scope="session")
def amazon_dir(shared_datasets: Path) -> Path:
    path = shared_datasets / "amazon_mmrec"
    if not path.is_dir():
        pytest.skip(f"Amazon MMRec data not found at {path}")
    return path


# Test files that must not run at the same time as each other on two workers: each starts a
# local Ray cluster (its processes, ports and object store) for its module.
XDIST_GROUPS = {"tests/vectors/test_embed_ray.py": "ray", "tests/app/test_data_ray.py": "ray"}
# The longest groups (a full run on two workers, 2026-12-06), handed out first so that the run
# does not end with one worker busy on them while the other is idle; the rest in file order.
FIRST = ["ray", "tests/app/test_browser.py", "tests/encoders/test_catalog_clip.py",
         "tests/usecases/test_search.py", "tests/app/test_app.py",
         "tests/data/test_fuzz_importers.py", "tests/usecases/test_app_and_cli_agree.py",
         "tests/simulation/test_shoppers.py", "tests/encoders/test_phone_families.py",
         "tests/app/test_data.py"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`--dist loadgroup`): the tests of one file run on one worker, so a
    module's fixtures are built once (`XDIST_GROUPS` joins files that must not overlap), and
    the longest groups are handed out first (`FIRST`, with `--no-loadscope-reorder`).
    Timing assertions (`@pytest.mark.perf`) depend on the machine's load: they run only
    when asked for with RECSYS_PERF_TESTS=1, so the default run never fails on a busy box."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        group = {}
        for item in items:
            path = item.nodeid.split("::")[0]
            group[item] = XDIST_GROUPS.get(path, path)
            if not item.get_closest_marker("xdist_group"):
                item.add_marker(pytest.mark.xdist_group(group[item]))
        rank = {name: n for n, name in enumerate(FIRST)}
        items.sort(key=lambda item: rank.get(group[item], len(FIRST)))     # stable
    if os.environ.get("RECSYS_PERF_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="a timing assertion: run with RECSYS_PERF_TESTS=1")
    for item in items:
        if "perf" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    """Close the databases the app tests left in Streamlit's resource cache before exit (an open
    DuckDB connection at interpreter exit makes its bindings print leak warnings)."""
    import gc
    import sys

    if "streamlit" in sys.modules:
        import streamlit as st
        st.cache_resource.clear()
        st.cache_data.clear()
    gc.collect()
