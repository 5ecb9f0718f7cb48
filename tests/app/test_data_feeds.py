"""The Data page with shop feeds: the detected format's preview, then the import with its
photos downloaded (a local server stands for the shop)."""

from __future__ import annotations

from pathlib import Path

from recsys.store import Store

from ..app_helpers import app_test, problems
from ..data.test_feeds import merchant_tsv
from ..data.web import PhotoServer, jpeg


def test_data_page_previews_and_imports_a_merchant_feed(app_db: Path, tmp_path: Path,
                                                        monkeypatch):
    monkeypatch.setenv("RECSYS_ALLOW_PRIVATE_URLS", "1")
    with PhotoServer({f"p{i}.jpg": jpeg((60 * i, 90, 120)) for i in range(3)}) as srv:
        feed = merchant_tsv(tmp_path / "feed.tsv", srv.base, products=3, broken=1).read_bytes()
        at = app_test(app_db, "app_pages/data.py")
        at.file_uploader[0].set_value(("feed.tsv", feed, "text/tab-separated-values"))
        at.text_input[0].input("shop")
        next(b for b in at.button if b.label == "Preview").click().run()
        assert not problems(at) and not at.error
        info = " ".join(i.value for i in at.info)
        assert "Google Merchant Center product feed" in info
        assert "4 products from 7 entries" in info and "4 photos by URL" in info
        assert sum(srv.hits.values()) == 0                   # a preview downloads nothing
        next(b for b in at.button if b.label == "Import catalog").click().run()
        assert not problems(at) and not at.error
        assert any("Imported 3 items into 'shop'" in s.value for s in at.success)
        assert any("photo download failed: 1 rows" in w.value for w in at.warning)
        assert any("Photos by URL: 3 downloaded" in c.value for c in at.caption)
    store = Store(app_db)
    try:
        assert len(store.items("shop")) == 3
    finally:
        store.close()
