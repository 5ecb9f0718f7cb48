"""User-history simulator for catalogs that come without users (Myntra, the demo catalog).

The generative model (documented in the README) gives each signal information the others lack:

* attributes (article type, gender, colour) are visible in both the photo and the text;
* visual style (hue, saturation, brightness, colourfulness, texture, shape) is measured from the
  photo's pixels; the text names a colour at best;
* brand (the brand column, else inferred from the product name:
  `recsys.data.attributes.infer_brands`) and usage are text-only;
* "trend groups" are random item sets with no content in common that some users follow: only
  collaborative filtering can learn them from co-occurrence;
* popularity is a per-item log-normal effect; new arrivals are released late in the timeline,
  so a temporal split has cold-start items that only content can reach.

Shoppers shop for a declared segment (issue 24): each has a gender and an age band of their
own (men's and women's shoppers are adults, boys' and girls' shoppers teenagers), drawn from the
catalog's people-genders (Men, Women, Boys, Girls; unisex items suit everyone). A labelled
minority (`SimulationConfig.buys_for_share`, adults only) also buys for a partner (the other
adult gender) or for their children (boys' and girls' items): a share of their sessions
(`for_others_sessions`) is for that recipient, and their profile says so (`buys_for`,
`shops_for_genders`), so a page can label those history items ("for partner"). Every other
session stays within the shopper's own gender plus unisex items: single-segment histories
never cross gender. The hidden tastes (never shown to the models) are the favourite article
types (category loyalty), two colours, three brands (brand loyalty), a usage, a visual style
centre, one or two trend groups, a price band (a position within each article type's price
range: budget, mid-range or premium) and an activity level.

Users browse in sessions: a session picks a recipient (themselves, or the partner/children),
an article type from that recipient's taste, then views items of that recipient's genders by a
softmax over affinities; views turn into carts and carts into purchases at realistic
rates that rise with affinity. Everything is drawn from one seeded generator: same seed, same
histories.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Callable

import numpy as np
import pandas as pd

from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback, report
from recsys.data.attributes import (
    FEMALE_GENDERS,
    MALE_GENDERS,
    infer_brands,
    people_gender,
)
from recsys.data.images import ImageError, load_image
from recsys.store import Store

VISUAL_FEATURES = ("hue_x", "hue_y", "saturation", "brightness", "colourfulness", "texture",
                   "fill", "aspect")

CART_SLOPE = 0.8
"""How steeply P(cart | view) rises with the viewed item's standardised affinity."""

MALE_NAMES = ("Aarav", "Rohan", "Vikram", "Kabir", "Arjun", "Sameer", "Aditya", "Rahul", "Dev",
              "Nikhil", "Omar", "Ravi", "Farhan", "Ishaan", "Karan", "Liam", "Noah", "Lucas",
              "Mateo", "Yusuf")
FEMALE_NAMES = ("Priya", "Ananya", "Isha", "Meera", "Diya", "Neha", "Kavya", "Sara", "Tara",
                "Zoya", "Leela", "Anika", "Maya", "Riya", "Pooja", "Emma", "Sofia", "Mia",
                "Chloe", "Hana")
