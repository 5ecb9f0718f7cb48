"""Catalog feeds (recsys.data.feeds): Merchant Center TSV / RSS / Atom, Shopify products CSV,
auto-detection, safe XML, and their import with photos downloaded from a local server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.data.catalog_import import import_catalog
from recsys.data.downloads import DownloadSettings
from recsys.data.feeds.detect import detect_catalog_format, read_catalog_feed
from recsys.data.feeds.shopify import html_to_text
from recsys.data.report import DataImportError

from .web import PhotoServer, jpeg

FAST = DownloadSettings(workers=4, retries=0, total_seconds=5, allow_private=True)
MERCHANT_HEADER = ("id\ttitle\tdescription\tlink\timage_link\tadditional_image_link\tprice\t"
                   "sale_price\tbrand\tgender\tage_group\tcolor\tsize\tgoogle_product_category\t"
                   "product_type\titem_group_id")


def merchant_tsv(path: Path, base: str, products: int = 4, broken: int = 0) -> Path:
    """`products` shirts with two size variants each (one item_group_id), then `broken` single
    products whose photo link is dead."""
    lines = [MERCHANT_HEADER]
    for i in range(products):
        for size in ("M", "L"):
            lines.append("\t".join([
                f"sku{i}-{size}", f"Blue shirt {i}", f"A cotton shirt number {i}",
                f"https://shop.example/p/{i}", f"{base}/img/p{i}.jpg",
                f"{base}/img/alt{i}.jpg", f"{20 + i}.00 EUR", f"{15 + i}.50 EUR" if i == 0 else "",
                "Acme", "female", "adult", "Blue", size,
                "Apparel & Accessories > Clothing", "Clothing > Tops > Shirts", f"grp{i}"]))
    for j in range(broken):
        lines.append("\t".join([f"dead{j}", f"Dead link {j}", "", "", f"{base}/img/gone{j}.jpg",
                                "", "5 EUR", "", "Acme", "male", "kids", "Red", "",
                                "", "Shoes", ""]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def merchant_rss(path: Path, base: str) -> Path:
    items = "".join(f"""
    <item>
      <g:id>v{i}{s}</g:id><title>Red dress {i}</title>
      <description>Summer dress &amp; more</description>
      <link>https://shop.example/d/{i}</link>
      <g:image_link>{base}/img/p{i}.jpg</g:image_link>
      <g:price>39.99 USD</g:price><g:brand>Lumi</g:brand><g:gender>female</g:gender>
      <g:color>Red</g:color><g:size>{s}</g:size><g:item_group_id>dress{i}</g:item_group_id>
      <g:product_type>Clothing &gt; Dresses</g:product_type>
    </item>""" for i in range(3) for s in ("S", "M"))
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>
<title>Shop</title>{items}
</channel></rss>""", encoding="utf-8")
    return path


def test_merchant_tsv_groups_variants_and_maps_fields(tmp_path):
    feed = read_catalog_feed(merchant_tsv(tmp_path / "feed.tsv", "http://x"), "merchant")
    assert list(feed.frame["item_id"]) == ["grp0", "grp1", "grp2", "grp3"]
    first = feed.frame.iloc[0]
    assert first["title"] == "Blue shirt 0" and first["gender"] == "Women"
    assert first["price"] == "15.5"                       # the sale price is what shoppers pay
    assert first["article_type"] == "Shirts" and first["sub_category"] == "Tops"
    assert first["master_category"] == "Apparel & Accessories"
    extra = json.loads(first["extra"])
    assert [v["size"] for v in extra["variants"]] == ["M", "L"]
    assert extra["regular_price"] == 20.0 and extra["currency"] == "EUR"
    assert feed.details["variant entries grouped into their product (item_group_id)"] == 4
    assert list(feed.frame.index) == [2, 4, 6, 8]        # the line of each product's first entry


def test_merchant_rss_and_atom(tmp_path):
    feed = read_catalog_feed(merchant_rss(tmp_path / "feed.xml", "http://x"), "merchant")
    assert list(feed.frame["item_id"]) == ["dress0", "dress1", "dress2"]
    assert feed.frame.iloc[0]["description"] == "Summer dress & more"
    assert feed.entries == 6 and feed.unit == "entry"
    atom = tmp_path / "atom.xml"
    atom.write_text("""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">
 <entry><g:id>a1</g:id><title>Wool hat</title><link href="https://shop.example/a1"/>
  <summary>Warm</summary><g:image_link>http://x/img/p1.jpg</g:image_link>
  <g:price>12 GBP</g:price><g:gender>male</g:gender><g:age_group>kids</g:age_group></entry>
</feed>""")
    row = read_catalog_feed(atom, "merchant").frame.iloc[0]
    assert (row["item_id"], row["title"], row["description"], row["gender"]) == \
        ("a1", "Wool hat", "Warm", "Boys")
    assert json.loads(row["extra"])["link"] == "https://shop.example/a1"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>1</g:id>
