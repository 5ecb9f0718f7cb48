"""Reusable pieces of the dashboard: styling, product cards, progress, dataset picker."""

from __future__ import annotations

import html
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd
import streamlit as st

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.core.progress import Progress
from recsys.encoders.captions import item_category
from recsys.explain.sentences import EVENT_WORDS, emphasis_html
from recsys.search.facets import item_label

from . import resources, state, words

MODALITY_COLOURS = {"cf": "#6366F1", "image": "#F59E0B", "text": "#10B981",
                    "video": "#EC4899"}
MODALITY_LABELS = {"cf": "behaviour", "image": "photo", "text": "text", "video": "video"}
EXTRA_MODALITY_COLOURS = ("#0EA5E9", "#A855F7", "#84CC16", "#F97316", "#14B8A6",
                          "#E11D48")


def modality_colour(name: str) -> str:
    """A modality's colour: fixed for the built-in ones, a stable pick for any other name
    (imported features such as "style")."""
    if name in MODALITY_COLOURS:
        return MODALITY_COLOURS[name]
    import zlib
    return EXTRA_MODALITY_COLOURS[zlib.crc32(name.encode()) % len(EXTRA_MODALITY_COLOURS)]
EVENT_COLOURS = {"view": "#94A3B8", "cart": "#F59E0B", "purchase": "#10B981"}

