"""The model side of OHQ mode: a `QuantNet` checkpoint or a user's `nn.Module`, behind one interface (`OhqModel`).

- accelerator layers: a QuantNet's from its integer export (`export_quantnet` -> `from_integer_model`); a user
  module's from forward hooks (`codesign.ohq.user_model`).
- sensitivity (MQE): a QuantNet's float network (BatchNorm with its running statistics, no quantizers); a user
  module as it is.
- the quantized model: a QuantNet with the chosen per-channel widths (`with_weight_bits`) and a short QAT, its
  accuracy in integer mode (the exported integer model's); a user module with its weights fake-quantized per
  channel, no QAT, its accuracy in float.
- written: a QuantNet's ``model.pt`` and ``integer_model.json``; a user module's ``model_state.pt`` (state_dict).

A QuantNet's QAT results are cached (``build/cache/ohq_qat/``, by the checkpoint's hash, the widths, the epochs, the
learning rate, the data and the sources of the network, quantizers and training loop), since a report trains one
model per point of its curve.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from codesign.errors import InputError
from codesign.files import atomic_write_json, check_readable
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Layer, from_integer_model
from codesign.ohq.sensitivity import channel_group_sensitivity
from codesign.ohq.user_model import accelerator_layers, check_supported, fake_quantized, load_module, refuse_torchscript
from codesign.quant import qmodel, quantizers, train
from codesign.quant.datasets import DataSplit
from codesign.quant.export import export_quantnet
from codesign.quant.qmodel import QuantNet, load_quantnet, with_weight_bits
from codesign.quant.train import accuracy, fit
from codesign.sources import source_digest

QAT_CACHE = Path("build/cache/ohq_qat")

Bits = dict[str, tuple[int, ...]]          # layer name -> one weight width per output channel
Groups = list[tuple[str, int, int]]        # (layer name, first channel, end channel) per sensitivity row


@dataclass
class Quantized:
    model: nn.Module
    accuracy: float | None                 # on the test split; None without data


class OhqModel(Protocol):
    kind: str                              # "quantnet" or "module"
    input_shape: tuple[int, int, int]

    def prepare(self, images: torch.Tensor) -> None:
        """Ready the model for export and sensitivity, given calibration images."""

    def layers(self, batch: int) -> list[Layer]:
        """Its layer IR for a batch of ``batch`` images, named as `sensitivity` and `quantize` name them."""

    def sensitivity(self, images: torch.Tensor, choices, group_size: int | None) -> tuple[Groups, torch.Tensor]:
        """MQE: the KL table [groups, choices] and its groups."""

    def quantize(self, bits: Bits, data: DataSplit | None, qat_epochs: int, qat_lr: float) -> Quantized:
        """The model with these per-channel weight widths (every layer named in ``bits``), and its accuracy."""

    def save(self, quantized: Quantized, out_dir: Path) -> dict[str, str]:
        """Write the quantized model; returns what was written (role -> path)."""


def load_model(path: str | Path, cfg: HardwareConfig, *, trust_pickle: bool = False,
               input_shape: tuple[int, int, int] | None = None, qat_cache: Path = QAT_CACHE) -> OhqModel:
    """A QuantNet checkpoint (read with ``weights_only=True``), else a pickled module (with ``trust_pickle``).

    Only a file that really holds pickled classes (the weights-only reader refuses a global in it) is taken for a
    pickled module; a missing, truncated or garbage file is an `InputError` saying it is no readable checkpoint."""
    path = Path(path)
    check_readable(path, "--model", "model file")       # missing, a directory, unreadable: named here
    refuse_torchscript(path)
    try:
        data = torch.load(path, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _needs_globals(exc):
            raise InputError("--model", str(path), f"a readable model checkpoint ({_first_line(exc)})") from None
        data = None                 # a pickled module: only unpickling with its code can read it
    except Exception as exc:        # torch.load fails in many ways on a damaged file: zip, EOF, struct, key errors
        raise InputError("--model", str(path), f"a readable model checkpoint, written by torch.save "
                                               f"({type(exc).__name__}: {_first_line(exc)})") from None
    if isinstance(data, dict) and "spec" in data:
        return QuantNetModel(load_quantnet(path), cfg, _file_hash(path), qat_cache)
    if data is not None:
        raise InputError("--model", f"{path} ({type(data).__name__})", "a QuantNet checkpoint or a whole pickled "
                                                                        "nn.Module (a state_dict has no architecture)")
    module = load_module(path, trust_pickle=trust_pickle)
    check_supported(module)
    if input_shape is None:
        raise InputError("--input-shape", None, "C,H,W of the model's input (a user module does not record it)")
    return ModuleModel(module, input_shape)


def _needs_globals(exc: pickle.UnpicklingError) -> bool:
    """Whether the weights-only reader refused ``exc``'s file for a global (a class or function it names): a
    pickled module, which ``--trust-pickle`` may read. Its other refusals are damaged files."""
    return "Unsupported global" in str(exc) or "was not an allowed global" in str(exc)


def _first_line(exc: BaseException) -> str:
    """The start of an exception's message: torch's run to pages."""
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else "no details"


class QuantNetModel:
    kind = "quantnet"

    def __init__(self, net: QuantNet, cfg: HardwareConfig, identity: str, qat_cache: Path = QAT_CACHE):
        self.net, self.cfg, self.identity, self.qat_cache = net, cfg, identity, Path(qat_cache)
        self.input_shape = (net.spec["in_channels"], net.spec["image_size"], net.spec["image_size"])

    def prepare(self, images: torch.Tensor) -> None:
        """A float checkpoint is switched to QAT here, its quantizers' steps initialized from ``images``."""
        if not self.net.quantized or not all(m.initialized for m in self.net.modules() if hasattr(m, "initialized")):
            self.net.set_quantized().train()
            with torch.no_grad():
                self.net(images)

    def layers(self, batch: int) -> list[Layer]:
        return from_integer_model(export_quantnet(self.net, self.cfg), batch=batch)

    def sensitivity(self, images, choices, group_size):
        self.net.quantized = False          # the float forward, BatchNorm with its running statistics
        try:
            groups, table = channel_group_sensitivity(self.net, images, choices, group_size)
        finally:
            self.net.quantized = True
        # the modules MQE quantizes are the layers' conv / linear: name them as the layers
        return [(name.rsplit(".", 1)[0], start, end) for name, start, end in groups], table

    def quantize(self, bits: Bits, data: DataSplit | None, qat_epochs: int, qat_lr: float) -> Quantized:
        key = {"model": self.identity, "bits": {k: list(v) for k, v in sorted(bits.items())}, "epochs": qat_epochs,
               "lr": qat_lr, "data": _data_hash(data), "sources": _sources_hash()}
        stem = self.qat_cache / hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        cached = _read_cached(stem, key)
        if cached is not None:
            return cached
        net = with_weight_bits(self.net, bits)
        if data is not None and qat_epochs:
            fit(net, data.train, epochs=qat_epochs, lr=qat_lr, seed=1)
        result = Quantized(net, accuracy(net, data.test) if data is not None else None)
        stem.parent.mkdir(parents=True, exist_ok=True)
        net.save(stem.with_suffix(".pt"))
        atomic_write_json(stem.with_suffix(".json"), {"key": key, "accuracy": result.accuracy})
        return result

    def save(self, quantized: Quantized, out_dir: Path) -> dict[str, str]:
        model, integer = out_dir / "model.pt", out_dir / "integer_model.json"
        quantized.model.save(model)
        export_quantnet(quantized.model, self.cfg).save(integer)
        return {"model": str(model), "integer_model": str(integer)}


