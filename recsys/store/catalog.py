"""The catalog aggregate: settings, datasets, and each dataset's items, users and interactions.

`CatalogPart` holds the named queries of these tables, including the writes the importers run
inside their own transaction (`upsert_dataset`, `upsert_items`, `write_interactions`, given the
caller's cursor). `set_active_dataset` is the one writer of the active dataset setting.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import duckdb
import pandas as pd

from recsys.store.connection import ConnectionPart, StoreError, first_row
from recsys.store.schema import ACTIVE_DATASET


class UnknownDataset(StoreError):
    pass


class CatalogPart(ConnectionPart):
    """Settings, datasets, items, users and interactions."""

    # -- settings -----------------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM settings WHERE key = ?", [key])

    def set_setting(self, key: str, value: str,
                    cur: duckdb.DuckDBPyConnection | None = None) -> None:
        """Write a setting, in the caller's transaction `cur` if given, else in its own."""
        if cur is not None:
            cur.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", [key, value])
            return
        with self.transaction() as own:
            own.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", [key, value])

    def set_active_dataset(self, name: str,
                           cur: duckdb.DuckDBPyConnection | None = None) -> None:
        """Make `name` the dataset commands and new app sessions use when none is named (in the
        caller's transaction `cur` if given). The one writer of the `active_dataset` setting."""
        self.set_setting(ACTIVE_DATASET, name, cur)

    # -- datasets -----------------------------------------------------------------------------
    def datasets(self) -> pd.DataFrame:
        """Datasets with their table sizes, newest first."""
        return self.query("""
            SELECT d.*,
              (SELECT count(*) FROM items i WHERE i.dataset = d.name) AS n_items,
              (SELECT count(*) FROM items i WHERE i.dataset = d.name
                 AND i.image_path IS NOT NULL) AS n_images,
              (SELECT count(*) FROM users u WHERE u.dataset = d.name) AS n_users,
              (SELECT count(*) FROM interactions x WHERE x.dataset = d.name) AS n_interactions
            FROM datasets d ORDER BY created_at DESC, name""")

    def dataset_names(self) -> list[str]:
        return [r[0] for r in self.cursor().execute(
            "SELECT name FROM datasets ORDER BY created_at DESC, name").fetchall()]

    def dataset_kind(self, name: str) -> str | None:
        """'catalog', 'interactions' or 'demo'; None for an unknown dataset."""
        return self.scalar("SELECT kind FROM datasets WHERE name = ?", [name])

    def upsert_dataset(self, cur: duckdb.DuckDBPyConnection, name: str, kind: str,
                       source: str | None = None, attribution: str | None = None) -> None:
        """Register a dataset inside the caller's transaction (keeps created_at if it exists)
        and make it the active one."""
        exists = first_row(cur, "SELECT 1 FROM datasets WHERE name = ?", [name])
        if exists:
            cur.execute("""UPDATE datasets SET kind = ?, source = coalesce(?, source),
                           attribution = coalesce(?, attribution) WHERE name = ?""",
                        [kind, source, attribution, name])
        else:
            cur.execute("INSERT INTO datasets (name, kind, source, attribution) "
                        "VALUES (?, ?, ?, ?)", [name, kind, source, attribution])
        self.set_active_dataset(name, cur)

    def active_dataset(self) -> str | None:
        """The dataset commands use when none is named: the last one imported or chosen."""
        name = self.get_setting(ACTIVE_DATASET)
        names = self.dataset_names()
        if name in names:
            return name
        return names[0] if names else None

    def resolve_dataset(self, name: str | None = None) -> str:
        """`name` if it exists, else the active dataset; a clear error when there is none."""
        names = self.dataset_names()
        if name is None:
            active = self.active_dataset()
            if active is None:
                raise UnknownDataset(
                    "The database holds no dataset yet. Run `python -m recsys init-demo` for the "
                    "built-in demo catalog, or import one with `python -m recsys import-catalog`.")
            return active
        if name not in names:
            raise UnknownDataset(f"Unknown dataset {name!r}. Known datasets: "
                                 f"{', '.join(names) if names else 'none'}.")
        return name

    @staticmethod
    def _delete_dataset_catalog(cur: duckdb.DuckDBPyConnection, name: str) -> None:
        """Delete a dataset's interactions, users, items and its own row (the last step of
        `Store.delete_dataset`), in the caller's transaction."""
        for table in ("interactions", "users", "items"):
            cur.execute(f"DELETE FROM {table} WHERE dataset = ?", [name])
        cur.execute("DELETE FROM datasets WHERE name = ?", [name])

    # -- items --------------------------------------------------------------------------------
    def items(self, dataset: str, item_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Items of a dataset ordered by item_id (all, or the given ids in that order)."""
        if item_ids is None:
            return self.query("SELECT * EXCLUDE (dataset) FROM items WHERE dataset = ? "
                              "ORDER BY item_id", [dataset])
        ids = [str(i) for i in item_ids]
        return self.query("""SELECT i.* EXCLUDE (dataset) FROM items i
                             JOIN (SELECT unnest($ids) AS item_id,
                                          generate_subscripts($ids, 1) AS pos) w
                               USING (item_id)
                             WHERE i.dataset = $dataset ORDER BY w.pos""",
                          {"ids": ids, "dataset": dataset})

    def sample_items(self, dataset: str, n: int, seed: int = 7,
                     with_photo: bool = True) -> pd.DataFrame:
        """`n` items of a dataset drawn by a seeded hash of their ids (the same ones until the
        items change), optionally only those with a photo: a narrow read for a glance at a
        big catalog (Home), never the whole table."""
        photo = "AND image_path IS NOT NULL" if with_photo else ""
        return self.query(f"SELECT * EXCLUDE (dataset) FROM items WHERE dataset = ? {photo} "
                          "ORDER BY hash(item_id || ?), item_id LIMIT ?",
                          [dataset, str(int(seed)), int(n)])

    def item_value_counts(self, dataset: str, column: str) -> pd.Series:
        """How many items have each value of `column` (NULL as None), largest first."""
        known = {str(c) for c in self.query("DESCRIBE items")["column_name"]} - {"dataset"}
        if column not in known:
            raise ValueError(f"items have no column {column!r}")
        frame = self.query(f'SELECT "{column}" AS value, count(*) AS n FROM items '
                           "WHERE dataset = ? GROUP BY 1 ORDER BY 2 DESC, 1", [dataset])
        return pd.Series(frame["n"].to_numpy(), index=frame["value"].to_numpy(), name=column)

    def item_ids(self, dataset: str) -> list[str]:
        return [r[0] for r in self.cursor().execute(
            "SELECT item_id FROM items WHERE dataset = ? ORDER BY item_id", [dataset]).fetchall()]

    def item_columns(self, dataset: str, columns: Sequence[str]) -> pd.DataFrame:
        """item_id and the named columns of a dataset's items, ordered by item_id; names that
        are not columns of the items table are left out. A narrow read for the search's facet
        masks (a million rows of a few columns instead of the whole catalog)."""
        known = {str(c) for c in self.query("DESCRIBE items")["column_name"]} - {"dataset"}
        wanted = [c for c in dict.fromkeys(str(c) for c in columns)
                  if c in known and c != "item_id"]
        select = ", ".join(f'"{c}"' for c in ["item_id", *wanted])
        return self.query(f"SELECT {select} FROM items WHERE dataset = ? ORDER BY item_id",
                          [dataset])

    def _item_column_names(self) -> set[str]:
        return {str(c) for c in self.query("DESCRIBE items")["column_name"]} - {"dataset"}

    def _browse_where(self, dataset: str, filters: Mapping[str, Sequence[str]] | None,
                      keywords: str | None, keyword_columns: Sequence[str]
                      ) -> tuple[str, list[Any]]:
        """The WHERE clause (and its parameters) of the items of `dataset` that have one of
        the chosen values of every filtered column and every word of `keywords` in one of
        `keyword_columns` (case-insensitive); unknown columns raise ValueError."""
        known = self._item_column_names()
        where, params = ["dataset = ?"], [dataset]
        for column, values in (filters or {}).items():
            values = [str(v) for v in values or []]
            if not values:
                continue
            if column not in known:
                raise ValueError(f"items have no column {column!r}")
            where.append(f'CAST("{column}" AS VARCHAR) IN ({", ".join("?" * len(values))})')
            params += values
        words = [w for w in (keywords or "").lower().split() if w]
        if words:
            cols = [c for c in keyword_columns if c in known]
            hay = "lower(concat_ws(' ', " + ", ".join(
                f'CAST("{c}" AS VARCHAR)' for c in cols) + "))"
            for word in words:
                where.append(f"contains({hay}, ?)")
                params.append(word)
        return " AND ".join(where), params

    def browse_items(self, dataset: str, filters: Mapping[str, Sequence[str]] | None = None,
                     keywords: str | None = None, offset: int = 0, limit: int = 24,
                     keyword_columns: Sequence[str] = ("title", "item_id")
                     ) -> tuple[pd.DataFrame, int]:
        """One page of a dataset's items that match the facet `filters` ({column: [values]})
        and the `keywords` (every word in one of `keyword_columns`), ordered by item_id:
        (the `limit` rows from `offset`, how many items match in all). A narrow read: the
        database filters, counts and pages, so a million-item catalog is never loaded."""
        where, params = self._browse_where(dataset, filters, keywords, keyword_columns)
        matched = int(self.scalar(f"SELECT count(*) FROM items WHERE {where}", params) or 0)
        rows = self.query(f"SELECT * EXCLUDE (dataset) FROM items WHERE {where} "
                          "ORDER BY item_id LIMIT ? OFFSET ?",
                          [*params, max(0, int(limit)), max(0, int(offset))])
        return rows, matched

    def matching_item_ids(self, dataset: str, filters: Mapping[str, Sequence[str]] | None = None,
                          keywords: str | None = None,
                          keyword_columns: Sequence[str] = ("title", "item_id")) -> list[str]:
        """The ids of the items `browse_items` would page through (ordered by item_id)."""
        where, params = self._browse_where(dataset, filters, keywords, keyword_columns)
        return [r[0] for r in self.cursor().execute(
            f"SELECT item_id FROM items WHERE {where} ORDER BY item_id", params).fetchall()]

    def item_facet_values(self, dataset: str, columns: Sequence[str]
                          ) -> dict[str, pd.Series]:
        """Per column (those the items table has), the non-empty values and how many items
        have each, most frequent first (ties by value): the Catalog page's filter choices,
        counted by the database."""
        known = self._item_column_names()
        out: dict[str, pd.Series] = {}
        for column in dict.fromkeys(str(c) for c in columns):
            if column not in known:
                continue
            frame = self.query(
                f'SELECT CAST("{column}" AS VARCHAR) AS value, count(*) AS n FROM items '
                f'WHERE dataset = ? AND trim(CAST("{column}" AS VARCHAR)) <> \'\' '
                "GROUP BY 1 ORDER BY 2 DESC, 1", [dataset])
            out[column] = pd.Series(frame["n"].to_numpy(), index=frame["value"].to_numpy(),
                                    name=column)
        return out

    def item_price_range(self, dataset: str) -> tuple[float | None, float | None]:
        """The lowest and highest finite price of a dataset's items ((None, None) without)."""
        row = first_row(self.cursor(), "SELECT min(price), max(price) FROM items WHERE "
                        "dataset = ? AND isfinite(price)", [dataset])
        return (None, None) if row is None or row[0] is None else (float(row[0]), float(row[1]))

    def item_count(self, dataset: str) -> int:
        return int(self.scalar("SELECT count(*) FROM items WHERE dataset = ?", [dataset]) or 0)

    def photo_count(self, dataset: str) -> int:
        """Items of a dataset that have a photo."""
        return int(self.scalar("SELECT count(*) FROM items WHERE dataset = ? AND image_path "
                               "IS NOT NULL", [dataset]) or 0)

    def items_version(self, dataset: str) -> str:
        """A cheap token that changes whenever the dataset's items change (import, delete):
        a cache key for anything computed from them. The content hashes cover what encoders
        read; the dataset's item-write counter (`items_rev`, bumped by every item write) covers
        the rest (a new price, gender or colour: the search filters), and its creation time a
        dataset deleted and imported again."""
        row = first_row(
            self.cursor(),
            "SELECT count(*), coalesce(sum(hash(content_hash)) % 1000000007, 0), "
            "(SELECT any_value(items_rev) || '@' || any_value(created_at) FROM datasets "
            "WHERE name = ?) FROM items WHERE dataset = ?", [dataset, dataset])
        return f"{row[0]}:{row[1]}:{row[2]}"

    @staticmethod
    def catalog_item_ids(cur: duckdb.DuckDBPyConnection, dataset: str) -> set[str]:
        """The item ids a dataset holds, read inside the caller's transaction."""
        return {r[0] for r in cur.execute("SELECT item_id FROM items WHERE dataset = ?",
                                          [dataset]).fetchall()}

    @classmethod
    def upsert_items(cls, cur: duckdb.DuckDBPyConnection, dataset: str,
                     rows: pd.DataFrame) -> None:
        """Insert or replace catalog rows (columns named as in `items`) of one dataset."""
        frame = rows.drop(columns=["dataset"], errors="ignore")
        frame.insert(0, "dataset", dataset)
        cls.insert_frame(cur, "items", frame, mode="replace")
        cls._items_written(cur, dataset)

    @staticmethod
    def _items_written(cur: duckdb.DuckDBPyConnection, dataset: str) -> None:
        """Count an item write in the dataset's `items_rev` (part of `items_version`)."""
        cur.execute("UPDATE datasets SET items_rev = coalesce(items_rev, 0) + 1 WHERE name = ?",
                    [dataset])

    # -- users --------------------------------------------------------------------------------
    def users(self, dataset: str) -> pd.DataFrame:
        """Users with their number of interactions, ordered by user_id."""
        return self.query("""
            SELECT u.* EXCLUDE (dataset), coalesce(n.n, 0) AS n_interactions
            FROM users u LEFT JOIN (SELECT user_id, count(*) AS n FROM interactions
                                    WHERE dataset = ? GROUP BY user_id) n USING (user_id)
            WHERE u.dataset = ? ORDER BY u.user_id""", [dataset, dataset])

    def user(self, dataset: str, user_id: str) -> dict[str, Any] | None:
        """One user's row (user_id, name, segment, profile), or None."""
        frame = self.query("SELECT * EXCLUDE (dataset) FROM users WHERE dataset = ? AND "
                           "user_id = ?", [dataset, str(user_id)])
        return None if frame.empty else frame.iloc[0].to_dict()

    def has_user(self, dataset: str, user_id: str) -> bool:
        return self.scalar("SELECT count(*) FROM users WHERE dataset = ? AND user_id = ?",
                           [dataset, str(user_id)]) > 0

    # -- interactions -------------------------------------------------------------------------
    def interactions(self, dataset: str) -> pd.DataFrame:
        """All interactions of a dataset in time order (user_id, item_id, event, ts, weight,
        split)."""
        return self.query("""SELECT user_id, item_id, event, ts, weight, split FROM interactions
                             WHERE dataset = ? ORDER BY user_id, ts NULLS FIRST, item_id""",
                          [dataset])

    def interaction_count(self, dataset: str) -> int:
        return int(self.scalar("SELECT count(*) FROM interactions WHERE dataset = ?", [dataset]))

    def interactions_version(self, dataset: str) -> str:
        """A cheap token that changes whenever the dataset's interactions change."""
        row = first_row(self.cursor(), "SELECT count(*), max(ts) FROM interactions "
                                       "WHERE dataset = ?", [dataset])
        return f"{row[0]}:{row[1]}"

    def implicit_pairs(self, dataset: str) -> pd.DataFrame:
        """One row per (user, item) of the interactions: weight = largest event weight, ts =
        first event, split_code = 0 train / 1 valid / 2 test (NULL without a stored split)."""
        return self.query("""
            SELECT user_id, item_id, max(weight) AS weight, min(ts) AS ts,
                   min(CASE split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 WHEN 'test' THEN 2 END)
                     AS split_code
            FROM interactions WHERE dataset = ? GROUP BY user_id, item_id
            ORDER BY user_id, item_id""", [dataset])

    def rated_pairs(self, dataset: str) -> pd.DataFrame:
        """One row per rated (user, item): its mean rating, ordered by user and item."""
        return self.query("""SELECT user_id, item_id, avg(rating) AS rating FROM interactions
                             WHERE dataset = ? AND rating IS NOT NULL GROUP BY user_id, item_id
                             ORDER BY user_id, item_id""", [dataset])

    def rating_count(self, dataset: str) -> int:
        """Interactions of a dataset that carry an explicit rating."""
        return int(self.scalar("SELECT count(*) FROM interactions WHERE dataset = ? AND rating "
                               "IS NOT NULL", [dataset]) or 0)

    def weekly_events(self, dataset: str) -> pd.DataFrame:
        """Events per week and type (week, event, events), oldest week first, with the first
        and last event times of the dataset (first_ts, last_ts: partial weeks at the ends)."""
        return self.query(
            "SELECT date_trunc('week', ts) AS week, event, count(*) AS events, "
            "min(min(ts)) OVER () AS first_ts, max(max(ts)) OVER () AS last_ts "
            "FROM interactions WHERE dataset = ? AND ts IS NOT NULL GROUP BY week, event "
            "ORDER BY week", [dataset])

    def user_history(self, dataset: str, user_id: str) -> pd.DataFrame:
        """One user's interactions joined with item details, newest first."""
        return self.query("""
            SELECT x.event, x.ts, x.weight, x.split, i.* EXCLUDE (dataset)
            FROM interactions x JOIN items i ON i.dataset = x.dataset AND i.item_id = x.item_id
            WHERE x.dataset = ? AND x.user_id = ?
            ORDER BY x.ts DESC NULLS LAST, i.item_id""", [dataset, str(user_id)])

    def user_item_events(self, dataset: str, user_id: str) -> pd.DataFrame:
        """Every item a user interacted with (all splits, catalog or not): item_id, the strongest
        event (the one of largest weight: purchase > cart > view), its weight, the number of
        events and the last time; most recent first."""
        return self.query("""
            SELECT item_id, arg_max(event, weight) AS event, max(weight) AS weight,
                   count(*) AS events, max(ts) AS last_ts
            FROM interactions WHERE dataset = ? AND user_id = ?
            GROUP BY item_id ORDER BY last_ts DESC NULLS LAST, item_id""",
                          [dataset, str(user_id)])

    def replace_users_and_interactions(self, dataset: str, users: pd.DataFrame,
                                       interactions: pd.DataFrame,
                                       settings: dict[str, str] | None = None) -> None:
        """Replace a dataset's users and interactions (frames with the tables' columns, a
        `dataset` column optional) and write `settings`, all in one transaction."""
        users = users.assign(dataset=dataset)
        interactions = interactions.assign(dataset=dataset)
        with self.transaction() as cur:
            cur.execute("DELETE FROM interactions WHERE dataset = ?", [dataset])
            cur.execute("DELETE FROM users WHERE dataset = ?", [dataset])
            self.insert_frame(cur, "users", users)
            self.insert_frame(cur, "interactions", interactions)
            for key, value in (settings or {}).items():
                self.set_setting(key, value, cur)

    @classmethod
    def write_interactions(cls, cur: duckdb.DuckDBPyConnection, dataset: str,
                           users: pd.DataFrame, items: pd.DataFrame | None,
                           interactions: pd.DataFrame, replace: bool) -> None:
        """Add users (and bare items, when given) that are new, then the interactions; with
        `replace` the dataset's interactions are deleted first. In the caller's transaction."""
        if replace:
            cur.execute("DELETE FROM interactions WHERE dataset = ?", [dataset])
        cls.insert_frame(cur, "users", users[["dataset", "user_id", "name"]], mode="ignore")
        if items is not None:
            cls.insert_frame(cur, "items", items[["dataset", "item_id", "title"]], mode="ignore")
            cls._items_written(cur, dataset)
        cls.insert_frame(cur, "interactions", interactions)