CSS = """
<style>
.block-container {padding-top: 2.2rem; max-width: 1400px;}
.rs-grid {display: grid; grid-template-columns: repeat(auto-fill, minmax(var(--rs-min, 170px), 1fr));
  gap: 14px; margin: 4px 0 18px 0;}
.rs-card {background: #fff; border: 1px solid #E5E7EB; border-radius: 12px; overflow: hidden;
  box-shadow: 0 1px 2px rgba(16,24,40,.05); transition: box-shadow .15s, transform .15s;
  display: flex; flex-direction: column;}
.rs-card:hover {box-shadow: 0 6px 18px rgba(16,24,40,.12); transform: translateY(-2px);}
.rs-img {position: relative; background: #F8FAFC; aspect-ratio: 1 / 1; display: flex;
  align-items: center; justify-content: center;}
.rs-img img {max-width: 100%; max-height: 100%; object-fit: contain;}
.rs-noimg {font-size: 2.2rem; color: #94A3B8; font-weight: 600;}
.rs-rank {position: absolute; top: 8px; left: 8px; background: rgba(17,24,39,.78); color: #fff;
  font-size: .72rem; font-weight: 600; padding: 2px 7px; border-radius: 999px;}
.rs-tag {position: absolute; top: 8px; right: 8px; font-size: .68rem; font-weight: 600;
  padding: 2px 7px; border-radius: 999px; color: #fff;}
.rs-body {padding: 8px 10px 10px 10px; display: flex; flex-direction: column; gap: 4px;}
.rs-title {font-size: .84rem; font-weight: 600; color: #111827; line-height: 1.25;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden;
  min-height: 2.1em;}
.rs-meta {font-size: .74rem; color: #6B7280; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis;}
.rs-price {font-size: .8rem; color: #111827; font-weight: 600;}
.rs-score {display: flex; align-items: center; gap: 6px; font-size: .72rem; color: #374151;}
.rs-track {flex: 1; height: 6px; background: #EEF2FF; border-radius: 3px; overflow: hidden;}
.rs-fill {height: 100%; background: #6366F1; border-radius: 3px;}
.rs-weights {display: flex; height: 8px; border-radius: 4px; overflow: hidden; margin-top: 2px;}
.rs-legend {font-size: .68rem; color: #6B7280; display: flex; gap: 8px; flex-wrap: wrap;}
.rs-dot {display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 3px;}
.rs-because {font-size: .68rem; color: #6B7280; margin-top: 2px;}
.rs-because-row {display: flex; gap: 4px; margin-top: 3px;}
.rs-because-row img, .rs-because-row .rs-mini {width: 38px; height: 38px; border-radius: 6px;
  object-fit: contain; background: #F1F5F9; border: 1px solid #E5E7EB;}
.rs-mini {display: flex; align-items: center; justify-content: center; font-size: .6rem;
  color: #64748B;}
.rs-hero {background: linear-gradient(135deg, #EEF2FF 0%, #FDF2F8 100%); border-radius: 16px;
  padding: 22px 26px; margin-bottom: 14px;}
.rs-hero h1 {margin: 0 0 6px 0; font-size: 2.0rem;}
.rs-hero p {margin: 0; color: #374151; font-size: 1.02rem;}
.rs-query {border: 1px solid #E5E7EB; border-radius: 12px; padding: 8px; background: #fff;
  text-align: center;}
.rs-query img {max-width: 100%; max-height: 260px; object-fit: contain;}
.rs-pill {display: inline-block; padding: 2px 9px; border-radius: 999px; font-size: .74rem;
  background: #EEF2FF; color: #3730A3; margin: 0 4px 4px 0;}
.rs-why {font-size: .78rem; color: #1F2937; line-height: 1.3; margin-top: 3px;}
.rs-why em {font-style: normal; font-weight: 600;}
.rs-attrs {display: flex; flex-wrap: wrap; gap: 3px; margin-top: 2px;}
.rs-attr {font-size: .66rem; padding: 1px 6px; border-radius: 999px; background: #ECFDF5;
  color: #065F46; border: 1px solid #A7F3D0;}
.rs-cites {display: flex; flex-direction: column; gap: 3px; margin-top: 3px;}
.rs-cite {display: flex; align-items: center; gap: 5px; font-size: .68rem; color: #374151;
  line-height: 1.2;}
.rs-cite img, .rs-cite .rs-mini {width: 30px; height: 30px; flex: none; border-radius: 5px;
  object-fit: contain; background: #F1F5F9; border: 1px solid #E5E7EB;}
.rs-cite span {display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;
  overflow: hidden;}
.rs-cite b {font-weight: 600; color: #6B7280;}
.rs-cited {outline: 2px solid #6366F1; outline-offset: -2px;}
.rs-querybar {display: flex; gap: 16px; align-items: center; border: 1px solid #E5E7EB;
  border-radius: 12px; padding: 10px 14px; background: #fff; margin-bottom: 10px;}
.rs-querybar img {height: 120px; width: 120px; object-fit: contain; border-radius: 8px;
  background: #F8FAFC;}
.rs-badge {display: inline-block; padding: 2px 9px; border-radius: 999px; font-size: .74rem;
  font-weight: 600; color: #fff; background: #059669; margin-left: 6px;}
.rs-shot {position: relative; flex: none; height: 120px; border-radius: 8px; overflow: hidden;
  background: #F8FAFC;}
.rs-querybar .rs-shot img {width: 100%; height: 100%; object-fit: fill; border-radius: 0;}
.rs-cropbox {position: absolute; border: 2px solid #F59E0B; border-radius: 3px;
  box-shadow: 0 0 0 999px rgba(15, 23, 42, .38);}
.rs-badge.rs-nomatch {background: #B45309; margin-left: 0;}
</style>
"""


def page_setup(title: str, subtitle: str | None = None) -> None:
    """Styles and a page heading (call first on every page)."""
    st.markdown(CSS, unsafe_allow_html=True)
    st.title(title)
    if subtitle:
        st.caption(subtitle)


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _placeholder(row: Mapping) -> str:
    cat = item_category(row) or item_label(row)
    initials = "".join(w[0] for w in str(cat).split()[:2]).upper() or "?"
    return f'<div class="rs-noimg">{_esc(initials)}</div>'


