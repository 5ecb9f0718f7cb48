"""`python -m recsys import-catalog FILE` with shop feeds (format detected or forced)."""

from __future__ import annotations

import json

from recsys.cli import main

from ..data.test_feeds import merchant_tsv
from ..data.web import PhotoServer, jpeg


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_catalog_merchant_feed_positional(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECSYS_ALLOW_PRIVATE_URLS", "1")
    db = str(tmp_path / "c.duckdb")
    with PhotoServer({f"p{i}.jpg": jpeg((i * 40, 20, 90)) for i in range(3)}) as srv:
        feed = merchant_tsv(tmp_path / "shop.tsv", srv.base, products=3, broken=1)
        code, out, _ = run(capsys, "import-catalog", str(feed), "--db", db)
        assert code == 0, out
        assert "Imported 3 items into dataset 'shop'" in out and "format: merchant" in out
        assert "photo download failed: 1" in out
        code, out, _ = run(capsys, "import-catalog", str(feed), "--db", db, "--format",
                           "merchant", "--json")
    data = json.loads(out)
    assert code == 0 and data["details"]["photos downloaded"] == 0
    assert data["details"]["photos already in the cache"] == 3


def test_private_urls_refused_without_the_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RECSYS_ALLOW_PRIVATE_URLS", raising=False)
    with PhotoServer({"p0.jpg": jpeg()}) as srv:
        feed = merchant_tsv(tmp_path / "shop.tsv", srv.base, products=1)
        code, out, _ = run(capsys, "import-catalog", str(feed), "--db",
                           str(tmp_path / "d.duckdb"))
        assert sum(srv.hits.values()) == 0
    assert code == 1 and "REFUSED" in out and "loopback" in out
