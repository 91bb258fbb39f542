"""Integer export: a QAT-trained `QuantNet` becomes an `IntegerModel`, the input of the compiler and the golden model.

Per layer (`IntegerLayer`): its kind, shape parameters, integer weights with one bit width per output channel, the
per-channel `codesign.hw.reference.Requant` (integer bias, multiplier, shift, ReLU, output bits), the bit width,
signedness and scale of its inputs and output. BatchNorm is folded into the weights and biases with its running
statistics, exactly as the QAT forward pass folds it. Values are ``value = integer * scale``; every zero point is 0.

Kinds and their integer semantics (`codesign.ir.executor` executes them through the reference):

- ``conv``: dense convolution (the stem, 1x1 expand / project / head), OIHW weights, zero padding ``kernel // 2``.
  im2col then one GEMM (K = C_in * k * k) and per-channel requantization: accelerator.
- ``dwconv``: depthwise convolution, weights ``[C, 1, k, k]``: one GEMM of N = 1 (K = k * k) per channel, sharing one
  per-channel requantization. Accelerator (as C narrow GEMMs) or host: the compiler's choice.
- ``add``: residual add of two inputs: ``acc = x * input_mults[0] + f * input_mults[1]``, then the requantization
  with ``bias = 0``, ``mult = 1`` and a common ``shift`` (round half up, signed clamp). Host (element-wise).
- ``linear``: the classifier with the global average pooling folded in: A is the last feature map flattened per
  image in NHWC order (K = pool * C), W the classifier's weights repeated for each of the ``pool`` pixels, the
  ``1 / pool`` inside the requantization multiplier. Accelerator. Its output is the signed 8-bit logits.

The multiplier has ``mult_bits`` bits (HardwareConfig.mult_bits, 16 by default), normalized so it keeps all of them.
`IntegerModel.to_dict` / `save` write JSON (weights as nested lists) and `load` reads it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from codesign.errors import InputError
from codesign.files import atomic_write_json
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import Requant
from codesign.quant.qmodel import QAdd, QBlock, QClassifier, QConv, QLayer, QuantNet
from codesign.quant.quantizers import INPUT_BITS, INPUT_STEP, ActQuantizer, WeightQuantizer

KINDS = ("conv", "dwconv", "add", "linear")
SUPPORTED_MODULES = (QuantNet, QBlock, QConv, QAdd, QClassifier, WeightQuantizer, ActQuantizer, nn.Conv2d,
                     nn.BatchNorm2d, nn.Linear, nn.ModuleList)


@dataclass(frozen=True)
class IntegerLayer:
    name: str
    kind: str                          # one of KINDS
    inputs: tuple[str, ...]            # producing layers' names; "input" is the quantized image
    out_shape: tuple[int, int, int]    # C, H, W of the output (linear: classes, 1, 1)
    requant: Requant                   # per output channel
    in_bits: tuple[int, ...]           # per input
    in_signed: tuple[bool, ...]
    in_scales: tuple[float, ...]
    out_scale: float                   # output value = integer * out_scale; signed iff not requant.relu
    weight: np.ndarray | None = None   # int64; conv / dwconv OIHW, linear [classes, C]
    w_bits: np.ndarray | None = None   # int64, per output channel
    w_scales: np.ndarray | None = None  # float64, per output channel
    stride: int = 1
    padding: int = 0
    pool: int = 1                      # linear: pixels summed by the folded global average pooling
    input_mults: tuple[int, ...] = ()  # add: one multiplier per input

    @property
    def out_signed(self) -> bool:
        return not self.requant.relu

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["requant"] = {"bias": self.requant.bias.tolist(), "mult": self.requant.mult.tolist(),
                           "shift": self.requant.shift.tolist(), "relu": self.requant.relu,
                           "out_bits": self.requant.out_bits}
        for key in ("weight", "w_bits", "w_scales"):
            data[key] = None if data[key] is None else data[key].tolist()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> IntegerLayer:
        data = dict(data)
        data["requant"] = Requant(**data["requant"])
        for key, dtype in (("weight", np.int64), ("w_bits", np.int64), ("w_scales", np.float64)):
            data[key] = None if data[key] is None else np.asarray(data[key], dtype=dtype)
        for key in ("inputs", "out_shape", "in_bits", "in_signed", "in_scales", "input_mults"):
            data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True)
class IntegerModel:
    input_shape: tuple[int, int, int]  # C, H, W
    input_bits: int                    # unsigned
    input_scale: float
    layers: tuple[IntegerLayer, ...]   # in execution order; the last one's output is the logits

    def to_dict(self) -> dict:
        return {"input_shape": list(self.input_shape), "input_bits": self.input_bits,
                "input_scale": self.input_scale, "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: dict) -> IntegerModel:
        try:
            return cls(tuple(data["input_shape"]), data["input_bits"], data["input_scale"],
                       tuple(IntegerLayer.from_dict(layer) for layer in data["layers"]))
        except (KeyError, TypeError) as exc:
            raise InputError("integer model", repr(exc), "the JSON written by IntegerModel.save") from None

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> IntegerModel:
        path = Path(path)
        if not path.is_file():
            raise InputError("integer model", str(path), "an existing JSON file written by IntegerModel.save")
        return cls.from_dict(json.loads(path.read_text()))


def check_supported(model: nn.Module) -> None:
    """Refuse a model with a layer the export has no integer semantics for, naming it."""
    for name, module in model.named_modules():
        if not isinstance(module, SUPPORTED_MODULES):
            raise InputError(f"layer {name or '(model)'}", type(module).__name__,
                             f"one of {[m.__name__ for m in SUPPORTED_MODULES]}")


def export_quantnet(net: QuantNet, cfg: HardwareConfig = HardwareConfig()) -> IntegerModel:
    """The integer model of a quantized `QuantNet` (after `set_quantized()` and QAT)."""
    check_supported(net)
    if not net.quantized:
        raise InputError("model", "float (not quantized)", "a QuantNet switched to QAT with set_quantized()")
    spec = net.spec
    size = _input_size(net)
    exporter = _Exporter(cfg, {"input": (torch.tensor(INPUT_STEP, dtype=torch.float64), INPUT_BITS, False,
                                         (spec["in_channels"], size, size))})
    last = exporter.conv("stem", net.stem, "input")
    for i, block in enumerate(net.blocks):
        start, h = last, last
        for part in ("expand", "depthwise", "project"):
            layer = getattr(block, part)
            if layer is not None:
                h = exporter.conv(f"blocks.{i}.{part}", layer, h)
        last = exporter.add(f"blocks.{i}.add", block.add, start, h) if block.add is not None else h
    last = exporter.conv("head", net.head, last)
    exporter.linear("classifier", net.classifier, last)
    return IntegerModel((spec["in_channels"], size, size), INPUT_BITS, INPUT_STEP, tuple(exporter.layers))


def _input_size(net: QuantNet) -> int:
    size = net.spec.get("image_size")
    if not isinstance(size, int) or size < 1:
        raise InputError("subnet spec image_size", size, "the input image's height (= width) in pixels")
    return size


class _Exporter:
    """Walks the network in execution order, keeping each output's step, bits, signedness and shape."""

    def __init__(self, cfg: HardwareConfig, outputs: dict):
        self.cfg, self.outputs, self.layers = cfg, outputs, []

    def _emit(self, layer: IntegerLayer, step: torch.Tensor) -> str:
        layer.requant.validate(self.cfg, layer.out_shape[0])
        if layer.w_bits is not None and layer.w_bits.max() > self.cfg.weight_bits_max:
            raise InputError(f"{layer.name} w_bits", int(layer.w_bits.max()),
                             f"at most weight_bits_max={self.cfg.weight_bits_max}")
        self.layers.append(layer)
        self.outputs[layer.name] = (step, layer.requant.out_bits, layer.out_signed, layer.out_shape)
        return layer.name

    def _requant(self, q: QLayer, bias, mult, shift) -> Requant:
        return Requant(bias.numpy().astype(np.int64), mult.numpy(), shift.numpy(),
                       relu=not q.aq.signed, out_bits=q.aq.bits_value)

    def conv(self, name: str, q: QConv, source: str) -> str:
        step, bits, signed, (_, h, w) = self.outputs[source]
        p = q.integer_params(step)
        stride = q.conv.stride[0]
        out_hw = ((h - 1) // stride + 1, (w - 1) // stride + 1)
        layer = IntegerLayer(
            name=name, kind="dwconv" if q.depthwise else "conv", inputs=(source,),
            out_shape=(q.conv.out_channels, *out_hw), requant=self._requant(q, p.bias, p.mult, p.shift),
            in_bits=(bits,), in_signed=(signed,), in_scales=(float(step),), out_scale=float(q.out_step()),
            weight=p.weight.numpy().astype(np.int64), w_bits=q.wq.bits.numpy().copy(),
            w_scales=q.wq.scale().detach().double().numpy(), stride=stride, padding=q.conv.padding[0])
        return self._emit(layer, q.out_step())

    def add(self, name: str, q: QAdd, x: str, f: str) -> str:
        x_step, x_bits, x_signed, shape = self.outputs[x]
        f_step, f_bits, f_signed, _ = self.outputs[f]
        mults, shift = q.input_mults(x_step, f_step)
        c = shape[0]
        requant = Requant(np.zeros(c, np.int64), np.ones(c, np.int64), np.full(c, int(shift)), relu=False,
                          out_bits=q.aq.bits_value)
        layer = IntegerLayer(name=name, kind="add", inputs=(x, f), out_shape=shape, requant=requant,
                             in_bits=(x_bits, f_bits), in_signed=(x_signed, f_signed),
                             in_scales=(float(x_step), float(f_step)), out_scale=float(q.out_step()),
                             input_mults=tuple(int(m) for m in mults))
        return self._emit(layer, q.out_step())

    def linear(self, name: str, q: QClassifier, source: str) -> str:
        step, bits, signed, (c, h, w) = self.outputs[source]
        p = q.integer_params(step, h * w)
        classes = q.linear.out_features
        layer = IntegerLayer(
            name=name, kind="linear", inputs=(source,), out_shape=(classes, 1, 1),
            requant=self._requant(q, p.bias, p.mult, p.shift), in_bits=(bits,), in_signed=(signed,),
            in_scales=(float(step),), out_scale=float(q.out_step()), weight=p.weight.numpy().astype(np.int64),
            w_bits=q.wq.bits.numpy().copy(), w_scales=q.wq.scale().detach().double().numpy(), pool=h * w)
        return self._emit(layer, q.out_step())
