"""The User picks page (AppTest): picks explained in words and compared, shoppers found by
search among thousands, and damaged model files (the next usable run of the model, or an offer
to train it again)."""

from __future__ import annotations

from pathlib import Path

from recsys import usecases
from recsys.store import Store

from ..app_helpers import app_test, html_of, problems


def test_user_picks_page_explains_in_words(app_db: Path):
    at = app_test(app_db, "app_pages/user_picks.py")
    user = at.selectbox(key="up_user")
    store = Store(app_db)
    sizes = store.users("demo").set_index("user_id")["n_interactions"]
    store.close()
    busy = sizes.idxmax()                  # a shopper whose history does not fit on screen
    user.set_value(busy).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    k = at.slider(key="up_k").value
    assert page.count('class="rs-why"') == k                 # one sentence per pick
    assert page.count('class="rs-attrs"') >= k // 2          # attributes on the cards
    assert page.count('class="rs-cite"') >= k                # cited items, with titles
    assert "rs-cited" in page                                # ...outlined in the history
    assert any(e.label.startswith("All ") for e in at.expander)      # the history expands
    assert " before</div>" not in page                       # nothing already seen
    at.toggle(key="up_seen").set_value(True).run()
    at.slider(key="up_div").set_value(0.0).run()
    assert not problems(at)
    assert " before</div>" in html_of(at)                    # seen picks, badged
    assert at.selectbox(key="up_run").format_func(at.selectbox(key="up_run").value) == \
        "Combined: weighted blend"


def test_user_picks_explains_and_compares(app_db: Path):
    at = app_test(app_db, "app_pages/user_picks.py")
    user = at.selectbox(key="up_user")
    user.set_value(user.options[3]).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    k = at.slider(key="up_k").value
    assert page.count('class="rs-weights"') == k             # every pick explained
    assert "resembles in your history" in page
    assert at.get("plotly_chart"), "the modality-weight chart is missing"
    store = Store(app_db)
    from recsys.recommend.training import train_model
    train_model(store, "demo", "itemknn")
    store.close()
    at = app_test(app_db, "app_pages/user_picks.py")
    at.toggle(key="up_compare").set_value(True).run()
    assert not problems(at)
    assert "picks in common" in "\n".join(c.value for c in at.caption)


def test_many_shoppers_are_found_by_search(app_db: Path, tmp_path: Path):
    from recsys.data.interactions_import import import_interactions

    csv = tmp_path / "big.csv"
    rows = ["user_id,item_id,event,timestamp"]
    rows += [f"s{u},i{(u + j) % 50},view,2025-02-0{1 + j}" for u in range(2100) for j in range(3)]
    csv.write_text("\n".join(rows))
    store = Store(app_db)
    import_interactions(store, csv, "csv", dataset="big")
    from recsys.recommend.training import train_model
    train_model(store, "big", "itemknn")
    store.close()
    at = app_test(app_db, "app_pages/user_picks.py")
    assert at.session_state["dataset"] == "big"
    assert len(at.selectbox(key="up_user").options) == 2000
    at.text_input(key="up_find").input("s204").run()
    options = at.selectbox(key="up_user").options
    assert options and all("s204" in o for o in options)
    assert not problems(at)


def _private_run(app_db: Path, model: str):
    """A new run of `model` in the test's own copy (its file lies beside that copy: the runs of
    the shared set-up must never be damaged)."""
    store = Store(app_db)
    try:
        return usecases.train(store, "demo", model).run
    finally:
        store.close()


def test_user_picks_page_offers_retraining_when_no_run_of_the_model_is_usable(app_db: Path):
    run = _private_run(app_db, "itemknn")          # the only itemknn run
    data = Path(run.artifact_path).read_bytes()
    Path(run.artifact_path).write_bytes(data[: len(data) // 3])
    at = app_test(app_db, "app_pages/user_picks.py")
    at.selectbox(key="up_run").set_value(run.run_id).run()
    assert not problems(at), problems(at)
    assert any(f"Run {run.run_id} (itemknn): its model file" in w.value and "is damaged" in
               w.value for w in at.warning)
    assert any("No picks" in e.value and "damaged" in e.value for e in at.error)
    retrain = [b for b in at.button if b.label.startswith("Train ") and "again" in b.label]
    assert retrain
    retrain[0].click().run()
    assert not problems(at), problems(at)
    assert not at.error
    assert 'class="rs-card"' in "\n".join(m.value for m in at.markdown)
    store = Store(app_db)
    runs = usecases.list_runs(store, "demo")
    store.close()
    assert (runs["model"] == "itemknn").sum() == 2


def test_user_picks_page_uses_the_next_run_of_the_same_model(app_db: Path):
    store = Store(app_db)
    default = usecases.default_model(store, "demo")
    store.close()
    newer = _private_run(app_db, default)          # becomes the page's default run
    Path(newer.artifact_path).write_bytes(b"not a model")
    at = app_test(app_db, "app_pages/user_picks.py")
    assert not problems(at), problems(at)
    assert any("is damaged" in w.value for w in at.warning)
    assert any(f"Run {newer.run_id}" in i.value and "skipped" in i.value for i in at.info)
    assert not at.error
    assert 'class="rs-card"' in "\n".join(m.value for m in at.markdown)


def test_user_picks_counts_events_in_plain_words(app_db: Path):
    """The shopper's event counts read "1 cart", "2 carts" (never "1 carts")."""
    import re

    at = app_test(app_db, "app_pages/user_picks.py")
    assert not problems(at), problems(at)
    counts = [m for md in at.markdown
              for m in re.findall(r"(\d[\d,]*) (view|cart|purchase)(s?)\b", md.value)]
    assert len(counts) >= 3, [md.value for md in at.markdown][:5]
    assert all((n == "1") == (s == "") for n, _, s in counts), counts
