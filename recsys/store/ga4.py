"""Reading a GA4 BigQuery e-commerce export (newline-delimited JSON or Parquet) with DuckDB:
the one named query of `recsys.data.feeds.ga4`, kept here because only the store speaks SQL.

`ga4_item_events(path)` returns one row per (event, item) with the event's user
(`user_id`, else `user_pseudo_id`), name and timestamp (microseconds, as text), and one row
with a NULL item for an event without items, so the importer can account for every event.
The path is bound as a parameter; the file is read in an in-memory database.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from recsys.core.errors import RecsysError

GA4_COLUMNS = {"event_name": "VARCHAR", "event_timestamp": "VARCHAR", "user_id": "VARCHAR",
               "user_pseudo_id": "VARCHAR", "items": "STRUCT(item_id VARCHAR)[]"}


class Ga4ReadError(RecsysError, ValueError):
    """A GA4 export DuckDB cannot read (the message quotes none of its content)."""


def ga4_item_events(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    parquet = path.suffix.lower() in (".parquet", ".pq")
    con = duckdb.connect(":memory:")
    try:
        if parquet:
            present = {r[0] for r in con.execute(
                "DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()}
            cols = ", ".join(
                (f"CAST({name} AS {kind}) AS {name}" if name in present
                 else f"CAST(NULL AS {kind}) AS {name}") for name, kind in GA4_COLUMNS.items())
            source = f"(SELECT {cols} FROM read_parquet(?))"
        else:
            spec = ", ".join(f"'{name}': '{kind}'" for name, kind in GA4_COLUMNS.items())
            source = (f"read_json(?, format = 'newline_delimited', columns = {{{spec}}}, "
                      "maximum_object_size = 16777216)")
        return con.execute(f"""
            WITH events AS (
                SELECT row_number() OVER () AS event_no, * FROM {source})
            SELECT event_no, coalesce(nullif(trim(user_id), ''), user_pseudo_id) AS user_id,
                   event_name, event_timestamp, NULL AS item_id
            FROM events WHERE items IS NULL OR len(items) = 0
            UNION ALL
            SELECT event_no, coalesce(nullif(trim(user_id), ''), user_pseudo_id) AS user_id,
                   event_name, event_timestamp, unnest(items).item_id AS item_id
            FROM events WHERE len(items) > 0
            ORDER BY event_no""", [str(path)]).df()
    except duckdb.Error as exc:
        raise Ga4ReadError(f"{path.name} cannot be read as a GA4 export "
                           f"({type(exc).__name__}); it should be the BigQuery events table "
                           "exported as newline-delimited JSON or Parquet.") from None
    finally:
        con.close()