def query_shot(uri: str, crop: Mapping[str, Any] | None = None, alt: str = "query") -> str:
    """A query photo (data URI) for the query bar, with the product crop drawn on it when
    `crop` (a search's `crop`: "fraction" = left, top, right, bottom as fractions of the
    photo, "size" = width, height) says the photo was cropped: the box outlined, the rest
    dimmed."""
    if not crop or not crop.get("size") or not crop.get("fraction"):
        return f'<img src="{uri}" alt="{_esc(alt)}"/>'
    w, h = (max(1, int(v)) for v in crop["size"])
    left, top, right, bottom = (min(1.0, max(0.0, float(v))) for v in crop["fraction"])
    box = (f'<div class="rs-cropbox" title="the product crop" style="left:{100 * left:.1f}%;'
           f'top:{100 * top:.1f}%;width:{100 * (right - left):.1f}%;'
           f'height:{100 * (bottom - top):.1f}%"></div>')
    return (f'<div class="rs-shot" style="aspect-ratio:{w}/{h}"><img src="{uri}" '
            f'alt="{_esc(alt)}"/>{box}</div>')


def weight_bar(weights: Mapping[str, float]) -> str:
    """A thin stacked bar of modality shares with a legend (HTML)."""
    clean = {m: max(0.0, float(v)) for m, v in weights.items() if v is not None}
    total = sum(clean.values())
    if total <= 0:
        return ""
    segs = "".join(
        f'<div style="width:{100 * v / total:.1f}%;background:{modality_colour(m)}"'
        f' title="{_esc(MODALITY_LABELS.get(m, m))} {100 * v / total:.0f}%"></div>'
        for m, v in clean.items() if v > 0)
    legend = "".join(
        f'<span><span class="rs-dot" style="background:{modality_colour(m)}">'
        f'</span>{_esc(MODALITY_LABELS.get(m, m))} {100 * v / total:.0f}%</span>'
        for m, v in clean.items() if v > 0)
    return f'<div class="rs-weights">{segs}</div><div class="rs-legend">{legend}</div>'


def product_card(row: Mapping, rank: int | None = None, score: float | None = None,
                 score_label: str = "score", tag: tuple[str, str] | None = None,
                 extra_html: str = "", meta: str | None = None, thumb: int = 256,
                 css_class: str = "") -> str:
    """HTML for one product: photo, rank, title, category/colour, price, score bar, extras."""
    uri = resources.thumbnail_uri(row.get("image_path"), thumb)
    img = f'<img src="{uri}" alt="{_esc(item_label(row))}"/>' if uri else _placeholder(row)
    rank_html = f'<div class="rs-rank">#{rank}</div>' if rank is not None else ""
    tag_html = (f'<div class="rs-tag" style="background:{tag[1]}">{_esc(tag[0])}</div>'
                if tag else "")
    if meta is None:
        parts = [p for p in (item_category(row), row.get("base_colour"), row.get("gender"))
                 if isinstance(p, str) and p]
        meta = " · ".join(dict.fromkeys(parts)) or f"id {row.get('item_id')}"
    price = row.get("price")
    price_html = (f'<div class="rs-price">₹{price:,.0f}</div>'
                  if isinstance(price, (int, float)) and price == price else "")
    score_html = ""
    if score is not None and score == score:
        width = max(2.0, min(100.0, 100.0 * float(score)))
        score_html = (f'<div class="rs-score"><span>{_esc(score_label)}</span>'
                      f'<div class="rs-track"><div class="rs-fill" style="width:{width:.0f}%">'
                      f'</div></div><span>{score:.3f}</span></div>')
    klass = f"rs-card {css_class}" if css_class else "rs-card"
    return (f'<div class="{klass}"><div class="rs-img">{img}{rank_html}{tag_html}</div>'
            f'<div class="rs-body"><div class="rs-title" title="{_esc(item_label(row))}">'
            f'{_esc(item_label(row))}</div><div class="rs-meta">{_esc(meta)}</div>'
            f'{price_html}{score_html}{extra_html}</div></div>')


def card_grid(cards: Iterable[str], min_width: int = 170) -> None:
    """Render cards as one responsive grid (one element, so big grids stay fast)."""
    body = "".join(cards)
    if not body:
        return
    st.markdown(f'<div class="rs-grid" style="--rs-min:{min_width}px">{body}</div>',
                unsafe_allow_html=True)


