"""When two items are "close" enough for a sentence to say so.

"Looks like the ... you bought" and "described like the ..." are claims about the photos or
texts of two items. They are made only when the two vectors are closer than a threshold
measured on the catalog itself, per modality: among random pairs of catalog items, the
lowest cosine at which most pairs (`PRECISION`) above it are of the same article type, and
never below the median of all random pairs. A catalog without article types uses the
`FLOOR_QUANTILE` of random pairs. Below the threshold the sentence gives another reason.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

PRECISION = 0.6
"""Share of same-type pairs required above the threshold."""
FLOOR_QUANTILE = 0.95
"""Without article types, the threshold is this quantile of random pairs' cosines."""
PAIRS = 20000


def close_thresholds(vectors: Mapping[str, np.ndarray], types: Sequence | None = None,
                     seed: int = 0, pairs: int = PAIRS) -> dict[str, float]:
    """Per vector modality, the cosine above which two items count as alike (see the module
    docstring). `vectors`: L2-normalised rows in one item order; `types`: each item's
    article type in that order (None or all empty: quantile only)."""
    out: dict[str, float] = {}
    rng = np.random.default_rng(seed)
    for modality, mat in vectors.items():
        n = len(mat)
        if n < 3:
            continue
        a = rng.integers(0, n, pairs)
        b = rng.integers(0, n, pairs)
        keep = a != b
        a, b = a[keep], b[keep]
        sims = np.einsum("ij,ij->i", mat[a].astype(np.float32), mat[b].astype(np.float32))
        floor = float(np.quantile(sims, FLOOR_QUANTILE))
        threshold = floor
        if types is not None:
            kinds = np.asarray([str(t or "") for t in types], dtype=object)
            if (kinds != "").any():
                same = (kinds[a] == kinds[b]) & (kinds[a] != "")
                order = np.argsort(-sims, kind="stable")
                precision = np.cumsum(same[order]) / np.arange(1, len(order) + 1)
                ok = np.flatnonzero(precision >= PRECISION)
                # the deepest cut that still keeps the precision (at least 20 pairs above)
                ok = ok[ok >= 19]
                threshold = max(float(np.median(sims)), float(sims[order][ok.max()])) \
                    if len(ok) else \
                    float(sims.max()) + 1e-6
        out[modality] = threshold
    return out
