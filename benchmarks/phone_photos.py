"""How well Visual search finds a product from a phone-style photo of it, with and without the
crop to the product.

Generates phone shots of random catalog products (`recsys.query_photos.phone_shot`: the product
cut from its studio photo, smaller, rotated, on wood / concrete / cloth, uneven light, JPEG) and
searches each with `search_similar(crop=False)` and `crop=True`. Prints how often the product
itself is in the top 10, and the share of the top 10 of its article type.

    python benchmarks/phone_photos.py --db data/myntra.duckdb --n 40

Numbers, not assertions.
"""

from __future__ import annotations

import argparse

import numpy as np

from recsys import usecases
from recsys.query_photos import SURFACES, phone_shot
from recsys.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--dataset")
    ap.add_argument("--n", type=int, default=40, help="products photographed")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    store = Store(args.db)
    dataset = store.resolve_dataset(args.dataset)
    items = store.items(dataset).dropna(subset=["image_path"])
    items = items.sample(min(args.n, len(items)), random_state=3)
    found = {False: [], True: []}
    same_type = {False: [], True: []}
    for i, row in enumerate(items.itertuples()):
        shot = phone_shot(row.image_path, seed=i, surface=list(SURFACES)[i % len(SURFACES)])
        for crop in (False, True):
            hits = usecases.search_similar(store, dataset, photo=shot, k=args.k, crop=crop)
            found[crop].append(str(row.item_id) in set(hits.results["item_id"].astype(str)))
            if "article_type" in hits.results:
                same_type[crop].append(float(np.mean(hits.results["article_type"]
                                                     == row.article_type)))
    for crop in (False, True):
        share = f", same article type {np.mean(same_type[crop]):.2f} of the top {args.k}" \
            if same_type[crop] else ""
        print(f"crop={str(crop):<5} product in the top {args.k}: "
              f"{np.mean(found[crop]):.2f}{share}  ({len(found[crop])} phone shots of "
              f"'{dataset}')")
    store.close()


if __name__ == "__main__":
    main()
