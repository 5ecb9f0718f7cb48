"""Held-out types: can a closed-form map from photo features into the frozen text space do it?

A probe for issue 22 item 5 (not shipped: it does not pay, see docs/encoders.md "Held-out types:
what the literature's fixes measure"). Over the disk cache of `benchmarks/phone_cache.py` (the
frozen image tower's pooled features of every catalog photo and the frozen MiniLM vectors of
every title and type prompt), for each draw of held-out types:

1. ridge regression (closed form, ESZSL-style) from standardised photo features of the training
   items (seen types, not the held-out 20%) to a text target: the item's title vector, its
   type's prompt-ensemble vector, or their mean;
2. every pool photo (held-out 20% of seen types + every item of the unseen types) is mapped into
   the text space and named among all types, the type vectors being the prompt ensemble of the
   type name ("names") or the mean title vector of the type's items ("titles": for unseen types
   the titles of their own items, i.e. a new type described by its products' titles, text-only
   side information that a shop would have for new arrivals);
3. calibrated stacking: gamma subtracted from seen types' scores, chosen on a validation split
   where 10 seen types play unseen (drawn among the training types, never the scored ones;
   the map refitted without them); the best gamma on the test draw itself is printed too as an
   upper bound (not a result);
4. name -> photo R@10 (title vector vs mapped photos, within the pool).

    python benchmarks/encoder_gzsl_ridge.py --db data/recsys.duckdb

The draws are those `eval-encoder --unseen-types 10 --seed 0/1` takes (leaking draws replaced);
the script recomputes them with `evaluate_unseen.draw_clean_unseen_types`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

GAMMAS = np.round(np.arange(0.0, 0.301, 0.02), 2)
TEMPLATES = ("a photo of {}", "a product photo of {}", "{}")   # the cached prompts


def _norm(a: np.ndarray) -> np.ndarray:
    return a / np.clip(np.linalg.norm(a, axis=-1, keepdims=True), 1e-9, None)


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def harmonic(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


def sweep(scores, types, labels, is_unseen_type, pool_unseen) -> list[tuple]:
    out = []
    for g in GAMMAS:
        pred = np.asarray(types, dtype=object)[(scores - g * ~is_unseen_type).argmax(1)]
        hit = pred == labels
        s, u = float(hit[~pool_unseen].mean()), float(hit[pool_unseen].mean())
        out.append((float(g), s, u, harmonic(s, u)))
    return out


def probe(x, labels, split, title_vecs, name_vecs, types, unseen, lam, target, classes):
    """(per-gamma (gamma, seen acc, unseen acc, harmonic), unseen accuracy among the unseen
    names only, name->photo R@10 unseen, seen)."""
    is_u = np.isin(labels, list(unseen))
    train = ~is_u & (split != "heldout")
    pool = is_u | (split == "heldout")
    type_idx = {t: i for i, t in enumerate(types)}
    y = {"title": title_vecs,
         "name": name_vecs[[type_idx[t] for t in labels]]}
    y["mix"] = _norm(y["title"] + y["name"])
    w = ridge(x[train], y[target][train], lam)
    mapped = _norm(x[pool] @ w)
    if classes == "names":
        cls = name_vecs
    else:   # mean title of the type's items: seen types from training, unseen from their own
        cls = name_vecs.copy()
        for i, t in enumerate(types):
            rows = (labels == t) & (is_u if t in unseen else train)
            if rows.any():
                cls[i] = _norm(title_vecs[rows].mean(0))
    is_ut = np.isin(types, list(unseen))
    res = sweep(mapped @ cls.T, types, labels[pool], is_ut, is_u[pool])
    # the ceiling of any calibration: unseen photos named among the unseen names only
    among = np.asarray(types, dtype=object)[is_ut][(mapped[is_u[pool]] @ cls[is_ut].T).argmax(1)]
    only = float((among == labels[pool][is_u[pool]]).mean())
    sim = title_vecs[pool] @ mapped.T
    rank = (sim > np.diag(sim)[:, None]).sum(1)
    return (res, only, float((rank[is_u[pool]] < 10).mean()),
            float((rank[~is_u[pool]] < 10).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--cache", default=str(ROOT / "data/cache/phone"))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/"
                                              "encoders-myntra-gzsl-ridge.json"))
    args = parser.parse_args()
    from recsys.encoders.captions import item_caption
    from recsys.encoders.evaluate_unseen import (
        draw_clean_unseen_types,
        draw_unseen_types,
    )
    from recsys.store import Store

    load0, t0 = os.getloadavg(), time.perf_counter()
    folder = Path(args.cache)
    meta = json.loads((folder / "meta.json").read_text())
    feats = np.load(folder / "studio.npy").astype(np.float32)
    texts = json.loads((folder / "texts.json").read_text())
    tvec = _norm(np.load(folder / "texts.npy").astype(np.float32))
    row = {t: i for i, t in enumerate(texts)}
    store = Store(args.db)
    items = store.items(args.dataset)
    store.close()
    items["item_id"] = items["item_id"].astype(str)
    items = items.set_index("item_id").reindex([str(i) for i in meta["item_ids"]])
    labels = np.asarray(meta["article_type"], dtype=object)
    split = np.asarray(meta["splits"])
    captions = [item_caption(r) for r in items.reset_index().to_dict("records")]
    title_vecs = tvec[[row[str(t)] for t in items["title"]]]
    types = sorted(set(labels))
    name_vecs = _norm(np.stack([_norm(tvec[[row[t.format(n)] for t in TEMPLATES]]).mean(0)
                                for n in types]))
    seen_mask = split != "heldout"
    x = feats - feats[seen_mask].mean(0)
    x = x / (feats[seen_mask].std(0) + 1e-3)
    out: dict = {"variants": {}}
    for seed in args.seeds:
        unseen, _ = draw_clean_unseen_types(list(labels), captions, args.k, seed,
                                            train_mask=seen_mask)
        # validation: k training types play unseen (drawn among the types left to train on)
        rest = labels[~np.isin(labels, unseen)]
        pseudo = draw_unseen_types(list(rest), args.k, seed + 1000)
        keep = ~np.isin(labels, unseen)
        print(f"seed {seed}: {', '.join(unseen)}; validation types: {', '.join(pseudo)}")
        for lam in (100.0, 1000.0):
            for target, classes in (("title", "names"), ("name", "names"), ("mix", "names"),
                                    ("title", "titles"), ("mix", "titles")):
                # validation on the training types only (the held-out 20% of the kept types
                # plays the pool; the test types are absent from every step)
                vtypes = sorted(set(labels[keep]))
                vname = name_vecs[[types.index(t) for t in vtypes]]
                vres, _, _, _ = probe(x[keep], labels[keep], split[keep], title_vecs[keep], vname,
                                   vtypes, pseudo, lam, target, classes)
                g_val = max(vres, key=lambda r: r[3])[0]
                res, only, r10u, r10s = probe(x, labels, split, title_vecs, name_vecs, types, unseen,
                                        lam, target, classes)
                at = next(r for r in res if r[0] == g_val)
                best = max(res, key=lambda r: r[3])
                key = f"seed{seed} lam={lam:g} target={target} classes={classes}"
                out["variants"][key] = {"gamma_val": g_val, "seen": at[1], "unseen": at[2],
                                        "harmonic": at[3], "oracle": best,
                                        "unseen_among_unseen": only,
                                        "t2i_r10_unseen": r10u, "t2i_r10_seen": r10s}
                print(f"  {key:<48} gamma(val) {g_val:.2f}: seen {at[1]:.3f} unseen {at[2]:.3f}"
                      f" H {at[3]:.3f} | best gamma on test {best[0]:.2f}: H {best[3]:.3f}"
                      f" | among unseen {only:.3f} | name->photo R@10 unseen {r10u:.3f} seen {r10s:.3f}")
        out[str(seed)] = {"unseen_types": unseen, "validation_types": pseudo}
    out["machine"] = {"cpus": os.cpu_count(), "load_start": load0, "load_end": os.getloadavg(),
                      "seconds": time.perf_counter() - t0}
    print("load", load0, "->", os.getloadavg(), f"{time.perf_counter() - t0:.0f} s")
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
