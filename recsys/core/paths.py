"""Which files on this machine a request may read.

Paths typed into the web app ("Folder path on this machine", "...or a path on this machine")
come from whoever can open the page, not from the owner of the server, so they are accepted
only under the configured data roots (`config.data_roots()`: `$RECSYS_DATA_ROOTS`, by default
the project's `data/` folder and the shared datasets folder). The command line keeps full
access: its user owns the shell.

One mechanism for every path field: the use cases that read server files take a
`path_policy: PathPolicy | None` argument (None: any path, what the CLI passes) and check each
path they are given, and each file they would read beside it (an id mapping, a Myntra
`images/` folder, the split JSON files of a folder), with `PathPolicy.check` before opening
anything. The pages pass `PathPolicy.for_app()` (`usecases.app_path_policy()`).

`check_allowed_path` resolves `..` and symlinks first (a symlink inside a root that points out
of it is outside), compares whole path components (`/work/data-evil` is not under
`/work/data`), and refuses NUL bytes, paths over `MAX_PATH_CHARS` and names over
`MAX_NAME_CHARS` (`check_path_text`, also for the CLI: such a path names no file). Its
message quotes only what was typed and is the same whether or not the path exists, so it
never tells a visitor what is on the server outside the roots.

Known limit: the check and the read are two steps; a symlink swapped in between could still
lead out. Visitors of the app cannot create symlinks (uploads unpack regular files only), so
only someone with a shell on the server could, and that person can read the files anyway.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from recsys.core.errors import RecsysError

MAX_PATH_CHARS = 4096          # PATH_MAX on Linux: no longer path names a file
MAX_NAME_CHARS = 255           # NAME_MAX: nor does a longer file or folder name
SHOWN_CHARS = 120              # how much of a refused path the message repeats

PathLike = str | os.PathLike


class PathNotAllowed(RecsysError, ValueError):
    """A path the app may not read: outside the data roots, too long, or not a path."""


def _shown(text: str) -> str:
    """The typed path as a message repeats it: printable, at most SHOWN_CHARS characters."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return repr(clean if len(clean) <= SHOWN_CHARS else clean[:SHOWN_CHARS - 1] + "…")


def _roots_text(roots: Iterable[Path]) -> str:
    names = [str(r) for r in roots]
    return ", ".join(names) if names else "none are configured"


def check_path_text(path: PathLike, what: str = "The path") -> str:
    """The text of `path` when it could name a file at all: a string (or bytes, or PathLike),
    not blank, without NUL characters, at most MAX_PATH_CHARS long with no part over
    MAX_NAME_CHARS. Otherwise `PathNotAllowed` (instead of an OSError or ValueError later,
    from the first `is_file()`). Nothing on disk is looked at."""
    try:
        text = os.fspath(path)
    except TypeError:
        raise PathNotAllowed(f"{what} is not a path.") from None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text.strip():
        raise PathNotAllowed(f"{what} is empty: give a file or folder path.")
    if len(text) > MAX_PATH_CHARS:
        raise PathNotAllowed(f"{what} is {len(text):,} characters long; a path on this machine "
                             f"has at most {MAX_PATH_CHARS:,}.")
    if "\x00" in text:
        raise PathNotAllowed(f"{what} {_shown(text)} holds a NUL character, which no file "
                             "name has.")
    if any(len(part.encode("utf-8", errors="replace")) > MAX_NAME_CHARS
           for part in text.replace("\\", "/").split("/")):
        raise PathNotAllowed(f"{what} {_shown(text)} has a part longer than {MAX_NAME_CHARS} "
                             "characters, which no file or folder name has.")
    return text


def check_allowed_path(path: PathLike, roots: Iterable[PathLike],
                       what: str = "The path") -> Path:
    """`path` resolved (symlinks and `..` followed, relative to the working folder) when it
    lies inside one of `roots` (themselves resolved), else `PathNotAllowed`.

    The same message whether or not the path exists; it repeats what was typed (made
    printable and cut to SHOWN_CHARS characters), never where a symlink leads.
    """
    roots = [Path(os.path.realpath(os.fspath(r))) for r in roots]
    text = check_path_text(path, what)
    outside = PathNotAllowed(
        f"{what} {_shown(text)} is not inside the folders this app reads from "
        f"({_roots_text(roots)}). Put the file in one of them, or upload it; whoever runs the "
        "app can add folders with the RECSYS_DATA_ROOTS setting.")
    try:
        real = Path(os.path.realpath(os.path.abspath(os.path.expanduser(text))))
    except (OSError, ValueError, RuntimeError):
        raise outside from None
    if any(real.is_relative_to(root) for root in roots):
        return real
    raise outside


@dataclass(frozen=True)
class PathPolicy:
    """The folders a request may read under: `roots`, or any path when `roots` is None (the
    command line, tests and benchmarks)."""

    roots: tuple[Path, ...] | None = None

    @classmethod
    def for_app(cls) -> "PathPolicy":
        """The web app's policy: only under `config.data_roots()` (read now, so a changed
        `$RECSYS_DATA_ROOTS` applies to the next request)."""
        from recsys.core.config import data_roots

        return cls(tuple(data_roots()))

    @property
    def restricted(self) -> bool:
        return self.roots is not None

    def check(self, path: PathLike, what: str = "The path") -> Path:
        """`path` as the importer should read it: resolved and checked when restricted
        (`PathNotAllowed` outside the roots); otherwise unchanged, once `check_path_text`
        found it could name a file."""
        if self.roots is None:
            check_path_text(path, what)
            return Path(path)
        return check_allowed_path(path, self.roots, what)

    def check_optional(self, path: PathLike | None, what: str = "The path") -> Path | None:
        return None if path is None else self.check(path, what)


ANY_PATH = PathPolicy()


def policy_or_any(policy: PathPolicy | None) -> PathPolicy:
    """`policy`, or `ANY_PATH` when None (the use cases' default: the CLI's full access)."""
    return ANY_PATH if policy is None else policy
