"""The memory budget: free RAM, the cgroup limit (v1 and v2) and RLIMIT_AS / RLIMIT_DATA,
whichever is smallest. What follows it is tested with each consumer: EASE's plan
(tests/models/test_baselines.py), the search index's storage (tests/search/test_vector_index.py),
the A/B replay (tests/usecases/test_experiments.py)."""

from __future__ import annotations

import resource
from pathlib import Path

from recsys.core import memory
from recsys.core.memory import (
    MemoryBudget,
    cgroup_headroom,
    memory_budget,
    rlimit_headrooms,
)

GB = 2**30


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_limit_minus_what_is_not_reclaimable(tmp_path: Path):
    root, proc = tmp_path / "cgroup", tmp_path / "proc-cgroup"
    write(proc, "0::/app/worker\n")
    write(root / "app" / "worker" / "memory.max", "max\n")             # no limit of its own
    write(root / "app" / "memory.max", f"{6 * GB}\n")                  # the container's
    write(root / "app" / "memory.current", f"{3 * GB}\n")
    write(root / "app" / "memory.stat", f"anon 123\ninactive_file {1 * GB}\nactive_file 5\n")
    # 6 GB - (3 GB used - 1 GB of page cache the kernel can drop) = 4 GB
    assert cgroup_headroom(root, proc) == 4 * GB
    # a tighter limit further down wins
    write(root / "app" / "worker" / "memory.max", f"{2 * GB}\n")
    write(root / "app" / "worker" / "memory.current", f"{GB // 2}\n")
    assert cgroup_headroom(root, proc) == GB + GB // 2


def test_cgroup_v1_limit_and_no_limit(tmp_path: Path):
    root, proc = tmp_path / "cgroup", tmp_path / "proc-cgroup"
    write(proc, "12:pids:/\n4:memory:/docker/abc\n1:name=systemd:/\n")
    group = root / "memory" / "docker" / "abc"
    write(group / "memory.limit_in_bytes", f"{6 * GB}\n")
    write(group / "memory.usage_in_bytes", f"{2 * GB}\n")
    write(group / "memory.stat", f"cache 1\ntotal_inactive_file {GB // 2}\n")
    assert cgroup_headroom(root, proc) == 4 * GB + GB // 2
    # v1 writes "no limit" as a huge number; a host without any limit has no headroom to report
    write(group / "memory.limit_in_bytes", "9223372036854771712\n")
    write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")
    assert cgroup_headroom(root, proc) is None
    assert cgroup_headroom(tmp_path / "nothing", tmp_path / "no-file") is None


def test_rlimits_count_what_is_already_mapped(tmp_path: Path, monkeypatch):
    status = tmp_path / "status"
    write(status, "Name:\tpython\nVmSize:\t 1048576 kB\nVmData:\t  524288 kB\n")
    limits = {resource.RLIMIT_AS: (6 * GB, resource.RLIM_INFINITY),
              resource.RLIMIT_DATA: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)}
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: limits[which])
    assert rlimit_headrooms(status) == {"RLIMIT_AS": 5 * GB}
    limits[resource.RLIMIT_DATA] = (2 * GB, resource.RLIM_INFINITY)
    assert rlimit_headrooms(status) == {"RLIMIT_AS": 5 * GB, "RLIMIT_DATA": GB + GB // 2}


def test_the_smallest_headroom_decides(monkeypatch):
    monkeypatch.setattr(memory, "system_available", lambda: 20 * GB)
    monkeypatch.setattr(memory, "cgroup_headroom", lambda: 6 * GB)
    monkeypatch.setattr(memory, "rlimit_headrooms", lambda: {"RLIMIT_AS": 8 * GB})
    budget = memory_budget()
    assert budget == MemoryBudget(6 * GB, "cgroup", {"system": 20 * GB, "cgroup": 6 * GB,
                                                      "RLIMIT_AS": 8 * GB})
    assert "6.0 GB" in budget.describe() and "cgroup" in budget.describe()
    monkeypatch.setattr(memory, "rlimit_headrooms", lambda: {"RLIMIT_DATA": 1 * GB})
    assert memory_budget().source == "RLIMIT_DATA"
    monkeypatch.setattr(memory, "cgroup_headroom", lambda: None)
    monkeypatch.setattr(memory, "rlimit_headrooms", lambda: {})
    assert memory_budget() == MemoryBudget(20 * GB, "system", {"system": 20 * GB})


def test_this_process_reads_a_real_budget():
    budget = memory_budget()
    assert 0 < budget.available <= memory.system_available() + GB
    assert budget.source in budget.headrooms
