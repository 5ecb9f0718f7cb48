"""Torch thread counts follow the environment setting, else the idle cores."""

from __future__ import annotations

import torch

from recsys.core import threads


def test_environment_setting_wins(monkeypatch):
    monkeypatch.setenv("RECSYS_X_THREADS", "3")
    assert threads.thread_count("RECSYS_X_THREADS") == 3
    monkeypatch.setenv("RECSYS_X_THREADS", "not a number")
    assert threads.thread_count("RECSYS_X_THREADS", default=1) == 1


def test_idle_cores_follow_the_load(monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    for load, expected in ((0.3, 4), (2.0, 4), (3.0, 1), (2.6, 1), (9.0, 1)):
        threads.idle_cores.cache_clear()
        monkeypatch.setattr(threads.os, "getloadavg", lambda load=load: (load, load, load))
        assert threads.idle_cores() == expected, load
    threads.idle_cores.cache_clear()


def test_torch_threads_are_restored():
    before = torch.get_num_threads()
    with threads.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def _load(monkeypatch, load, cores=2):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))


def test_one_photo_runs_on_one_thread_whatever_the_load(monkeypatch):
    monkeypatch.setenv("RECSYS_ENCODER_THREADS", "4")
    for load in (0.0, 1.0, 3.0, 9.0):
        _load(monkeypatch, load)
        assert threads.threads_for(1, "RECSYS_ENCODER_THREADS") == 1
        assert threads.threads_for(threads.SMALL_REQUEST) == 1


def test_batches_follow_the_load_at_call_time(monkeypatch):
    monkeypatch.delenv("RECSYS_ENCODER_THREADS", raising=False)
    _load(monkeypatch, 0.2)
    assert threads.threads_for(64, "RECSYS_ENCODER_THREADS") == 2     # idle: every core
    _load(monkeypatch, 1.9)                                           # load rises: re-read
    assert threads.threads_for(64, "RECSYS_ENCODER_THREADS") == 1
    _load(monkeypatch, 0.5)                                           # and falls again
    assert threads.threads_for(64, "RECSYS_ENCODER_THREADS") == 2
    monkeypatch.setenv("RECSYS_ENCODER_THREADS", "3")                 # an explicit setting wins
    assert threads.threads_for(64, "RECSYS_ENCODER_THREADS") == 3


def test_the_encoder_uses_one_thread_for_one_photo_and_more_for_a_batch(monkeypatch):
    """Regression: an app started idle kept 2 threads for every upload; under load
    one photo took 300 ms median. Now the thread count is decided per request."""
    import numpy as np
    import torch.nn as nn

    from recsys.encoders.clip_encoder import ClipEncoder

    seen: list[int] = []

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = nn.Identity()

        def encode_image(self, x):
            seen.append(torch.get_num_threads())
            return x.mean(dim=(2, 3))

    _load(monkeypatch, 0.1)
    monkeypatch.delenv("RECSYS_ENCODER_THREADS", raising=False)
    enc = ClipEncoder(Model(), lambda t: None, name="t", version="1", dim=3, kind="test",
                      image_size=8, precision="fp32")
    photo = np.full((8, 8, 3), 200, np.uint8)
    from PIL import Image
    enc.encode_image(Image.fromarray(photo))
    enc.encode_images([Image.fromarray(photo)] * 20, batch_size=20)
    assert seen == [1, 2]
