"""Held-out types with calibrated stacking, computed over the frozen towers' cached features.

`eval-encoder --unseen-types K --seed S` aligns from scratch (the frozen towers run over every
photo each time: 20-40 min on a busy 2-core box). This script runs the same protocol
(`evaluate_unseen.evaluate_unseen_types`, unchanged) but feeds `alignment.align` from one cache
of the frozen towers' outputs over the whole catalog (computed once, saved to --cache), and
encodes the evaluation pool from the same cache (the cached path equals the model's, tested in
tests/encoders/test_catalog_clip.py). Prints raw and calibrated numbers per seed and writes JSON.

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    python benchmarks/encoder_gzsl.py --db /tmp/x/myntra.duckdb --dataset myntra --seeds 0 1
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

from recsys.core.progress import console_progress  # noqa: E402
from recsys.store import Store  # noqa: E402


def build_cache(store, dataset: str, path: Path) -> dict:
    """Pooled photo features of every catalog photo and pooled MiniLM vectors of every caption
    variant and class prompt (bf16), with the package's own caching functions."""
    import torch

    from recsys.encoders.captions import ZERO_SHOT_TEMPLATES, class_prompts
    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.clip_encoder import normalise_pixels
    from recsys.encoders.hybrid import build_catalog_model
    from recsys.encoders.towers import IMAGE_MEAN, IMAGE_STD, text_tokenizer
    from recsys.encoders.training_data import build_pairs, cache_images, cache_texts

    if path.is_file():
        return torch.load(path, weights_only=False)
    cfg = CatalogClipConfig()
    items = store.items(dataset)
    items = items[items["image_path"].notna() & items["title"].notna()].reset_index(drop=True)
    pairs = build_pairs(items)
    types = sorted({str(x).strip() for x in items["article_type"].dropna() if str(x).strip()})
    texts = list(dict.fromkeys(pairs.texts + [str(t) for t in items["title"]]
                               + [p for t in types for p in class_prompts(t, ZERO_SHOT_TEMPLATES)]))
    model = build_catalog_model(cfg.tower, pretrained=True, instance=False)
    model.eval()
    t0 = time.perf_counter()
    with console_progress("cache photos") as bar:
        img, _ = cache_images(model, pairs.image_paths, cfg, lambda a: normalise_pixels(a, IMAGE_MEAN, IMAGE_STD), bar, flip=False)
    t_img = time.perf_counter() - t0
    with console_progress("cache texts") as bar:
        txt = cache_texts(model, text_tokenizer(cfg.tower.context_length), texts, cfg, bar)
    cache = {"paths": pairs.image_paths, "img": img, "texts": texts, "txt": txt,
             "seconds_images": t_img, "seconds_texts": time.perf_counter() - t0 - t_img}
    torch.save(cache, path)
    return cache


class CachedFeatures:
    """The cache as drop-in replacements for `alignment.cache_images` / `cache_texts` and for
    `ClipEncoder.encode_images` on catalog photos (head over the cached pooled features)."""

    def __init__(self, cache: dict):
        import torch

        self.img, self.txt = cache["img"], cache["txt"]
        self.path_row = {p: i for i, p in enumerate(cache["paths"])}
        self.text_row = {t: i for i, t in enumerate(cache["texts"])}
        self.torch = torch

    def cache_images(self, model, paths, cfg, prep, progress, flip):
        assert cfg.image_trainable == 0 and not flip, "the cache holds pooled features only"
        return self.img[[self.path_row[p] for p in paths]], None

    def cache_texts(self, model, tokenize, texts, cfg, progress):
        assert cfg.text_trainable == 0, "the cache holds pooled text vectors only"
        return self.txt[[self.text_row[t] for t in texts]]

    def features(self, paths):
        return self.img[[self.path_row[str(p)] for p in paths]].float()

    def head_vectors(self, encoder, paths, part=None):
        """Unit vectors of the encoder's photo head (or one of its parts) from the cache."""
        import torch.nn.functional as F
        head = encoder.model.visual.head
        if part is not None:
            for name in part.split("."):
                head = getattr(head, name)
        with self.torch.inference_mode():
            return F.normalize(head(self.features(paths)).float(), dim=-1).numpy()


def check_cache_path(cached: CachedFeatures, encoder, paths) -> float:
    """Largest |difference| between the real encode_images and the cached head path."""
    real = encoder.encode_images(list(paths))
    return float(np.abs(real - cached.head_vectors(encoder, paths)).max())


