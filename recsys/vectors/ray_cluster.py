"""Connecting to Ray for the embedding pipeline (`recsys.vectors.embed_ray`): a local instance
or a running cluster, probed first so that a wrong address is a clear `RayUnavailable` in
seconds, not minutes of `ray.init` retries.
"""

from __future__ import annotations

import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from recsys.core.errors import RecsysError

PROBE_SECONDS = 5.0      # how long probe_address waits for a cluster address to answer


class RayUnavailable(RecsysError):
    """Ray is not installed, or the cluster cannot be reached."""


class RayAuthenticationFailed(RayUnavailable):
    """The cluster answers but refuses this client's token (Ray token authentication)."""


AUTH_WORDS = ("unauthenticated", "authentication token", "authenticationerror",
              "invalid or missing api token", "auth token")


def authentication_failed(exc: BaseException) -> bool:
    """Whether Ray's error means the cluster refused our token (`ray.exceptions.
    AuthenticationError`, or a gRPC UNAUTHENTICATED status inside another error)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ == "AuthenticationError":
            return True
        text = f"{type(exc).__name__} {getattr(exc, 'message', '')} {exc}".lower()
        if any(word in text for word in AUTH_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayUnavailable("The Ray engine needs Ray Data: pip install 'ray[data]' "
                             "(it is in requirements.txt).") from exc
    return ray


@contextmanager
def ray_session(address: str | None, workers: int | None) -> Iterator[int]:
    """Connect to Ray for the block and yield the CPUs it offers.

    Uses the process's Ray session when there is one; else starts a local one
    (`address=None`, `workers` CPUs, default all cores) or joins the cluster at `address`, and
    shuts it down (disconnects) at the end. Either way the `recsys` package is shipped to the
    workers (`runtime_env` py_modules), so a cluster needs no copy of the code.
    """
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        import recsys

        options: dict[str, Any] = {
            "log_to_driver": False, "logging_level": logging.WARNING,
            "runtime_env": {"py_modules": [str(Path(recsys.__file__).parent)],
                            "env_vars": {k: v for k, v in os.environ.items()
                                         if k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                  "RECSYS_ENCODER_THREADS")}}}
        if address:
            probe_address(address)
        try:
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                         **options)
        except Exception as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            if authentication_failed(exc):
                raise RayAuthenticationFailed(
                    f"{where[0].upper()}{where[1:]} refused this connection: authentication "
                    "failed (the cluster uses token authentication and this machine's token "
                    "is missing or does not match). Set RAY_AUTH_TOKEN (or put the token in "
                    "~/.ray/auth_token) to the cluster's token: `ray get-auth-token` on the "
                    "head node prints it.") from exc
            if not isinstance(exc, (ConnectionError, RuntimeError, ValueError)):
                raise
            raise RayUnavailable(f"Cannot start or reach {where}: {first_line(exc)}. Check "
                                 "the address (`ray status` on the head node prints it) or "
                                 "run without --ray-address for local Ray.") from exc
        started = True
    try:
        yield int(ray.cluster_resources().get("CPU", 0))
    finally:
        if started:
            ray.shutdown()


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def probe_address(address: str, timeout: float = PROBE_SECONDS) -> None:
    """Fail fast, with a RayUnavailable saying why, when nothing Ray-like answers at `address`.

    `ray.init(address=...)` retries an unreachable or wrong address for many minutes (20
    attempts of ~35 s in Ray 2.60), so before it this checks, within `timeout` seconds each:
    the host name resolves, the port accepts a TCP connection, and the server there speaks
    gRPC (answers the HTTP/2 connection preface with a SETTINGS frame, as Ray's GCS and its
    client server do). "auto" / "local" and other URL schemes are left to Ray.
    """
    text = address.strip()
    if text in ("auto", "local") or ("://" in text and not text.startswith("ray://")):
        return
    target = text.removeprefix("ray://")
    host, sep, port_text = target.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit():
        raise RayUnavailable(f"{address!r} is not a Ray address: give HOST:PORT (the head "
                             "node's GCS address, port 6379 by default, as `ray status` "
                             "prints it), ray://HOST:PORT or auto.")
    port = int(port_text)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RayUnavailable(f"Cannot reach the Ray cluster at {address}: the host name "
                             f"{host!r} does not resolve ({exc}).") from exc
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(HTTP2_PREFACE)
            head = sock.recv(9)
    except OSError as exc:
        raise RayUnavailable(f"Cannot reach the Ray cluster at {address}: nothing answers "
                             f"there within {timeout:g} s ({first_line(exc)}). Is the head "
                             "node running (`ray start --head`), and is the port open from "
                             "here?") from exc
    if len(head) < 9 or head[3] != 0x04:
        raise RayUnavailable(f"Cannot reach the Ray cluster at {address}: a server answers "
                             "there, but it is not Ray (no gRPC). Give the head node's GCS "
                             "address (port 6379 by default; `ray status` on the head node "
                             "prints it).")


def quiet_ray_data() -> None:
    """No progress bars or per-operator logs on the terminal: progress goes through the
    ProgressCallback."""
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)   # errors still raise
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.enable_auto_log_stats = False


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
