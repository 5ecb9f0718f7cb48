"""What the benchmarks record about the machine next to their numbers: its state (load, busy
CPU, free memory) and a process's peak memory. One place, so every results file says the same
things the same way (a speed figure on this often-busy 2-core box means little without them).

    from machine import machine_state, peak_rss_mb     # benchmarks run as scripts
"""

from __future__ import annotations

import os
import platform
import resource
import time


def machine_state(sample_cpu: bool = True) -> dict:
    """CPU model, cores, 1/5-minute load average, busy CPU share over one second (when
    `sample_cpu`), available memory and the time."""
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()
    out = {"cpu": cpu, "cores": os.cpu_count(), "load_1min": round(load[0], 2),
           "load_5min": round(load[1], 2),
           "memory_available_gb": round(psutil.virtual_memory().available / 2**30, 1),
           "time": time.strftime("%Y-%m-%d %H:%M")}
    if sample_cpu:
        out["cpu_busy_percent"] = psutil.cpu_percent(interval=1.0)
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that over
    from the parent across fork + exec, so a child would report the benchmark's own peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
