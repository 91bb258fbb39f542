"""The machine a benchmark ran on, recorded the same way in every report.

Each benchmark used to build this record by hand, with different keys; the figures of a report only mean something
beside the machine's load (torch's threads spin at their barriers, so a second busy process on a 2-core machine
slows a 2-thread figure by orders of magnitude) and its core count, so every report carries the one record below.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

import torch


def package_versions(packages: tuple[str, ...]) -> dict[str, str | None]:
    """The installed version of each package, None for one that is missing."""
    versions = {}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def bench_environment(device: str = "cpu") -> dict:
    """Where and under what load a benchmark runs, taken when called (call it when the measurement starts, or at
    its end for a long one):

    ``date`` (UTC), ``platform``, ``machine`` (the architecture), ``python``, ``cpus`` (`os.cpu_count`),
    ``usable_cpus`` (this process's affinity), ``load_average`` (`os.getloadavg`: 1, 5 and 15 minutes), ``torch``
    (its version), ``threads`` (torch's CPU threads now), ``device`` and, on CUDA, ``device_name``.
    """
    record = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": device,
    }
    if device == "cuda" and torch.cuda.is_available():
        record["device_name"] = torch.cuda.get_device_name()
    return record
