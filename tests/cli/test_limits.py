"""Sizes through the command line: a billion results, visits, shoppers, clusters or epochs.

Result sizes are lowered to what there is (the catalog) or to their documented maximum, with a
note; work sizes beyond their maximum exit 2 with a message that says the range; seeds outside
numpy's range are refused. Before these limits `search --k 1000000000` and
`abtest --visits 1000000000` died allocating 3.7 / 7.5 GB, `abtest --k 1000000000` and
`bench --k ...` peaked at 2.6-2.7 GB, `evaluate --k ...` asked for 3.7 TB and
`simulate --users 1000000000` ran until killed."""

from __future__ import annotations

from pathlib import Path

from recsys.core import limits
from recsys.store import Store

from ..cli_helpers import cli
from ..conftest import DEMO_ITEMS

BILLION = "1000000000"


def test_a_billion_through_the_command_line(ready_store: Store, tmp_path: Path):
    db = str(ready_store.path)
    ready_store.close()
    # search: every product with vectors, a note; no 3.7 GB allocation
    code, out, err = cli("search", "--db", db, "--text", "red", "--k", BILLION, "--json")
    assert code == 0, err
    assert len(out["results"]) == DEMO_ITEMS
    assert out["notes"] == [f"k 1,000,000,000 was lowered to {DEMO_ITEMS}: there are "
                            f"{DEMO_ITEMS} products with vectors."]
    assert f"note: k 1,000,000,000 was lowered to {DEMO_ITEMS}" in err
    code, text, err = cli("search", "--db", db, "--text", "red", "--k", BILLION)
    assert code == 0 and f"Top {DEMO_ITEMS} of" in text and "note: k 1,000,000,000" in err
    # abtest: visits refused with the range; k lowered to the catalog
    code, _, err = cli("abtest", "--db", db, "--visits", BILLION, "--json")
    assert code == 2 and "visits must be between 1 and 1,000" in err
    assert "Traceback" not in err
    code, out, err = cli("abtest", "--db", db, "--a", "popularity", "--b", "popularity",
                         "--k", BILLION, "--json")
    assert code == 0, err
    assert out["k"] == DEMO_ITEMS and "was lowered" in out["notes"][0]
    # seeds numpy cannot take: a message, not a ValueError traceback
    for argv in (("abtest", "--seed", "-1"), ("coldstart-eval", "--seed", "-3"),
                 ("map", "--seed", "-1"), ("evaluate", "--models", "popularity",
                                           "--split-seed", "-1")):
        code, _, err = cli(*argv, "--db", db)
        assert code == 2 and "must be between 0 and 4,294,967,295" in err, (argv, err)
    # work sizes: refused at once with the range
    for argv, words in ((("simulate", "--users", BILLION), "users must be between 1 and 100,000"),
                        (("init-demo", "--items", BILLION, "--force"),
                         "items must be between 24 and 5,000"),
                        (("init-demo", "--users", BILLION, "--force"),
                         "users must be between 1 and 100,000"),
                        (("map", "--clusters", BILLION), "clusters must be between 2 and 200"),
                        (("purity", "--clusters", BILLION), "clusters must be between 2 and 200"),
                        (("embed", "--batch-size", BILLION), "batch size must be between 1"),
                        (("train-encoder", "--epochs", BILLION),
                         "epochs must be between 1 and 1,000"),
                        (("eval-encoder", "--phone-shots", BILLION),
                         "phone-style queries must be between 1 and 10,000")):
        code, _, err = cli(*argv, "--db", db)
        assert code == 2 and words in err, (argv, err)
    # the demo was not rebuilt by the refused init-demo
    store = Store(db)
    assert store.counts("demo")["items"] == DEMO_ITEMS
    store.close()


def test_metric_cutoffs_past_the_maximum_are_lowered(tiny_store: Store):
    db = str(tiny_store.path)
    tiny_store.close()
    code, out, err = cli("evaluate", "--db", db, "--models", "popularity", "--k", "5", BILLION,
                         "--json")
    assert code == 0, err
    assert {r["k"] for r in out if r.get("k")} == {5, limits.MAX_METRIC_K}
    assert "note: K 1,000,000,000 was lowered to 100: the maximum is 100." in err
    code, out, err = cli("bench", "--db", db, "--models", "popularity", "--users", BILLION,
                         "--k", BILLION, "--json")
    assert code == 0, err
    assert out["k"] == limits.MAX_METRIC_K and out["latency_users"] == 20
    assert any("users 1,000,000,000 was lowered to 20" in n for n in out["notes"])
