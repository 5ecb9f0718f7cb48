"""The store's runs: runs, epochs and metrics; runs left 'running' by a killed process become
'interrupted'."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from recsys.store import Store

ROOT = Path(__file__).resolve().parents[2]


def test_runs_epochs_and_metrics(store: Store):
    run = store.start_run("shop", "model", "pop", {"k": 1})
    store.add_epoch(run, 1, 0.5, float("nan"), {"ndcg@20": 0.1}, 1.0)
    store.add_metrics(run, [("random", "all", "recall", 20, 0.3), ("random", "all", "auc", None, 0.9)])
    store.add_metrics(run, [("random", "all", "recall", 20, 0.4)])  # replaces that protocol/slice
    store.finish_run(run, "finished", seconds=2.0, artifact_path="/x")
    assert store.run(run)["status"] == "finished"
    epochs = store.run_epochs(run)
    assert epochs["train_loss"].tolist() == [0.5] and pd.isna(epochs["val_loss"].iloc[0])
    m = store.run_metrics([run])
    assert m["value"].tolist() == [0.4] and m["model"].iloc[0] == "pop"


# -- runs of a killed process -------------------------------------------------------------------
def test_runs_of_a_killed_process_become_interrupted(tmp_path: Path):
    db = tmp_path / "runs.duckdb"
    Store(db).close()
    script = textwrap.dedent(f"""
        import os, signal
        from recsys.store import Store
        s = Store({str(db)!r})
        run_id = s.start_run("shop", "model", "ease", {{}})
        print(run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == -signal.SIGKILL
    run_id = int(out.stdout.split()[0])
    reader = Store(db, read_only=True)          # a reader changes nothing
    assert reader.run(run_id)["status"] == "running"
    reader.close()
    s = Store(db)                               # the next writer marks it
    run = s.run(run_id)
    assert run["status"] == "interrupted" and run["message"] == "stopped unexpectedly"
    assert run["finished_at"] is not None
    # a run this process is running is left alone by another Store on the same file
    live = s.start_run("shop", "model", "ease", {})
    other = Store(db)
    assert other.run(live)["status"] == "running"
    s.finish_run(live, "finished", 1.0)
    assert other.run(live)["status"] == "finished"
    other.close()
    s.close()
