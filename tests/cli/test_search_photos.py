"""`python -m recsys search --image`: the crop and the close-match verdict are printed."""

from __future__ import annotations

import json
from pathlib import Path

from recsys.cli import main
from recsys.search.query_photos import phone_shot
from recsys.store import Store


def test_search_prints_the_crop_and_the_close_match(app_db: Path, tmp_path: Path, capsys):
    store = Store(app_db)
    items = store.items("demo").dropna(subset=["image_path"]).sort_values("item_id")
    store.close()
    shot = tmp_path / "shot.jpg"
    shot.write_bytes(phone_shot(items["image_path"].iloc[2], seed=1, surface="tiles"))
    code = main(["search", "--db", str(app_db), "--dataset", "demo", "--image", str(shot),
                 "--k", "3"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("close match (closeness ") or \
        out.startswith("No close match — similar styles (closeness ")
    assert "mean of the 10 best photo scores" in out.splitlines()[0]
    assert "crop: box (" in out and "(cropped)" in out
    code = main(["search", "--db", str(app_db), "--dataset", "demo", "--image",
                 items["image_path"].iloc[0], "--k", "3", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["crop"]["reason"] == "catalog photo" and data["crop"]["box"] is None
    assert data["close_match"]["close"] is True
