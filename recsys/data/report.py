"""What an import tells a person: `ImportReport` (every row of a file imported or reported, by
reason, with examples and the file's line numbers), `DataImportError` (input that cannot be
imported at all), messages that never quote a file's content (`describe_columns`,
`safe_reason`), and dropping problem rows with their reasons (`row_dropper`).

Shared by the catalog, interaction and feature importers (`recsys.data.catalog_import`,
`recsys.data.interactions_import`, `recsys.vectors.features`) and the uploads
(`recsys.data.uploads`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal, Sequence

import numpy as np
import pandas as pd

from recsys.core.errors import RecsysError

OnError = Literal["skip", "refuse"]

EXAMPLES_PER_REASON = 5
MAX_LINES_LISTED = 1000        # line numbers per reason in `ImportReport.to_dict()`
MAX_ID_CHARS = 256             # longer user or item ids are reported, not imported


class DataImportError(RecsysError, ValueError):
    """Input that cannot be imported at all; nothing was written."""


def megabytes_setting(limit_mb: float | None, env: str, default: float, what: str) -> float:
    """An import limit in megabytes: `limit_mb`, else `$env`, else `default`; a value that is
    not a positive number is refused with a message naming the setting."""
    if limit_mb is None:
        raw = os.environ.get(env, "").strip()
        try:
            limit_mb = float(raw) if raw else default
        except ValueError:
            raise DataImportError(f"{env} must be a number of megabytes, got {raw!r}.") from None
    if not limit_mb > 0:
        raise DataImportError(f"The {what} must be positive, got {limit_mb} MB.")
    return float(limit_mb)


@dataclass
class ImportReport:
    """What an import did: rows read, imported and reported (by reason, with examples and the
    file's line numbers), or why it was refused. Unless refused, `rows_read` equals
    `imported + rows_skipped`: every row of the file is either imported or reported."""

    dataset: str
    kind: str
    rows_read: int = 0
    imported: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    refused: bool = False
    details: dict[str, int | str] = field(default_factory=dict)
    lines: dict[str, list[int]] = field(default_factory=dict)
    rows_skipped: int = 0
    reason: str | None = None       # why the import was refused when no single row is at fault
    unit: str = "line"              # what `lines` counts: "line" of a CSV file, "row", "entry"
    notes: list[str] = field(default_factory=list)  # imported, but worth a look (sentences)

    def add_problem(self, reason: str, example: str, lines: Iterable[int] = (),
                    rows: int = 1) -> None:
        """One problem (usually one row; `rows` when it stands for several)."""
        self.problems[reason] = self.problems.get(reason, 0) + 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < EXAMPLES_PER_REASON:
            bucket.append(one_line(example))
        self.lines.setdefault(reason, []).extend(int(n) for n in lines)
        self.rows_skipped += rows

    def add_rows(self, reason: str, labels: Sequence[int],
                 example: Callable[[int], str]) -> None:
        """Many rows with the same problem, counted one by one; `example(k)` describes the
        k-th of them (called for the first few only)."""
        if not len(labels):
            return
        self.problems[reason] = self.problems.get(reason, 0) + len(labels)
        bucket = self.examples.setdefault(reason, [])
        for k in range(min(len(labels), max(0, EXAMPLES_PER_REASON - len(bucket)))):
            bucket.append(one_line(example(k)))
        self.lines.setdefault(reason, []).extend(int(n) for n in labels)
        self.rows_skipped += len(labels)

    def refuse(self, reason: str) -> "ImportReport":
        """Refused for `reason` (no single row is at fault): nothing is imported."""
        self.refused, self.reason, self.imported = True, reason, 0
        return self

    def refuse_rows(self) -> "ImportReport":
        """Refused because rows have problems (`on_error="refuse"`): the report lists them."""
        self.refused, self.imported = True, 0
        return self

    @property
    def skipped(self) -> int:
        return sum(self.problems.values())

    def summary(self) -> str:
        if self.refused:
            head = f"REFUSED: nothing was imported into '{self.dataset}'"
            if self.reason:
                head += f": {self.reason}"
        else:
            head = f"Imported {self.imported:,} {self.kind} into dataset '{self.dataset}'"
        lines = [f"{head} ({self.rows_read:,} rows read)."]
        lines += [f"  {k}: {v:,}" if isinstance(v, int) else f"  {k}: {v}"
                  for k, v in self.details.items()]
        lines += [f"Note: {note}" for note in self.notes]
        if self.problems:
            verb = "found" if self.refused else "skipped"
            lines.append(f"{self.rows_skipped:,} problem rows {verb}:")
            for reason, count in self.problems.items():
                where = _line_list(self.lines.get(reason, []), self.unit)
                lines.append(f"  - {reason}: {count:,} (e.g. {'; '.join(self.examples[reason])})"
                             + (f" at {where}" if where else ""))
            if self.refused and not self.reason:
                lines.append("Fix these rows, or re-run with --on-error skip to leave them out.")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "kind": self.kind, "rows_read": self.rows_read,
                "imported": self.imported, "skipped": self.skipped,
                "rows_skipped": self.rows_skipped, "refused": self.refused,
                "reason": self.reason, "problems": self.problems, "examples": self.examples,
                "lines": {k: v[:MAX_LINES_LISTED] for k, v in self.lines.items()},
                "line_unit": self.unit, "details": self.details, "notes": self.notes}


# -- messages that quote no file content --------------------------------------------------------
_SAFE_COLUMN = re.compile(r"[^\W_][\w .()#%+-]{0,63}|Unnamed: \d+")
MAX_COLUMNS_SHOWN = 12


def describe_columns(names: Iterable[object]) -> str:
    """"its columns: a, b, c" for a header that reads as column names (at least two, each at
    most 64 letters, digits, spaces and `_ . ( ) # % + -`); otherwise a sentence that quotes
    nothing. Error messages name a file's columns only through this: a server file that was
    not a table (a passwd file, an environment, a `.env` split at commas) never has its first
    line repeated."""
    names = [str(n) for n in names]
    if len(names) >= 2 and all(_SAFE_COLUMN.fullmatch(n) for n in names):
        more = len(names) - MAX_COLUMNS_SHOWN
        return "its columns: " + ", ".join(names[:MAX_COLUMNS_SHOWN]) + \
            (f" and {more:,} more" if more > 0 else "")
    return "its first line does not read as column names (not shown)"


_QUOTED = re.compile(r"""b?'(?:[^'\\]|\\.)*'|b?"(?:[^"\\]|\\.)*"|`[^`]*`""")