<title>&lol4;</title></item></channel></rss>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>1</g:id>
<title>&xxe;</title></item></channel></rss>"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE rss SYSTEM "http://127.0.0.1:9/evil.dtd">
<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>1</g:id></item></channel></rss>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, XXE, EXTERNAL_DTD],
                         ids=["billion-laughs", "xxe", "external-dtd"])
def test_xml_entity_attacks_are_refused(tmp_path, xml):
    path = tmp_path / "evil.xml"
    path.write_text(xml)
    with pytest.raises(DataImportError, match="DTD or entities") as err:
        read_catalog_feed(path, "merchant")
    assert "root:" not in str(err.value)


def test_broken_xml_is_reported_without_quoting(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text("<rss><channel><item><g:id>secret-token</g:id>")
    with pytest.raises(DataImportError, match="not well-formed") as err:
        read_catalog_feed(path, "merchant")
    assert "secret-token" not in str(err.value)


SHOPIFY = """Handle,Title,Body (HTML),Vendor,Type,Tags,Variant SKU,Option1 Value,Variant Price,Image Src,Image Position
linen-shirt,Linen shirt,"<p>Light <b>linen</b>&nbsp;shirt</p><script>alert(1)</script>",Acme,Shirts,"women, summer",LS-S,S,49.00,{base}/img/p1.jpg,1
linen-shirt,,,,,,LS-M,M,45.00,{base}/img/p2.jpg,2
linen-shirt,,,,,,LS-L,L,49.00,,
canvas-bag,Canvas bag,<div>Roomy<br>bag</div>,Acme,Bags,unisex,CB-1,One,30,{base}/img/p3.jpg,1
"""


def test_shopify_rows_per_handle_and_html_stripped(tmp_path):
    path = tmp_path / "products_export.csv"
    path.write_text(SHOPIFY.format(base="http://x"))
    assert detect_catalog_format(path) == "shopify"
    feed = read_catalog_feed(path, "shopify")
    assert list(feed.frame["item_id"]) == ["linen-shirt", "canvas-bag"]
    shirt = feed.frame.iloc[0]
    assert shirt["description"] == "Light linen shirt"
    assert shirt["price"] == "45.0" and shirt["gender"] == "Women"
    assert shirt["image_path"] == "http://x/img/p1.jpg" and shirt["article_type"] == "Shirts"
    extra = json.loads(shirt["extra"])
    assert extra["additional_images"] == ["http://x/img/p2.jpg"]
    assert [v["sku"] for v in extra["variants"]] == ["LS-S", "LS-M", "LS-L"]
    assert feed.frame.iloc[1]["description"] == "Roomy bag"
    assert feed.details["variant and photo rows grouped into their product (Handle)"] == 2


def test_html_to_text():
    assert html_to_text("<ul><li>a</li><li>b &amp; c</li></ul><style>x{}</style>") == "a b & c"
    assert html_to_text(None) is None


def test_detection(tmp_path):
    assert detect_catalog_format(merchant_tsv(tmp_path / "m.tsv", "http://x")) == "merchant"
    assert detect_catalog_format(merchant_rss(tmp_path / "m.xml", "http://x")) == "merchant"
    (tmp_path / "styles.csv").write_text("id,gender,masterCategory,articleType,"
                                         "productDisplayName\n1,Men,Apparel,Shirts,A\n")
    assert detect_catalog_format(tmp_path / "styles.csv") == "myntra"
    (tmp_path / "g.csv").write_text("item_id,title,image\n1,A,http://x/a.jpg\n")
    assert detect_catalog_format(tmp_path / "g.csv") == "generic"


def _photos() -> dict[str, bytes]:
    return {f"p{i}.jpg": jpeg((30 * i % 255, 90, 150)) for i in range(8)}


def test_merchant_import_downloads_and_reports_every_row(store, tmp_path):
    with PhotoServer(_photos()) as srv:
        feed = merchant_tsv(tmp_path / "shop.tsv", srv.base, products=4, broken=3)
        rep = import_catalog(store, feed, fmt="auto", download=FAST)
        assert not rep.refused and rep.imported == 4
        assert rep.problems == {"photo download failed": 3}
        assert rep.rows_read == rep.imported + rep.rows_skipped           # nothing unaccounted
        assert rep.details["feed entries"] == 11 and rep.details["photos downloaded"] == 4
        assert rep.lines["photo download failed"] == [10, 11, 12]
        items = store.items("shop")
        assert all(Path(p).is_file() for p in items["image_path"])
        assert json.loads(items.iloc[0]["extra"])["image_url"].endswith("/img/p0.jpg")
        hits = sum(srv.hits.values())
        again = import_catalog(store, feed, fmt="merchant", download=FAST)
        assert again.details["photos downloaded"] == 0
        assert again.details["photos already in the cache"] == 4
        assert sum(srv.hits.values()) - hits == 3         # only the dead links were tried again


def test_generic_table_with_photo_urls(store, tmp_path):
    with PhotoServer(_photos()) as srv:
        table = tmp_path / "cat.csv"
        table.write_text("item_id,title,image\n"
                         + "".join(f"i{i},Item {i},{srv.base}/img/p{i}.jpg\n" for i in range(3))
                         + "i9,Local photo,photo.jpg\n")
        rep = import_catalog(store, table, fmt="auto", download=FAST)
    assert rep.imported == 3 and rep.problems == {"photo is not an http(s) URL": 1}
    with pytest.raises(DataImportError, match="by URL"):
        import_catalog(store, table, images_dir=tmp_path, download=FAST)


def test_shopify_import(store, tmp_path):
    with PhotoServer(_photos()) as srv:
        path = tmp_path / "products.csv"
        path.write_text(SHOPIFY.format(base=srv.base))
        rep = import_catalog(store, path, fmt="auto", download=FAST)
    assert rep.imported == 2 and rep.rows_read == 2 and not rep.problems
    assert set(store.items("products")["brand"]) == {"Acme"}


def test_merchant_repeated_id_without_group_is_reported(store, tmp_path):
    with PhotoServer(_photos()) as srv:
        path = tmp_path / "dup.tsv"
        path.write_text("id\ttitle\timage_link\n"
                        f"a\tFirst\t{srv.base}/img/p1.jpg\n"
                        f"a\tSecond\t{srv.base}/img/p2.jpg\n"
                        f"b\tThird\t{srv.base}/img/p3.jpg\n")
        rep = import_catalog(store, path, fmt="merchant", download=FAST)
    assert rep.imported == 1 and rep.problems == {"duplicate item id": 1}
    assert rep.rows_read == rep.imported + rep.rows_skipped == 3


def test_myntra_photos_as_a_merchant_feed(store, tmp_path, myntra_dir):
    """The real Myntra photos served by the local server, 40 products as a Merchant feed (and
    3 dead links): every row imported or reported, and a re-import downloads nothing."""
    import csv

    images = myntra_dir / "images"
    lines = ["id\ttitle\timage_link\tgender\tcolor\tproduct_type"]
    with open(myntra_dir / "styles.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, restkey="_more"):
            if (images / f"{row['id']}.jpg").is_file() and row["productDisplayName"]:
                gender = {"Men": "male", "Women": "female"}.get(row["gender"], "unisex")
                lines.append("\t".join([row["id"], row["productDisplayName"].replace("\t", " "),
                                        "{base}/img/" + f"{row['id']}.jpg", gender,
                                        row["baseColour"], row["articleType"]]))
            if len(lines) > 40:
                break
    lines += ["\t".join([f"gone{k}", "Gone", "{base}/img/" + f"gone{k}.jpg", "", "", ""])
              for k in range(3)]
    with PhotoServer(folder=images) as srv:
        feed = tmp_path / "myntra.tsv"
        feed.write_text("\n".join(lines).replace("{base}", srv.base) + "\n")
        rep = import_catalog(store, feed, fmt="auto", download=FAST)
        assert rep.imported == 40 and rep.problems == {"photo download failed": 3}
        assert rep.rows_read == rep.imported + rep.rows_skipped
        again = import_catalog(store, feed, download=FAST, fmt="auto")
    assert again.details["photos downloaded"] == 0 and again.imported == 40