FIRST_NAMES = MALE_NAMES + FEMALE_NAMES


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of the generative model (stored with the dataset so a run can be reproduced)."""

    users: int = 2000
    seed: int = 0
    days: int = 365
    start: str = "2025-01-01"
    sessions_mean: float = 5.0           # log-normal mean of sessions per user
    views_per_session: float = 2.5       # 1 + Poisson(this - 1)
    min_views: int = 5
    n_groups: int = 40                   # collaborative-only trend groups
    new_item_share: float = 0.15         # items released in the last `new_item_window` of time
    new_item_window: float = 0.25
    temperature: float = 1.0
    w_type: float = 1.0                  # weights of the affinity terms
    w_gender: float = 2.5
    w_visual: float = 1.6
    w_colour: float = 0.6
    w_brand: float = 1.6
    w_usage: float = 0.6
    w_group: float = 2.2
    w_popularity: float = 0.5
    w_price: float = 1.2                 # price-band fit (items priced away from the band)
    cart_rate: float = 0.05              # P(cart | view) at average affinity
    purchase_rate: float = 0.35          # P(purchase | cart)
    buys_for_share: float = 0.15         # adults who also buy for a partner or children
    for_others_sessions: float = 0.3     # their share of sessions for that recipient


def visual_style(image_paths: list[str | None], progress: ProgressCallback | None = None
                 ) -> np.ndarray:
    """Per-photo style features measured from pixels, z-scored over the catalog (n x 8)."""
    def one(path: str | None) -> np.ndarray:
        if not isinstance(path, str) or not path:
            return np.full(len(VISUAL_FEATURES), np.nan)
        try:
            img = load_image(path, target_size=64).resize((64, 64))
        except ImageError:
            return np.full(len(VISUAL_FEATURES), np.nan)
        return _style_of(np.asarray(img, dtype=np.float32) / 255.0)

    feats = np.zeros((len(image_paths), len(VISUAL_FEATURES)))
    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, f in enumerate(pool.map(one, image_paths)):
            feats[i] = f
            if i % 250 == 0 or i == len(image_paths) - 1:
                report(progress, i + 1, len(image_paths), "measuring photo styles",
                       stage="style")
    mean = np.nanmean(feats, axis=0) if np.isfinite(feats).any() else np.zeros(feats.shape[1])
    std = np.nanstd(feats, axis=0) if np.isfinite(feats).any() else np.ones(feats.shape[1])
    z = (feats - mean) / np.where(std > 1e-9, std, 1.0)
    return np.nan_to_num(z, nan=0.0)


def _style_of(rgb: np.ndarray) -> np.ndarray:
    """Foreground colour, texture and shape statistics of a product shot (H x W x 3 in 0..1)."""
    corners = np.concatenate([rgb[:4, :4].reshape(-1, 3), rgb[:4, -4:].reshape(-1, 3),
                              rgb[-4:, :4].reshape(-1, 3), rgb[-4:, -4:].reshape(-1, 3)])
    background = np.median(corners, axis=0)
    mask = np.abs(rgb - background).sum(axis=2) > 0.12
    if mask.sum() < 20:
        mask = np.ones(mask.shape, dtype=bool)
    fg = rgb[mask]
    mx, mn = fg.max(axis=1), fg.min(axis=1)
    sat = np.where(mx > 1e-6, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    r, g, b = fg[:, 0], fg[:, 1], fg[:, 2]
    hue = np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)
    weight = sat + 1e-6
    grey = rgb.mean(axis=2)
    grad = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    inner = mask[:-1, :-1] & mask[1:, :-1] & mask[:-1, 1:]
    ys, xs = np.nonzero(mask)
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    return np.array([
        np.sum(weight * np.cos(hue)) / weight.sum() * sat.mean(),
        np.sum(weight * np.sin(hue)) / weight.sum() * sat.mean(),
        sat.mean(),
        mx.mean(),
        fg.std(axis=0).mean(),
        grad[inner].mean() if inner.any() else 0.0,
        mask.mean(),
        np.log(height / width),
    ])


ADULT_GENDERS = ("men", "women")
CHILD_GENDERS = ("boys", "girls")
PARTNER = {"men": "women", "women": "men"}
PRICE_BANDS = ("budget", "mid-range", "premium")


def _profile_dict(profile: dict | str | None) -> dict | None:
    """A shopper's stored profile (a dict or its JSON text) as a dict; None when there is none
    or it does not read as one."""
    if isinstance(profile, str):
        try:
            profile = json.loads(profile)
        except ValueError:
            return None
    return profile if isinstance(profile, dict) else None


def segment_genders(profile: dict | str | None) -> set[str] | None:
    """The people-genders (lower case: men/women/boys/girls) a simulated shopper shops for:
    their own, plus a partner's or children's when their profile says they buy for them.
    None when the profile declares no gender (real users, older simulations): no rule applies.
    Unisex items suit every segment and are never named here."""
    profile = _profile_dict(profile)
    if profile is None:
        return None
    own = people_gender(profile.get("gender"))
    if own is None:
        return None
    return {own} | {g for g in (people_gender(x) for x in profile.get("shops_for_genders", []))
                    if g}


def recipient_label(profile: dict | str | None, item_gender) -> str | None:
    """"for partner" / "for children" when a simulated shopper's item is for someone else in
    their declared segment; None for their own (or unisex) items and for real users."""
    profile = _profile_dict(profile)
    if profile is None:
        return None
    own, item = people_gender(profile.get("gender")), people_gender(item_gender)
    if own is None or item is None or item == own:
        return None
    if item in CHILD_GENDERS and "children" in profile.get("buys_for", []):
        return "for children"
    if item == PARTNER.get(own) and "partner" in profile.get("buys_for", []):
        return "for partner"
    return None


def first_names(gender: str | None) -> tuple[str, ...]:
    """The first names a shopper of a catalog gender gets: men's and boys' shoppers male names,
    women's and girls' female names, the others (unisex, unknown) any."""
    g = str(gender or "").strip().lower()
    return MALE_NAMES if g in MALE_GENDERS else FEMALE_NAMES if g in FEMALE_GENDERS \
        else FIRST_NAMES


def simulate(items: pd.DataFrame, config: SimulationConfig,
             progress: ProgressCallback | None = None,
             on_user: Callable[[str, dict, np.ndarray], None] | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw users and their interaction histories for a catalog; returns (users, interactions).

    `on_user(user_id, taste, affinity)` (optional) sees each shopper's hidden taste and their
    utility of every item (items sorted by item_id) as they are drawn: `replay` uses it to
    recover what the simulator knew without storing it."""
    if items.empty:
        raise RecsysError("The catalog has no items to simulate users for; import a catalog first.")
    rng = np.random.default_rng(config.seed)
    items = items.sort_values("item_id").reset_index(drop=True)
    n = len(items)

    style = visual_style(list(items["image_path"]), _sub(progress, 0.0, 0.3))
    types, type_idx = _codes(items["article_type"])
    genders, gender_idx = _codes(items["gender"])
    colours, colour_idx = _codes(items["base_colour"])
    brands, brand_idx = _codes(infer_brands(items["title"], items["brand"]
                                            if "brand" in items else None))
    usages, usage_idx = _codes(items["usage"])
    type_counts = np.bincount(type_idx, minlength=len(types)).astype(float)
    people = np.array([people_gender(g) or "" for g in items["gender"].tolist()], dtype=object) \
        if "gender" in items else np.full(n, "", dtype=object)
    price_pct = _price_position(items)

    popularity = rng.normal(0.0, 1.0, n)
    group_of = rng.integers(0, config.n_groups, n)
    start = datetime.fromisoformat(config.start)
    release = np.zeros(n)
    new = rng.random(n) < config.new_item_share
    release[new] = config.days * (1 - config.new_item_window * rng.random(new.sum()))

    user_rows, events = [], []
    pad = len(str(config.users))
    for u in range(config.users):
        uid = f"u{u + 1:0{max(pad, 4)}d}"
        taste = _draw_taste(rng, config, types, type_counts, genders, gender_idx, type_idx,
                            colours, brands, brand_idx, usages, style, people)
        affinity = _affinity(config, taste, gender_idx, colour_idx, brand_idx, usage_idx,
                             group_of, popularity, style, price_pct)
        if on_user is not None:
            on_user(uid, taste, affinity)
        events += _sessions(rng, config, uid, taste, affinity, type_idx, release, start)
        user_rows.append(_user_row(rng, uid, taste, types, genders, colours, brands, usages))
        if u % 50 == 0 or u == config.users - 1:
            report(progress, 0.3 + 0.7 * (u + 1) / config.users, 1.0,
                   f"simulated {u + 1:,}/{config.users:,} users", stage="simulate")

    frame = pd.DataFrame(events, columns=["user_id", "item_pos", "event", "ts", "weight"])
    frame["item_id"] = items["item_id"].to_numpy()[frame["item_pos"].to_numpy()]
    frame["split"] = None
    frame = frame.sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)
    users = pd.DataFrame(user_rows)
    return users, frame[["user_id", "item_id", "event", "ts", "weight", "split"]]


