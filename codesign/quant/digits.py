"""The digits subnet and its QAT recipe: OHQ mode's default network, and what `codesign bench quant` measures.

    codesign ohq            (no --model: `digits_model` trains it into build/models/digits_w8a8.pt; ~1 min, once)

The fixed subnet `SUBNET` of the DIGITS supernet is trained in float inside the supernet, extracted
with 8-bit weights and activations and QAT-trained (`qat`), then saved as a `QuantNet` checkpoint: the
w8a8 model that `codesign ohq` starts from and that `make bench-ohq` measures. Beside it, ``digits_w8a8.json``
records its float and w8a8 test accuracies. Existing files are reused.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from codesign.files import atomic_write_json, json_object, read_json
from codesign.quant.datasets import load_digits
from codesign.quant.supernet import DIGITS, ArchChoice, LayerBits, SuperNet
from codesign.quant.train import accuracy, fit

DEFAULT_PATH = Path("build/models/digits_w8a8.pt")
FP_EPOCHS, QAT_EPOCHS = 20, 8
SUBNET = ArchChoice(depths=(1, 2, 2), widths=(1.0, 1.0, 1.0), kernels=((3,), (5, 3), (3, 3)),
                    expands=((1,), (3, 3), (6, 6)))


def qat(net: SuperNet, bits: dict[str, LayerBits], data, epochs: int) -> tuple:
    """The ``SUBNET`` of ``net`` extracted at ``bits`` and QAT-trained: (subnet, test accuracy, mean epoch seconds)."""
    subnet = net.extract_subnet(SUBNET, bits).set_quantized()
    seconds = fit(subnet, data.train, epochs=epochs, lr=1e-3, seed=1)
    return subnet, accuracy(subnet, data.test), float(np.mean(seconds))


def digits_model(path: Path = DEFAULT_PATH, *, fp_epochs: int = FP_EPOCHS, qat_epochs: int = QAT_EPOCHS) -> dict:
    """The checkpoint at ``path`` and its record (``path`` with ``.json``: the float and w8a8 test accuracies, the
    epochs), trained and written first unless both exist."""
    path, record = Path(path), Path(path).with_suffix(".json")
    if path.is_file() and record.is_file():
        facts = json_object(read_json(record, "digits model record"), str(record), "a JSON object of its facts")
        return {**facts, "path": str(path)}
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

