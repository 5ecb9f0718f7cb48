"""Where things live: the database file, the artifact directory, the shared datasets.

Every path is resolved from arguments first, then environment variables, then defaults, so the
CLI (`--db`), the app and the tests (`RECSYS_DB`) agree without global state.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB = Path("data") / "recsys.duckdb"
PROJECT_ROOT = Path(__file__).resolve().parents[2]      # recsys/core/config.py -> the project


def db_path(explicit: str | os.PathLike | None = None) -> Path:
    """The DuckDB file: `explicit`, else `$RECSYS_DB`, else `data/recsys.duckdb`."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("RECSYS_DB")
    return Path(env) if env else DEFAULT_DB


def data_dir(db: str | os.PathLike) -> Path:
    """Directory for artifacts (checkpoints, generated images): beside the database file."""
    return Path(db).resolve().parent


def artifacts_dir(db: str | os.PathLike, *parts: str, create: bool = True) -> Path:
    """`<data dir>/artifacts/<database file stem>/<parts...>`, created on demand (unless
    `create=False`, for readers such as the disk-use report).

    Keyed by the database: two database files in one folder (`a.duckdb`, `b.duckdb`) never share
    (or overwrite) each other's model, encoder or index files.
    """
    path = data_dir(db).joinpath("artifacts", Path(db).stem or "memory", *parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def machine_cache_dir() -> Path | None:
    """Where results that depend only on fixed weights and texts are kept between processes
    (the type-name prompts' text features, the image trunk converted for OpenVINO):
    `$RECSYS_CACHE_DIR`, else `~/.cache/recsys`; None when `$RECSYS_CACHE_DIR` is set empty
    (no disk cache: everything is computed in each process)."""
    root = os.environ.get("RECSYS_CACHE_DIR")
    if root is not None and not root.strip():
        return None
    return Path(root) if root else Path.home() / ".cache" / "recsys"


def shared_datasets_dir() -> Path:
    """The real datasets beside the project (`../shared/datasets`), or `$RECSYS_SHARED_DATASETS`."""
    env = os.environ.get("RECSYS_SHARED_DATASETS")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "datasets"


def data_roots() -> list[Path]:
    """The folders under which paths typed into the web app may be read.

    `$RECSYS_DATA_ROOTS` (folders separated by `os.pathsep`, ':' on Linux and macOS) when set;
    otherwise the project's `data/` folder and the shared datasets folder when it exists
    (`shared_datasets_dir()`). Each is returned resolved (symlinks followed). The CLI is not
    limited: its user owns the shell.
    """
    env = os.environ.get("RECSYS_DATA_ROOTS")
    if env is not None and env.strip():
        folders = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    else:
        folders = [PROJECT_ROOT / "data"]
        shared = shared_datasets_dir()
        if shared.is_dir():
            folders.append(shared)
    return [Path(os.path.realpath(f)) for f in folders]
