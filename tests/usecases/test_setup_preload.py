"""The first start loads the encoder's code, weights and per-machine caches while the demo is
drawn."""

from __future__ import annotations

import sys

import pytest

from recsys.usecases import setup as setup_uc


class Stop(Exception):
    pass


def test_set_up_starts_the_encoder_preload_before_drawing_the_demo(store, monkeypatch):
    from recsys.encoders import preload

    calls = []
    monkeypatch.setattr(preload, "start_preload", lambda: calls.append("preload"))

    def drawing(*args, **kwargs):
        calls.append("demo")
        raise Stop

    monkeypatch.setattr(setup_uc, "init_demo", drawing)
    with pytest.raises(Stop):
        setup_uc.set_up(store)
    assert calls == ["preload", "demo"]


def test_preload_imports_the_encoder_and_fills_the_text_caches(tmp_path, monkeypatch):
    from recsys.encoders.preload import MODULES, preload, start_preload

    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path))
    assert preload() == []               # nothing failed: every module, the two text caches
    assert len(list(tmp_path.glob("conse-names-*.npy"))) == 2
    assert all(name in sys.modules for name in MODULES)
    thread = start_preload()
    assert thread.daemon                     # never keeps a stopped process alive
    thread.join(600)
    assert not thread.is_alive()
