"""Personalised search on the Catalog and Visual search pages: "search as shopper X".

One self-contained block per page: `controls(prefix, dataset)` draws the shopper picker and the
"query only ↔ mostly taste" slider and returns the choice; `results(...)` calls
`usecases.search_for_shopper` and draws the cards, each saying how much of its place came from
the query and how much from the shopper's taste.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.search.personal import DEFAULT_TASTE

from . import components, resources

QUERY_COLOUR = "#0EA5E9"
TASTE_COLOUR = "#EC4899"
NOBODY = ""
MAX_SHOPPERS = 2000


@dataclass
class AsShopper:
    """Who a search is answered for (a shopper's id, or a new shopper's liked products), with
    which run and how much taste counts."""

    user_id: str | None
    taste: float
    run_id: int | None
    history: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"shopper {self.user_id}" if self.user_id else "you"


def controls(prefix: str, dataset: str) -> AsShopper | None:
    """The "search as a shopper" picker (None: a plain search). Widget keys start with
    `prefix` so each page keeps its own."""
    users = resources.users(dataset)
    if users.empty:
        return None
    ids = list(users["user_id"])[:MAX_SHOPPERS]
    names = dict(zip(users["user_id"], users["name"].fillna("")))
    segments = dict(zip(users["user_id"], users["segment"].fillna("")))
    with st.expander("Search as a shopper", icon=":material/person_search:",
                     expanded=bool(st.session_state.get(f"{prefix}_as"))):
        who = st.selectbox(
            "Shopper", [NOBODY] + ids, key=f"{prefix}_as",
            format_func=lambda u: "nobody: plain search" if u == NOBODY else
            " · ".join(x for x in (str(u), names.get(u), segments.get(u)) if x),
            help="Answer the query for this shopper: their model score (taste) reorders the "
                 "products that match the query.")
        if who == NOBODY:
            return None
        taste = st.slider("Query only ↔ mostly taste", 0.0, 1.0, DEFAULT_TASTE, 0.05,
                          key=f"{prefix}_taste",
                          help="0 = the plain search order; 1 = the shopper's favourites among "
                               "the products that match the query.")
        runs = usecases.list_runs(resources.get_store(), dataset)
        if runs.empty:
            st.info("Train a model first (Train page): taste comes from a model's scores.")
            return None
        from ui.words import run_labels

        labels = run_labels(runs)
        default = int(runs.loc[runs["default"], "run_id"].iloc[0]) if runs["default"].any() \
            else int(runs["run_id"].iloc[0])
        run = st.selectbox("Taste from", list(labels), format_func=labels.get,
                           index=list(labels).index(default), key=f"{prefix}_run")
    return AsShopper(str(who), float(taste), int(run))


def share_bar(query_share: float) -> str:
    """A thin two-colour bar: the query's and the taste's share of a result's score (HTML)."""
    q = max(0.0, min(1.0, float(query_share)))
    return (f'<div class="rs-weights"><div style="width:{100 * q:.1f}%;background:'
            f'{QUERY_COLOUR}"></div><div style="width:{100 * (1 - q):.1f}%;background:'
            f'{TASTE_COLOUR}"></div></div><div class="rs-legend"><span><span class="rs-dot" '
            f'style="background:{QUERY_COLOUR}"></span>query {100 * q:.0f}%</span><span>'
            f'<span class="rs-dot" style="background:{TASTE_COLOUR}"></span>taste '
            f'{100 * (1 - q):.0f}%</span></div>')


def results(dataset: str, who: AsShopper, *, k: int, min_width: int = 170,
            **query: Any) -> None:
    """Search for `who` (`query`: text, photo, item_id, image_weight, filters as
    `search_for_shopper` takes them) and draw the result cards."""
    store = resources.get_store()
    try:
        hits = usecases.search_for_shopper(store, dataset, user_id=who.user_id,
                                           history=list(who.history) or None,
                                           taste=who.taste, k=k, model=who.run_id,
                                           train_if_missing=False, **query)
    except RecsysError as exc:
        components.error_box(exc, "Personalised search failed")
        return
    st.markdown(f"**{len(hits.results)} products for {who.label}** · "
                f"{100 * (1 - hits.taste):.0f}% query, {100 * hits.taste:.0f}% taste "
                f"({hits.model}, run {hits.run_id}) · the query's {hits.pool} best matches "
                f"reordered by taste in {1000 * hits.seconds:.0f} ms")
    cards = []
    for row in hits.results.to_dict("records"):
        tag = ("in history", "#64748B") if row["in_history"] else None
        cards.append(components.product_card(row, rank=int(row["rank"]), score=row["score"],
                                             score_label="blend", tag=tag,
                                             extra_html=share_bar(row["query_share"])))
    components.card_grid(cards, min_width)
