"""The sentence under each pick: it follows the attribution, covers cold, seen and
history-less picks, and names any modality."""

from __future__ import annotations

from recsys.explain.sentences import Cited, emphasis_html, pick_sentence, plain

SWEATER = Cited("Nike Men White Sweater", "purchase", {"cf": 0.2, "image": 0.9, "text": 0.5})


SOCKS = Cited("Puma Men Grey Socks", "view", {"cf": 0.7, "image": 0.3, "text": 0.8})


def test_sentence_follows_the_attribution():
    photo = pick_sentence({"cf": 0.35, "image": 0.6, "text": 0.05}, [SWEATER, SOCKS])
    assert plain(photo) == ("Looks like the Nike Men White Sweater you bought, and shoppers "
                            "with your history often choose it.")
    text = pick_sentence({"cf": 0.1, "image": 0.1, "text": 0.8}, [SWEATER, SOCKS])
    assert plain(text) == "Described like the Puma Men Grey Socks you looked at."
    behaviour = pick_sentence({"cf": 0.9, "image": 0.05, "text": 0.05}, [SWEATER, SOCKS])
    assert plain(behaviour) == ("Shoppers who looked at the Puma Men Grey Socks often choose it "
                                "too.")
    assert len({photo, text, behaviour}) == 3
    # the event the shopper had with the cited item changes the verb
    carted = Cited(SWEATER.title, "cart", SWEATER.similarities)
    assert "you put in your cart" in pick_sentence({"image": 1.0}, [carted])
    assert "you bought" in pick_sentence({"image": 1.0}, [SWEATER])


def test_sentence_for_cold_seen_and_historyless_picks():
    cold = pick_sentence({"image": 0.7, "text": 0.3}, [SWEATER], cold=True)
    assert cold.startswith("New in the catalog: looks like")
    seen = pick_sentence({"cf": 1.0}, [SOCKS], seen="cart")
    assert seen.startswith("Already in your cart; shoppers who looked at")
    alone = pick_sentence({"cf": 1.0}, [], attributes=[("type", "Socks"), ("colour", "Grey")])
    assert alone == "Matches what you like: Socks (type), Grey (colour)."
    assert pick_sentence({"cf": 1.0}, []) == "Popular with shoppers like you."
    assert emphasis_html("Looks like the *A <b>* you bought.") == \
        "Looks like the <em>A &lt;b&gt;</em> you bought."


def test_pick_sentences_name_other_modalities():
    """A pick driven by a video or an imported modality is said by that name, not as
    behaviour."""
    from recsys.explain.sentences import Cited, pick_sentence, plain

    bag = Cited("Red Leather Bag", "purchase", {"cf": 0.1, "style": 0.9, "video": 0.2})
    assert plain(pick_sentence({"style": 0.8, "cf": 0.2}, [bag])).startswith(
        "Close in style to the Red Leather Bag you bought")
    assert "in its video" in plain(pick_sentence({"video": 1.0}, [bag]))