def run(args) -> dict:
    import torch

    from recsys.encoders import alignment, evaluate_unseen
    from recsys.encoders.calibration import calibrated_scores, harmonic_mean
    from recsys.encoders.clip_encoder import ClipEncoder
    from recsys.encoders.evaluate import class_vectors, weighted_f1
    from recsys.encoders.registry import get_encoder

    store = Store(args.db)
    cached = CachedFeatures(build_cache(store, args.dataset, Path(args.cache)))
    real_encode = ClipEncoder.encode_images
    # exactness of the cached path, on a few photos through the real one
    conse = get_encoder("conse", store, args.dataset)
    sample = list(cached.path_row)[:16]
    out: dict = {"check_max_abs_diff": {"conse": check_cache_path(cached, conse, sample)}}

    def encode_images(self, images, batch_size=64, progress=None, failures=None):
        if images and all(isinstance(p, str) and p in cached.path_row for p in images):
            return cached.head_vectors(self, images)
        return real_encode(self, images, batch_size=batch_size, progress=progress,
                           failures=failures)

    alignment.cache_images = cached.cache_images
    alignment.cache_texts = cached.cache_texts
    ClipEncoder.encode_images = encode_images
    pools: dict = {}
    real_pool = evaluate_unseen._pool_metrics

    def pool_metrics(encoder, pool, labels, unseen, all_types, templates, progress):
        pools[encoder.name] = (encoder, pool, labels)
        return real_pool(encoder, pool, labels, unseen, all_types, templates, progress)

    evaluate_unseen._pool_metrics = pool_metrics
    settings = json.loads(args.set) if args.set else {}
    if args.in_distribution:
        from recsys.encoders.catalog_clip import train_catalog_clip
        from recsys.encoders.evaluate import evaluate_encoder

        t0 = time.perf_counter()
        with console_progress("align on the catalog") as bar:
            info = train_catalog_clip(store, args.dataset, settings, bar)
        ev = evaluate_encoder(store, args.dataset, info.spec, baseline=None, record=False)
        calib = info.config.get("calibration") or {}
        res = {"encoder": info.spec, "metrics": ev.metrics, "n_items": ev.n_items,
               "seen_types": len(calib.get("seen_types", [])), "n_classes": ev.n_classes,
               "gamma": calib.get("gamma"), "validation": calib.get("validation"),
               "seconds": time.perf_counter() - t0}
        out["in_distribution"] = res
        print(json.dumps({k: v for k, v in res.items() if k != "validation"}, indent=1))
    for seed in args.seeds:
        t0 = time.perf_counter()
        with console_progress(f"held-out types seed {seed}") as bar:
            ev = evaluate_unseen.evaluate_unseen_types(store, args.dataset, args.k, seed,
                                                       settings, progress=bar, record=False)
        enc, pool, labels = pools["catalog-clip"]
        real = real_encode(enc, list(pool["image_path"])[:16])
        calib = enc.meta.get("calibration") or {}
        res = {"unseen_types": ev.unseen_types, "metrics": ev.metrics,
               "baseline": ev.baseline_metrics, "calibration": calib,
               "check_max_abs_diff_catalog_clip": float(np.abs(
                   real - cached.head_vectors(enc, list(pool["image_path"])[:16])).max()),
               "seconds": time.perf_counter() - t0}
        fusion = (calib.get("validation") or {}).get("conse_fusion")
        if fusion:   # ConSE score fusion with the weight and gamma chosen on validation
            items = store.items(args.dataset)
            items = items[items["image_path"].notna() & items["title"].notna()]
            all_types = sorted(set(items["article_type"].dropna().astype(str).str.strip())
                               - {""})
            cv = class_vectors(enc, all_types)[:, :384]
            cv = cv / np.linalg.norm(cv, axis=1, keepdims=True)
            paths = list(pool["image_path"])
            a = cached.head_vectors(enc, paths, "aligned") @ cv.T
            c = cached.head_vectors(enc, paths, "aligned.conse") @ cv.T
            w, g = fusion["conse_weight"], fusion["gamma"]
            seen = np.isin(all_types, calib["seen_types"])
            pred = np.asarray(all_types, dtype=object)[
                calibrated_scores((1 - w) * a + w * c, seen, g).argmax(1)]
            lab = np.asarray(labels, dtype=object)
            un = np.isin(lab, ev.unseen_types)
            hit = pred == lab
            res["fusion"] = {"conse_weight": w, "gamma_cosine": g,
                             "unseen_vs_all_wf1": weighted_f1(lab[un], pred[un]),
                             "unseen_vs_all_accuracy": float(hit[un].mean()),
                             "seen_wf1": weighted_f1(lab[~un], pred[~un]),
                             "seen_accuracy": float(hit[~un].mean()),
                             "harmonic_accuracy": harmonic_mean(float(hit[~un].mean()),
                                                                float(hit[un].mean()))}
        out[str(seed)] = res
        print(json.dumps({k: v for k, v in res.items() if k != "calibration"}, indent=1))
        print("gamma", calib.get("gamma"), "validation",
              json.dumps({k: v for k, v in (calib.get("validation") or {}).items()
                          if k != "pseudo_unseen_types"}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--cache", default="/tmp/gzsl/cache.pt",
                        help="file for the frozen towers' outputs (made once)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--set", help="CatalogClipConfig fields as JSON")
    parser.add_argument("--in-distribution", action="store_true",
                        help="also align on the whole catalog (train_catalog_clip, registered "
                             "in --db) and score the held-out 20%% raw and calibrated")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/"
                                              "encoders-myntra-calibration.json"))
    args = parser.parse_args()
    import torch
    torch.set_num_threads(int(os.environ.get("RECSYS_ENCODER_THREADS", "1")))
    out = run(args)
    out["machine"] = {"cpus": os.cpu_count(), "load_average": os.getloadavg(),
                      "threads": torch.get_num_threads()}
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print("wrote", args.out)


if __name__ == "__main__" and sys.argv[1:2] == ["--cache-only"]:
    build_cache(Store(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
elif __name__ == "__main__":
    main()
