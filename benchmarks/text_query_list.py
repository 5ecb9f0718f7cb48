"""Stakeholder-style text queries with the attributes a right result has (issue 24).

Written before any tuning of the query understanding (`recsys.search.understand`). TUNING
queries may be looked at while choosing its boosts; HELD_OUT queries are never tuned on and
are reported separately. Each query: (words, acceptable article types, gender or None,
base colour or None). A query whose types a catalog lacks is skipped on that catalog.
Gender "Women" also accepts "Unisex" items (and "Men" likewise): they are for everyone.
"""

SHOES = {"Sports Shoes", "Casual Shoes"}

TUNING = [
    ("black running shoes for women", SHOES, "Women", "Black"),
    ("men black running shoes", SHOES, "Men", "Black"),
    ("red summer dress", {"Dresses"}, "Women", "Red"),
    ("blue jeans for men", {"Jeans"}, "Men", "Blue"),
    ("white t-shirt men", {"Tshirts"}, "Men", "White"),
    ("women's handbag brown", {"Handbags"}, "Women", "Brown"),
    ("black heels for a party", {"Heels"}, "Women", "Black"),
    ("men's analogue watch", {"Watches"}, "Men", None),
    ("sunglasses for men", {"Sunglasses"}, "Men", None),
    ("women kurta for festive season", {"Kurtas"}, "Women", None),
    ("navy blue formal shirt for office", {"Shirts"}, "Men", "Navy Blue"),
    ("pink t-shirt for girls", {"Tshirts"}, "Girls", "Pink"),
    ("black leather belt men", {"Belts"}, "Men", "Black"),
    ("women's flip flops", {"Flip Flops"}, "Women", None),
    ("grey sweatshirt", {"Sweatshirts"}, None, "Grey"),
    ("brown wallet for men", {"Wallets"}, "Men", "Brown"),
    ("backpack for college", {"Backpacks"}, None, None),
    ("men casual shorts", {"Shorts"}, "Men", None),
    ("women black trousers for work", {"Trousers"}, "Women", "Black"),
    ("white sneakers women", SHOES, "Women", "White"),
]

HELD_OUT = [
    ("green shirt for men", {"Shirts"}, "Men", "Green"),
    ("black jacket for winter men", {"Jackets"}, "Men", "Black"),
    ("women's blue denim jeans", {"Jeans"}, "Women", "Blue"),
    ("yellow dress for women", {"Dresses"}, "Women", "Yellow"),
    ("men brown sandals", {"Sandals"}, "Men", "Brown"),
    ("red heels", {"Heels"}, "Women", "Red"),
    ("women's watch", {"Watches"}, "Women", None),
    ("black cap", {"Caps"}, None, "Black"),
    ("boys t-shirt blue", {"Tshirts"}, "Boys", "Blue"),
    ("maroon kurta for men", {"Kurtas"}, "Men", "Maroon"),
    ("women black handbag for office", {"Handbags"}, "Women", "Black"),
    ("men's white casual shoes", SHOES, "Men", "White"),
    ("women sports shoes", SHOES, "Women", None),
    ("black sunglasses", {"Sunglasses"}, None, "Black"),
    ("men's grey trousers", {"Trousers"}, "Men", "Grey"),
    ("purple top for women", {"Tops", "Tshirts"}, "Women", "Purple"),
    ("blue flip flops men", {"Flip Flops"}, "Men", "Blue"),
    ("women brown belt", {"Belts"}, "Women", "Brown"),
    ("olive shorts for men", {"Shorts"}, "Men", "Olive"),
    ("black backpack", {"Backpacks"}, None, "Black"),
]
