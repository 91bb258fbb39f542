"""`bench_environment`: the one record of the machine in every benchmark report."""

import json
import os
import platform

import torch

from codesign.bench.environment import bench_environment, package_versions

KEYS = {"date", "platform", "machine", "python", "cpus", "usable_cpus", "load_average", "torch", "threads", "device"}


def test_the_record_has_the_keys_the_reports_use_and_is_json():
    record = bench_environment()
    assert KEYS <= set(record)
    assert record["machine"] == platform.machine() and record["cpus"] == os.cpu_count()
    assert 1 <= record["usable_cpus"] <= record["cpus"]
    assert len(record["load_average"]) == 3 and all(load >= 0 for load in record["load_average"])
    assert record["torch"] == torch.__version__ and record["device"] == "cpu"
    assert record["date"].endswith("+00:00")
    assert json.loads(json.dumps(record)) == record


def test_threads_are_torchs_when_called():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert bench_environment()["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_the_device_is_recorded():
    record = bench_environment("cuda")
    assert record["device"] == "cuda"
    assert ("device_name" in record) == torch.cuda.is_available()


def test_package_versions_name_a_missing_package_none():
    versions = package_versions(("numpy", "no-such-package-here"))
    assert versions["numpy"] and versions["no-such-package-here"] is None
