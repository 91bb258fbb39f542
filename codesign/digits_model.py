"""OHQ mode's default network: the digits subnet of `codesign.bench_quant`, trained as that benchmark trains it.

    python -m codesign.digits_model [--out build/models/digits_w8a8.pt]      (~1 min on 2 cores; once)

The fixed subnet `bench_quant.SUBNET` of the DIGITS supernet is trained in float inside the supernet, extracted
with 8-bit weights and activations and QAT-trained (`bench_quant.qat`), then saved as a `QuantNet` checkpoint: the
w8a8 model that `codesign ohq` starts from and that `make bench-ohq` measures. Beside it, ``digits_w8a8.json``
records its float and w8a8 test accuracies. Existing files are reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from .bench_quant import SUBNET, qat
from .datasets import load_digits
from .io import atomic_write_json
from .supernet import DIGITS, SuperNet
from .train import accuracy, fit

DEFAULT_PATH = Path("build/models/digits_w8a8.pt")
FP_EPOCHS, QAT_EPOCHS = 20, 8


def digits_model(path: Path = DEFAULT_PATH, *, fp_epochs: int = FP_EPOCHS, qat_epochs: int = QAT_EPOCHS) -> dict:
    """The checkpoint at ``path`` and its record (``path`` with ``.json``: the float and w8a8 test accuracies, the
    epochs), trained and written first unless both exist."""
    path, record = Path(path), Path(path).with_suffix(".json")
    if path.is_file() and record.is_file():
        return {**json.loads(record.read_text()), "path": str(path)}
    torch.manual_seed(0)
    data = load_digits()
    net = SuperNet(DIGITS)
    fit(net, data.train, epochs=fp_epochs, lr=3e-3, forward=lambda x: net(x, SUBNET))
    acc_fp32 = accuracy(net.extract_subnet(SUBNET, net.uniform_bits(SUBNET, 8, 8)), data.test)
    subnet, acc, _ = qat(net, net.uniform_bits(SUBNET, 8, 8), data, qat_epochs)
    subnet.save(path)                     # atomically
    facts = {"acc_fp32": acc_fp32, "acc_w8a8": acc, "fp_epochs": fp_epochs, "qat_epochs": qat_epochs,
             "subnet": dataclasses.asdict(SUBNET)}
    atomic_write_json(record, facts)
    print(f"wrote {path} (test accuracy: float {acc_fp32:.4f}, w8a8 {acc:.4f})")
    return {**facts, "path": str(path)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codesign.digits_model", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_PATH))
    args = parser.parse_args(argv)
    digits_model(Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
