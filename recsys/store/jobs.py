"""The jobs aggregate: long work (align, embed, train, evaluate, map, imports...) run in the
background by the server process, one row per job.

A job is `queued` (waiting for a worker, or for another job writing the same dataset), then
`running` with its progress (`done` of `total`, a message, a stage), then `finished` (with a
small JSON `result`), `failed` (with its `error`), `stopped` (Stop pressed) or `interrupted`
(the process that ran it ended first: marked at the next open for writing, see
`JobPart._mark_interrupted_jobs`).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from recsys.store.connection import ConnectionPart, first_row, json_or_null

ACTIVE = ("queued", "running")
"""Statuses of a job that has not ended."""

LIVE_JOBS: set[tuple[str, int]] = set()
"""(database key, job_id) of the jobs this process created and has not ended: another open of
the same file in this process leaves them alone."""


class JobPart(ConnectionPart):
    """Background jobs: created, moved along, ended, listed."""

    def add_job(self, kind: str, dataset: str | None, params: dict | None) -> int:
        """A new `queued` job; returns its id."""
        with self.transaction() as cur:
            row = first_row(cur, "INSERT INTO jobs (kind, dataset, params, status) "
                                 "VALUES (?, ?, ?, 'queued') RETURNING job_id",
                            [kind, dataset, json_or_null(params or {})])
        LIVE_JOBS.add((self._database_key(), int(row[0])))
        return int(row[0])

    def start_job(self, job_id: int) -> None:
        with self.transaction() as cur:
            cur.execute("UPDATE jobs SET status = 'running', started_at = ? WHERE job_id = ?",
                        [datetime.now(), int(job_id)])

    def job_progress(self, job_id: int, done: float, total: float, message: str = "",
                     stage: str = "") -> None:
        with self.transaction() as cur:
            cur.execute("UPDATE jobs SET done = ?, total = ?, message = ?, stage = ? "
                        "WHERE job_id = ?",
                        [float(done), float(total), message[:500], stage[:100], int(job_id)])

    def end_job(self, job_id: int, status: str, seconds: float | None = None,
                result: dict | None = None, error: str | None = None) -> None:
        """`status`: finished, failed, stopped or interrupted."""
        with self.transaction() as cur:
            cur.execute("""UPDATE jobs SET status = ?, finished_at = ?, seconds = ?,
                           result = ?, error = ? WHERE job_id = ?""",
                        [status, datetime.now(), seconds, json_or_null(result),
                         None if error is None else error[:2000], int(job_id)])
        LIVE_JOBS.discard((self._database_key(), int(job_id)))

    def jobs(self, status: tuple[str, ...] | None = None, limit: int | None = None
             ) -> pd.DataFrame:
        """Jobs, newest first, optionally only those with one of `status`."""
        where, params = "", []
        if status:
            where = "WHERE status IN (SELECT unnest(?::VARCHAR[]))"
            params.append(list(status))
        cut = "" if limit is None else f" LIMIT {int(limit)}"
        return self.query(f"SELECT * FROM jobs {where} ORDER BY job_id DESC{cut}", params)

    def prune_jobs(self, keep: int) -> int:
        """Delete the ended jobs (finished, failed, stopped, interrupted) but the `keep` that
        ended last; queued and running jobs are never deleted. Returns how many went."""
        keep = max(0, int(keep))
        with self.transaction() as cur:
            row = first_row(cur, """
                WITH gone AS (
                    SELECT job_id FROM jobs WHERE status NOT IN ('queued', 'running')
                    ORDER BY finished_at DESC NULLS LAST, job_id DESC OFFSET ?)
                SELECT count(*) FROM gone""", [keep])
            if row and row[0]:
                cur.execute("""DELETE FROM jobs WHERE job_id IN (
                                   SELECT job_id FROM jobs
                                   WHERE status NOT IN ('queued', 'running')
                                   ORDER BY finished_at DESC NULLS LAST, job_id DESC
                                   OFFSET ?)""", [keep])
        return int(row[0]) if row else 0

    def job(self, job_id: int) -> dict | None:
        frame = self.query("SELECT * FROM jobs WHERE job_id = ?", [int(job_id)])
        return None if frame.empty else frame.iloc[0].to_dict()

    def _mark_interrupted_jobs(self) -> None:
        """Jobs left queued or running by a process that ended become 'interrupted' (only a
        writer calls this: no other process can be running them); this process's own live
        jobs are left alone."""
        live = [job_id for key, job_id in LIVE_JOBS if key == self._database_key()]
        self._conn.execute(
            "UPDATE jobs SET status = 'interrupted', finished_at = coalesce(finished_at, ?), "
            "error = coalesce(error, 'the app stopped before the job ended') "
            "WHERE status IN ('queued', 'running') "
            "AND job_id NOT IN (SELECT unnest(?::INTEGER[]))", [datetime.now(), live])
