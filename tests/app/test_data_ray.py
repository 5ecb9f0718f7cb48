"""The Data page's "Run on a Ray cluster" switch: embedding on local or a cluster; a cluster
that refuses our token is reported as an authentication failure, an unreachable one as such."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ..app_helpers import app_test, problems

pytest.importorskip("ray")


def embed_on_ray(at, address: str):
    at.toggle(key="emb_ray").set_value(True).run()
    at.text_input(key="emb_ray_address").input(address).run()
    at.checkbox(key="emb_force").check().run()          # the demo is embedded already
    at.button(key="emb_go").click().run()


def test_ray_switch_reports_an_unreachable_cluster(app_db: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    at = app_test(app_db, "app_pages/data.py")
    embed_on_ray(at, f"127.0.0.1:{closed}")
    assert not problems(at)
    assert at.error and "Cannot reach the Ray cluster" in at.error[0].value


def test_ray_switch_reports_a_token_mismatch(app_db: Path, monkeypatch):
    import ray
    import ray.exceptions

    from recsys.vectors import ray_cluster

    def refuse(*args, **kwargs):
        raise ray.exceptions.AuthenticationError("Invalid or missing authentication token")

    monkeypatch.setattr(ray_cluster, "probe_address", lambda address, timeout=5.0: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    at = app_test(app_db, "app_pages/data.py")
    embed_on_ray(at, "head-node.example:6379")
    assert not problems(at)
    text = at.error[0].value if at.error else ""
    assert "authentication failed" in text and "Check the address" not in text


def test_embed_here_keeps_unchanged_vectors(app_db: Path):
    at = app_test(app_db, "app_pages/data.py")
    at.button(key="emb_go").click().run()
    assert not problems(at) and not at.error
    done = [s.value for s in at.success if s.value.startswith("Embedded ")]
    assert done and "Embedded 0 photos and 0 texts of 'demo'" in done[0]
    assert "vectors unchanged" in done[0] and not done[0].startswith("Embedded 0 photos and 0 "
                                                                     "texts of 'demo' (0 ")
