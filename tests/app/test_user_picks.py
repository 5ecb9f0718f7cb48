"""DOCSTRING TO WRITE."""

from __future__ import annotations

from pathlib import Path

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
        "Fusion: late"


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
    from recsys.data.datasets import import_interactions

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