def _sub(progress: ProgressCallback | None, a: float, b: float) -> ProgressCallback | None:
    from recsys.core.progress import scaled
    return scaled(progress, a, b)


def _price_position(items: pd.DataFrame) -> np.ndarray:
    """Each item's price as a percentile within its article type (0 cheapest .. 1 dearest);
    NaN where the catalog has no price (then the price band plays no part)."""
    if "price" not in items:
        return np.full(len(items), np.nan)
    price = pd.to_numeric(items["price"], errors="coerce")
    kinds = items["article_type"].fillna("").astype(str)
    return price.groupby(kinds).rank(pct=True).to_numpy(dtype=float)


def _type_pref_for(eligible: np.ndarray, type_idx: np.ndarray, n_types: int) -> np.ndarray:
    """A recipient's article-type preferences: the types of the items they can wear, the
    common ones likelier (used for the sessions a shopper spends on a partner or children)."""
    counts = np.bincount(type_idx[eligible], minlength=n_types).astype(float) ** 0.6
    return counts / counts.sum() if counts.sum() > 0 else np.full(n_types, 1.0 / n_types)


def _codes(values) -> tuple[list[str], np.ndarray]:
    series = pd.Series(list(values), dtype="object").fillna("").astype(str)
    codes, uniques = pd.factorize(series, sort=True)
    return list(uniques), codes


