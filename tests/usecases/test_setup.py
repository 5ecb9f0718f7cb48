"""The first start: set-up makes everything (aligned encoder, item vectors, the default model) and
is idempotent."""

from __future__ import annotations

from pathlib import Path

from recsys.store import Store
from recsys.usecases import DEFAULT_MODEL, readiness
from recsys.usecases import set_up as bootstrap


def test_bootstrap_made_everything(app_db: Path):
    store = Store(app_db)                      # a copy of the set-up demo, byte for byte
    try:
        state = readiness(store)
        assert state.ready, state.missing
        assert state.vectors > 0 and state.encoder.startswith("catalog-clip@")
        runs = store.runs("demo", kind="model")
        assert DEFAULT_MODEL in set(runs["model"])
    finally:
        store.close()


def test_bootstrap_is_idempotent(app_db: Path):
    store = Store(app_db)
    try:
        before = len(store.runs())
        assert bootstrap(store).ready
        assert len(store.runs()) == before     # nothing retrained
    finally:
        store.close()
