"""A Ray cluster that refuses our token says so ("authentication failed"), instead of the
"Check the address" of an unreachable one. Ray's errors are simulated (starting a token-auth
cluster is too slow for the default run)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

import ray  # noqa: E402
import ray.exceptions  # noqa: E402

from recsys.vectors import ray_cluster  # noqa: E402
from recsys.vectors.ray_cluster import (  # noqa: E402
    RayAuthenticationFailed,
    RayUnavailable,
    authentication_failed,
    ray_session,
)


def failing_init(exc: BaseException):
    def init(*args, **kwargs):
        raise exc
    return init


@pytest.fixture
def no_probe(monkeypatch):
    monkeypatch.setattr(ray_cluster, "probe_address", lambda address, timeout=5.0: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)


@pytest.mark.parametrize("exc", [
    ray.exceptions.AuthenticationError("Invalid or missing authentication token"),
    ConnectionError("GCS RPC failed: StatusCode.UNAUTHENTICATED: Invalid or missing "
                    "authentication token"),
], ids=["AuthenticationError", "grpc-unauthenticated"])
def test_token_mismatch_is_reported_as_authentication(no_probe, monkeypatch, exc):
    monkeypatch.setattr(ray, "init", failing_init(exc))
    with pytest.raises(RayAuthenticationFailed, match="authentication failed") as err:
        with ray_session("10.0.0.9:6379", 1):
            pass
    assert "RAY_AUTH_TOKEN" in str(err.value) and "Check the address" not in str(err.value)


def test_unreachable_cluster_still_says_check_the_address(no_probe, monkeypatch):
    monkeypatch.setattr(ray, "init", failing_init(ConnectionError("GCS did not answer")))
    with pytest.raises(RayUnavailable, match="Check the address") as err:
        with ray_session("10.0.0.9:6379", 1):
            pass
    assert not isinstance(err.value, RayAuthenticationFailed)


def test_other_errors_are_not_swallowed(no_probe, monkeypatch):
    monkeypatch.setattr(ray, "init", failing_init(KeyError("bug")))
    with pytest.raises(KeyError):
        with ray_session(None, 1):
            pass


def test_authentication_found_in_the_cause():
    try:
        try:
            raise ray.exceptions.AuthenticationError("token mismatch")
        except Exception as inner:
            raise RuntimeError("ray.init failed") from inner
    except RuntimeError as outer:
        assert authentication_failed(outer)
    assert not authentication_failed(ConnectionError("connection refused"))