def _draw_taste(rng, config, types, type_counts, genders, gender_idx, type_idx, colours, brands,
                brand_idx, usages, style, people=None) -> dict:
    """A user's latent tastes: what the generative model scores items by, and the declared
    segment (own gender, and whom else they buy for) that decides which items they meet."""
    people = np.full(len(type_idx), "", dtype=object) if people is None else people
    present = [g for g in ADULT_GENDERS + CHILD_GENDERS if (people == g).any()]
    own: str | None = None
    if present:
        share = np.array([(people == g).sum() for g in present], dtype=float)
        own = present[int(rng.choice(len(present), p=share / share.sum()))]
        gender = int(np.bincount(gender_idx[people == own]).argmax())
        mine = (people == own) | (people == "")
    else:       # no people-genders in the catalog: one segment, everyone meets everything
        gender_share = np.bincount(gender_idx, minlength=len(genders)).astype(float)
        gender = int(rng.choice(len(genders), p=gender_share / gender_share.sum()))
        mine = np.ones(len(type_idx), dtype=bool)
    # Favourite article types: popular types likelier; only types the user's segment buys.
    allowed = np.zeros(len(types), dtype=bool)
    allowed[np.unique(type_idx[mine & (people == own)] if own else
                      type_idx[gender_idx == gender])] = True
    base = np.where(allowed, type_counts, 0.0) ** 0.6
    n_fav = int(rng.integers(2, 5))
    fav = rng.choice(len(types), size=min(n_fav, int(allowed.sum())), replace=False,
                     p=base / base.sum())
    type_pref = np.full(len(types), 0.02) * allowed + 1e-4
    type_pref[fav] += rng.dirichlet(np.ones(len(fav)) * 1.5)
    type_pref /= type_pref.sum()
    # Visual style centre: an item of a favourite type, jittered.
    candidates = np.flatnonzero(np.isin(type_idx, fav) & (gender_idx == gender) & mine)
    anchor = int(rng.choice(candidates)) if len(candidates) else int(rng.integers(len(type_idx)))
    visual = style[anchor] + rng.normal(0, 0.35, style.shape[1])
    brand_counts = np.bincount(brand_idx[np.isin(type_idx, fav)], minlength=len(brands))
    brand_p = brand_counts.astype(float) ** 0.5 + 1e-9
    fav_brands = rng.choice(len(brands), size=min(3, int((brand_counts > 0).sum()) or 1),
                            replace=False, p=brand_p / brand_p.sum())
    # Whom else they buy for (a labelled minority of adults): a partner or their children.
    buys_for: list[str] = []
    others: list[str] = []
    if own in ADULT_GENDERS and rng.random() < config.buys_for_share:
        options = ([("partner", [PARTNER[own]])] if PARTNER[own] in present else []) + \
            ([("children", [g for g in CHILD_GENDERS if g in present])]
             if any(g in present for g in CHILD_GENDERS) else [])
        if options:
            who, genders_for = options[int(rng.integers(len(options)))]
            buys_for, others = [who], genders_for
    recipients = [("self", mine, type_pref)]
    if others:
        theirs = np.isin(people, others) | (people == "")
        recipients.append((buys_for[0], theirs,
                           _type_pref_for(np.isin(people, others), type_idx, len(types))))
    centre = float(np.clip(rng.choice([0.2, 0.5, 0.8]) + rng.normal(0, 0.08), 0.0, 1.0))
    return {
        "gender": gender,
        "own": own,
        "buys_for": buys_for,
        "shops_for_genders": others,
        "recipients": recipients,
        "price_centre": centre,
        "age": int(rng.integers(18, 61)) if own in ADULT_GENDERS else
        int(rng.integers(13, 18)) if own in CHILD_GENDERS else None,
        "type_pref": type_pref,
        "fav_types": fav,
        "visual": visual,
        "colours": rng.choice(len(colours), size=min(2, len(colours)), replace=False),
        "brands": fav_brands,
        "usage_pref": rng.dirichlet(np.ones(len(usages)) * 0.7),
        "groups": rng.choice(config.n_groups, size=int(rng.integers(1, 3)), replace=False),
        "activity": float(rng.lognormal(np.log(config.sessions_mean), 0.6)),
        "first_day": float(rng.uniform(0, config.days * 0.5)),
    }


