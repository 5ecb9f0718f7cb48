"""The commands beyond ranked lists (`new-shopper`, `coldstart-eval`, `abtest`, ...): answers in
--json and clear refusals."""

from __future__ import annotations

from recsys.store import Store

from ..cli_helpers import cli


def test_commands_answer_in_json(tiny_ease: Store, ready_store: Store):
    tiny_db, demo_db = str(tiny_ease.path), str(ready_store.path)
    tiny_ease.close()
    ready_store.close()
    code, out, err = cli("new-shopper", "--db", tiny_db, "--likes", "i01", "i02", "--model",
                         "ease", "--k", "3", "--json")
    assert code == 0, err
    assert len(out["items"]) == 3 and out["model"] == "ease"
    code, out, err = cli("coldstart-eval", "--db", tiny_db, "--models", "popularity", "ease",
                         "--lengths", "1", "--users", "5", "--k", "5", "--json")
    assert code == 0, err
    assert {r["model"] for r in out} == {"popularity", "ease"}
    code, out, err = cli("abtest", "--db", tiny_db, "--json")
    assert code == 2 and "no simulated shoppers" in err
    probe = Store(demo_db)
    user = probe.users("demo")["user_id"].iloc[0]
    probe.close()
    code, out, err = cli("search-as", "--db", demo_db, "--user", user, "--text", "red",
                         "--taste", "0.6", "--k", "4", "--json")
    assert code == 0, err
    assert len(out["results"]) == 4 and out["taste"] == 0.6
    code, out, err = cli("abtest", "--db", demo_db, "--a", "popularity", "--b", "itemknn",
                         "--json")
    assert code == 0, err
    assert set(out["metrics"]) == {"click", "cart", "purchase"} and out["verdict"]["summary"]
    code, out, err = cli("map", "--db", demo_db, "--method", "tsne", "--clusters", "4",
                         "--json")
    assert code == 0, err
    assert len(out["points"]) == 64 and len(out["clusters"]) == 4
    code, text, err = cli("purity", "--db", demo_db, "--clusters", "4")
    assert code == 0 and "fused" in text and "image" in text
