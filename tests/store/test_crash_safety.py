"""Crash safety: a writer killed with SIGKILL at random points of an import leaves a database that
opens and holds either the state before the import or the state after it, never a mix; the run
it had started is marked 'interrupted' by the next writer.

Each iteration starts a fresh process that opens the store (with frequent checkpoints, so a kill
can land inside one), starts a run and replaces a dataset's interactions by a bigger file; the
test kills it after a random delay (fixed seeds: the same delays every run). About 15 s;
`RECSYS_FAULT_ITERATIONS=50` runs more."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from recsys.data.interactions_import import import_interactions
from recsys.store import Store

ROOT = Path(__file__).resolve().parents[2]
OLD_ROWS, NEW_ROWS = 1_000, 40_000
ITERATIONS = int(os.environ.get("RECSYS_FAULT_ITERATIONS", "6"))


def write_log(path: Path, rows: int, users: int, prefix: str) -> Path:
    lines = ["user,item,event,timestamp"]
    lines += [f"{prefix}{n % users},i{n % 500},view,2024-01-{1 + n % 28:02d} 10:{n % 60:02d}"
              for n in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


CHILD = """
import sys
from recsys.store import Store
from recsys.data.interactions_import import import_interactions
store = Store(sys.argv[1])
store._conn.execute("SET wal_autocheckpoint = '256KB'")   # checkpoints inside the import
run_id = store.start_run("log", "model", "ease", {{}})
print("ready", run_id, flush=True)
rep = import_interactions(store, sys.argv[2], dataset="log", replace=True)
print("done", rep.imported, flush=True)
store.close()
"""


def test_sigkill_during_an_import_leaves_old_or_new_state(tmp_path: Path):
    old_log = write_log(tmp_path / "old.csv", OLD_ROWS, 100, "old")
    new_log = write_log(tmp_path / "new.csv", NEW_ROWS, 3000, "new")
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    outcomes = []
    for seed in range(ITERATIONS):
        db = tmp_path / f"kill{seed}.duckdb"
        s = Store(db)
        import_interactions(s, old_log, dataset="log")
        s.close()
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD.format()),
                                  str(db), str(new_log)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env)
        ready = child.stdout.readline().split()
        assert ready and ready[0] == "ready", child.stderr.read()[-2000:]
        run_id = int(ready[1])
        time.sleep(random.Random(seed).uniform(0.0, 1.2))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=60)
        finished = "done" in out
        s = Store(db)                                   # opens: WAL replayed or dropped
        n = s.interaction_count("log")
        users = set(s.users("log")["user_id"])
        assert n in (OLD_ROWS, NEW_ROWS), (seed, n)
        if n == OLD_ROWS:
            assert not finished and all(u.startswith("old") for u in users)
        else:
            assert any(u.startswith("new") for u in users)
            assert s.counts("log")["interactions"] == NEW_ROWS
        assert s.run(run_id)["status"] == "interrupted"
        s.close()
        outcomes.append("new" if n == NEW_ROWS else "old")
    print("outcomes:", outcomes)
