"""A similar-products query checked before anything is loaded: what is missing or contradictory
is a clear error, video bytes given as a photo are the video, the summary names the query."""

from __future__ import annotations

import pytest

from recsys.search.query import SearchError, SimilarQuery


def test_a_query_is_checked_before_anything_is_loaded():
    """`SimilarQuery.parse` (no store, no encoder): what is missing or contradictory is a
    `SearchError`; video bytes given as a photo are the video; the summary names the query."""
    with pytest.raises(SearchError, match="Give a query"):
        SimilarQuery.parse(text="   ")
    with pytest.raises(SearchError, match="photo or by a catalog product"):
        SimilarQuery.parse(photo=b"\xff\xd8\xff", item_id="p1")
    with pytest.raises(SearchError, match="at least 1"):
        SimilarQuery.parse(text="red dress", k=0)
    mp4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 32
    video = SimilarQuery.parse(photo=mp4)
    assert video.photo is None and video.video == mp4 and video.by_look
    assert not video.crops_photo and video.describe(1.0)["crop"] is False
    assert video.describe(1.0)["image"] == "uploaded video"
    words = SimilarQuery.parse(text=" red dress ", filters={"gender": ["Women"], "usage": []},
                               price=(10, None))
    assert words.text == "red dress" and not words.by_look
    assert words.describe(0.7) == {"image": None, "text": "red dress", "item_id": None,
                                   "image_weight": 0.7, "filters": {"gender": ["Women"]},
                                   "price": [10, None], "crop": True}