def product_grid(frame: pd.DataFrame, score_col: str | None = None, score_label: str = "score",
                 ranked: bool = False, min_width: int = 170) -> None:
    """Products of a frame (item rows, optionally with a score column) as a card grid."""
    cards = []
    for n, row in enumerate(frame.to_dict("records"), 1):
        score = row.get(score_col) if score_col else None
        cards.append(product_card(row, rank=n if ranked else None, score=score,
                                  score_label=score_label))
    card_grid(cards, min_width)


def mini_thumbs(rows: Sequence[Mapping], caption: str) -> str:
    """A row of tiny photos (the history items behind a recommendation)."""
    if not rows:
        return ""
    pics = []
    for r in rows:
        uri = resources.thumbnail_uri(r.get("image_path"), 96)
        label = _esc(item_label(r))
        pics.append(f'<img src="{uri}" title="{label}"/>' if uri else
                    f'<div class="rs-mini" title="{label}">{_esc(str(r.get("item_id"))[:6])}</div>')
    return (f'<div class="rs-because">{_esc(caption)}</div>'
            f'<div class="rs-because-row">{"".join(pics)}</div>')


def cited_items(rows: Sequence[tuple[Mapping, str | None]], caption: str) -> str:
    """The history items behind a pick, each with a tiny photo, its title and what the shopper
    did with it (visible, not only on hover)."""
    if not rows:
        return ""
    lines = []
    for r, event in rows:
        uri = resources.thumbnail_uri(r.get("image_path"), 96)
        label = _esc(item_label(r))
        pic = f'<img src="{uri}" alt=""/>' if uri else \
            f'<div class="rs-mini">{_esc(str(r.get("item_id"))[:6])}</div>'
        what = f' <b>{_esc(EVENT_WORDS.get(event, event))}</b>' if event else ""
        lines.append(f'<div class="rs-cite" title="{label}">{pic}<span>{label}{what}</span>'
                     '</div>')
    return (f'<div class="rs-because">{_esc(caption)}</div>'
            f'<div class="rs-cites">{"".join(lines)}</div>')


def sentence(text: str | None) -> str:
    """A pick's sentence (titles emphasised) as HTML."""
    return f'<div class="rs-why">{emphasis_html(text)}</div>' if text else ""


def attribute_pills(effects: Iterable[Any], limit: int = 3) -> str:
    """The catalog attributes that drove a pick (`recsys.explain.attribution.AttributeEffect`), as
    small pills: "type: Socks"."""
    pills_ = [f'<span class="rs-attr" title="raises this shopper\'s score by '
              f'{e.effect:.2f} standard deviations near this item">{_esc(e.label())}</span>'
              for e in list(effects)[:limit]]
    return f'<div class="rs-attrs">{"".join(pills_)}</div>' if pills_ else ""


class ProgressPanel:
    """Drives an `st.progress` bar from recsys Progress events of work run in the page (a
    job's are followed by `ui.jobs.follow`).

    Updates are throttled so a fast loop does not flood the browser.
    """

    def __init__(self, label: str, every: float = 0.15):
        self.bar = st.progress(0.0, text=label)
        self.label = label
        self.every = every
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.perf_counter()
        if now - self._last < self.every and p.fraction < 1.0:
            return
        self._last = now
        text = f"{self.label}: {p.message}" if p.message else self.label
        self.bar.progress(min(1.0, p.fraction), text=text[:160])

    def done(self, text: str) -> None:
        self.bar.progress(1.0, text=text)


