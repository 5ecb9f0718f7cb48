"""Torch thread counts follow the environment setting, else the idle cores."""

from __future__ import annotations

import torch

from recsys import threads


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