class ModuleModel:
    kind = "module"

    def __init__(self, module: nn.Module, input_shape: tuple[int, int, int]):
        self.module, self.input_shape = module, tuple(input_shape)

    def prepare(self, images: torch.Tensor) -> None:
        pass

    def layers(self, batch: int) -> list[Layer]:
        return accelerator_layers(self.module, self.input_shape, batch=batch)

    def sensitivity(self, images, choices, group_size):
        return channel_group_sensitivity(self.module, images, choices, group_size)

    def quantize(self, bits: Bits, data: DataSplit | None, qat_epochs: int, qat_lr: float) -> Quantized:
        model = fake_quantized(self.module, bits)
        return Quantized(model, accuracy(model, data.test) if data is not None else None)

    def save(self, quantized: Quantized, out_dir: Path) -> dict[str, str]:
        path = out_dir / "model_state.pt"
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(quantized.model.state_dict(), path)
        return {"model_state": str(path)}


def _read_cached(stem: Path, key: dict) -> Quantized | None:
    """A cached QAT result when both its files are there and the record holds this key; otherwise None (trained
    again and overwritten)."""
    record, model = stem.with_suffix(".json"), stem.with_suffix(".pt")
    if not (record.is_file() and model.is_file()):
        return None
    try:
        data = json.loads(record.read_text())
        if data["key"] != key:
            return None
        return Quantized(load_quantnet(model), data["accuracy"])
    except (ValueError, KeyError, InputError):
        return None


def _sources_hash() -> str:
    """The code that decides a QAT result: the network, its quantizers, the training loop."""
    return source_digest(qmodel, quantizers, train)


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data_hash(data: DataSplit | None) -> str | None:
    if data is None:
        return None
    digest = hashlib.sha256()
    for part in (data.train, data.test):
        digest.update(part.images.numpy().tobytes())
        digest.update(part.labels.numpy().tobytes())
    return digest.hexdigest()

