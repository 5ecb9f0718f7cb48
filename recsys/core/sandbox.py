"""Decode untrusted files under a budget: a small pool of worker processes.

Untrusted input (a photo uploaded or given as a search query, any video, a feature file) is
decoded by a separate, long-lived worker process, not by the app's own process; catalog photos
(files the operator imported) are decoded in the app by `images.decode_image`, with the same
per-format checks (docs/reliability.md says which path goes where). Each request gets a
**budget**: the
memory the worker may add to its address space for it (`resource.setrlimit(RLIMIT_AS)`, set
just before the decoder starts) and the wall-clock seconds it may take. A request that exceeds
either is stopped (a worker over time is killed; one that ran out of memory is replaced) and
the caller gets its own error class (`ImageError`, `VideoError`, `DataImportError`) with a
message naming the budget that was exceeded and the variable that raises it. The app process
never holds more than the small result (a decoded photo of at most 2,048 px a side, a few video
frames of 448 px, a canonical float32 copy of the imported vectors on disk).

Budgets, per request (`Budget`; each overridable by an environment variable):

| kind       | memory                               | time                                   |
|------------|--------------------------------------|----------------------------------------|
| `photo`    | 512 MB, `RECSYS_PHOTO_BUDGET_MB`     | 15 s, `RECSYS_PHOTO_BUDGET_SECONDS`    |
| `video`    | 1024 MB, `RECSYS_VIDEO_BUDGET_MB`    | 60 s, `RECSYS_VIDEO_BUDGET_SECONDS`    |
| `features` | 1024 MB, `RECSYS_FEATURES_BUDGET_MB` | 600 s, `RECSYS_FEATURES_BUDGET_SECONDS`|

The memory budget is what a request may add to the worker's address space (its interpreter,
numpy, PIL and the decoder libraries are loaded before the limit is set). Up to
`RECSYS_DECODE_WORKERS` workers (default 2) per kind run at once (a long feature import never
holds up a photo upload); they are started on first use (`start()` warms one up ahead) and
reused, so a photo costs a round trip of a few milliseconds, not a process start. A worker is
replaced after it ran out of memory, after it was killed, when it kept more than
`RECYCLE_GROWTH_MB` of resident memory beyond its idle size after a request (freed buffers
reused by the next request are then never more than that), or after `RECYCLE_REQUESTS`
requests; the replacement is started at once, in the background.

The worker runs the task registered for the kind (`TASKS`: a function `task(args, payload,
progress) -> (header, payload)` of the module that owns the format); requests and replies are
length-prefixed frames of JSON and raw bytes over the worker's stdin/stdout (no pickle). With
`RECSYS_SANDBOX=0` the same task runs in the calling process without the budgets (for
debugging only; the per-format checks still apply).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from recsys.core.errors import RecsysError

try:
    import resource
except ImportError:                   # not a POSIX system: no limits, decoded in the caller
    resource = None  # type: ignore[assignment]

# kind -> (memory MB, seconds, what one request decodes)
DEFAULTS: dict[str, tuple[int, float, str]] = {
    "photo": (512, 15.0, "a photo"),
    "video": (1024, 60.0, "a video"),
    "features": (1024, 600.0, "a feature file"),
}
TASKS = {
    "photo": "recsys.data.images:decode_task",
    "video": "recsys.data.video:frames_task",
    "features": "recsys.vectors.features:parse_task",
}
# imported before the memory limit is set, so a request's budget is spent on decoding only
PRELOAD = {
    "photo": ("numpy", "PIL.Image", "PIL.JpegImagePlugin", "PIL.PngImagePlugin",
              "PIL.TiffImagePlugin", "PIL.WebPImagePlugin", "recsys.data.images"),
    "video": ("numpy", "PIL.Image", "av", "recsys.data.video"),
    "features": ("numpy", "pandas", "pyarrow", "pyarrow.csv", "pyarrow.parquet",
                 "recsys.vectors.features"),
}
DEFAULT_WORKERS = 2
RECYCLE_GROWTH_MB = 128       # a worker keeping more than this beyond its idle size is replaced
RECYCLE_REQUESTS = 500
STARTUP_SECONDS = 60.0        # a worker must be ready (libraries loaded) within this
MAX_HEADER = 64 * 2**20
MAX_PAYLOAD = 2**31
MAGIC = b"RSB1"
FRAME = struct.Struct(">4sIQ")     # magic, header length, payload length
WORKER_ENV = {
    # one thread per numeric library and few malloc arenas: each arena reserves 64 MB of
    # address space, which would count against the memory budget
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system",
    # keep freed buffers below 64 MB in the heap: a decoded photo then reuses pages already
    # mapped instead of faulting 9 MB of fresh pages in per request (-25% CPU for a 12 MP JPEG)
    "MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(64 << 20),
    "PYTHONDONTWRITEBYTECODE": "1",
    "RECSYS_SANDBOX": "0",           # a worker decodes in itself, never starts workers
}


class BudgetError(RecsysError):
    """A budget setting that cannot be used, or a request refused by the decoding budget (the
    callers re-raise it as their own error class)."""


@dataclass(frozen=True)
class Budget:
    """What one request of `kind` may use: `memory_mb` megabytes of address space on top of
    the worker's size when the request starts (its libraries already loaded), and `seconds`
    of wall-clock time (not counting the start of a fresh worker)."""

    kind: str
    memory_mb: int
    seconds: float

    @property
    def memory_variable(self) -> str:
        return f"RECSYS_{self.kind.upper()}_BUDGET_MB"

    @property
    def seconds_variable(self) -> str:
        return f"RECSYS_{self.kind.upper()}_BUDGET_SECONDS"


def budget(kind: str) -> Budget:
    """The budget of one request of `kind` (photo, video, features), environment applied."""
    if kind not in DEFAULTS:
        raise BudgetError(f"Unknown decoding kind {kind!r}; use one of {', '.join(DEFAULTS)}.")
    mb, seconds, _ = DEFAULTS[kind]
    base = Budget(kind, mb, seconds)
    return Budget(kind, max(1, int(_env_number(base.memory_variable, mb))),
                  float(_env_number(base.seconds_variable, seconds)))


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise BudgetError(f"{name} must be a positive number, got {raw!r}.")
    return value


def enabled() -> bool:
    """Whether untrusted input is decoded in worker processes (`RECSYS_SANDBOX`, default on;
    always off where `resource` limits do not exist)."""
    return resource is not None and os.environ.get("RECSYS_SANDBOX", "1").strip().lower() \
        not in ("0", "off", "false", "no")


def workers() -> int:
    raw = os.environ.get("RECSYS_DECODE_WORKERS", "").strip()
    try:
        return max(1, min(16, int(raw))) if raw else DEFAULT_WORKERS
    except ValueError:
        raise BudgetError(f"RECSYS_DECODE_WORKERS must be a whole number, got {raw!r}.") \
            from None


@dataclass
class Reply:
    """A task's answer: its JSON `header` and raw `payload`, with what the request cost:
    `peak_mb` (the worker's peak resident memory during the request, interpreter included),
    `base_mb` (its resident memory before), `seconds` (wall clock, round trip; `task_seconds`
    of it in the task, `task_cpu` its CPU time), `limit_mb` (the address-space budget it ran
    under; 0 when decoded in this process) and the worker's `pid`."""

    header: dict[str, Any]
    payload: bytes | bytearray = field(repr=False, default=b"")
    peak_mb: float = 0.0
    base_mb: float = 0.0
    seconds: float = 0.0
    limit_mb: float = 0.0
    sandboxed: bool = True
    task_seconds: float = 0.0
    task_cpu: float = 0.0
    pid: int = 0


_local = threading.local()


def last_reply() -> Reply | None:
    """The reply of this thread's last request (for tests and benchmarks)."""
    return getattr(_local, "reply", None)


# -- frames -------------------------------------------------------------------------------------
def _write_frame(fd: int, header: dict[str, Any], payload: bytes | memoryview = b"") -> None:
    head = json.dumps(header, separators=(",", ":")).encode()
    view = memoryview(payload).cast("B")
    _write_all(fd, FRAME.pack(MAGIC, len(head), len(view)) + head)
    _write_all(fd, view)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while len(view):
        n = os.write(fd, view[:1 << 20])
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytearray:
    out = bytearray(n)
    view = memoryview(out)
    got = 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise TimeoutError
        k = os.readv(fd, [view[got:]])
        if k == 0:
            raise EOFError
        got += k
    return out


def _read_frame(fd: int, deadline: float | None = None) -> tuple[dict[str, Any], bytearray]:
    magic, head_len, body_len = FRAME.unpack(_read_exact(fd, FRAME.size, deadline))
    if magic != MAGIC or head_len > MAX_HEADER or body_len > MAX_PAYLOAD:
        raise EOFError                      # not our protocol: treat as a dead peer
    header = json.loads(bytes(_read_exact(fd, head_len, deadline)))
    return header, _read_exact(fd, body_len, deadline)


def _grow_pipe(fd: int) -> None:
    """Ask for 1 MB pipe buffers (Linux): fewer wake-ups for a decoded photo."""
    try:
        import fcntl
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (OSError, ImportError, ValueError):
        pass


# -- the parent side ----------------------------------------------------------------------------
class _Worker:
    def __init__(self) -> None:
        env = {**os.environ, **WORKER_ENV}
        root = str(Path(__file__).resolve().parents[2])     # the folder holding recsys/
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"]
                                    if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recsys.core.sandbox"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=None, env=env, close_fds=True,
            start_new_session=True)
        self.requests = 0
        self.ready = False
        for pipe in (self.proc.stdin, self.proc.stdout):
            _grow_pipe(pipe.fileno())

    def wait_ready(self) -> None:
        """Wait for the worker's first frame (sent once its libraries are loaded), so that
        starting a worker never counts against a request's time budget."""
        if self.ready:
            return
        header, _ = _read_frame(self.proc.stdout.fileno(), time.monotonic() + STARTUP_SECONDS)
        if header.get("type") != "ready":
            raise EOFError
        self.ready = True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


