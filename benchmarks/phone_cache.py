"""Frozen-tower features of a catalog, its phone-shot families and its texts, cached on disk once.

The phone-shot, crop, no-match and held-out-types experiments re-align the heads dozens of
times; the frozen towers' outputs do not change between them. This script computes them once
(2 worker processes, one torch thread each) and writes plain arrays (no pickle):

    <out>/meta.json              item ids, photo paths, article types, splits, families, timings
    <out>/studio.npy             [N, 1280] float16 pooled EfficientNet-Lite0 features
    <out>/view_<family>.npy      [N, 1280] the family's shot of every item (seed 0)
    <out>/box_<family>.npy       [N, 4] the product's box in that shot
    <out>/shots/<family>/<id>.jpg  the shots of the validation and held-out items (JPEG q95)
    <out>/texts.json + texts.npy  MiniLM vectors of every caption variant, title and class prompt

Training items' shots draw their donor photos (collage, bokeh, flatlay) from the non-held-out
photos only, exactly as `train-encoder` does (`augment.view_features`); validation and held-out
items' shots (the queries) from the whole catalog, as `eval-encoder --phone-shots` does.

    python benchmarks/phone_cache.py --db data/recsys.duckdb --dataset myntra --out data/cache/phone
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

CHUNK = 64
_STATE: dict = {}


def _init(train_paths, all_paths, seed, families=None, view_splits=None):
    import torch

    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.hybrid import build_catalog_model
    from recsys.encoders.phone_families import DonorPool

    torch.set_num_threads(1)
    cfg = CatalogClipConfig()
    model = build_catalog_model(cfg.tower, pretrained=True, instance=False).eval()
    _STATE.update(cfg=cfg, model=model, seed=seed, families=families, view_splits=view_splits,
                  train_pool=DonorPool(train_paths, seed=seed),
                  query_pool=DonorPool(all_paths, seed=seed))


def _features(arrays):
    import torch

    from recsys.encoders.clip_encoder import normalise_pixels
    from recsys.encoders.towers import IMAGE_MEAN, IMAGE_STD
    from recsys.encoders.training_data import autocast

    with torch.inference_mode(), autocast(_STATE["cfg"]):
        h = _STATE["model"].visual.trunk(normalise_pixels(arrays, IMAGE_MEAN, IMAGE_STD))
    return h.float().numpy().astype(np.float16)


def _chunk(job):
    """Studio + every family's shot for the rows of one chunk; writes the chunk file."""
    from recsys.encoders.augment import render_view
    from recsys.encoders.clip_encoder import prepare_image
    from recsys.encoders.phone_families import FAMILY_NAMES, cutout
    from recsys.data.images import load_image

    k, rows, out = job
    part = Path(out) / "parts" / f"chunk_{k:05d}.npz"
    part.parent.mkdir(parents=True, exist_ok=True)
    if part.is_file():
        return k
    cfg, seed = _STATE["cfg"], _STATE["seed"]
    families = FAMILY_NAMES if _STATE.get("families") is None else _STATE["families"]
    view_splits = _STATE.get("view_splits")
    size = cfg.tower.image_size
    studio, views, boxes = [], {f: [] for f in families}, {f: [] for f in families}
    shot_rows = []                 # rows of this chunk with shots (all without --view-splits)
    for j, (item_id, path, split) in enumerate(rows):
        photo = load_image(path)
        studio.append(prepare_image(photo, size))
        if view_splits is not None and item_id not in view_splits:
            continue               # a studio-only row: its shots' features stay zero
        shot_rows.append(j)
        product = cutout(photo)
        pool = _STATE["query_pool"] if split in ("val", "heldout") else _STATE["train_pool"]
        for fam in families:
            shot = render_view(fam, seed, item_id, pool, path, product=product)
            img = shot.image
            if split in ("val", "heldout"):
                folder = Path(out) / "shots" / fam
                folder.mkdir(parents=True, exist_ok=True)
                img.save(folder / f"{item_id}.jpg", "JPEG", quality=95)
            views[fam].append(prepare_image(img, size))
            boxes[fam].append(shot.box)
    arrays = {"studio": _features(studio)}
    for fam in families:
        feats = np.zeros((len(rows), arrays["studio"].shape[1]), np.float16)
        box = np.zeros((len(rows), 4), np.int16)
        if shot_rows:
            feats[shot_rows] = _features(views[fam])
            box[shot_rows] = np.asarray(boxes[fam], np.int16)
        arrays[f"view_{fam}"] = feats
        arrays[f"box_{fam}"] = box
    tmp = part.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, part)
    return k


