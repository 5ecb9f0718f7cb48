"""The base of every error meant for a person rather than a traceback.

The CLI prints these as one clear line and the app shows them in the page; anything else is a
bug and keeps its traceback.
"""


class RecsysError(Exception):
    """Bad input, missing data or a missing file, explained with what to do about it."""


# -- a full disk, said the same way everywhere ---------------------------------------------------
DISK_FULL_ERRNOS = frozenset({28, 122, 27})     # ENOSPC, EDQUOT, EFBIG (Linux numbering)
DISK_FULL_SIGNS = ("no space left on device", "disk quota exceeded", "file too large",
                   "disk is full", "not enough space")


def is_disk_full(exc: BaseException | None, kinds: tuple[type, ...] = (OSError,)) -> bool:
    """Whether an error (or an error it was raised from) says the disk, the quota or the
    process's file size limit (RLIMIT_FSIZE) is full.

    `kinds` are the exception types whose message is read for the usual words (the store adds
    DuckDB's errors, the search index faiss's RuntimeError); an OSError counts by its errno
    too. A `RecsysError` never does: its message is ours, and may well contain "too large".
    """
    import errno

    codes = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", 122)} | DISK_FULL_ERRNOS
    seen = 0
    while exc is not None and seen < 5:
        if not isinstance(exc, RecsysError):
            if isinstance(exc, OSError) and exc.errno in codes:
                return True
            if isinstance(exc, kinds) and any(sign in str(exc).lower()
                                              for sign in DISK_FULL_SIGNS):
                return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def disk_full_message(what: str, path: object, outcome: str) -> str:
    """The one wording of a full disk: "The disk holding {what} {path} is full (or the file
    reached its size limit), so {outcome}. Free some space and try again." Used by the store
    (imports, training runs) and the search index."""
    return (f"The disk holding {what} {path} is full (or the file reached its size limit), "
            f"so {outcome}. Free some space and try again.")