def _affinity(config, taste, gender_idx, colour_idx, brand_idx, usage_idx, group_of, popularity,
              style, price_pct=None) -> np.ndarray:
    """Utility of every item for one user (before the session's type choice)."""
    visual_d2 = ((style - taste["visual"]) ** 2).sum(axis=1) / style.shape[1]
    price_fit = 0.0 if price_pct is None else np.nan_to_num(
        np.abs(np.asarray(price_pct, dtype=float) - taste.get("price_centre", 0.5)), nan=0.0)
    return (config.w_gender * (gender_idx == taste["gender"])
            - config.w_price * 2.0 * price_fit
            - config.w_visual * visual_d2
            + config.w_colour * np.isin(colour_idx, taste["colours"])
            + config.w_brand * np.isin(brand_idx, taste["brands"])
            + config.w_usage * np.log(taste["usage_pref"][usage_idx] * len(taste["usage_pref"])
                                      + 1e-3)
            + config.w_group * np.isin(group_of, taste["groups"])
            + config.w_popularity * popularity)


def _sessions(rng, config, uid, taste, affinity, type_idx, release, start) -> list[tuple]:
    """Sessions of one user: timestamps, viewed items, carts and purchases.

    The user's sessions happen at times drawn uniformly between their first day and the end of
    the timeline (a Poisson process given its number of events), so no session is ever pushed
    past the end: the weekly activity has no pile-up in the last days. Session sizes are drawn
    first, adding sessions until the user has at least `min_views` views.
    """
    n_sessions = 1 + rng.poisson(taste["activity"])
    sizes: list[int] = []
    while len(sizes) < n_sessions or sum(sizes) < config.min_views:
        sizes.append(1 + int(rng.poisson(config.views_per_session - 1)))
    days = np.sort(rng.uniform(taste["first_day"], config.days, len(sizes)))
    rows: list[tuple] = []
    views = 0
    s = 0
    while s < len(sizes) or views < config.min_views:
        if s < len(sizes):
            day, size = float(days[s]), sizes[s]
        else:       # small article types capped the views: one more session, at any time
            day = float(rng.uniform(taste["first_day"], config.days))
            size = 1 + int(rng.poisson(config.views_per_session - 1))
        s += 1
        available = release <= day
        recipients = taste.get("recipients") or [("self", np.ones(len(type_idx), bool),
                                                  taste["type_pref"])]
        r = 0
        if len(recipients) > 1 and rng.random() < config.for_others_sessions:
            r = 1 + int(rng.integers(len(recipients) - 1))
        _, eligible, type_pref = recipients[r]
        type_choice = rng.choice(len(type_pref), p=type_pref)
        pool = np.flatnonzero(available & eligible & (type_idx == type_choice))
        if len(pool) == 0:
            pool = np.flatnonzero(available & eligible)
        if len(pool) == 0:
            pool = np.flatnonzero(available)
        logits = config.w_type * affinity[pool] / config.temperature
        p = np.exp(logits - logits.max())
        p /= p.sum()
        n_views = min(len(pool), size)
        chosen = rng.choice(pool, size=n_views, replace=False, p=p)
        t = start + timedelta(days=day)
        z = (affinity[chosen] - affinity[pool].mean()) / (affinity[pool].std() + 1e-6)
        for j, item in enumerate(chosen):
            ts = t + timedelta(minutes=float(2 * j + rng.exponential(1.5)))
            rows.append((uid, int(item), "view", ts, 1.0))
            views += 1
            odds = config.cart_rate / (1 - config.cart_rate) * np.exp(CART_SLOPE * z[j])
            if rng.random() < odds / (1 + odds):
                rows.append((uid, int(item), "cart", ts + timedelta(minutes=1), 3.0))
                if rng.random() < config.purchase_rate:
                    rows.append((uid, int(item), "purchase", ts + timedelta(minutes=3), 5.0))
    return rows


