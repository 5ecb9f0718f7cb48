"""The jobs command: list the background jobs the app ran or is running."""

from __future__ import annotations

import argparse

from . import Context, Result, add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "jobs", jobs,
                    "List the app's background jobs (align, embed, train, evaluate, map, "
                    "imports...), newest first, with status, progress and errors. Jobs still "
                    "marked running when the app stopped are listed as interrupted.",
                    dataset=False)
    p.add_argument("--active", action="store_true", help="only queued and running jobs")
    p.add_argument("--limit", type=int, default=30, help="how many (default 30)")


def jobs(ctx: Context) -> Result:
    from ..usecases import list_jobs

    frame = list_jobs(ctx.store(), active=ctx.args.active, limit=max(1, ctx.args.limit))
    rows = frame.to_dict("records")
    if not rows:
        return Result([], "No jobs yet (the app starts them: embed, train, evaluate, map...).")
    lines = [f"{'job':>5}  {'kind':<19} {'dataset':<14} {'status':<11} {'done':>5} "
             f"{'seconds':>8}  message / error"]
    for r in rows:
        secs = "" if r["seconds"] is None or r["seconds"] != r["seconds"] \
            else f"{r['seconds']:.1f}"
        note = r["error"] if isinstance(r["error"], str) and r["error"] else (r["message"] or "")
        lines.append(f"{r['job_id']:>5}  {r['kind']:<19} {str(r['dataset'] or ''):<14} "
                     f"{r['status']:<11} {r['progress']:>5.0%} {secs:>8}  {str(note)[:70]}")
    return Result(rows, "\n".join(lines))
