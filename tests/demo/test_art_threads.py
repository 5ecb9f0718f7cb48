"""The demo's photos are drawn by several threads and come out the same as drawn one by one."""

from __future__ import annotations


def test_threads_draw_the_same_files_in_the_same_order(tmp_path):
    from recsys.demo.art import generate_catalog, render_catalog

    specs = generate_catalog(n_items=12, seed=3)
    seen: list[tuple[int, int]] = []
    one = render_catalog(specs, tmp_path / "one", size=64, workers=1)
    many = render_catalog(specs, tmp_path / "many", size=64, workers=3,
                          progress=lambda done, total: seen.append((done, total)))
    assert [r["item_id"] for r in many] == [s["item_id"] for s in specs]
    assert seen == [(i, 12) for i in range(1, 13)]
    for a, b in zip(one, many):
        assert open(a["image_path"], "rb").read() == open(b["image_path"], "rb").read()