class _Pool:
    """Up to `workers()` busy workers per kind (a long feature import never makes a photo
    upload wait), and up to `workers()` idle ones kept for the next requests."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.idle: list[_Worker] = []
        self.busy: dict[str, int] = {}
        self.pid = os.getpid()

    def acquire(self, kind: str, wait: float) -> _Worker | None:
        deadline = time.monotonic() + wait
        with self.lock:
            while self.busy.get(kind, 0) >= workers():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(left)
            self.busy[kind] = self.busy.get(kind, 0) + 1
            while self.idle:
                worker = self.idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        try:
            return _Worker()
        except BaseException:
            self._done(kind)
            raise

    def _done(self, kind: str) -> None:
        with self.lock:
            self.busy[kind] -= 1
            self.lock.notify_all()

    def release(self, kind: str, worker: _Worker, keep: bool) -> None:
        with self.lock:
            if keep and len(self.idle) < workers():
                self.idle.append(worker)
                worker = None
            elif not keep and not self.idle:
                try:
                    self.idle.append(_Worker())      # the replacement starts loading now
                except OSError:
                    pass
        if worker is not None:
            worker.kill()
        self._done(kind)

    def warm(self) -> None:
        with self.lock:
            if self.idle or any(self.busy.values()):
                return
            self.idle.append(_Worker())

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for worker in idle:
            worker.kill()


_POOL = _Pool()
_POOL_LOCK = threading.Lock()


def _pool() -> _Pool:
    """This process's pool (a forked child gets its own: the parent's pipes are not its)."""
    global _POOL
    if _POOL.pid != os.getpid():
        with _POOL_LOCK:
            if _POOL.pid != os.getpid():
                _POOL = _Pool()
    return _POOL


@atexit.register
def shutdown() -> None:
    """Stop the idle workers (they are started again when needed)."""
    if _POOL.pid == os.getpid():
        _POOL.close()


def start() -> None:
    """Start one worker now (if none is running) so the first upload does not wait for it."""
    if enabled():
        try:
            _pool().warm()
        except OSError:
            pass                        # the first request will say what is wrong


def run(kind: str, args: dict[str, Any], payload: bytes = b"", *,
        error: type[RecsysError] = BudgetError, label: str = "The file",
        progress: Callable[[dict[str, Any]], None] | None = None) -> Reply:
    """Run the task of `kind` on `args` and `payload` under `budget(kind)`.

    Raises `error` with the task's own message when the input is refused, or with a message
    naming the budget when the request ran out of memory or time (`label` names the input in
    it, e.g. "The uploaded image"). `progress` receives the task's progress events.
    """
    spend = budget(kind)
    if not enabled():
        return _run_here(kind, args, payload, error, progress)
    t0 = time.monotonic()
    pool = _pool()
    worker = pool.acquire(kind, spend.seconds)     # waiting for a worker is not decoding
    if worker is None:
        raise error(f"{label} was not decoded: the {workers()} decoding workers stayed busy "
                    f"for {spend.seconds:g} s. Try again in a moment.")
    keep = False
    try:
        try:
            worker.wait_ready()
        except (EOFError, TimeoutError, OSError, ValueError):
            raise error(f"{label} was not decoded: the decoding worker did not start "
                        f"within {STARTUP_SECONDS:g} s.") from None
        deadline = time.monotonic() + spend.seconds
        request = {"kind": kind, "args": args, "memory_mb": spend.memory_mb}
        try:
            _write_frame(worker.proc.stdin.fileno(), request, payload)
            while True:
                header, body = _read_frame(worker.proc.stdout.fileno(), deadline)
                if header.get("type") != "progress":
                    break
                if progress is not None:
                    progress(header)
        except TimeoutError:
            raise error(f"{label} took longer than the {spend.seconds:g} s allowed for "
                        f"decoding {DEFAULTS[kind][2]} ({spend.seconds_variable}); it was "
                        "stopped.") from None
        except (EOFError, BrokenPipeError, ConnectionResetError, ValueError):
            worker.kill()
            code = worker.proc.returncode
            raise error(f"{label} could not be decoded: the decoder stopped "
                        f"({_exit_reason(code)}), most likely because it needed more than the "
                        f"{spend.memory_mb:,} MB of memory allowed for {DEFAULTS[kind][2]} "
                        f"({spend.memory_variable}).") from None
        worker.requests += 1
        keep = not header.get("memory") and header.get("kept_mb", 0) < RECYCLE_GROWTH_MB \
            and worker.requests < RECYCLE_REQUESTS
        reply = Reply(header.get("result") or {}, body, float(header.get("peak_mb", 0)),
                      float(header.get("base_mb", 0)), time.monotonic() - t0,
                      float(header.get("limit_mb", 0)), True,
                      float(header.get("task_seconds", 0)), float(header.get("task_cpu", 0)),
                      worker.proc.pid)
        _local.reply = reply
        if not header.get("ok"):
            if header.get("memory"):
                raise error(f"{label} needs more than the {spend.memory_mb:,} MB of memory "
                            f"allowed for decoding {DEFAULTS[kind][2]} "
                            f"({spend.memory_variable}); it was not decoded.")
            raise error(str(header.get("message") or f"{label} could not be decoded."))
        return reply
    finally:
        pool.release(kind, worker, keep)


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "no answer"
    if code < 0:
        try:
            import signal
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _task(kind: str) -> Callable[..., tuple[dict[str, Any], bytes]]:
    module, _, name = TASKS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def _run_here(kind: str, args: dict[str, Any], payload: bytes, error: type[RecsysError],
              progress: Callable[[dict[str, Any]], None] | None) -> Reply:
    """The task in this process (`RECSYS_SANDBOX=0`): same code, no budget."""
    t0 = time.monotonic()
    try:
        header, body = _task(kind)(args, payload, progress or (lambda event: None))
    except RecsysError as exc:
        raise error(str(exc)) from None
    reply = Reply(header, bytes(body), seconds=time.monotonic() - t0, sandboxed=False)
    _local.reply = reply
    return reply


# -- the worker side ----------------------------------------------------------------------------
def _status_kb(field_name: str) -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _out_of_memory(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, MemoryError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _serve(fd_in: int, fd_out: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    for name in PRELOAD["photo"]:
        importlib.import_module(name)
    idle_rss = _status_kb("VmRSS") / 1024
    _write_frame(fd_out, {"type": "ready"})
    while True:
        try:
            request, payload = _read_frame(fd_in)
        except (EOFError, OSError):
            return
        kind = request.get("kind")
        if kind not in TASKS:
            _write_frame(fd_out, {"ok": False, "message": "Unknown decoding task."})
            continue
        loading = _status_kb("VmRSS") / 1024
        for name in PRELOAD.get(kind, ()):
            importlib.import_module(name)
        task = _task(kind)
        idle_rss += _status_kb("VmRSS") / 1024 - loading       # libraries are not leftovers
        memory = int(request.get("memory_mb") or DEFAULTS[kind][0]) * 2**20
        base_vm = _status_kb("VmSize") * 1024
        limit = int(base_vm + memory)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        base_rss = _status_kb("VmRSS") / 1024

        def progress(event: dict[str, Any]) -> None:
            _write_frame(fd_out, {**event, "type": "progress"})

        _reset_peak()
        started, cpu = time.perf_counter(), time.process_time()
        reply: dict[str, Any]
        body: bytes | memoryview = b""
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            try:
                result, body = task(request.get("args") or {}, payload, progress)
                reply = {"ok": True, "result": result}
            finally:
                resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a reply
            body = b""
            if _out_of_memory(exc):
                reply = {"ok": False, "memory": True}
            elif isinstance(exc, RecsysError):
                reply = {"ok": False, "message": str(exc)}
            elif isinstance(exc, (KeyboardInterrupt, SystemExit)):
                return
            else:
                reply = {"ok": False,
                         "message": f"The file could not be decoded ({type(exc).__name__})."}
        del payload
        reply.update(task_seconds=time.perf_counter() - started,
                     task_cpu=time.process_time() - cpu,
                     peak_mb=_status_kb("VmHWM") / 1024, base_mb=base_rss,
                     kept_mb=_status_kb("VmRSS") / 1024 - idle_rss, limit_mb=memory / 2**20)
        try:
            _write_frame(fd_out, reply, body)
        except OSError:
            return


def main() -> None:
    """The worker: serve requests on the original stdin/stdout until the parent goes away.
    Anything a library prints goes to stderr, never into the protocol."""
    fd_in, fd_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    sys.stdout = sys.stderr
    _serve(fd_in, fd_out)


if __name__ == "__main__":
    main()
