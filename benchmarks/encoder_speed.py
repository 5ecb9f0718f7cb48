"""Speed of the default encoder architecture, this tree against another git ref, side by side.

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    python benchmarks/encoder_speed.py --ref main --rounds 3

The other ref's code is exported with `git archive` into a temporary folder (no worktree, no
checkout). Each round runs one worker process per side, alternately (old, new, old, new...), so
both see the same machine state; every worker builds its side's default catalog-clip
architecture from the pretrained towers (untrained heads: the speed is the same as a trained
checkpoint's) and times, with the same torch thread count:

- photos/s: batched 64, Myntra JPEGs decoded in the timing;
- captions/s: full captions (every catalog field), batched 256;
- one photo: median latency of single uploaded JPEGs (bytes -> vector).

A second part times one photo with RECSYS_ENCODER_THREADS=2 on both sides, which is what the
old code uses for every request of an app started on an idle 2-core machine; the new code
still runs a single photo on one thread (`recsys.core.threads.threads_for`). Prints a table with the ratios new/old
and the load average, and writes JSON to benchmarks/results/encoders-speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = r'''
import io, json, os, statistics, sys, time
sys.path.insert(0, sys.argv[1])
os.environ["HF_HUB_OFFLINE"] = "1"; os.environ["TRANSFORMERS_OFFLINE"] = "1"
import numpy as np, pandas as pd, torch
side, csv, images_dir, n_img, n_txt, n_lat, threads = (sys.argv[2], sys.argv[3], sys.argv[4],
    int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8])
from recsys.encoders.captions import item_caption
if side == "old":
    from recsys.encoders.catalog_clip import default_tower, _wrap as wrap
    from recsys.encoders.towers import build_clip_model as build
    cfg = default_tower(); model = build(cfg, pretrained=True)
else:
    from recsys.encoders.clip_config import default_tower
    from recsys.encoders.checkpoints import wrap_model as wrap
    from recsys.encoders.hybrid import build_catalog_model as build
    cfg = default_tower(); model = build(cfg, pretrained=True)
enc = wrap(model, cfg, "catalog-clip", side, "catalog-clip", None, {})
styles = pd.read_csv(csv, on_bad_lines="skip")
from pathlib import Path
paths = sorted(str(p) for p in Path(images_dir).glob("*.jpg"))[:max(n_img, n_lat)]
ids = [int(Path(p).stem) for p in paths]
rows = styles.set_index("id").loc[[i for i in ids if i in set(styles["id"])]].reset_index()
records = [{"title": r.productDisplayName, "gender": r.gender, "article_type": r.articleType,
            "base_colour": r.baseColour, "sub_category": r.subCategory,
            "master_category": r.masterCategory, "usage": r.usage, "season": r.season,
            "year": r.year} for r in rows.itertuples()]
texts = [item_caption(r) for r in records] * (1 + n_txt // max(1, len(records)))
texts = texts[:n_txt]
out = {"side": side, "load": os.getloadavg()[0], "dim": enc.dim}
# "policy": both sides told to use 2 threads (what the old code picks when the app starts on
# an idle 2-core machine); the new code still runs a single photo on one thread.
os.environ["RECSYS_ENCODER_THREADS"] = "2" if threads == "policy" else threads
enc.encode_images(paths[:64]); enc.encode_texts(texts[:256])
t = time.perf_counter(); enc.encode_images(paths[:n_img], batch_size=64)
out["photos_per_s"] = n_img / (time.perf_counter() - t)
t = time.perf_counter(); enc.encode_texts(texts, batch_size=256)
out["captions_per_s"] = len(texts) / (time.perf_counter() - t)
uploads = [open(p, "rb").read() for p in paths[:n_lat]]
lat = []
for u in uploads:
    t = time.perf_counter(); enc.encode_image(u); lat.append(1000 * (time.perf_counter() - t))
out["one_photo_ms"] = statistics.median(lat)
out["one_photo_p90_ms"] = sorted(lat)[int(0.9 * (len(lat) - 1))]
out["threads_one_photo"] = threads
print("RESULT " + json.dumps(out))
'''


def export_ref(ref: str, folder: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "recsys"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_worker(tree: Path, side: str, args, threads: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("RECSYS_ENCODER_THREADS", None)
    cmd = [sys.executable, "-c", WORKER, str(tree), side, str(args.csv), str(args.images),
           str(args.photos), str(args.captions), str(args.latency_photos), threads]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise SystemExit(f"{side} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def main() -> None:
    data = ROOT.parent / "shared" / "datasets" / "myntra_fashion"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main", help="git ref of the old code (default main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1", help="torch threads for the throughput part")
    parser.add_argument("--photos", type=int, default=512)
    parser.add_argument("--captions", type=int, default=2048)
    parser.add_argument("--latency-photos", type=int, default=40)
    parser.add_argument("--csv", default=str(data / "styles.csv"))
    parser.add_argument("--images", default=str(data / "images"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "encoders-speed.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = export_ref(args.ref, Path(tmp))
        runs: dict[str, list[dict]] = {"old": [], "new": [], "old_policy": [], "new_policy": []}
        for r in range(args.rounds):
            for side, tree in (("old", old_tree), ("new", ROOT)):
                res = run_worker(tree, side, args, args.threads)
                runs[side].append(res)
                print(f"round {r + 1} {side}: {res}", flush=True)
        # one photo under each side's own thread choice (old: idle cores at start; new: 1)
        lat_args = argparse.Namespace(**{**vars(args), "photos": 64, "captions": 256})
        for r in range(args.rounds):
            for side, tree in (("old", old_tree), ("new", ROOT)):
                res = run_worker(tree, side, lat_args, "policy")
                runs[f"{side}_policy"].append(res)
                print(f"round {r + 1} {side} (own thread choice): one photo "
                      f"{res['one_photo_ms']:.1f} ms, load {res['load']:.1f}", flush=True)

    def med(side, key):
        return statistics.median(x[key] for x in runs[side])

    table = {}
    print(f"\n{'measure':<34}{'old':>10}{'new':>10}{'new/old':>9}")
    for key, label in (("photos_per_s", "photos/s (batched 64)"),
                       ("captions_per_s", "captions/s (batched 256)"),
                       ("one_photo_ms", f"one photo, ms ({args.threads} thread)")):
        o, n = med("old", key), med("new", key)
        table[key] = {"old": o, "new": n, "ratio": n / o}
        print(f"{label:<34}{o:>10.1f}{n:>10.1f}{n / o:>9.2f}")
    o, n = med("old_policy", "one_photo_ms"), med("new_policy", "one_photo_ms")
    table["one_photo_ms_own_threads"] = {"old": o, "new": n, "ratio": n / o}
    print(f"{'one photo, ms (own thread choice)':<34}{o:>10.1f}{n:>10.1f}{n / o:>9.2f}")
    loads = [x["load"] for v in runs.values() for x in v]
    print(f"load average during the runs: {min(loads):.1f}-{max(loads):.1f} "
          f"on {os.cpu_count()} cores (other processes running)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"ref": args.ref, "rounds": args.rounds,
                                          "threads": args.threads, "summary": table,
                                          "load": [min(loads), max(loads)],
                                          "cpus": os.cpu_count(), "runs": runs},
                                         indent=2) + "\n")
    print(f"Saved to {args.out}")


if __name__ == "__main__":
    main()
