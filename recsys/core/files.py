"""Files: crash-safe writes (a temporary name beside the target, then renamed) and the one
helper that turns a name (dataset, encoder, version) into a safe part of a path.

A crash or Ctrl-C in the middle of a save leaves the previous file (the last good model or
checkpoint) in place and no half-written file behind.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def path_part(name: str) -> str:
    """`name` as one safe path component: letters, digits and `. _ @ -` kept, any other run of
    characters replaced by `_`, at most 120 characters, never empty, never `.` or `..`."""
    part = re.sub(r"[^A-Za-z0-9._@-]+", "_", str(name))[:120].strip(".")
    return part or "_"
