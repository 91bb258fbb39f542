"""The quantization benchmark: CSQ memory, digits accuracy at each bit setting, training time.

    codesign bench quant --out build/bench/quant.json            (make bench-quant; ~4 min on 2 cores)
    codesign bench quant --device cuda --out build/bench/quant_cuda.json   (ImageNet-size memory only)

Memory of one search step (forward + backward, batch 64, the largest architecture, all six weight-bit and both
activation-bit branches) is measured two ways on the CPU:
- ``peak_*_mb``: the allocator's peak during the step above what was allocated before it, from the PyTorch
  profiler's memory events (every allocation and free of the CPU allocator, in order; their running sum's maximum);
- ``saved_*_mb``: the tensors autograd keeps for backward (`torch.autograd.graph.saved_tensors_hooks`, one count
  per storage), the part of the memory that the branches multiply.
On CUDA it is ``torch.cuda.max_memory_allocated`` above the memory allocated before the step, at 224 x 224.

Accuracy: a fixed subnet of the digits supernet is trained in float, then QAT-trained from those weights at
w8a8, w4a8 and mixed 2/4-bit weights (the half of each layer's channels with the largest |BatchNorm gamma| at 4 bits,
the rest at 2; 8-bit activations). The quantized accuracies are measured in integer mode, i.e. they are the exported
integer model's accuracies (``int_agreement`` checks this through the numpy reference on the whole test set).
For the memory curve, each K also runs a short CSQ search (Gumbel-softmax bit branches, ranking refreshed every 10
steps) from the float weights, then extracts the subnet with the searched bits and QAT-trains it briefly.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from codesign.bench.environment import bench_environment
from codesign.errors import InputError
from codesign.files import atomic_write_json
from codesign.ir.executor import predict
from codesign.quant.csq import rank_channels
from codesign.quant.datasets import load_digits
from codesign.quant.digits import SUBNET, qat
from codesign.quant.export import export_quantnet
from codesign.quant.supernet import DIGITS, IMAGENET, ArchChoice, LayerBits, SuperNet, mean_weight_bits
from codesign.quant.train import accuracy, fit, predictions

FRACTIONS = (1.0, 0.5, 0.25, 0.1)
BATCH = 64


def ideal_ratio(n: int, fraction: float) -> float:
    """Multi-branch over CSQ activation copies, ``n / (K n + 1 - K)``, when nothing else is kept."""
    return n / (fraction * n + 1 - fraction)


def search_step(net: SuperNet, arch: ArchChoice, images: torch.Tensor, labels: torch.Tensor) -> None:
    F.cross_entropy(net(images, arch, mode="search"), labels).backward()


def saved_for_backward_bytes(net: SuperNet, arch: ArchChoice, images, labels) -> int:
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(net(images, arch, mode="search"), labels)
    loss.backward()
    return sum(storages.values())


def cpu_peak_bytes(net: SuperNet, arch: ArchChoice, images, labels) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        search_step(net, arch, images, labels)
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    return max(itertools.accumulate((e.nbytes() for e in events), initial=0))


def cuda_peak_bytes(net: SuperNet, arch: ArchChoice, images, labels) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    search_step(net, arch, images, labels)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def step_memory(net: SuperNet, arch: ArchChoice, images, labels, fraction: float, device: str) -> dict:
    net.csq_schedule(fraction, refresh_every=1).refresh()
    search_step(net, arch, images, labels)          # warm-up: gradients and lazily initialized steps exist
    mb = 1 / 2 ** 20
    if device == "cuda":
        return {"peak_mb": cuda_peak_bytes(net, arch, images, labels) * mb}
    return {"peak_mb": cpu_peak_bytes(net, arch, images, labels) * mb,
            "saved_mb": saved_for_backward_bytes(net, arch, images, labels) * mb}


def mixed_bits(net: SuperNet, arch: ArchChoice, high: int, low: int) -> dict[str, LayerBits]:
    """Per layer, the half of the channels with the largest |gamma| at ``high`` bits, the rest at ``low``."""
    bits = net.uniform_bits(arch, high, 8)
    for name, sub in net.subnet_layers(arch).items():
        if sub.layer is not None:
            top = rank_channels(sub.layer.bn.weight[:sub.out_channels])[:sub.out_channels // 2]
            widths = torch.full((sub.out_channels,), low).index_fill(0, top, high)
            bits[name] = LayerBits(tuple(widths.tolist()), 8)
    return bits


def bench_cpu(fp_epochs: int, qat_epochs: int, search_epochs: int) -> dict:
    torch.manual_seed(0)
    data = load_digits()
    net = SuperNet(DIGITS)
    fp_seconds = fit(net, data.train, epochs=fp_epochs, lr=3e-3, forward=lambda x: net(x, SUBNET))
    fp_subnet = net.extract_subnet(SUBNET, net.uniform_bits(SUBNET, 8, 8))
    report = {"acc_fp32": accuracy(fp_subnet, data.test), "subnet": dataclasses.asdict(SUBNET),
              "train_seconds_per_epoch": {"fp32_subnet": float(np.mean(fp_seconds))}}

    settings = {"acc_w8a8": net.uniform_bits(SUBNET, 8, 8), "acc_w4a8": net.uniform_bits(SUBNET, 4, 8),
                "acc_mixed": mixed_bits(net, SUBNET, 4, 2)}
    for key, bits in settings.items():
        subnet, acc, seconds = qat(net, bits, data, qat_epochs)
        report[key] = acc
        report["train_seconds_per_epoch"][f"qat_{key[4:]}"] = seconds
        if key == "acc_w4a8":
            torch_pred = predictions(subnet, data.test).numpy()
            int_pred = predict(export_quantnet(subnet), data.test.images)
            report["int_agreement"] = float((torch_pred == int_pred).mean())
    report["acc_mixed_mean_weight_bits"] = mean_weight_bits(settings["acc_mixed"])

    largest = ArchChoice.largest(DIGITS)
    images, labels = data.train.images[:BATCH], data.train.labels[:BATCH]
    curve = []
    for fraction in FRACTIONS:
        searched = copy.deepcopy(net)
        memory = step_memory(searched, largest, images, labels, fraction, "cpu")
        schedule = searched.csq_schedule(fraction, refresh_every=10)
        seconds = fit(searched, data.train, epochs=search_epochs, lr=1e-3, seed=2,
                      forward=lambda x, s=searched: s(x, SUBNET, mode="search"), before_step=schedule.step)
        search_acc = accuracy(searched, data.test, forward=lambda x, s=searched: s(x, SUBNET, mode="search"))
        bits = searched.chosen_bits(SUBNET)
        _, subnet_acc, _ = qat(searched, bits, data, epochs=2)
        curve.append({"fraction": fraction, **memory, "search_seconds_per_epoch": float(np.mean(seconds)),
                      "search_acc": search_acc, "subnet_acc": subnet_acc,
                      "subnet_mean_weight_bits": mean_weight_bits(bits)})
    full = curve[0]
    n = len(DIGITS.w_bits)
    for point in curve:
        point["memory_ratio"] = full["peak_mb"] / point["peak_mb"]
        point["saved_ratio"] = full["saved_mb"] / point["saved_mb"]
        point["ideal_ratio"] = ideal_ratio(n, point["fraction"])
        point["fraction_of_ideal"] = point["memory_ratio"] / point["ideal_ratio"]
    quarter = next(p for p in curve if p["fraction"] == 0.25)
    report.update(peak_mem_full_mb=full["peak_mb"], peak_mem_csq_mb=quarter["peak_mb"],
                  memory_ratio=quarter["memory_ratio"], memory_curve=curve, batch=BATCH,
                  memory_method="CPU allocator peak above the pre-step level (torch.profiler memory events); "
                                "saved_mb: tensors saved for backward, one count per storage",
                  train_seconds_per_epoch={**report["train_seconds_per_epoch"],
                                           "search_full": full["search_seconds_per_epoch"],
                                           "search_csq_25": quarter["search_seconds_per_epoch"]})
    return report


def bench_cuda() -> dict:
    if not torch.cuda.is_available():
        raise InputError("--device", "cuda", "a machine where torch.cuda.is_available() (or --device cpu)")
    torch.manual_seed(0)
    net = SuperNet(IMAGENET).cuda()
    arch = ArchChoice.largest(IMAGENET)
    images = torch.rand(BATCH, 3, 224, 224, device="cuda")
    labels = torch.randint(0, IMAGENET.classes, (BATCH,), device="cuda")
    curve = [{"fraction": f, **step_memory(net, arch, images, labels, f, "cuda")} for f in FRACTIONS]
    for point in curve:
        point["memory_ratio"] = curve[0]["peak_mb"] / point["peak_mb"]
        point["ideal_ratio"] = ideal_ratio(len(IMAGENET.w_bits), point["fraction"])
    quarter = next(p for p in curve if p["fraction"] == 0.25)
    return {"device_name": torch.cuda.get_device_name(), "input": [BATCH, 3, 224, 224],
            "peak_mem_full_mb": curve[0]["peak_mb"], "peak_mem_csq_mb": quarter["peak_mb"],
            "memory_ratio": quarter["memory_ratio"], "memory_curve": curve,
            "memory_method": "torch.cuda.max_memory_allocated above the pre-step allocation"}


def benchmark(*, out: str | Path, device: str = "cpu", fp_epochs: int = 20, qat_epochs: int = 8,
              search_epochs: int = 3) -> dict:
    """`bench_cpu` (the epochs) or `bench_cuda`, with `bench_environment`'s record and the wall time; the report
    written to ``out`` atomically and returned. `InputError` for CUDA on a machine without it."""
    start = time.perf_counter()
    report = bench_cuda() if device == "cuda" else bench_cpu(fp_epochs, qat_epochs, search_epochs)
    report.update(**bench_environment(device), wall_seconds=time.perf_counter() - start)
    atomic_write_json(out, report)
    return report