def build_texts(items, out: Path) -> None:
    import torch

    from recsys.encoders.captions import ZERO_SHOT_TEMPLATES, class_prompts
    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.hybrid import build_catalog_model
    from recsys.encoders.towers import text_tokenizer
    from recsys.encoders.training_data import build_pairs, cache_texts

    if (out / "texts.npy").is_file():
        return
    torch.set_num_threads(1)
    cfg = CatalogClipConfig()
    pairs = build_pairs(items)
    types = sorted({str(x).strip() for x in items["article_type"].dropna() if str(x).strip()})
    texts = list(dict.fromkeys(pairs.texts + [str(t) for t in items["title"]]
                               + [p for t in types for p in class_prompts(t, ZERO_SHOT_TEMPLATES)]))
    model = build_catalog_model(cfg.tower, pretrained=True, instance=False).eval()
    # the package's own text cache (what `align` computes), so cached alignments equal real ones
    vecs = cache_texts(model, text_tokenizer(cfg.tower.context_length), texts, cfg, None)
    np.save(out / "texts.npy", vecs.float().numpy().astype(np.float16))
    (out / "texts.json").write_text(json.dumps(texts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--out", default=str(ROOT / "data/cache/phone"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--families", nargs="*", help="phone-shot families (default all; none "
                        "given: studio photos and texts only)")
    parser.add_argument("--view-splits", nargs="+", help="render shots only for items of these "
                        "splits (e.g. heldout: the queries; training with augment_views then "
                        "refuses the cache)")
    parser.add_argument("--view-max", type=int, help="with --view-splits: only the first N such "
                        "items get shots (encoder_nomatch.py queries the first 500 held-out)")
    args = parser.parse_args()

    from multiprocessing import get_context

    from recsys.encoders.phone_families import FAMILY_NAMES
    from recsys.encoders.splits import HoldoutRule
    from recsys.encoders.training_data import training_items
    from recsys.store import Store

    out = Path(args.out)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    store = Store(args.db)
    items = training_items(store, store.resolve_dataset(args.dataset), HoldoutRule())
    store.close()
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    build_texts(items, out)
    t_texts = time.perf_counter() - t0
    ids = [str(i) for i in items["item_id"]]
    paths = [str(p) for p in items["image_path"]]
    splits = [str(s) for s in items["split"]]
    train_paths = [p for p, s in zip(paths, splits) if s != "heldout"]
    rows = list(zip(ids, paths, splits))
    jobs = [(k, rows[s:s + CHUNK], str(out)) for k, s in enumerate(range(0, len(rows), CHUNK))]
    done = 0
    families = FAMILY_NAMES if args.families is None else tuple(args.families)
    view_splits = None if args.view_splits is None else tuple(args.view_splits)
    view_ids = None if view_splits is None else \
        {i for i, s in zip(ids, splits) if s in view_splits}
    if view_ids is not None and args.view_max is not None:
        view_ids = set([i for i, s in zip(ids, splits) if s in view_splits][:args.view_max])
    with get_context("fork").Pool(args.workers, _init, (train_paths, paths, args.seed, families,
                                                        view_ids)) as pool:
        for _ in pool.imap_unordered(_chunk, jobs):
            done += 1
            if done % 10 == 0 or done == len(jobs):
                print(f"{done}/{len(jobs)} chunks, {time.perf_counter() - t0:.0f} s, load "
                      f"{os.getloadavg()[0]:.1f}", flush=True)
    parts = [np.load(out / "parts" / f"chunk_{k:05d}.npz") for k in range(len(jobs))]
    np.save(out / "studio.npy", np.concatenate([p["studio"] for p in parts]))
    for fam in families:
        np.save(out / f"view_{fam}.npy", np.concatenate([p[f"view_{fam}"] for p in parts]))
        np.save(out / f"box_{fam}.npy", np.concatenate([p[f"box_{fam}"] for p in parts]))
    meta = {"item_ids": ids, "paths": paths, "splits": splits,
            "article_type": [str(x) if isinstance(x, str) else "" for x in items["article_type"]],
            "families": list(families), "seed": args.seed,
            "view_splits": None if view_splits is None else list(view_splits),
            "view_max": args.view_max, "seconds": time.perf_counter() - t0,
            "seconds_texts": t_texts, "load_start": load0, "load_end": os.getloadavg(),
            "workers": args.workers}
    (out / "meta.json").write_text(json.dumps(meta))
    print(json.dumps({k: v for k, v in meta.items() if not isinstance(v, list)}))


if __name__ == "__main__":
    main()


class CachedFeatures:
    """The cache behind the `features.TowerFeatures` interface: `align`,
    `train_catalog_clip`, `evaluate_phone_shots` and `evaluate_unseen_types` take it as
    `features=` and read the frozen towers' outputs from disk instead of running the towers."""

    def __init__(self, folder: str | Path):
        import torch

        folder = Path(folder)
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text())
        self.families = self.meta["families"]
        self.seed = int(self.meta["seed"])
        self.studio = torch.from_numpy(np.load(folder / "studio.npy").astype(np.float32)).to(
            torch.bfloat16)
        self.view = {f: torch.from_numpy(np.load(folder / f"view_{f}.npy").astype(np.float32))
                     .to(torch.bfloat16) for f in self.families}
        self.box = {f: np.load(folder / f"box_{f}.npy") for f in self.families}
        self.path_row = {p: i for i, p in enumerate(self.meta["paths"])}
        self.item_row = {i: k for k, i in enumerate(self.meta["item_ids"])}
        self.texts_list = json.loads((folder / "texts.json").read_text())
        self.text_row = {t: i for i, t in enumerate(self.texts_list)}
        self.txt = torch.from_numpy(np.load(folder / "texts.npy").astype(np.float32)).to(
            torch.bfloat16)
        self.torch = torch

    # -- the TowerFeatures interface --------------------------------------------------------
    def images(self, model, paths, cfg, pixels, progress, flip):
        assert cfg.image_trainable == 0 and not flip, "the cache holds pooled features only"
        return self.studio[[self.path_row[str(p)] for p in paths]], None

    def texts(self, model, tokenize, texts, cfg, progress):
        assert cfg.text_trainable == 0, "the cache holds pooled text vectors only"
        return self.txt[[self.text_row[t] for t in texts]]

    def views(self, model, cfg, paths, item_ids, plan, pixels, progress, donor_paths):
        from recsys.encoders.augment import Views

        assert plan.seed == self.seed, f"the cache holds views of seed {self.seed} only"
        assert self.meta.get("view_splits") is None, "the cache holds the queries' shots only"
        assert set(plan.families) <= set(self.families), "the cache lacks some families"
        table = plan.table([str(i) for i in item_ids])
        rows = [self.item_row[str(i)] for i in item_ids]
        feats = self.torch.empty((len(rows), table.shape[1], self.studio.shape[1]),
                                 dtype=self.torch.bfloat16)
        for j in range(table.shape[1]):
            for fam in set(table[:, j]):
                sel = np.flatnonzero(table[:, j] == fam)
                feats[self.torch.from_numpy(sel), j] = self.view[fam][[rows[i] for i in sel]]
        return Views(feats, table)

    # -- helpers for the benchmarks ---------------------------------------------------------
    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.meta["splits"]) == split)

    def shot_path(self, family: str, row: int) -> Path:
        return self.folder / "shots" / family / f"{self.meta['item_ids'][row]}.jpg"

    def check(self, n: int = 8) -> dict:
        """Largest |difference| between cached and freshly computed features (studio photos,
        training views, texts), on the first `n` training items."""

        from recsys.encoders.augment import ViewPlan
        from recsys.encoders.clip_config import CatalogClipConfig
        from recsys.encoders.clip_encoder import normalise_pixels
        from recsys.encoders.hybrid import build_catalog_model
        from recsys.encoders.towers import IMAGE_MEAN, IMAGE_STD, text_tokenizer
        from recsys.encoders.features import TowerFeatures

        cfg = CatalogClipConfig()
        model = build_catalog_model(cfg.tower, pretrained=True, instance=False).eval()
        rows = self.rows("train")[:n]
        paths = [self.meta["paths"][r] for r in rows]
        ids = [self.meta["item_ids"][r] for r in rows]
        pix = lambda a: normalise_pixels(a, IMAGE_MEAN, IMAGE_STD)  # noqa: E731
        real = TowerFeatures()
        donors = [p for p, s in zip(self.meta["paths"], self.meta["splits"]) if s != "heldout"]
        plan = ViewPlan(tuple(self.families), 2, self.seed)
        out = {"studio": float((real.images(model, paths, cfg, pix, None, False)[0].float()
                                - self.images(None, paths, cfg, None, None, False)[0].float())
                               .abs().max()),
               "views": float((real.views(model, cfg, paths, ids, plan, pix, None, donors)
                               .features.float() - self.views(None, cfg, paths, ids, plan, None,
                                                              None, donors).features.float())
                              .abs().max())}
        texts = self.texts_list[:16]
        tok = text_tokenizer(cfg.tower.context_length)
        out["texts"] = float((real.texts(model, tok, texts, cfg, None).float()
                              - self.texts(None, None, texts, cfg, None).float()).abs().max())
        return out
