"""The demo's photos are drawn by several threads or processes and come out the same as drawn
one by one."""

from __future__ import annotations


def test_threads_draw_the_same_files_in_the_same_order(tmp_path):
    from recsys.demo.art import generate_catalog, render_catalog

    specs = generate_catalog(n_items=12, seed=3)
    one = render_catalog(specs, tmp_path / "one", size=64, workers=1)
    for processes in (False, True):
        seen: list[tuple[int, int]] = []
        many = render_catalog(specs, tmp_path / f"many-{processes}", size=64, workers=3,
                              progress=lambda done, total: seen.append((done, total)),
                              processes=processes)
        assert [r["item_id"] for r in many] == [s["item_id"] for s in specs]
        assert seen == [(i, 12) for i in range(1, 13)]
        for a, b in zip(one, many):
            assert open(a["image_path"], "rb").read() == open(b["image_path"], "rb").read()


def test_a_stop_during_the_drawing_stops_the_drawing_processes(tmp_path, monkeypatch):
    """The set-up's Stop raises from the progress callback: the exception reaches the caller
    and no drawing process is left running."""
    import subprocess

    import pytest

    from recsys.demo import art

    started: list[subprocess.Popen] = []
    real = subprocess.Popen

    def spy(*args, **kwargs):
        proc = real(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(subprocess, "Popen", spy)

    def stop(done, total):
        if done == 3:
            raise KeyboardInterrupt("stopped")

    specs = art.generate_catalog(n_items=40, seed=5)
    with pytest.raises(KeyboardInterrupt):
        art.render_catalog(specs, tmp_path / "img", size=64, workers=2, processes=True,
                           progress=stop)
    assert len(started) == 2
    assert all(proc.poll() is not None for proc in started)


def test_a_failing_drawing_process_leaves_no_photo_missing(tmp_path, monkeypatch):
    """A worker that dies (here: one that cannot start the drawing module) is not an error:
    every photo is drawn, the same as drawn in this process."""
    from recsys.demo import art

    monkeypatch.setattr(art, "WORKER_COMMAND", ("-c", "import sys; sys.exit(3)"))
    specs = art.generate_catalog(n_items=6, seed=2)
    out = art.render_catalog(specs, tmp_path / "a", size=64, workers=2, processes=True)
    ref = art.render_catalog(specs, tmp_path / "b", size=64, workers=1)
    assert [r["item_id"] for r in out] == [s["item_id"] for s in specs]
    for a, b in zip(out, ref):
        assert open(a["image_path"], "rb").read() == open(b["image_path"], "rb").read()
