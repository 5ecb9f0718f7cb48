"""How much memory this process may still allocate: the one answer every size decision uses.

Free RAM alone is the wrong number in a container or under `ulimit`: a process limited to
6 GB on a 24 GB machine sees ~20 GB "available" and dies allocating 7 GB. `memory_budget()`
takes the smallest headroom of

* the system: memory available now (`psutil.virtual_memory().available`, else `MemAvailable`
  of /proc/meminfo);
* the control group (containers, systemd slices): cgroup v2 `memory.max` minus the
  non-reclaimable part of `memory.current` (minus `inactive_file` of `memory.stat`: page cache
  the kernel drops before it fails an allocation); cgroup v1 `memory.limit_in_bytes` minus
  `memory.usage_in_bytes` (minus `total_inactive_file`). The process's own group and every
  group above it count (a limit set on a parent slice applies too);
* `RLIMIT_AS` (`ulimit -v`): the soft limit minus the address space already mapped
  (`VmSize` of /proc/self/status);
* `RLIMIT_DATA` (`ulimit -d`): the soft limit minus the data already mapped (`VmData`).

Used by the EASE planner (`recsys.models.baselines.plan_ease`), the search index's storage
choice (`recsys.search.memory_plan.plan_storage`) and every other place that sizes work by memory.
Everything is read on each call (a few small files, well under a millisecond): limits and usage
change while the app runs.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from pathlib import Path

UNKNOWN_SYSTEM_BYTES = 4 * 2**30
"""Assumed free memory on a platform that tells nothing (no psutil, no /proc/meminfo)."""
_UNLIMITED = 2**60
"""cgroup v1 writes "no limit" as a huge page-rounded number (9223372036854771712)."""

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF = Path("/proc/self")


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes this process may still allocate (`available`), which limit decided it
    (`source`: "system", "cgroup", "RLIMIT_AS" or "RLIMIT_DATA") and every limit's headroom
    (`headrooms`), for messages and logs."""

    available: int
    source: str
    headrooms: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """"5.2 GB this process may still use (its address-space limit, RLIMIT_AS / ulimit
        -v)" and the like: which limit decided, for messages."""
        what = {"system": "the machine's free memory",
                "cgroup": "the container's memory limit, cgroup",
                "RLIMIT_AS": "its address-space limit, RLIMIT_AS / ulimit -v",
                "RLIMIT_DATA": "its data limit, RLIMIT_DATA / ulimit -d"}
        return (f"{format_gb(self.available)} this process may still use "
                f"({what.get(self.source, self.source)})")


def format_gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def system_available() -> int:
    """Memory the machine can give now: psutil, else MemAvailable of /proc/meminfo."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    value = _meminfo_field(Path("/proc/meminfo"), "MemAvailable")
    return UNKNOWN_SYSTEM_BYTES if value is None else value


def _meminfo_field(path: Path, name: str) -> int | None:
    """A "Name:   1234 kB" line of /proc/meminfo or /proc/<pid>/status, in bytes."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(name + ":"):
                    parts = line.split()
                    return int(parts[1]) * (1024 if len(parts) > 2 else 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read_int(path: Path) -> int | None:
    """An integer file of a cgroup; None for "max", unlimited or unreadable."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _UNLIMITED else value


def _stat_field(path: Path, name: str) -> int:
    try:
        with open(path) as fh:
            for line in fh:
                key, _, value = line.partition(" ")
                if key == name:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _own_groups(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """This process's cgroup v2 path and its v1 memory-controller path, from /proc/self/cgroup
    ("0::/path" and "N:memory:/path" lines)."""
    v2 = v1 = None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def _candidates(base: Path, path: str | None) -> list[Path]:
    """The folders of a cgroup and its ancestors under `base` (the process's own group may be
    mounted as `base` itself inside a container's cgroup namespace, so `base` always counts)."""
    out: list[Path] = []
    if path:
        parts = [p for p in path.strip("/").split("/") if p and p != ".."]
        for n in range(len(parts), 0, -1):
            out.append(base.joinpath(*parts[:n]))
    out.append(base)
    return out


def cgroup_headroom(root: Path = CGROUP_ROOT, proc_cgroup: Path | None = None) -> int | None:
    """Bytes the process's control group (and every group above it) still allows; None when
    no memory limit applies or none can be read."""
    proc_cgroup = PROC_SELF / "cgroup" if proc_cgroup is None else proc_cgroup
    v2_path, v1_path = _own_groups(proc_cgroup)
    rooms: dict[Path, int] = {}
    # cgroup v2 (unified): memory.max, memory.current, memory.stat inactive_file
    for folder in _candidates(root, v2_path) + _candidates(root / "unified", v2_path):
        _add_room(rooms, folder, "memory.max", "memory.current", "inactive_file")
    # cgroup v1: memory.limit_in_bytes, memory.usage_in_bytes, total_inactive_file
    for folder in _candidates(root / "memory", v1_path):
        _add_room(rooms, folder, "memory.limit_in_bytes", "memory.usage_in_bytes",
                  "total_inactive_file")
    return min(rooms.values()) if rooms else None


def _add_room(rooms: dict[Path, int], folder: Path, limit_file: str, usage_file: str,
              inactive_field: str) -> None:
    """The room left under one cgroup's limit (its usage less the reclaimable page cache),
    recorded once per folder; a folder without a limit adds nothing."""
    if folder in rooms:
        return
    limit = _read_int(folder / limit_file)
    if limit is None:
        return
    used = _read_int(folder / usage_file) or 0
    used -= min(used, _stat_field(folder / "memory.stat", inactive_field))
    rooms[folder] = max(0, limit - used)


def rlimit_headrooms(status: Path | None = None) -> dict[str, int]:
    """Headroom under the soft RLIMIT_AS and RLIMIT_DATA of this process (those set only):
    the limit minus VmSize / VmData of /proc/self/status (unknown usage counts as 0)."""
    status = PROC_SELF / "status" if status is None else status
    out: dict[str, int] = {}
    for name, usage_field in (("RLIMIT_AS", "VmSize"), ("RLIMIT_DATA", "VmData")):
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            soft, _ = resource.getrlimit(which)
        except (OSError, ValueError):
            continue
        if soft == resource.RLIM_INFINITY or soft < 0:
            continue
        used = _meminfo_field(status, usage_field) or 0
        out[name] = max(0, int(soft) - used)
    return out


def memory_budget() -> MemoryBudget:
    """The smallest of the system's, the cgroup's and the rlimits' headroom (module
    docstring)."""
    headrooms = {"system": system_available()}
    cgroup = cgroup_headroom()
    if cgroup is not None:
        headrooms["cgroup"] = cgroup
    headrooms.update(rlimit_headrooms())
    source = min(headrooms, key=lambda k: headrooms[k])
    return MemoryBudget(int(headrooms[source]), source, headrooms)


def available_memory() -> int:
    """Bytes this process may still allocate (`memory_budget().available`)."""
    return memory_budget().available
