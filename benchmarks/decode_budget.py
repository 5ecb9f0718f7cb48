"""What decoding under a budget costs and what it stops (issue 19, item 3).

Three measurements, each job in a fresh process:

* `attacks`: the issue's small files (a TIFF with a 24,192 px tile, a JPEG of 20,000 scans,
  MJPEG .mkv / .mov videos whose frames grow from 64 to 16,000 px, a 28-byte id mapping
  naming itemID 300,000,000, a 2 KB run-length-encoded Parquet of 4,096 x 8,192) through the
  public calls an upload uses (`load_image(bytes)`, `sample_frames(bytes)`,
  `import_features`), on one or two checkouts (`--old DIR`: the code before). Reports the
  outcome, seconds and peak memory: the process's VmHWM, plus the worker's peak for the
  request on a checkout that has `recsys.core.sandbox`. The old code runs under `ulimit -v`
  (`--cap-gb`, default 6) so that it cannot take the machine down.
* `upload`: the Visual search page's server-side work after a photo upload (the preview,
  `search_similar` with the crop, the preview of the cropped photo) on a database with
  vectors (e.g. the demo), with the photo decoded in the app's process (`RECSYS_SANDBOX=0`)
  and in the worker, interleaved; for a catalog photo and a 12 MP phone JPEG; `--old`: the
  same on the code before (photos decoded in the app, as it did then).
* `features`: an MMRec-size import (the real `amazon_mmrec/baby` split and id mapping, a
  simulated 7,050 x 4,096 float32 `image_feat.npy`) on one or two checkouts.

    python benchmarks/decode_budget.py attacks --old /path/to/old/checkout
    python benchmarks/decode_budget.py upload --db data/recsys.duckdb --old /path/to/old
    python benchmarks/decode_budget.py features --old /path/to/old/checkout

Numbers, not assertions: they depend on the machine and what else runs on it (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine_state  # noqa: E402

ATTACK_JOB = """
import json, resource, sys, time
sys.path.insert(0, {tests!r})
cap = {cap}
if cap:
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from pathlib import Path
kind, path = {kind!r}, Path({path!r})
t = time.perf_counter()
try:
    if kind == "photo":
        from recsys.data.images import load_image
        out = "decoded %s" % (load_image(path.read_bytes()).size,)
    elif kind == "video":
        from recsys.data.video import sample_frames
        out = "%d frames" % len(sample_frames(path.read_bytes()))
    else:
        import pandas as pd
        from recsys.store import Store
        from recsys import usecases
        store = Store(path.parent / ("f%d.duckdb" % time.time_ns()))
        pd.DataFrame({{"item_id": [str(i) for i in range(10)], "title": ["t"] * 10}}).to_csv(
            path.parent / "cat.csv", index=False)
        usecases.import_catalog(store, path.parent / "cat.csv", dataset="shop")
        t = time.perf_counter()
        rep = usecases.import_features(store, path, "style", "shop")
        out = rep.summary().splitlines()[0]
except MemoryError:
    out = "MemoryError (the %.0f GB cap)" % (cap / 2**30)
except Exception as exc:
    out = "%s: %s" % (type(exc).__name__, str(exc)[:150])
