"""`usecases.preview_catalog`: the detected format and the first products, for a path under
the app's folders or an upload; nothing is downloaded or written."""

from __future__ import annotations

import os

import pytest

from recsys import usecases
from recsys.core.paths import PathNotAllowed, PathPolicy

from ..data.test_feeds import SHOPIFY, merchant_tsv


def test_preview_of_a_merchant_feed_path(tmp_path):
    feed = merchant_tsv(tmp_path / "feed.tsv", "http://shop.example", products=3, broken=2)
    preview = usecases.preview_catalog(feed, path_policy=PathPolicy((tmp_path.resolve(),)),
                                       rows=2)
    assert preview.format == "merchant" and "Merchant Center" in preview.description
    assert (preview.products, preview.entries, preview.photo_urls) == (5, 8, 5)
    assert list(preview.rows["item_id"]) == ["grp0", "grp1"] and "extra" not in preview.rows
    assert not list(tmp_path.glob("artifacts"))                 # nothing downloaded


def test_preview_refuses_a_path_outside_the_app_folders(tmp_path):
    allowed = tmp_path / "data"
    allowed.mkdir()
    with pytest.raises(PathNotAllowed):
        usecases.preview_catalog(os.devnull, path_policy=PathPolicy((allowed.resolve(),)))


def test_preview_of_an_upload_and_a_forced_format():
    upload = usecases.Upload("products_export.csv", SHOPIFY.format(base="http://x").encode())
    preview = usecases.preview_catalog(upload)
    assert preview.format == "shopify" and preview.products == 2 and preview.photo_urls == 2
    generic = usecases.preview_catalog(upload, fmt="generic")
    assert generic.format == "generic" and generic.products == 4 and generic.photo_urls == 0
