"""Plain words for stakeholder-facing pages (issue 24): one glossary of metric and method
names with a plain label and a one-line tooltip, and the A/B test's headline sentence.

Pure functions of plain values (no Streamlit), so the wording is tested directly.
"""

from __future__ import annotations

from typing import Any

GLOSSARY: dict[str, tuple[str, str]] = {
    "ndcg": ("ranking quality (NDCG)",
             "How high the products a shopper later chose sit in the list: 1 = all at the top, "
             "0 = none in the list."),
    "recall": ("share found (recall)",
               "Of the products a shopper later chose, the share that the list contains."),
    "precision": ("share of hits (precision)",
                  "Of the products in the list, the share the shopper later chose."),
    "hit_rate": ("shoppers with a hit (hit rate)",
                 "The share of shoppers for whom at least one listed product was chosen."),
    "f1": ("balance of found and hits (F1)",
           "The harmonic mean of recall and precision."),
    "auc": ("accuracy (AUC)",
            "The chance that a product the shopper chose is ranked above one they did not: "
            "0.5 = guessing, 1 = always."),
    "map": ("average precision (MAP)",
            "Like the share of hits, but hits near the top of the list count more."),
    "mrr": ("first hit's rank (MRR)",
            "1 divided by the position of the first chosen product: 1 = first, 0.5 = second."),
    "coverage": ("catalog coverage",
                 "The share of the catalog that appears in at least one shopper's list."),
    "diversity": ("variety within a list (intra-list diversity)",
                  "How unlike each other the products of one list are: 0 = all alike."),
    "novelty": ("novelty",
                "How far from the bestsellers the listed products are (in bits: higher = less "
                "popular products)."),
    "nmi": ("agreement with categories (NMI)",
            "How well the map's groups match the catalog's categories: 1 = exactly, 0 = not "
            "at all."),
    "purity": ("group purity",
               "The share of products whose group's most common category is their own."),
    "tsne": ("2-D map (t-SNE)",
             "Places products that the model sees as alike close together on a flat map."),
    "cosine": ("similarity",
               "How alike two products' photos or texts are to the model, from -1 to 1 "
               "(1 = the same)."),
    "late-fusion": ("combined model",
                    "Adds up what shoppers did, the photos and the texts, each with a learned "
                    "weight."),
    "encoder": ("photo and text reader",
                "The model that turns photos and product texts into numbers the search and "
                "the recommenders compare."),
    "fold-in": ("instant picks",
                "Picks for a new shopper from a few likes, without retraining the model."),
    "p-value": ("chance of a fluke (p-value)",
                "How often a difference at least this large would appear if the two models "
                "were really equal."),
}


def label(term: str) -> str:
    """The plain label of a metric or method ("ndcg" -> "ranking quality (NDCG)"); the term
    itself when the glossary lacks it."""
    return GLOSSARY.get(str(term).lower(), (str(term), ""))[0]


def tooltip(term: str) -> str | None:
    """The one-line explanation of a term, None when the glossary lacks it."""
    found = GLOSSARY.get(str(term).lower())
    return found[1] if found else None


def plural(n: int, word: str, many: str | None = None) -> str:
    """"1 cart", "2 carts" (never "1 carts")."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _one(comp: Any, noun: str, name_a: str, name_b: str, alpha: float) -> str:
    if comp.lift is None:
        return f"No {noun} in one of the arms, so {noun} cannot be compared."
    ahead, behind = (name_b, name_a) if comp.lift > 0 else (name_a, name_b)
    more = comp.lift if comp.lift > 0 else 1 / (1 + comp.lift) - 1
    verdict = (f"**statistically significant** ({_p(comp.p_value)}: chance would produce a "
               f"difference this large less than {alpha:.0%} of the time)"
               if comp.significant else
               f"**not significant** ({_p(comp.p_value)}: chance alone could explain it)")
    return (f"**{ahead}** got **{more:.1%} more {noun}** per visit than {behind} "
            f"({comp.b.rate:.2%} vs {comp.a.rate:.2%} of visits for B vs A); {verdict}.")


def ab_headline(result: Any, name_a: str, name_b: str) -> str:
    """The A/B result for a stakeholder: clicks and purchases, each with its significance,
    and a plain conclusion that never calls a model better on a non-significant difference."""
    clicks = result.comparisons["click"]
    buys = result.comparisons.get("purchase")
    parts = [_one(clicks, "clicks", name_a, name_b, result.alpha)]
    if buys is not None:
        parts.append(_one(buys, "purchases", name_a, name_b, result.alpha))
    sig = [c for c in (clicks, buys) if c is not None and c.lift is not None and c.significant]
    if not sig:
        needed = max((c.needed_per_arm or 0) for c in (clicks, buys) if c is not None)
        parts.append("Neither difference is significant: this test cannot tell the models "
                     "apart" + (f"; about **{needed:,} shoppers per arm** would be needed "
                                f"(this one had {min(result.shoppers.values()):,})."
                                if needed else "."))
    elif clicks.significant and buys is not None and buys.lift is not None and \
            not buys.significant:
        parts.append("So: more clicks is shown; whether it sells more is not.")
    parts.append(f"(Both arms were shown to the same {result.population:,} shoppers).")
    return " ".join(parts)


def run_labels(runs) -> dict[int, str]:
    """Plain names for a table of model runs (columns run_id, model; newest first): the
    model's display name, and "earlier version" for older runs of the same model. Run ids
    stay out of the label (they belong in details)."""
    from recsys.models import display_name

    out: dict[int, str] = {}
    seen: dict[str, int] = {}
    for r in runs.itertuples():
        n = seen.get(r.model, 0)
        seen[r.model] = n + 1
        name = display_name(r.model)
        out[int(r.run_id)] = name if n == 0 else f"{name} (earlier version {n})"
    return out


def stop_words(model: str, status: str | None, run_id: int | None,
               kept_run_id: int | None) -> str:
    """What the Train page says after Stop: the stopped run's state (a run still finishing
    its step is "being stopped", never "had not started") and which model is in use now
    (only an earlier finished run of the same model can be; otherwise none is)."""
    if run_id is None or status == "finished":    # the newest run is an older, finished one
        what = "No run of it had been recorded yet"
    elif status in ("running", None):
        what = f"Run {run_id} is being stopped (it stops at its next step)"
    else:
        what = f"Run {run_id} is marked {status}"
    kept = (f"the earlier {model} (run {kept_run_id}) stays in use" if kept_run_id is not None
            else f"there is no earlier {model}, so none is in use until one finishes")
    return f"Training of {model} stopped. {what}; {kept}."


def heading(term: str) -> str:
    """The plain label with its first letter upper-cased (acronyms stay as they are):
    "nmi" -> "Agreement with categories (NMI)"."""
    text = label(term)
    return text[:1].upper() + text[1:]
