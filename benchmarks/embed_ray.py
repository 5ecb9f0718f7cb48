"""Embedding throughput: in-process against Ray Data with 1 and 2 workers, and the resume.

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    cp /work/cache/myntra.duckdb /tmp/myntra.duckdb        # never the shared file itself
    python benchmarks/embed_ray.py --db /tmp/myntra.duckdb --items 800

Works on a temporary copy of the database (the given file is only read). The same `--items`
products (the first N with a photo, by item id) are embedded with `--encoder` (default the
dataset's newest catalog-clip checkpoint), `force=True` each time, in this order:

1. local: `embed_items` in this process, the encoder loaded beforehand (its load is timed
   apart), torch threads as the app picks them (the idle cores now); measured again at the
   end, and the ratios use the mean of both (the load of a shared machine changes);
2. Ray, 1 worker and 2 workers (`embed_items_ray`, one local Ray instance with 2 CPUs started
   once, its start-up timed apart): photos/s per worker while encoding, and overall (start-up
   of the actors included);
3. resume: a Ray run (2 workers) stopped by its progress callback after `--stop-after` output
   blocks, then run again: how many photos the stopped run kept in its shards, and how many the
   second run encoded (ideally exactly the rest: nothing done twice).

Prints a table with the load average (other processes share the cores) and writes JSON to
benchmarks/results/embed-ray-<dataset>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Stop(Exception):
    pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="data/myntra.duckdb")
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--encoder", default=None, help="encoder spec (default catalog-clip)")
    ap.add_argument("--items", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--stop-after", type=int, default=4, help="output blocks before the stop")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import ray

    from recsys.encoders import get_encoder
    from recsys.encoders.clip_encoder import request_threads
    from recsys.store import Store
    from recsys.vectors.embed import embed_items
    from recsys.vectors.embed_ray import embed_items_ray

    tmp = Path(tempfile.mkdtemp(prefix="embed-ray-"))
    db = tmp / Path(args.db).name
    shutil.copy(args.db, db)
    store = Store(db)
    dataset = store.resolve_dataset(args.dataset)
    items = store.items(dataset)
    items = items[items["image_path"].notna()].sort_values("item_id").head(args.items)
    ids = list(items["item_id"])
    n = len(ids)
    out: dict = {"dataset": dataset, "items": n, "batch_size": args.batch_size,
                 "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    print(f"{dataset}: {n} products with photos; load average {out['load_before'][0]:.2f} "
          f"on {os.cpu_count()} cores (other processes share them)")

    # 1. in-process
    t = time.perf_counter()
    enc = get_encoder(args.encoder, store, dataset)
    load = time.perf_counter() - t
    out["encoder"] = enc.spec
    stamps: dict[str, float] = {}

    def timed(p) -> None:       # texts run first, then photos: time the photo stage alone
        stamps[p.stage] = time.perf_counter()

    def run_local(key: str) -> None:
        threads = request_threads(args.batch_size)
        stamps.clear()
        rep = embed_items(store, dataset, enc, batch_size=args.batch_size, force=True,
                          item_ids=ids, progress=timed)
        assert rep.embedded["image"] == n, rep.summary()
        photo_seconds = stamps["images"] - stamps["texts"]
        out[key] = {"seconds": rep.seconds, "load_seconds": load, "torch_threads": threads,
                    "photo_seconds": photo_seconds, "photos_per_s": n / photo_seconds,
                    "load_average": os.getloadavg()[0]}
        print(f"local, in process ({threads} torch thread{'s' if threads > 1 else ''}): "
              f"{n / photo_seconds:6.1f} photos/s while encoding photos ({rep.seconds:.1f} s "
              f"for {n} photos + {n} texts and their writes; model load {load:.1f} s apart; "
              f"load average {out[key]['load_average']:.1f})")

    run_local("local")

    # 2. Ray, 1 and 2 workers
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    out["ray_init_seconds"] = time.perf_counter() - t
    print(f"local Ray started in {out['ray_init_seconds']:.1f} s (2 CPUs)")
    for workers in (1, 2):
        rep = embed_items_ray(store, dataset, args.encoder, workers=workers,
                              batch_size=args.batch_size, force=True, item_ids=ids)
        assert rep.embedded["image"] == n, rep.summary()
        per = rep.per_worker
        out[f"ray_{workers}"] = {"seconds": rep.seconds, "pipeline_seconds":
                                 rep.pipeline_seconds, "photos_per_s": rep.photos_per_s,
                                 "per_worker": per}
        rates = ", ".join(f"{w['photos_per_s']:.1f} ({w['photos']} photos)" for w in per)
        print(f"Ray, {workers} worker{'s' if workers > 1 else ' '}: {rep.photos_per_s:6.1f} "
              f"photos/s overall ({rep.pipeline_seconds:.1f} s, actor start-up included); "
              f"per worker while encoding: {rates}; load average {os.getloadavg()[0]:.1f}")

    # 3. resume
    blocks = 0

    def stop(p) -> None:
        nonlocal blocks
        if p.stage == "ray" and p.done > 0:
            blocks += 1
            if blocks >= args.stop_after:
                raise Stop

    for modality in ("image", "text"):     # the products have no vectors of this encoder now
        store.delete_embeddings(dataset, rep.encoder, rep.version, modality, ids)
    t = time.perf_counter()
    try:
        embed_items_ray(store, dataset, args.encoder, workers=2, batch_size=args.batch_size,
                        item_ids=ids, progress=stop)
        raise SystemExit("the run ended before --stop-after blocks; lower it")
    except Stop:
        pass
    stopped = time.perf_counter() - t
    rep = embed_items_ray(store, dataset, args.encoder, workers=2, batch_size=args.batch_size,
                          item_ids=ids)
    kept, redone = rep.resumed["image"], rep.encoded["image"]
    out["resume"] = {"stop_after_blocks": args.stop_after, "stopped_after_seconds": stopped,
                     "photos_kept": kept, "photos_encoded_again": redone,
                     "photos_done_twice": kept + redone - n, "texts_kept": rep.resumed["text"],
                     "restart_seconds": rep.seconds, "embedded": rep.embedded}
    print(f"resume: stopped after {args.stop_after} blocks ({stopped:.1f} s): {kept} photos kept "
          f"in shards; the restart encoded {redone} photos ({kept + redone - n} done twice) "
          f"and imported {rep.embedded['image']} in {rep.seconds:.1f} s")
    ray.shutdown()
    run_local("local_again")     # the load changes: measure in-process again, after Ray
    store.close()
    shutil.rmtree(tmp, ignore_errors=True)

    out["load_after"] = os.getloadavg()
    local = (out["local"]["photos_per_s"] + out["local_again"]["photos_per_s"]) / 2
    # end to end: the model load, encoding photos and texts, the DuckDB writes (Ray: actor
    # start-up, the pipeline, the shards' import; the one-off `ray.init` apart)
    local_wall = load + (out["local"]["seconds"] + out["local_again"]["seconds"]) / 2
    out["ratios"] = {}
    for workers in (1, 2):
        r = out[f"ray_{workers}"]
        busy = sum(w["photos_per_s"] for w in r["per_worker"])
        out["ratios"][f"ray_{workers}"] = {"encoding": busy / local,
                                           "end_to_end": local_wall / r["seconds"]}
        print(f"Ray {workers} worker(s) vs local: {busy / local:.2f}x the photo encoding rate "
              f"(the workers' rates summed), {local_wall / r['seconds']:.2f}x end to end "
              f"({r['seconds']:.1f} s against {local_wall:.1f} s, model loads included)")
    print(f"load average after: {out['load_after'][0]:.2f}")
    path = Path(args.out or ROOT / "benchmarks" / "results" / f"embed-ray-{dataset}.json")
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
