"""Use case: how often "no close match" is right on a catalog (`eval-encoder --no-match`)."""

from __future__ import annotations

from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback
from recsys.store import Store


def eval_encoder_no_match(store: Store, dataset: str | None = None, encoder: str | None = None,
                          false_alarm: float = 0.05, seed: int = 0,
                          progress: ProgressCallback | None = None):
    """Calibrate the catalog's "no close match" decision on all but the held-out 20% of its
    photos and score it on those: off-catalog (their article type removed, should fire) and
    new products of a sold type (should not); the shipped decision (with the encoder's type
    names, cut-off on its validation photos) beside the neighbours-only one and the single
    threshold (`recsys.encoders.evaluate_nomatch`). Recorded as an evaluation run."""
    from recsys.encoders.evaluate_nomatch import evaluate_no_match

    try:
        false_alarm = float(false_alarm)
    except (TypeError, ValueError):
        raise RecsysError("--false-alarm must be a number between 0.01 and 0.5.") from None
    if not 0.01 <= false_alarm <= 0.5:
        raise RecsysError("--false-alarm must be between 0.01 and 0.5 (e.g. 0.05).")
    dataset = store.resolve_dataset(dataset)
    return evaluate_no_match(store, dataset, encoder, false_alarm, int(seed), progress)