def _user_row(rng, uid, taste, types, genders, colours, brands, usages) -> dict:
    order = np.argsort(-taste["type_pref"])[:3]
    fav_types = [types[i] for i in order if taste["type_pref"][i] > 0.05]
    visual = taste["visual"]
    look = []
    look.append("bright" if visual[3] > 0.3 else "dark" if visual[3] < -0.3 else "mid-tone")
    look.append("vivid" if visual[2] > 0.3 else "muted" if visual[2] < -0.3 else "balanced")
    if visual[5] > 0.3:
        look.append("patterned")
    age = taste.get("age")
    band = None if age is None else "13-17" if age < 18 else "18-24" if age < 25 else \
        "25-34" if age < 35 else "35-44" if age < 45 else "45-60"
    profile = {
        "gender": genders[taste["gender"]],
        "age": age,
        "age_band": band,
        "buys_for": list(taste.get("buys_for", [])),
        "shops_for_genders": list(taste.get("shops_for_genders", [])),
        "price_band": PRICE_BANDS[min(2, int(taste.get("price_centre", 0.5) * 3))],
        "favourite_types": fav_types,
        "favourite_colours": [colours[i] for i in taste["colours"]],
        "favourite_brands": [brands[i] for i in taste["brands"]],
        "usage": usages[int(np.argmax(taste["usage_pref"]))],
        "visual_style": look,
        "trend_groups": [int(g) for g in taste["groups"]],
    }
    names = first_names(profile["gender"])
    name = f"{names[int(rng.integers(len(names)))]} {chr(65 + int(rng.integers(26)))}."
    also = f"also buys for {profile['buys_for'][0]}" if profile["buys_for"] else ""
    segment = " · ".join(p for p in (profile["gender"], band or "", profile["usage"],
                                     ", ".join(t for t in fav_types[:2] if t), also) if p)
    return {"user_id": uid, "name": name, "segment": segment, "profile": json.dumps(profile)}


def simulate_into(store: Store, dataset: str, config: SimulationConfig,
                  progress: ProgressCallback | None = None) -> dict:
    """Simulate users for a dataset's catalog and replace its users and interactions."""
    items = store.items(dataset)
    users, interactions = simulate(items, config, progress)
    store.replace_users_and_interactions(
        dataset, users, interactions,
        settings={f"simulation:{dataset}": json.dumps(asdict(config))})
    counts = interactions["event"].value_counts()
    return {"dataset": dataset, "users": int(users.shape[0]),
            "interactions": int(interactions.shape[0]),
            "users_with_history": int(interactions["user_id"].nunique()),
            "items_touched": int(interactions["item_id"].nunique()),
            **{f"{e}s": int(counts.get(e, 0)) for e in ("view", "cart", "purchase")}}


# -- what the simulator knows, for simulated experiments (issue-novel) --------------------------
SHOWN_ATTENTION = 4.0
"""How much more likely a product is chosen when it is shown on the first slot of a list than
when it is merely in the catalog: its choice weight is multiplied by 1 + this / log2(rank + 1)
(rank 1: x5, rank 10: x2.2), a position-biased exposure boost."""


