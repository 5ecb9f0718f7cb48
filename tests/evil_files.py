"""Files that run code when they are loaded the unsafe way (pickles), made by the tests: the
loaders must refuse them and the marker file they would create must never appear. The
`evil_store` fixture in conftest.py uses these."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from recsys.encoders.checkpoints import (
    CHECKPOINT_FORMAT,
    NAME,
)


class RunsCode:
    """A pickle that runs a shell command when it is unpickled."""

    def __init__(self, marker: Path | str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_checkpoint(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A .pt that looks like a catalog-clip checkpoint and runs `touch marker` when loaded
    with `weights_only=False` (the old loader)."""
    payload = {"format": CHECKPOINT_FORMAT, "name": NAME, "version": "evil-1",
               "tower": {}, "state_dict": {}, "config": RunsCode(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path
