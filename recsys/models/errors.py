"""What goes wrong with a model, in words for a person: `ModelError` (a model that cannot be
built, fitted or loaded as asked) and `DamagedModelFile` (a saved model that cannot be used)."""

from __future__ import annotations

from pathlib import Path

from recsys.core.errors import RecsysError


class ModelError(RecsysError):
    """A model cannot be built, fitted or loaded as asked."""


class DamagedModelFile(ModelError):
    """A model file that cannot be used as it is (truncated, changed, wrong shapes, weights that
    are not numbers...): `path` and `reason` (in our words, never the file's contents)."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"The model file {path} is damaged ({reason}); it cannot be used. "
                         "Train the model again (the Train page, or `python -m recsys "
                         "train`).")
