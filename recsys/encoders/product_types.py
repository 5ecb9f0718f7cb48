"""A broad, catalog-independent list of product-type names (open-vocabulary evidence for
"no close match").

A photo of something the shop does not sell often still has close neighbours of a near twin
(track pants when the shop sells trousers), so the neighbours alone cannot tell it apart. The
encoder's text tower can: if the photo looks more like some product type the catalog does *not*
have than like any type it has, that is evidence that nothing in the catalog matches closely.
`match_decision.OpenVocabulary` compares a photo with these names (the ones that are not the
catalog's own types, see `catalog_equivalent`) and with the catalog's type names.

The list is fixed here, written once from general retail taxonomies (apparel, footwear, bags,
accessories, jewellery, beauty, home, electronics, sports, toys), not from any one catalog;
plural forms as shoppers and catalogs write them. It is not a complete taxonomy and need not be:
it only has to cover kinds of products a photo may show.
"""

from __future__ import annotations

import re
from typing import Iterable

PRODUCT_TYPES: tuple[str, ...] = (
    # tops
    "T-shirts", "Polo shirts", "Shirts", "Blouses", "Tops", "Tank tops", "Crop tops", "Camisoles",
    "Tunics", "Kurtas", "Kurtis", "Sweaters", "Cardigans", "Sweatshirts", "Hoodies", "Jackets",
    "Blazers", "Coats", "Raincoats", "Waistcoats", "Shrugs", "Ponchos",
    # bottoms
    "Jeans", "Trousers", "Chinos", "Track pants", "Joggers", "Sweatpants", "Leggings",
    "Jeggings", "Tights", "Shorts", "Bermuda shorts", "Skirts", "Capris", "Palazzos",
    "Salwars", "Churidars", "Dhotis", "Cargo pants",
    # dresses, sets, ethnic
    "Dresses", "Gowns", "Jumpsuits", "Dungarees", "Sarees", "Lehengas", "Dupattas",
    "Kurta sets", "Suits", "Tracksuits", "Co-ord sets",
    # innerwear, nightwear
    "Bras", "Briefs", "Boxers", "Trunks", "Innerwear vests", "Thermals", "Nightdresses",
    "Pyjamas", "Lounge pants", "Bathrobes", "Swimsuits", "Bikinis", "Swim trunks",
    # footwear
    "Casual shoes", "Sneakers", "Sports shoes", "Running shoes", "Formal shoes", "Loafers",
    "Boots", "Ankle boots", "Heels", "Stilettos", "Wedges", "Flats", "Ballet flats",
    "Sandals", "Sports sandals", "Flip flops", "Slippers", "Clogs", "Socks",
    # bags
    "Handbags", "Tote bags", "Sling bags", "Clutches", "Backpacks", "Laptop bags",
    "Duffel bags", "Messenger bags", "Suitcases", "Waist pouches", "Wallets", "Purses",
    "Card holders", "Mobile pouches",
    # accessories
    "Belts", "Ties", "Bow ties", "Cufflinks", "Caps", "Hats", "Beanies", "Headbands",
    "Scarves", "Stoles", "Mufflers", "Gloves", "Sunglasses", "Eyeglasses frames", "Watches",
    "Smartwatches", "Umbrellas", "Keychains", "Hair clips", "Masks",
    # jewellery
    "Necklaces", "Pendants", "Earrings", "Rings", "Bracelets", "Bangles", "Anklets",
    "Brooches", "Nose rings",
    # beauty, personal care
    "Perfumes", "Deodorants", "Lipsticks", "Nail polish", "Eyeliners", "Foundations",
    "Face creams", "Shampoos", "Soaps", "Hair dryers", "Trimmers", "Razors", "Makeup brushes",
    # home
    "Bedsheets", "Pillows", "Cushion covers", "Blankets", "Towels", "Curtains", "Rugs",
    "Lamps", "Vases", "Wall clocks", "Photo frames", "Candles", "Mugs", "Cups", "Plates",
    "Bowls", "Glasses", "Bottles", "Cookware", "Knives", "Chairs", "Tables", "Sofas",
    "Shelves", "Storage boxes", "Plants",
    # electronics
    "Mobile phones", "Phone cases", "Laptops", "Tablets", "Headphones", "Earbuds",
    "Speakers", "Cameras", "Chargers", "Computer mice", "Keyboards", "Televisions",
    # sports, outdoor, toys, other
    "Footballs", "Basketballs", "Cricket bats", "Tennis rackets", "Yoga mats", "Dumbbells",
    "Bicycles", "Helmets", "Tents", "Water bottles", "Soft toys", "Dolls", "Toy cars",
    "Board games", "Books", "Notebooks", "Pens", "Gift sets", "Pet collars", "Baby clothes",
)


def normalise_type(name: str) -> str:
    """A type name compared loosely: lower case, letters only, a final plural "s" / "es" dropped
    ("T-Shirts" and "tshirt", "Waist Pouch" and "waist pouches" are the same)."""
    word = re.sub(r"[^a-z]", "", str(name).lower())
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def catalog_equivalent(names: Iterable[str], catalog_types: Iterable[str]) -> list[bool]:
    """For each of `names`: whether the catalog has a type of that name (`normalise_type`).
    Synonyms ("Perfumes" / "Perfume and Body Mist") are caught by their text vectors instead
    (`match_decision.OpenVocabulary`)."""
    kinds = {normalise_type(t) for t in catalog_types if str(t).strip()}
    return [normalise_type(name) in kinds for name in names]
