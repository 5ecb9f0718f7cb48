"""The runs aggregate: training, encoder and evaluation runs, their epochs and their metrics.

`RunPart` records a run from start to finish (a run this process has not finished is in
`LIVE_RUNS`, so another open of the same file does not mark it interrupted), its per-epoch
losses, its metrics with their uncertainty (and those of its diversity re-ranked lists), and
the model files the runs left behind (for housekeeping).
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

import duckdb
import numpy as np
import pandas as pd

from recsys.store.connection import LIVE_RUNS, ConnectionPart, first_row, json_or_null


class RunPart(ConnectionPart):
    """Runs, epochs, metrics and evaluations."""

    # -- runs ---------------------------------------------------------------------------------
    def start_run(self, dataset: str | None, kind: str, model: str, config_: dict) -> int:
        with self.transaction() as cur:
            row = first_row(cur, "INSERT INTO runs (dataset, kind, model, config, status) "
                                 "VALUES (?, ?, ?, ?, 'running') RETURNING run_id",
                            [dataset, kind, model, json_or_null(config_)])
        LIVE_RUNS.add((self._database_key(), int(row[0])))
        return int(row[0])

    def finish_run(self, run_id: int, status: str, seconds: float | None = None,
                   artifact_path: str | None = None, message: str | None = None,
                   config_: dict | None = None) -> None:
        with self.transaction() as cur:
            cur.execute("""UPDATE runs SET status = ?, finished_at = ?, seconds = ?,
                           artifact_path = coalesce(?, artifact_path), message = ?,
                           config = coalesce(?, config) WHERE run_id = ?""",
                        [status, datetime.now(), seconds, artifact_path, message,
                         None if config_ is None else json_or_null(config_), run_id])
        LIVE_RUNS.discard((self._database_key(), int(run_id)))

    def runs(self, dataset: str | None = None, kind: str | None = None) -> pd.DataFrame:
        """Runs, newest first, optionally filtered by dataset and kind."""
        where, params = [], []
        if dataset is not None:
            where.append("dataset = ?")
            params.append(dataset)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.query(f"SELECT * FROM runs {clause} ORDER BY run_id DESC", params)

    def run(self, run_id: int) -> dict | None:
        frame = self.query("SELECT * FROM runs WHERE run_id = ?", [run_id])
        return None if frame.empty else frame.iloc[0].to_dict()

    @staticmethod
    def _delete_dataset_runs(cur: duckdb.DuckDBPyConnection, name: str) -> None:
        """Delete a dataset's runs with their epochs and metrics (a step of
        `Store.delete_dataset`), in the caller's transaction."""
        run_ids = "SELECT run_id FROM runs WHERE dataset = ?"
        for table in ("run_epochs", "metrics", "rerank_metrics"):
            cur.execute(f"DELETE FROM {table} WHERE run_id IN ({run_ids})", [name])
        cur.execute("DELETE FROM runs WHERE dataset = ?", [name])

    # -- epochs -------------------------------------------------------------------------------
    def add_epoch(self, run_id: int, epoch: int, train_loss: float | None,
                  val_loss: float | None, metrics: dict | None, seconds: float | None) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO run_epochs VALUES (?, ?, ?, ?, ?, ?)",
                        [run_id, epoch, _finite_or_null(train_loss), _finite_or_null(val_loss),
                         json_or_null(metrics), seconds])

    def run_epochs(self, run_id: int) -> pd.DataFrame:
        return self.query("SELECT * FROM run_epochs WHERE run_id = ? ORDER BY epoch", [run_id])

    # -- metrics and evaluations --------------------------------------------------------------
    def add_metrics(self, run_id: int, rows: Iterable[tuple[str, str, str, int | None, float]]
                    ) -> None:
        """Store (protocol, slice, metric, k, value) rows for a run, replacing older ones."""
        frame = pd.DataFrame(list(rows), columns=["protocol", "slice", "metric", "k", "value"])
        frame.insert(0, "run_id", run_id)
        frame["k"] = frame["k"].astype("Int64")
        with self.transaction() as cur:
            with self._registered(cur, frame) as new:
                cur.execute(f"""DELETE FROM metrics WHERE run_id = ? AND (protocol, slice) IN
                                (SELECT DISTINCT protocol, slice FROM {new})""", [run_id])
            self.insert_frame(cur, "metrics", frame)

    def save_evaluation(self, run_id: int, metrics: pd.DataFrame,
                        rerank: pd.DataFrame | None = None) -> None:
        """Store a run's metrics with their uncertainty, in one transaction.

        `metrics`: columns protocol, slice, metric, k, value and any of users, ci_low, ci_high,
        std, baseline, gain, gain_low, gain_high, p_value; rows of the same (protocol, slice)
        stored before for the run are replaced. `rerank`: the same plus `diversity`, replacing
        the run's re-ranked rows of that protocol.
        """
        with self.transaction() as cur:
            for table, frame, keys in (("metrics", metrics, "protocol, slice"),
                                       ("rerank_metrics", rerank, "protocol")):
                if frame is None or frame.empty:
                    continue
                frame = frame.assign(run_id=int(run_id), k=frame["k"].astype("Int64"))
                with self._registered(cur, frame) as new:
                    cur.execute(f"""DELETE FROM {table} WHERE run_id = ? AND ({keys}) IN
                                    (SELECT DISTINCT {keys} FROM {new})""", [int(run_id)])
                self.insert_frame(cur, table, frame)

    def run_metrics(self, run_ids: Iterable[int] | None = None,
                    dataset: str | None = None) -> pd.DataFrame:
        """Metrics joined with their run's model name and status."""
        where, params = ["TRUE"], []
        if run_ids is not None:
            ids = [int(r) for r in run_ids]
            if not ids:
                return self.query("SELECT * FROM metrics WHERE FALSE")
            where.append(f"m.run_id IN ({', '.join('?' * len(ids))})")
            params += ids
        if dataset is not None:
            where.append("r.dataset = ?")
            params.append(dataset)
        return self.query(f"""SELECT r.model, r.dataset, r.status, r.config, m.*
                              FROM metrics m JOIN runs r USING (run_id)
                              WHERE {' AND '.join(where)} ORDER BY m.run_id, metric, k""", params)

    def latest_evaluation(self, dataset: str) -> pd.DataFrame:
        """Metrics with their uncertainty columns, of the newest evaluated run per (model,
        protocol) of a dataset."""
        return self._latest_metrics("metrics", dataset, "m.slice, m.metric, m.k")

    def latest_rerank_evaluation(self, dataset: str) -> pd.DataFrame:
        """Metrics of diversity re-ranked lists, of the newest run per (model, protocol) that
        has them."""
        return self._latest_metrics("rerank_metrics", dataset,
                                    "m.diversity, m.slice, m.metric, m.k")

    def _latest_metrics(self, table: str, dataset: str, order: str) -> pd.DataFrame:
        """Rows of a metrics `table` of the newest run per (model, protocol) of a dataset."""
        if table not in ("metrics", "rerank_metrics"):
            raise ValueError(f"not a metrics table: {table!r}")
        return self.query(f"""
            WITH latest AS (
                SELECT r.model, m.protocol, max(m.run_id) AS run_id
                FROM {table} m JOIN runs r USING (run_id)
                WHERE r.dataset = ? GROUP BY ALL)
            SELECT l.model, m.* EXCLUDE (run_id, protocol), m.run_id, m.protocol
            FROM {table} m JOIN latest l ON m.run_id = l.run_id AND m.protocol = l.protocol
            ORDER BY l.model, {order}""", [dataset])

    # -- model files --------------------------------------------------------------------------
    def model_runs_with_files(self, dataset: str | None = None) -> pd.DataFrame:
        """Model runs whose artifact file is recorded (run_id, dataset, model, status,
        finished_at, artifact_path), newest first."""
        where, params = "", []
        if dataset is not None:
            where, params = "AND dataset = ?", [dataset]
        return self.query(f"""SELECT run_id, dataset, model, status, finished_at, artifact_path
                              FROM runs WHERE kind = 'model' AND artifact_path IS NOT NULL
                              {where} ORDER BY run_id DESC""", params)

    def forget_run_artifacts(self, run_ids: Iterable[int], note: str) -> None:
        """Mark runs whose files were deleted: artifact_path becomes NULL, `note` is appended
        to the message; the run rows, their epochs and their metrics are kept."""
        ids = [int(r) for r in run_ids]
        if not ids:
            return
        with self.transaction() as cur:
            cur.execute(f"""UPDATE runs SET artifact_path = NULL,
                            message = CASE WHEN message IS NULL OR message = '' THEN ?
                                           ELSE message || '; ' || ? END
                            WHERE run_id IN ({', '.join('?' * len(ids))})""", [note, note, *ids])


def _finite_or_null(value: float | None) -> float | None:
    """A loss as stored: NULL for None, NaN and infinities (a diverged epoch)."""
    return None if value is None or not np.isfinite(value) else float(value)
