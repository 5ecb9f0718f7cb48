"""Cost of the checks on model files, index files and database queries (docs/reliability.md,
"Round 2"): 2,000 store scalar queries, 200 reads of 20,000 items, loading a dense 4,000-item
EASE file (64 MB), opening a 300,000-item index memory-mapped. Prints one JSON line.

Compare two checkouts by running it with each on the path, alternating:

    for co in /path/to/old .; do PYTHONPATH=$co python benchmarks/model_files_cost.py; done
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

root = Path(tempfile.mkdtemp())
from recsys.models import create_model
from recsys.models.base import Recommender
from recsys.search.index_files import load_index, save_index
from recsys.search.vector_index import VectorIndex
from recsys.store import Store

out = {}
# 1. store: 2,000 scalar queries and 200 data-frame queries
s = Store(root / "s.duckdb")
with s.transaction() as cur:
    s.upsert_dataset(cur, "shop", "catalog")
    cur.execute("INSERT INTO items (dataset, item_id, title) SELECT 'shop', i::VARCHAR, 'x' FROM range(20000) t(i)")
t = time.perf_counter()
for _ in range(2000):
    s.has_user("shop", "u1")
out["store_scalar_us"] = (time.perf_counter() - t) / 2000 * 1e6
t = time.perf_counter()
for _ in range(200):
    s.items("shop")
out["store_items_20k_ms"] = (time.perf_counter() - t) / 200 * 1e3
s.close()

# 2. a dense EASE-shaped model of 4,000 items (64 MB of weights) saved and loaded
rng = np.random.default_rng(0)
m = create_model("ease")
n_users, n_items = 20000, 4000
m.user_ids = np.array([f"u{i}" for i in range(n_users)], dtype=object)
m.item_ids = np.array([f"i{i}" for i in range(n_items)], dtype=object)
m._user_pos = {u: i for i, u in enumerate(m.user_ids)}
m.seen = sp.random(n_users, n_items, density=0.002, format="csr", dtype=np.float32, random_state=0)
m.weights = rng.standard_normal((n_items, n_items)).astype(np.float32)
m.variant = "dense"
path = root / "ease.npz"
m.save(path)
times = []
for _ in range(5):
    t = time.perf_counter(); Recommender.load(path); times.append(time.perf_counter() - t)
out["ease_4k_load_ms_min"] = min(times) * 1e3

# 3. a persisted index of 300,000 items x 2 x 16 dims, opened memory-mapped
idx = VectorIndex({"image": 16, "text": 16})
ids = [f"sku{i}" for i in range(300000)]
idx.add(ids, {"image": rng.standard_normal((300000, 16)).astype(np.float32),
              "text": rng.standard_normal((300000, 16)).astype(np.float32)})
save_index(idx, root / "idx")
times = []
for _ in range(5):
    t = time.perf_counter(); load_index(root / "idx", mmap=True); times.append(time.perf_counter() - t)
out["index_300k_load_ms_min"] = min(times) * 1e3
print(json.dumps({k: round(v, 2) for k, v in out.items()}))
