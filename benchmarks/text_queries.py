"""Text search on stakeholder-style queries (issue 24): the share of top-5 results with the
right type, gender and colour, without and with query understanding.

The queries and their expected attributes are in `benchmarks/text_query_list.py`, written
before any tuning: TUNING (20) and HELD_OUT (20, never tuned on), reported apart. A result's
gender is right when it is the one asked or Unisex; a query without a gender or colour counts
as right on that attribute. Queries whose types the catalog lacks are skipped (counted).
Prints the shares per list and the machine load.

    python benchmarks/text_queries.py --db data/recsys.duckdb            # the demo
    python benchmarks/text_queries.py --db data/recsys.duckdb --dataset myntra
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from text_query_list import HELD_OUT, TUNING  # noqa: E402

from recsys.store import Store  # noqa: E402
from recsys.usecases.search import search_catalog  # noqa: E402

TOP = 5


def score(store: Store, dataset: str, queries, understand: bool, show: bool = False) -> dict:
    types_here = set(store.items(dataset)["article_type"].dropna().astype(str))
    right = {"type": 0, "gender": 0, "type+gender": 0, "all three": 0}
    n = skipped = 0
    for text, types, gender, colour in queries:
        if not types & types_here:
            skipped += 1
            continue
        page = search_catalog(store, dataset, query=text, k=TOP, understand=understand)
        rows = page.items.head(TOP)
        for r in rows.to_dict("records"):
            t = r.get("article_type") in types
            g = gender is None or str(r.get("gender")) in (gender, "Unisex")
            c = colour is None or str(r.get("base_colour")) == colour
            right["type"] += t
            right["gender"] += g
            right["type+gender"] += t and g
            right["all three"] += t and g and c
            n += 1
        if show:
            print(f"  {text!r}: " + "; ".join(
                f"{r['article_type']}/{r['gender']}/{r['base_colour']}"
                for r in rows.to_dict("records")) + (f"  [{page.understood}]"
                                                      if page.understood else ""))
    return {"results": n, "skipped": skipped, **{k: v / n if n else 0.0
                                                  for k, v in right.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--show", action="store_true", help="print each query's top 5")
    args = parser.parse_args()
    store = Store(args.db)
    dataset = store.resolve_dataset(args.dataset)
    for label, queries in (("tuning", TUNING), ("held-out", HELD_OUT)):
        for understand in (False, True):
            r = score(store, dataset, queries, understand, args.show and understand)
            print(f"{dataset} · {label} ({len(queries) - r['skipped']} queries, "
                  f"{r['skipped']} skipped) · {'with' if understand else 'without'} query "
                  f"understanding: top-{TOP} right type {r['type']:.2f}, gender "
                  f"{r['gender']:.2f}, type+gender {r['type+gender']:.2f}, "
                  f"type+gender+colour {r['all three']:.2f}")
    print("load:", os.getloadavg())
    store.close()


if __name__ == "__main__":
    main()