def safe_reason(exc: BaseException, limit: int = 160) -> str:
    """Why a file could not be read, for a message, without any of its content: the error's
    text with quoted parts (where parsers put what they read) cut out, at most `limit`
    characters. "Expected 3 fields in line 5, saw 4" stays; numpy's "expected b'\\x93NUMPY',
    got b'root:x'" loses both quotes."""
    if isinstance(exc, UnicodeDecodeError):
        return f"bytes that are not UTF-8 text at position {exc.start:,}"
    text = _QUOTED.sub("…", str(exc)).replace("\n", " ").replace("\r", " ")
    text = "".join(c if c.isprintable() else "?" for c in text).strip()
    text = text or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def one_line(text: str, limit: int = 160) -> str:
    """An example as shown in a report: one line, at most `limit` characters."""
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _line_list(numbers: list[int], unit: str) -> str:
    """"lines 3, 9, 12 and 40 more" (at most 8 numbers)."""
    if not numbers:
        return ""
    shown = ", ".join(f"{n:,}" for n in numbers[:8])
    more = f" and {len(numbers) - 8:,} more" if len(numbers) > 8 else ""
    return f"{unit}{'s' if len(numbers) > 1 else ''} {shown}{more}"


# -- dropping problem rows ----------------------------------------------------------------------
def row_dropper(rep: ImportReport, labels: np.ndarray, keep: np.ndarray
                ) -> Callable[[str, np.ndarray, Callable[[int], str]], None]:
    """`drop(reason, mask, example)`: report the rows of `mask` still in `keep` under `reason`
    (`example(i)` describes row i) and clear them from `keep`, in place: every dropped row is
    reported once, with its line."""
    def drop(reason: str, mask: np.ndarray, example: Callable[[int], str]) -> None:
        mask = mask & keep
        positions = np.flatnonzero(mask)
        rep.add_rows(reason, labels[positions], lambda k: example(int(positions[k])))
        keep[mask] = False

    return drop


def as_mask(values: pd.Series) -> np.ndarray:
    """A boolean Series (missing counts as True: "unknown" is not "fine") as a numpy mask."""
    return values.to_numpy(dtype=bool, na_value=True)


def odd_ids(ids: pd.Series) -> pd.Series:
    """Ids no one would type: longer than MAX_ID_CHARS or with control characters (a line
    break inside an id usually means a stray quote joined several lines)."""
    odd = ids.str.len().gt(MAX_ID_CHARS) | ids.str.contains(r"[\x00-\x1f\x7f]", regex=True)
    return odd.fillna(False).astype(bool) & ids.notna()
