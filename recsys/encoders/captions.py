"""Item -> text: the caption an encoder reads, training caption variants and zero-shot prompts.

`item_caption` is the one place that turns a catalog row into text; the encoders embed it, and
the app and the recommenders can show it. It uses every text field of the catalog (title,
description, gender, article type, colour, usage, season, brand, categories) and skips empty
ones, so a bare generic catalog still gets a sensible caption.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

# Zero-shot prompt ensemble (averaged text vectors per class). "a photo of {}" is also a
# training caption variant; the others are never seen in training.
ZERO_SHOT_TEMPLATES: tuple[str, ...] = ("a photo of {}", "a product photo of {}", "{}",
                                        "a picture of {}", "an image of {}")
# Templates used to make category captions during alignment (a subset of the above).
TRAINING_TEMPLATES: tuple[str, ...] = ("a photo of {}", "a product photo of {}", "{}")
CATEGORY_FIELDS: tuple[str, ...] = ("article_type", "sub_category", "master_category")


def _text(value: Any) -> str:
    """A field as clean text ('' for None/NaN/empty)."""
    if value is None:
        return ""
    try:
        if value != value:  # NaN, pd.NA raises TypeError
            return ""
    except TypeError:
        return ""
    text = re.sub(r"\s+", " ", str(value)).strip()
    return "" if text.lower() in ("nan", "none", "null", "<na>", "na") else text


def item_category(item: Mapping[str, Any]) -> str:
    """The finest category the item has (article type, else sub-, else master category)."""
    for field in CATEGORY_FIELDS:
        value = _text(item.get(field))
        if value:
            return value
    return ""


def attribute_phrase(item: Mapping[str, Any]) -> str:
    """Colour + category + gender, e.g. 'navy blue shirts for men' ('' without a category)."""
    category = item_category(item)
    if not category:
        return ""
    colour = _text(item.get("base_colour"))
    gender = _text(item.get("gender"))
    phrase = " ".join(p for p in (colour, category) if p)
    if gender:
        phrase += f" for {gender}"
    return phrase.lower()


def item_caption(item: Mapping[str, Any], max_description_chars: int = 300) -> str:
    """One readable sentence or two describing an item from all its catalog fields.

    >>> item_caption({"title": "Turtle Check Men Navy Blue Shirt", "gender": "Men",
    ...               "article_type": "Shirts", "base_colour": "Navy Blue",
    ...               "sub_category": "Topwear", "master_category": "Apparel",
    ...               "usage": "Casual", "season": "Fall", "year": 2011})
    'Turtle Check Men Navy Blue Shirt. Navy Blue Shirts for Men, Topwear, Apparel. Casual, Fall 2011.'
    """
    title = _text(item.get("title"))
    parts: list[str] = [title] if title else []
    category = item_category(item)
    colour = _text(item.get("base_colour"))
    gender = _text(item.get("gender"))
    head = " ".join(p for p in (colour, category) if p)
    if head and gender:
        head += f" for {gender}"
    elif gender:
        head = f"For {gender}"
    groups = [head] if head else []
    for field in ("sub_category", "master_category"):
        value = _text(item.get(field))
        if value and value != category and value not in groups:
            groups.append(value)
    if groups:
        parts.append(", ".join(groups))
    brand = _text(item.get("brand"))
    if brand and brand.lower() not in title.lower():
        parts.append(f"By {brand}")
    usage, season = _text(item.get("usage")), _text(item.get("season"))
    year = _text(item.get("year"))
    if year.endswith(".0"):
        year = year[:-2]
    when = " ".join(p for p in (season, year) if p)
    extra = ", ".join(p for p in (usage, when) if p)
    if extra:
        parts.append(extra)
    description = _text(item.get("description"))
    if description:
        if len(description) > max_description_chars:
            description = description[:max_description_chars].rsplit(" ", 1)[0] + "..."
        parts.append(description)
    return ". ".join(p.rstrip(".") for p in parts) + ("." if parts else "")


def caption_variants(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, text) captions of one item used as alignment targets.

    Kinds: `caption` (full), `title`, `attributes` (colour + category + gender) and one
    `category:TEMPLATE` per training template. Several short views of the same product teach
    the text tower that a bare name or a category prompt should also land near the photo.
    """
    out = [("caption", item_caption(item))]
    title = _text(item.get("title"))
    if title:
        out.append(("title", title))
    attrs = attribute_phrase(item)
    if attrs:
        out.append(("attributes", attrs))
    category = item_category(item)
    if category:
        out += [(f"category:{t}", t.format(category)) for t in TRAINING_TEMPLATES]
    return out


def class_prompts(label: str, templates: Sequence[str] = ZERO_SHOT_TEMPLATES) -> list[str]:
    """The prompt ensemble for one class label."""
    return [t.format(label) for t in templates]
