"""What the first photo query of a process saves by reading the stored type-name vectors.

"No close match" needs the catalog's type names and the broad list of product-type names
through the encoder's text tower (`recsys.encoders.type_names`). They are stored beside the index
when the catalog is embedded; before, every process computed them on its first photo query.
This prints both costs on a dataset's catalog: computing them (the text tower over 5 prompts
per name) and reading the stored file, with the machine load.

    python benchmarks/type_names_cost.py --db data/recsys.duckdb --dataset myntra
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--encoder", default=None, help="default: the dataset's newest vectors")
    args = parser.parse_args()

    from recsys.encoders import get_encoder
    from recsys.encoders.type_names import LABEL_COLUMNS, catalog_type_texts, product_kinds
    from recsys.store import Store
    from recsys.vectors.modalities import searchable_encoder

    load0 = os.getloadavg()
    store = Store(args.db)
    try:
        spec = args.encoder or searchable_encoder(store, args.dataset)
        enc = get_encoder(spec, store, args.dataset)
        enc.encode_text("warm up")                    # as the app's query encoder is
        columns = store.item_columns(args.dataset, list(LABEL_COLUMNS))
        kinds = sorted({k for k in product_kinds(columns, list(columns["item_id"])) or [] if k})
    finally:
        store.close()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        made = catalog_type_texts(enc, kinds, Path(tmp))          # computed (and written)
        computed = time.perf_counter() - t0
        t0 = time.perf_counter()
        catalog_type_texts(enc, kinds, Path(tmp))                 # read back
        read = time.perf_counter() - t0
    names = len(made.types) + len(made.open_names)
    print(f"{enc.spec} on '{args.dataset}': {len(made.types)} catalog types + "
          f"{len(made.open_names)} open-vocabulary names ({names} names, 5 prompts each)")
    print(f"  computed through the text tower: {computed:.2f} s")
    print(f"  read from the stored file:       {read * 1000:.1f} ms")
    load1 = os.getloadavg()
    print(f"load {load0[0]:.1f} -> {load1[0]:.1f}")


if __name__ == "__main__":
    main()
