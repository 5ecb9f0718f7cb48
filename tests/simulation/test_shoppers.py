"""The user simulator: deterministic, complete histories, a realistic funnel, real signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from recsys.simulation.shoppers import (
    SimulationConfig,
    simulate,
    simulate_into,
    visual_style,
)

COLOURS = {"Red": (200, 30, 30), "Navy Blue": (20, 30, 90), "White": (245, 245, 245),
           "Black": (15, 15, 15), "Green": (30, 150, 60), "Yellow": (240, 210, 40)}
TYPES = [("Shirts", "Men"), ("Dresses", "Women"), ("Jeans", "Men"), ("Heels", "Women"),
         ("Watches", "Men")]


def make_items(folder: Path, n: int = 60) -> pd.DataFrame:
    """A synthetic catalog: shapes of varied colour, stripes and size on white."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        colour = list(COLOURS)[i % len(COLOURS)]
        article, gender = TYPES[(i // len(COLOURS)) % len(TYPES)]
        img = Image.new("RGB", (64, 64), "white")
        draw = ImageDraw.Draw(img)
        w = int(rng.integers(20, 30))
        draw.rectangle([32 - w, 10, 32 + w, 54], fill=COLOURS[colour], outline=(90, 90, 90))
        if i % 3 == 0:
            for y in range(12, 54, 6):
                draw.line([32 - w, y, 32 + w, y], fill=(250, 250, 250), width=2)
        path = folder / f"{i:03d}.png"
        img.save(path)
        rows.append({"item_id": f"{i:03d}", "title": f"Brand{i % 4} {gender} {colour} {article}",
                     "brand": None, "article_type": article, "gender": gender,
                     "base_colour": colour, "usage": ["Casual", "Formal"][i % 2],
                     "image_path": str(path)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def items(tmp_path_factory) -> pd.DataFrame:
    return make_items(tmp_path_factory.mktemp("sim"))


def test_same_seed_same_histories(items):
    cfg = SimulationConfig(users=40, seed=3)
    u1, x1 = simulate(items, cfg)
    u2, x2 = simulate(items, cfg)
    pd.testing.assert_frame_equal(u1, u2)
    pd.testing.assert_frame_equal(x1, x2)
    _, x3 = simulate(items, SimulationConfig(users=40, seed=4))
    assert not x1[["user_id", "item_id"]].equals(x3[["user_id", "item_id"]])


def test_every_user_has_a_history_and_funnel_is_consistent(items):
    cfg = SimulationConfig(users=60, seed=0, min_views=5)
    users, x = simulate(items, cfg)
    assert len(users) == 60 and users["user_id"].is_unique
    views = x[x["event"] == "view"].groupby("user_id").size()
    assert set(views.index) == set(users["user_id"]) and views.min() >= 5
    counts = x["event"].value_counts()
    assert counts["view"] > counts.get("cart", 0) > counts.get("purchase", 0) > 0
    # Every purchase follows a cart of the same user and item, which follows a view.
    key = x.assign(k=x["user_id"] + "|" + x["item_id"])
    for earlier, later in (("view", "cart"), ("cart", "purchase")):
        assert set(key.loc[key.event == later, "k"]) <= set(key.loc[key.event == earlier, "k"])
    assert x.groupby("user_id")["ts"].apply(lambda s: s.is_monotonic_increasing).all()
    assert set(x["item_id"]) <= set(items["item_id"])


def test_cart_rate_is_realistic(items):
    _, x = simulate(items, SimulationConfig(users=150, seed=0))
    counts = x["event"].value_counts()
    assert 0.05 < counts["cart"] / counts["view"] < 0.30
    assert 0.15 < counts["purchase"] / counts["cart"] < 0.6


def test_users_prefer_their_favourite_types(items):
    users, x = simulate(items, SimulationConfig(users=80, seed=0))
    fav = {r.user_id: set(pd.read_json(pd.io.common.StringIO(r.profile), typ="series")
                          ["favourite_types"]) for r in users.itertuples()}
    types = items.set_index("item_id")["article_type"]
    views = x[x["event"] == "view"]
    share = np.mean([types[i] in fav[u] for u, i in zip(views["user_id"], views["item_id"])])
    assert share > 0.6


def test_new_arrivals_are_never_seen_before_release(items):
    cfg = SimulationConfig(users=80, seed=0, new_item_share=0.3, new_item_window=0.2)
    _, x = simulate(items, cfg)
    first_seen = x.groupby("item_id")["ts"].min()
    late = (first_seen - pd.Timestamp(cfg.start)).dt.days > cfg.days * (1 - cfg.new_item_window)
    assert late.sum() > 0  # some items only appear in the last part of the timeline


def test_visual_style_is_measured_from_pixels(items):
    style = visual_style(list(items["image_path"]))
    assert style.shape == (len(items), 8)
    brightness = dict(zip(items["base_colour"], style[:, 3]))
    assert brightness["Black"] < brightness["Yellow"]
    texture = style[:, 5]
    striped = np.arange(len(items)) % 3 == 0
    assert texture[striped].mean() > texture[~striped].mean()


def test_missing_photos_do_not_break_the_simulation(items):
    broken = items.copy()
    broken.loc[:5, "image_path"] = None
    users, x = simulate(broken, SimulationConfig(users=10, seed=0))
    assert len(users) == 10 and len(x) > 0


def test_simulate_into_replaces_users(demo_store):
    info = simulate_into(demo_store, "demo", SimulationConfig(users=30, seed=5))
    assert info["users"] == info["users_with_history"] == 30
    assert demo_store.counts("demo")["users"] == 30
    history = demo_store.user_history("demo", "u0001")
    assert not history.empty and {"title", "event", "ts"} <= set(history.columns)


@pytest.mark.slow
def test_simulation_on_myntra_gives_every_user_a_history(store, myntra_dir):
    from recsys.data.catalog_import import import_catalog

    import_catalog(store, myntra_dir / "styles.csv", myntra_dir / "images", fmt="myntra")
    info = simulate_into(store, "myntra", SimulationConfig(users=300, seed=0))
    assert info["users_with_history"] == 300


# -- shoppers that look real ----------------------------------------------------------------------
def test_names_match_the_shoppers_gender(items):
    from recsys.simulation.shoppers import FEMALE_NAMES, MALE_NAMES

    users, _ = simulate(items, SimulationConfig(users=120, seed=1))
    for r in users.itertuples():
        gender = pd.read_json(pd.io.common.StringIO(r.profile), typ="series")["gender"]
        first = r.name.split()[0]
        assert first in (MALE_NAMES if gender == "Men" else FEMALE_NAMES), (r.name, gender)


def test_segments_have_no_empty_parts(items):
    blank = items.assign(usage=None)                  # a catalog without usage
    users, _ = simulate(blank, SimulationConfig(users=30, seed=0))
    for segment in users["segment"]:
        parts = segment.split(" · ")
        assert all(p.strip() for p in parts), segment
    assert users["segment"].str.contains(" ·  · ").sum() == 0


def test_brands_are_full_names(tmp_path):
    from recsys.simulation.shoppers import simulate as run

    catalog = make_items(tmp_path / "b", n=30)
    catalog["title"] = [("Reid & Taylor" if i % 2 else "United Colors of Benetton")
                        + f" Men Grey Socks {i}" for i in range(len(catalog))]
    users, _ = run(catalog, SimulationConfig(users=20, seed=0))
    brands = {b for p in users["profile"]
              for b in pd.read_json(pd.io.common.StringIO(p), typ="series")["favourite_brands"]}
    assert brands <= {"Reid & Taylor", "United Colors of Benetton"} and brands


def test_weekly_activity_has_no_pile_up_at_the_end(items):
    cfg = SimulationConfig(users=600, seed=0)
    _, x = simulate(items, cfg)
    day = (x["ts"] - pd.Timestamp(cfg.start)).dt.total_seconds() / 86400
    assert day.max() < cfg.days
    weeks = np.bincount((day // 7).astype(int))[:cfg.days // 7]
    last, before = weeks[-1], weeks[-9:-1].mean()
    assert last < 1.5 * before, (last, before)       # was ~4x: sessions clamped to the last day


def test_shown_tastes_occur_in_the_history(demo_store):
    import json

    from recsys.usecases import shopper

    simulate_into(demo_store, "demo", SimulationConfig(users=40, seed=2))
    users = demo_store.users("demo")
    hidden = 0
    for user_id, profile in zip(users["user_id"], users["profile"]):
        who = shopper(demo_store, "demo", user_id)
        p = json.loads(profile)
        history = who.history
        values = {v.lower() for c in ("article_type", "base_colour", "brand")
                  for v in history[c].dropna()}
        for taste in who.tastes:
            assert taste.lower() in values or taste in p["visual_style"], (user_id, taste)
        hidden += len(p["favourite_colours"]) + len(p["favourite_types"]) - \
            sum(t in who.tastes for t in p["favourite_colours"] + p["favourite_types"])
    assert hidden > 0               # some drawn tastes never showed, and are not shown


# -- the choice model for a shown list ------------------------------------------------------------
def test_click_probability_of_a_shown_item_follows_the_two_step_choice():
    from recsys.simulation.shoppers import SimulationConfig, shown_list_choice

    config = SimulationConfig()
    affinity = np.log(np.array([1.0, 2.0, 3.0, 4.0]))          # weights 1, 2, 3, 4
    types = np.array([0, 0, 1, 1])
    pref = np.array([0.25, 0.75])
    p = shown_list_choice(affinity, types, pref, np.array([2]), config, attention=1.0)
    # shown item 2 (type 1, weight 3) on rank 1: exposure 1 + 1/log2(2) = 2, weight 6;
    # only a type-1 session (probability 0.75) looks at it: 6 / (6 + 4)
    assert p["click"][0] == pytest.approx(0.75 * 6 / 10)
    two = shown_list_choice(affinity, types, pref, np.array([3, 0]), config, attention=1.0)
    # item 3 (type 1, weight 4, exposure 2): 0.75 * 8 / (3 + 8); item 0 (type 0, weight 1,
    # rank 2: exposure 1 + 1/log2(3)): 0.25 * e / (e + 2)
    e = 1 + 1 / np.log2(3)
    np.testing.assert_allclose(two["click"], [0.75 * 8 / 11, 0.25 * e / (e + 2)])
    assert p["purchase"][0] == pytest.approx(p["cart"][0] * config.purchase_rate)
    assert 0 < p["cart"][0] < p["click"][0]


def test_a_list_the_shopper_likes_gets_more_clicks():
    from recsys.simulation.shoppers import SimulationConfig, shown_list_choice

    rng = np.random.default_rng(0)
    affinity = rng.normal(size=200)
    types = rng.integers(0, 5, 200)
    pref = np.full(5, 0.2)
    order = np.argsort(-affinity)
    best = shown_list_choice(affinity, types, pref, order[:10], SimulationConfig())
    worst = shown_list_choice(affinity, types, pref, order[-10:], SimulationConfig())
    assert best["click"].sum() > 5 * worst["click"].sum()
    assert best["click"].sum() < 1.0