def dataset_picker() -> str | None:
    """Sidebar selector of the session's dataset (`state.current_dataset`); a new session
    starts on the store's active dataset. The widget only mirrors the session's choice."""
    store = resources.get_store()
    info = store.datasets().set_index("name")
    names = list(info.index)
    if not names:
        state.set_dataset(None)
        return None
    if state.current_dataset() not in names:
        state.set_dataset(store.active_dataset() or names[0])
    st.session_state["dataset_box"] = state.current_dataset()
    st.sidebar.selectbox(
        "Dataset", names, key="dataset_box",
        on_change=lambda: state.set_dataset(st.session_state["dataset_box"]),
        format_func=lambda n: f"{n} · {int(info.loc[n, 'n_items']):,} items",
        help="Which catalog the pages show. Import more on the Data page.")
    return state.current_dataset()


def open_dataset_button(name: str) -> None:
    """A button that makes `name` this session's dataset (the sidebar follows)."""
    st.button(f"Open '{name}'", on_click=state.set_dataset, args=(name,), type="primary",
              key=f"open_{name}")


def require_dataset() -> str:
    """The session's dataset, or stop the page with a pointer to the Data page."""
    dataset = state.current_dataset()
    if dataset is None:
        st.info("The database is empty. Build the demo catalog or import one on the Data page.")
        state.link(state.DATA, "Go to Data")
        st.stop()
    return dataset


def no_vectors_notice(dataset: str) -> None:
    """Explain that search needs item vectors and offer to compute them here (stops the page)."""
    store = resources.get_store()
    if not usecases.readiness(store, dataset).has_content:
        st.info(f"'{dataset}' has no product photos or texts (interactions only), so there is "
                "nothing to search by photo or text. Pick a catalog dataset in the sidebar.")
        st.stop()
    st.warning(f"'{dataset}' has no item vectors yet: the CLIP encoder must be aligned on its "
               "photos and texts, and the items embedded (a minute on the demo, a few on "
               "Myntra).")
    from ui import jobs

    running = jobs.find("embed", dataset)
    if running is None and st.button("Align the encoder and embed the catalog",
                                     type="primary"):
        running = jobs.runner().get(jobs.start("embed", dataset, align=True,
                                               path_policy=usecases.app_path_policy()))
    if running is not None:       # a job: it goes on if the page is left
        job = jobs.follow(running.job_id, "Preparing item vectors")
        if job is not None and job.status == "finished":
            st.rerun()
        if job is not None:
            jobs.ended_message(job, "Preparing item vectors")
    st.stop()


def error_box(exc: BaseException, what: str) -> None:
    """A readable error in the page (never a traceback for input problems)."""
    st.error(f"{what}: {exc}", icon=":material/error:")


def notes(lines: Iterable[str] | None) -> None:
    """What a use case changed in the request (e.g. a number of results lowered to the
    catalog's size), one caption each."""
    for line in lines or ():
        st.caption(line)


def call_or_stop(what: str, use_case: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`use_case(*args, **kwargs)`; a `RecsysError` is shown as "`what`: message" and stops
    the page."""
    try:
        return use_case(*args, **kwargs)
    except RecsysError as exc:
        error_box(exc, what)
        st.stop()


def pills(values: Iterable[str]) -> str:
    return "".join(f'<span class="rs-pill">{_esc(v)}</span>' for v in values if v)


def metric_columns(table: pd.DataFrame) -> dict[str, Any]:
    """Column settings for a table of models and metrics (issue 24: no cut-off tables): the
    model column pinned (it stays in view while the table scrolls sideways), every other
    column wide enough for its value and interval, and a one-line tooltip on each metric
    column from the glossary."""
    from recsys.evaluation.tables import METRIC_LABELS

    terms = {label: metric for metric, label in METRIC_LABELS.items()}
    config: dict[str, Any] = {}
    for column in table.columns:
        if column == "Model":
            config[column] = st.column_config.TextColumn(column, pinned=True, width="medium")
            continue
        head = str(column).split(" @")[0]
        term = terms.get(head, "ndcg" if "Ranking quality" in str(column) else None)
        tip = words.tooltip(term) if term else None
        wide = "large" if "vs baseline" in str(column) else "medium"
        config[column] = st.column_config.TextColumn(column, width=wide, help=tip)
    return config
