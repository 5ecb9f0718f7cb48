"""`python -m recsys ...`: the command line over the use cases (`recsys.usecases`).

Each command module registers its subcommands; a handler parses its arguments, calls one use
case (the function the app's page calls too) and returns a `Result` whose `data` is
printed as JSON with `--json` and whose `text` is printed otherwise. Errors meant for people
(`RecsysError`) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np

from recsys.core.errors import RecsysError

COMMAND_MODULES = ("recsys.cli.data", "recsys.cli.encoders", "recsys.cli.models",
                   "recsys.cli.beyond", "recsys.cli.modalities", "recsys.cli.jobs")


@dataclass
class Result:
    """What a command prints: `data` as JSON with --json, else `text`; `notes` (default: the
    data's "notes", e.g. a k lowered to the catalog size) go to stderr as "note: ..." lines
    (with --json too: a list of records has no place for them)."""

    data: Any
    text: str = ""
    exit_code: int = 0
    notes: list[str] | None = None

    def all_notes(self) -> list[str]:
        if self.notes is not None:
            return list(self.notes)
        if isinstance(self.data, dict) and isinstance(self.data.get("notes"), list):
            return [str(n) for n in self.data["notes"]]
        return []


@dataclass
class Context:
    """What a handler gets: its parsed arguments, the store (opened on first use) and a bar."""

    args: argparse.Namespace
    _store: Any = field(default=None, repr=False)

    def store(self):
        if self._store is None:
            from recsys.store import Store
            self._store = Store(self.args.db)
        return self._store

    def dataset(self) -> str:
        return self.store().resolve_dataset(getattr(self.args, "dataset", None))

    def progress(self, description: str):
        from recsys.core.progress import console_progress
        return console_progress(description, enabled=not self.args.json)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


Handler = Callable[[Context], Result]


def common_options(dataset: bool = True) -> argparse.ArgumentParser:
    """Options every subcommand accepts: --db, --json and usually --dataset."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--db", help="DuckDB file (default: $RECSYS_DB or data/recsys.duckdb)")
    parent.add_argument("--json", action="store_true", help="print machine-readable JSON")
    if dataset:
        parent.add_argument("--dataset", help="dataset name (default: the active dataset)")
    return parent


def add_command(sub: argparse._SubParsersAction, name: str, handler: Handler, help: str,
                dataset: bool = True) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help, parents=[common_options(dataset)])
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys",
        description="Multimodal e-commerce recommendations: import catalogs, embed products "
                    "with CLIP, train and evaluate recommenders.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return to_jsonable(value.to_dict())
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Context(args)
    try:
        result = args.handler(ctx)
    except RecsysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was kept", file=sys.stderr)
        return 130
    finally:
        ctx.close()
    if args.json:
        print(json.dumps(to_jsonable(result.data), indent=2))
    elif result.text:
        print(result.text)
    for note in result.all_notes():
        print(f"note: {note}", file=sys.stderr)
    return result.exit_code
