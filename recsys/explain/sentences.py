"""One sentence per pick, in words a shopper or a stakeholder understands.

The sentence is read off the model's own attribution (`recsys.explain.weights.Explanation`): the
modality weights decide what it talks about and in which order, the similar history items
decide which past product it names (the one most similar in the leading modality) and the
shopper's event on that product (bought / put in the cart / looked at) decides the verb; the
attribute-level surrogate (`recsys.explain.attribution`) fills in when there is no history to point to.
So a different attribution gives a different sentence:

* photo leads  -> "Looks like the *Nike Men White Sweater* you bought"
* text leads   -> "Described like the *Puma Men Grey Socks* you looked at"
* behaviour    -> "Shoppers who bought the *Fila Men Grey Socks* often choose it too"
* in the history (only when asked for) -> "Already in your cart; ..."
* a second signal with at least `SECOND_SHARE` of the weight adds a clause: ", and shoppers
  with your history often choose it" / ", and it looks like the *...* you looked at".

With `thresholds` (`recsys.explain.closeness.close_thresholds`, measured on the catalog), a
photo or text (or other vector) reason is given only when the cited item is that close in that
modality; otherwise the sentence moves on to the next reason (the next signal, the attributes
that drove the pick, "popular with shoppers like you").

Titles are wrapped in `*...*` (Markdown emphasis; `emphasis_html` turns them into <em>).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

SECOND_SHARE = 0.25
"""A second signal is mentioned when it carries at least this share of the weight."""

YOU_DID = {"purchase": "you bought", "cart": "you put in your cart", "view": "you looked at"}
THEY_DID = {"purchase": "shoppers who bought the {title}",
            "cart": "shoppers who put the {title} in their cart",
            "view": "shoppers who looked at the {title}"}
SEEN = {"purchase": "You bought this one already", "cart": "Already in your cart",
        "view": "You looked at this one already"}
EVENT_WORDS = {"purchase": "bought", "cart": "in your cart", "view": "viewed"}
"""Short event labels for badges."""


@dataclass(frozen=True)
class Cited:
    """A history item a sentence may name: title, the shopper's strongest event on it, and its
    similarity to the pick per modality."""

    title: str
    event: str | None
    similarities: Mapping[str, float]


def _title(title: str) -> str:
    return "*" + re.sub(r"[*_`]", "", title).strip() + "*"


def _you_did(event: str | None) -> str:
    return YOU_DID.get(event or "", "from your history")


def _best(cited: Sequence[Cited], modality: str) -> Cited | None:
    """The cited item most similar to the pick in one modality (the first one when the
    modality was not measured)."""
    if not cited:
        return None
    return max(cited, key=lambda c: c.similarities.get(modality, float("-inf")))


def _modality_words(modality: str) -> str:
    """How a sentence names a modality other than behaviour, photo and text."""
    return "its video" if modality == "video" else modality.replace("_", " ").replace("-", " ")


def _close(item: Cited | None, modality: str, thresholds: Mapping[str, float] | None) -> bool:
    """The cited item is close enough in a vector modality to say so (always with no
    thresholds, and for behaviour, which names what shoppers did, not a resemblance)."""
    if item is None or not thresholds:
        return item is not None
    if modality == "cf":       # "shoppers who bought X often choose it": they must have
        return item.similarities.get("cf", 0.0) > 0
    if modality not in thresholds:
        return True
    return item.similarities.get(modality, float("-inf")) >= thresholds[modality]


def _lead(modality: str, cited: Sequence[Cited],
          thresholds: Mapping[str, float] | None = None) -> str | None:
    item = _best(cited, modality)
    if item is None or not _close(item, modality, thresholds):
        return None
    if modality == "image":
        return f"looks like the {_title(item.title)} {_you_did(item.event)}"
    if modality == "text":
        return f"described like the {_title(item.title)} {_you_did(item.event)}"
    if modality != "cf":                 # video, imported vectors: said by their name
        return f"close in {_modality_words(modality)} to the {_title(item.title)} " \
            f"{_you_did(item.event)}"
    who = THEY_DID.get(item.event or "", "shoppers who chose the {title}")
    return who.format(title=_title(item.title)) + " often choose it too"


def _follow(modality: str, cited: Sequence[Cited], named: set[str],
            thresholds: Mapping[str, float] | None = None) -> str | None:
    item = _best(cited, modality)
    if modality == "cf":
        return "shoppers with your history often choose it"
    if item is None or not _close(item, modality, thresholds):
        return None
    again = item.title in named
    if modality == "image":
        return "it looks like that one too" if again else \
            f"it looks like the {_title(item.title)} {_you_did(item.event)}"
    if modality != "text":
        words = _modality_words(modality)
        return f"it is close in {words} to that one too" if again else \
            f"it is close in {words} to the {_title(item.title)} {_you_did(item.event)}"
    return "it is described alike" if again else \
        f"it is described like the {_title(item.title)} {_you_did(item.event)}"


def pick_sentence(weights: Mapping[str, float], cited: Sequence[Cited], *, cold: bool = False,
                  attributes: Sequence[tuple[str, str]] = (), seen: str | None = None,
                  thresholds: Mapping[str, float] | None = None) -> str:
    """One sentence saying why an item was picked.

    `weights`: the model's modality weights (cf, image, text); `cited`: the similar history
    items, most similar first; `cold`: the item has no interactions yet; `attributes`: the
    (attribute word, value) pairs that drove the pick, strongest first; `seen`: the shopper's
    own event on this very item when it is in their history; `thresholds`: per modality, the
    similarity below which a "looks like" / "described like" claim is not made (the next
    signal leads instead).
    """
    ranked = sorted(((m, float(w)) for m, w in weights.items() if w and w > 0),
                    key=lambda t: -t[1])
    total = sum(w for _, w in ranked) or 1.0
    parts: list[str] = []
    named: set[str] = set()
    leads = ranked if thresholds else ranked[:1]
    for i, (first, _) in enumerate(leads):
        lead = _lead(first, cited, thresholds)
        if lead is None:
            continue
        parts.append(lead)
        item = _best(cited, first)
        if item is not None:
            named.add(item.title)
        for m, w in ranked[i + 1:i + 2]:
            if w / total >= SECOND_SHARE:
                follow = _follow(m, cited, named, thresholds)
                if follow:
                    parts.append(follow)
        break
    if not parts:
        if attributes:
            parts.append("matches what you like: " + ", ".join(
                f"{value} ({attr})" for attr, value in attributes[:2]))
        elif ranked and ranked[0][0] == "cf":
            parts.append("popular with shoppers like you")
        elif thresholds:
            parts.append("picked for you from your history as a whole")
        else:
            parts.append("close to what you have looked at")
    text = ", and ".join(parts)
    if cold:
        text = "new in the catalog: " + text
    if seen:
        text = f"{SEEN.get(seen, 'You have seen this one already')}; " + text
    return text[0].upper() + text[1:] + "."


def emphasis_html(sentence: str) -> str:
    """The sentence as HTML: escaped, with `*title*` as <em>title</em>."""
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", html.escape(sentence))


def plain(sentence: str) -> str:
    """The sentence without the emphasis marks (for a terminal)."""
    return sentence.replace("*", "")
