"""Shop exports read into the importers' canonical tables.

Catalogs (`detect.read_catalog_feed`, `detect.detect_catalog_format`; `base.Feed`): a Google Merchant Center feed (TSV, or
RSS 2.0 / Atom XML with the `g:` namespace; `merchant`), a Shopify products CSV export
(`shopify`); the generic table and Myntra's `styles.csv` stay with
`recsys.data.catalog_import`. Each feed becomes one row per product with the canonical item
columns (`FEED_COLUMNS`): photos are URLs in `image_path`, downloaded by
`recsys.data.downloads`.

Behaviour (`recsys.data.feeds.ga4`, `recsys.data.feeds.shopify_orders`): a GA4 BigQuery
e-commerce export and a Shopify orders CSV export, read into interaction rows.
"""