seconds = time.perf_counter() - t
hwm = [int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
worker = None
try:
    from recsys import sandbox
    reply = sandbox.last_reply()
    worker = None if reply is None else round(reply.peak_mb, 1)
except ImportError:
    pass
print(json.dumps({{"outcome": out, "seconds": round(seconds, 2), "peak_mb": round(hwm, 1),
                   "worker_peak_mb": worker}}))
"""


def make_attacks(folder: Path) -> dict[str, tuple[str, Path]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from decode_attacks import (
        big_tile_tiff,
        growing_video,
        many_scans_jpeg,
        mmrec_id_map,
        rle_parquet,
    )

    files = {"tile.tif": big_tile_tiff(), "scans.jpg": many_scans_jpeg(),
             "grow.mkv": growing_video("matroska"), "grow.mov": growing_video("mov")}
    out = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out[name] = ("video" if name.startswith("grow") else "photo", folder / name)
    out["i_id_mapping.csv"] = ("features", mmrec_id_map(folder / "idmap"))
    out["rle.parquet"] = ("features", rle_parquet(folder / "rle.parquet"))
    return out


def run_job(root: Path, code: str, timeout: float = 900) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, cwd=str(root), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"outcome": f"still running after {timeout:.0f} s (stopped)"}
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"outcome": f"crashed (exit {out.returncode}): {out.stderr[-300:]}"}
    return json.loads(lines[-1])


def attacks(args) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = make_attacks(Path(tmp))
        roots = [("after", ROOT)] + ([("before", Path(args.old))] if args.old else [])
        for name, (kind, path) in files.items():
            for label, root in roots:
                cap = int(args.cap_gb * 2**30) if label == "before" else 0
                job = ATTACK_JOB.format(tests=str(ROOT / "tests"), cap=cap, kind=kind,
                                        path=str(path))
                row = {"file": name, "bytes": _size(path, name), "checkout": label,
                       **run_job(root, job)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def _size(path: Path, name: str) -> int:
    return (path.parent / "i_id_mapping.csv").stat().st_size if name == "i_id_mapping.csv" \
        else path.stat().st_size


UPLOAD_JOB = """
import io, json, os, statistics, time
from PIL import Image
import numpy as np
from recsys import usecases
from recsys.data.images import load_image
from recsys.store import Store
try:
    from recsys import sandbox
    modes = ("0", "1")
except ImportError:                      # the code before: photos decoded here, no worker
    modes = ("old",)
store = Store({db!r}, read_only=True)
dataset = store.resolve_dataset(None)
items = store.items(dataset).dropna(subset=["image_path"])
catalog = open(items.iloc[0]["image_path"], "rb").read()
rng = np.random.default_rng(0)
img = Image.open(io.BytesIO(catalog)).convert("RGB").resize((3000, 4000))
noise = Image.fromarray(rng.integers(0, 40, (4000, 3000, 3), dtype=np.uint8))
buf = io.BytesIO(); Image.blend(img, noise, 0.2).save(buf, "JPEG", quality=90)
phone = buf.getvalue()
usecases.prepare_search(store, dataset)

def preview(data, trusted=False):
    im = load_image(data) if modes == ("old",) else \
        load_image(data, target_size=384, trusted=trusted)
    im.thumbnail((384, 384)); im.save(io.BytesIO(), "JPEG", quality=85)

def page(data):
    preview(data)
    hits = usecases.search_similar(store, dataset, photo=data, k=16, crop=True)
    preview(hits.query_photo, True)

out = {{}}
for name, data in (("catalog photo", catalog), ("12 MP phone JPEG", phone)):
    page(data)
    times = {{m: [] for m in modes}}
    for _ in range({repeats}):
        for mode in modes:
            os.environ["RECSYS_SANDBOX"] = mode
            t = time.perf_counter(); page(data); times[mode].append(time.perf_counter() - t)
    med = {{k: 1000 * statistics.median(v) for k, v in times.items()}}
    if modes == ("old",):
        out[name] = {{"bytes": len(data), "old_code_ms": round(med["old"], 1)}}
    else:
        out[name] = {{"bytes": len(data), "in_process_ms": round(med["0"], 1),
                      "worker_ms": round(med["1"], 1),
                      "added_ms": round(med["1"] - med["0"], 1)}}
print(json.dumps(out))
"""


def upload(args) -> dict:
    roots = [("after", ROOT)] + ([("before", Path(args.old))] if args.old else [])
    result = {label: run_job(root, UPLOAD_JOB.format(db=str(Path(args.db).resolve()),
                                                     repeats=args.repeats))
              for label, root in roots}
    print(json.dumps(result, indent=1))
    return result


FEATURES_JOB = """
import json, time
import numpy as np
from pathlib import Path
from recsys import usecases
from recsys.store import Store
folder = Path({folder!r})
store = Store(folder / ("f%d.duckdb" % time.time_ns()))
usecases.import_interactions(store, {baby!r}, fmt="json", dataset="baby")
t = time.perf_counter()
rep = usecases.import_features(store, folder / "image_feat.npy", "image", "baby",
                               ids={baby!r} + "/i_id_mapping.csv")
seconds = time.perf_counter() - t
hwm = [int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
worker = None
try:
    from recsys import sandbox
    reply = sandbox.last_reply()
    worker = None if reply is None else round(reply.peak_mb, 1)
except ImportError:
    pass
print(json.dumps({{"imported": rep.imported, "seconds": round(seconds, 2),
                   "peak_mb": round(hwm, 1), "worker_peak_mb": worker}}))
"""


def features(args) -> list[dict]:
    import numpy as np
    import pandas as pd

    baby = Path(args.datasets) / "amazon_mmrec" / "baby"
    n = len(pd.read_csv(baby / "i_id_mapping.csv", sep="\t"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        np.save(Path(tmp) / "image_feat.npy", rng.normal(size=(n, 4096)).astype(np.float32))
        roots = [("after", ROOT)] + ([("before", Path(args.old))] if args.old else [])
        for _ in range(args.repeats):
            for label, root in roots:
                row = {"checkout": label, "rows": n,
                       **run_job(root, FEATURES_JOB.format(folder=tmp, baby=str(baby)))}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["attacks", "upload", "features"])
    parser.add_argument("--old", help="a checkout of the code before, to compare with")
    parser.add_argument("--cap-gb", type=float, default=6.0)
    parser.add_argument("--db", default=str(ROOT / "data" / "recsys.duckdb"))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--datasets", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--out", help="write the results (and the machine state) as JSON")
    args = parser.parse_args()
    before = machine_state()
    result = {"attacks": attacks, "upload": upload, "features": features}[args.what](args)
    record = {"machine_before": before, "machine_after": machine_state(), "results": result}
    print(json.dumps({k: v for k, v in record.items() if k != "results"}))
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
