"""No raw jargon where a stakeholder looks (issue 24): on Home, Evaluate, the Catalog map,
User picks and the A/B test, every text shown outside a details expander (headings, sentences,
captions, tiles, widget labels and choices, table headers, chart titles and legends) says a
metric or method in plain words; the technical name may follow in brackets ("ranking quality
(NDCG@20)"). Model and run ids and encoder versions live in expanders only."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..app_helpers import app_test, problems

JARGON = {
    "NDCG": re.compile(r"\bNDCG"),
    "NMI": re.compile(r"\bNMI\b"),
    "t-SNE / UMAP": re.compile(r"t-SNE|\bUMAP\b"),
    "cosine": re.compile(r"\bcosine\b", re.I),
    "k-means": re.compile(r"\bk-means\b", re.I),
    "internal model name": re.compile(r"\b(late|early|attention)-fusion\b|\bFusion: "),
    "run id": re.compile(r"· run \d|\brun \d+\b", re.I),
    "encoder version": re.compile(r"catalog-clip@|\bencoder:"),
}


def _bracketless(text: str) -> str:
    """The text without bracketed parts: a technical name may follow its plain words."""
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\([^()]*\)", "", text)
    return text


def _chart_texts(spec: str) -> list[str]:
    fig = json.loads(spec)
    layout = fig.get("layout", {})
    out = []

    def title(obj) -> None:
        t = (obj or {}).get("title")
        if isinstance(t, dict):
            out.append(str(t.get("text") or ""))
            sub = t.get("subtitle") or {}
            out.append(str(sub.get("text") or ""))
        elif t:
            out.append(str(t))

    title(layout)
    for key, value in layout.items():
        if key.startswith(("xaxis", "yaxis")):
            title(value)
    out += [str(a.get("text") or "") for a in layout.get("annotations", [])]
    out += [str(t.get("name") or "") for t in fig.get("data", []) if t.get("showlegend", True)]
    return out


def visible_texts(node, out: list[str] | None = None) -> list[str]:
    """Every text of an AppTest tree a reader sees without opening an expander (tooltips are
    left out: they are the place for a one-line explanation)."""
    out = [] if out is None else out
    kind = type(node).__name__
    if kind == "Expander":
        return out
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        if kind == "Tab":
            out.append(str(node.label))
        for child in children.values():
            visible_texts(child, out)
        return out
    proto = getattr(node, "proto", None)
    if kind in ("Markdown", "Caption", "Title", "Header", "Subheader", "Success", "Info",
                "Warning", "Error", "Text"):
        out.append(str(node.value))
    elif kind == "Metric":
        out += [str(node.label), str(node.value)]
    elif kind == "Dataframe":
        out += [str(c) for c in node.value.columns]
    elif kind in ("Selectbox", "Multiselect", "Radio", "SelectSlider"):
        out.append(str(node.label))
        out += [str(o) for o in getattr(node, "options", [])]
    elif kind in ("Button", "Checkbox", "Toggle", "Slider", "NumberInput", "TextInput",
                  "DownloadButton"):
        out.append(str(node.label))
    elif kind == "UnknownElement" and getattr(node, "type", "") == "plotly_chart":
        out += _chart_texts(proto.spec)
    elif kind == "UnknownElement" and getattr(node, "type", "") == "button_group":
        out += [str(o.content) for o in getattr(proto, "options", [])]
    return out


def jargon_on(at) -> list[tuple[str, str]]:
    found = []
    for text in visible_texts(at._tree):
        plain = _bracketless(re.sub(r"<[^>]+>", " ", text))
        found += [(name, text[:120]) for name, rx in JARGON.items() if rx.search(plain)]
    return found


def test_the_checker_finds_jargon_outside_brackets_only():
    assert not _bracketless("ranking quality (NDCG@20)").count("NDCG")
    assert "NDCG" in _bracketless("Best NDCG@20 (of 3 models)")
    assert JARGON["internal model name"].search("late-fusion · run 2")
    assert JARGON["run id"].search("Trained it (run 12)") and \
        not JARGON["run id"].search(_bracketless("Trained it (run 12)"))


def test_evaluate_speaks_plainly_on_every_tab(app_db: Path):
    at = app_test(app_db, "app_pages/evaluate.py")
    assert not problems(at), problems(at)
    seen = jargon_on(at)
    for tab in ("Metric at K", "Slices", "Diversity", "Training curves", "Table"):
        at.session_state["ev_tab"] = tab
        at.run()
        assert not problems(at), (tab, problems(at))
        seen += [(tab, *hit) for hit in jargon_on(at)]
    assert not seen, seen


def test_home_map_and_picks_speak_plainly(app_db: Path):
    at = app_test(app_db)
    assert not problems(at), problems(at)
    seen = [("home", *hit) for hit in jargon_on(at)]
    for page in ("app_pages/catalog_map.py", "app_pages/user_picks.py"):
        at.switch_page(page)
        at.run()
        assert not problems(at), (page, problems(at))
        seen += [(page, *hit) for hit in jargon_on(at)]
    assert not seen, seen


def test_ab_test_results_speak_plainly(app_db: Path):
    at = app_test(app_db, "app_pages/ab_test.py")
    at.slider(key="ab_visits").set_value(5).run()
    at.button[0].click().run()
    assert not problems(at), problems(at)
    seen = jargon_on(at)
    assert not seen, seen
    for tile in at.metric:          # a difference chance could explain is grey and says so
        if "not significant" in str(tile.proto.delta):
            assert tile.proto.color == 2, tile.proto      # MetricProto.MetricColor.GRAY