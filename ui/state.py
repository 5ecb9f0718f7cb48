"""Everything the dashboard's pages share, in one documented place.

* **The pages** (`PAGES`: path, title, icon, section). `app.py` builds its navigation from them
  and every link or switch goes through `link` / `switch_to`, so a page's path is written once.
* **The session's dataset** (`current_dataset` / `set_dataset`, session key `"dataset"`): chosen
  in the sidebar, kept across page switches; new sessions start on the store's active dataset.
* **Hand-offs**: a page asks another one to open with something selected, and the receiving
  page takes the request once and sets its own widgets from it. No page writes another page's
  widget keys, and none needs to know another page's constants:

  ================  =====================  ==========================  ======================
  from              to                     ask                         take
  ================  =====================  ==========================  ======================
  Catalog           Visual search          `open_similar(item_id)`     `take_similar_request`
  Train             User picks             `show_run(run_id)`          `take_run_request`
  ================  =====================  ==========================  ======================

* **The first-start check** (`set_up_checked` / `mark_set_up`): the app looks once per browser
  session whether the database needs setting up.

Widget keys (`"vs_k"`, `"up_user"`...) stay private to the page that draws the widget.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class PageInfo:
    """A page of the dashboard: its script, title, icon and navigation section."""

    path: str
    title: str
    icon: str
    section: str
    default: bool = False


HOME = PageInfo("app_pages/home.py", "Home", ":material/home:", "Discover", default=True)
CATALOG = PageInfo("app_pages/catalog.py", "Catalog", ":material/grid_view:", "Discover")
VISUAL_SEARCH = PageInfo("app_pages/visual_search.py", "Visual search",
                         ":material/image_search:", "Discover")
USER_PICKS = PageInfo("app_pages/user_picks.py", "User picks", ":material/person_search:",
                      "Personalise")
NEW_SHOPPER = PageInfo("app_pages/new_shopper.py", "New shopper", ":material/person_add:",
                       "Personalise")
CATALOG_MAP = PageInfo("app_pages/catalog_map.py", "Catalog map", ":material/scatter_plot:",
                       "Discover")
AB_TEST = PageInfo("app_pages/ab_test.py", "A/B test", ":material/science:", "Model lab")
TRAIN = PageInfo("app_pages/train.py", "Train", ":material/model_training:", "Model lab")
EVALUATE = PageInfo("app_pages/evaluate.py", "Evaluate", ":material/leaderboard:", "Model lab")
DATA = PageInfo("app_pages/data.py", "Data", ":material/database:", "Admin")

PAGES = (HOME, CATALOG, VISUAL_SEARCH, CATALOG_MAP, USER_PICKS, NEW_SHOPPER, TRAIN, EVALUATE,
         AB_TEST, DATA)
"""Every page, in navigation order."""

DATASET_KEY = "dataset"
_SET_UP_KEY = "set_up"
_SIMILAR_KEY = "handoff:similar_item"
_RUN_KEY = "handoff:run"


def navigation() -> dict[str, list]:
    """`st.navigation`'s argument: the pages as `st.Page` objects grouped by section."""
    sections: dict[str, list] = {}
    for page in PAGES:
        sections.setdefault(page.section, []).append(
            st.Page(page.path, title=page.title, icon=page.icon, default=page.default))
    return sections


def link(page: PageInfo, label: str | None = None) -> None:
    """A link to `page` (its title and icon unless `label` is given)."""
    st.page_link(page.path, label=label or page.title, icon=page.icon)


def switch_to(page: PageInfo) -> None:
    """Open `page` now (ends this script run)."""
    st.switch_page(page.path)


# -- the session's dataset ----------------------------------------------------------------------
def current_dataset() -> str | None:
    """The dataset this browser session looks at (chosen in the sidebar)."""
    return st.session_state.get(DATASET_KEY)


def set_dataset(name: str | None) -> None:
    """Make `name` this session's dataset (None: no dataset, the database is empty)."""
    if name is None:
        st.session_state.pop(DATASET_KEY, None)
    else:
        st.session_state[DATASET_KEY] = name


# -- first start --------------------------------------------------------------------------------
def set_up_checked() -> bool:
    """Whether this session has already checked that the database is set up."""
    return bool(st.session_state.get(_SET_UP_KEY))


def mark_set_up() -> None:
    st.session_state[_SET_UP_KEY] = True


# -- hand-offs between pages --------------------------------------------------------------------
def open_similar(item_id: str) -> None:
    """Open Visual search with the catalog product `item_id` as the query."""
    st.session_state[_SIMILAR_KEY] = str(item_id)
    switch_to(VISUAL_SEARCH)


def take_similar_request() -> str | None:
    """The product another page asked Visual search to start from (once), if any."""
    return st.session_state.pop(_SIMILAR_KEY, None)


def show_run(run_id: int) -> None:
    """Ask User picks to show this run's picks the next time it opens."""
    st.session_state[_RUN_KEY] = int(run_id)


def take_run_request() -> int | None:
    """The run another page asked User picks to show (once), if any."""
    return st.session_state.pop(_RUN_KEY, None)