@dataclass
class HiddenTastes:
    """What the simulator knew about its shoppers: each one's utility of every item (`affinity`,
    users x items, rows `user_ids`, columns `item_ids` sorted) and article-type preferences
    (`type_pref`, users x types; `type_idx` gives each item's type), plus the interactions the
    replay drew (to check it reproduced the stored ones)."""

    user_ids: list[str]
    item_ids: list[str]
    affinity: np.ndarray
    type_pref: np.ndarray
    type_idx: np.ndarray
    interactions: pd.DataFrame


def replay(items: pd.DataFrame, config: SimulationConfig,
           progress: ProgressCallback | None = None) -> HiddenTastes:
    """Run the simulator again with the same seed and keep every shopper's hidden taste.

    The simulation is deterministic, so the replay draws exactly the stored histories when the
    catalog, the settings and the simulator's code are the same (the caller compares
    `interactions` with the stored ones)."""
    user_ids: list[str] = []
    affinity: list[np.ndarray] = []
    type_pref: list[np.ndarray] = []

    def keep(uid: str, taste: dict, values: np.ndarray) -> None:
        user_ids.append(uid)
        affinity.append(values.astype(np.float32))
        type_pref.append(np.asarray(taste["type_pref"], dtype=np.float32))

    _, interactions = simulate(items, config, progress, on_user=keep)
    ordered = items.sort_values("item_id")
    _, type_idx = _codes(ordered["article_type"])
    return HiddenTastes(user_ids, [str(i) for i in ordered["item_id"]], np.vstack(affinity),
                        np.vstack(type_pref), type_idx, interactions)


def shown_list_choice(affinity: np.ndarray, type_idx: np.ndarray, type_pref: np.ndarray,
                      shown: np.ndarray, config: SimulationConfig,
                      attention: float = SHOWN_ATTENTION) -> dict[str, np.ndarray]:
    """A shopper's probabilities of clicking, carting and buying each product of a shown list.

    The simulator's own choice model of a session (`_sessions`), with the list added: the
    session picks an article type t from the shopper's `type_pref`; the first product viewed
    is drawn by a softmax over `w_type * affinity / temperature` among the products of type t,
    a shown product of that type weighted by its exposure 1 + attention / log2(rank + 1)
    (shown products of other types are not what this session is about, as in `_sessions`,
    whose views stay within the session's type). So a shown product is clicked with
    probability type_pref[t] * boosted weight / (type t's weights, shown ones boosted).
    A view of a shown product is a click; it turns into a cart
    with the simulator's P(cart | view) (odds `cart_rate` times exp(CART_SLOPE * z), z the
    product's affinity standardised within its type) and a cart into a purchase with
    `purchase_rate`. `shown`: item positions, best first. Returns arrays over the list:
    "click", "cart", "purchase" (unconditional probabilities of one visit)."""
    shown = np.asarray(shown, dtype=np.int64)
    logits = config.w_type * np.asarray(affinity, dtype=np.float64) / config.temperature
    weight = np.exp(logits - logits.max())
    n_types = len(type_pref)
    totals = np.bincount(type_idx, weights=weight, minlength=n_types)
    exposure = 1.0 + attention / np.log2(np.arange(len(shown)) + 2.0)
    boosted = weight[shown] * exposure
    kinds = type_idx[shown]
    denominator = totals + np.bincount(kinds, weights=boosted - weight[shown],
                                       minlength=n_types)
    pref = np.asarray(type_pref, dtype=np.float64)
    click = pref[kinds] * boosted / np.maximum(denominator[kinds], 1e-300)
    counts = np.maximum(np.bincount(type_idx, minlength=n_types), 1)
    mean = np.bincount(type_idx, weights=affinity, minlength=n_types) / counts
    var = np.bincount(type_idx, weights=np.asarray(affinity, dtype=np.float64) ** 2,
                      minlength=n_types) / counts - mean ** 2
    z = (affinity[shown] - mean[type_idx[shown]]) / (np.sqrt(np.maximum(
        var[type_idx[shown]], 0.0)) + 1e-6)
    odds = config.cart_rate / (1 - config.cart_rate) * np.exp(CART_SLOPE * z)
    cart = click * odds / (1 + odds)
    return {"click": click, "cart": cart, "purchase": cart * config.purchase_rate}
