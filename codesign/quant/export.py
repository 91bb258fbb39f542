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
`IntegerModel.to_dict` / `save` write JSON (weights as nested lists) and `load` reads it back, checking every key
and type first: a damaged or foreign file is one `InputError` naming the file, the key and what is allowed.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from codesign.errors import InputError
from codesign.files import atomic_write_json, check_file_name, json_key, json_object, read_json, shown
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
    def from_dict(cls, data: object, where: str = "integer layer",
                  earlier: frozenset[str] = frozenset()) -> IntegerLayer:
        """A layer as `to_dict` writes it, every key checked; ``where`` names it in errors (the file and the index)
        and ``earlier`` holds the names its inputs may refer to (when empty, any)."""
        data = json_object(data, where, "an integer layer object written by IntegerModel.save")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"{where}.{unknown[0]}", shown(data[unknown[0]]), f"one of the keys {sorted(known)}")
        for f in fields(cls):
            if f.default is MISSING and f.name not in data:
                raise InputError(f"{where}.{f.name}", "missing", "a value: every IntegerModel.save layer has it")
        at = f"{where}."
        name = check_file_name(f"{where}.name", data["name"])
        kind = json_key(data, "kind", at, f"one of {list(KINDS)}", lambda v: v in KINDS)
        count = 2 if kind == "add" else 1
        json_key(data, "inputs", at, f"{count} names of earlier layers or 'input'",
                 lambda v: _strings(v, count) and (not earlier or set(v) <= earlier))
        out_shape = json_key(data, "out_shape", at, "C, H, W: 3 positive integers", lambda v: _ints(v, 3, 1))
        channels = out_shape[0]
        requant = json_object(data["requant"], f"{where}.requant", "an object: bias, mult, shift, relu, out_bits")
        rq = f"{where}.requant."
        per_channel = f"{channels} integers (one per output channel)"
        for key in ("bias", "mult", "shift"):
            json_key(requant, key, rq, per_channel, lambda v: _ints(v, channels))
        json_key(requant, "relu", rq, "true or false", lambda v: isinstance(v, bool))
        json_key(requant, "out_bits", rq, "an integer from 1 to 16", lambda v: _ints([v], 1, 1, 16))
        extra = sorted(set(requant) - {"bias", "mult", "shift", "relu", "out_bits"})
        if extra:
            raise InputError(f"{rq}{extra[0]}", shown(requant[extra[0]]), "one of bias, mult, shift, relu, out_bits")
        json_key(data, "in_bits", at, f"{count} integers from 1 to 16", lambda v: _ints(v, count, 1, 16))
        json_key(data, "in_signed", at, f"{count} booleans", lambda v: _list(v, count, bool))
        json_key(data, "in_scales", at, f"{count} positive numbers", lambda v: _numbers(v, count))
        json_key(data, "out_scale", at, "a positive number", lambda v: _numbers([v], 1))
        weight_dims = {"conv": 4, "dwconv": 4, "linear": 2}.get(kind)
        if weight_dims is None:
            for key in ("weight", "w_bits", "w_scales"):
                json_key(data, key, at, f"null (an {kind} layer has no weights)", lambda v: v is None)
        else:
            json_key(data, "weight", at, f"a {weight_dims}-D integer array of {channels} output channels",
                     lambda v: _array(v, np.int64, weight_dims, channels))
            json_key(data, "w_bits", at, f"{channels} integers from 1 to 16", lambda v: _ints(v, channels, 1, 16))
            json_key(data, "w_scales", at, f"{channels} numbers >= 0",
                     lambda v: _numbers(v, channels, positive=False))
        for key, minimum in (("stride", 1), ("padding", 0), ("pool", 1)):
            if key in data:
                json_key(data, key, at, f"an integer >= {minimum}", lambda v, lo=minimum: _ints([v], 1, lo))
        if "input_mults" in data:
            json_key(data, "input_mults", at, f"{count if kind == 'add' else 0} integers",
                     lambda v: _ints(v, count if kind == "add" else 0))
        values = dict(data, name=name)
        values["requant"] = Requant(**requant)
        for key, dtype in (("weight", np.int64), ("w_bits", np.int64), ("w_scales", np.float64)):
            values[key] = None if values.get(key) is None else np.asarray(values[key], dtype=dtype)
        for key in ("inputs", "out_shape", "in_bits", "in_signed", "in_scales", "input_mults"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


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
    def from_dict(cls, data: object, source: str = "integer model") -> IntegerModel:
        """A model as `to_dict` writes it, every key and type checked; errors name ``source`` (the file), the key
        and what is allowed, e.g. ``model.json input_shape: 'missing' is not allowed; expected C, H, W: ...``."""
        data = json_object(data, source, "a JSON object written by IntegerModel.save")
        at = f"{source} "
        shape = json_key(data, "input_shape", at, "C, H, W: 3 positive integers", lambda v: _ints(v, 3, 1))
        bits = json_key(data, "input_bits", at, "an integer from 1 to 16", lambda v: _ints([v], 1, 1, 16))
        scale = json_key(data, "input_scale", at, "a positive number", lambda v: _numbers([v], 1))
        entries = json_key(data, "layers", at, "a non-empty list of layer objects",
                           lambda v: isinstance(v, list) and len(v) > 0)
        layers, names = [], {"input"}
        for i, entry in enumerate(entries):
            layer = IntegerLayer.from_dict(entry, f"{source} layers[{i}]", frozenset(names))
            if layer.name in names:
                raise InputError(f"{source} layers[{i}].name", layer.name, "a name no earlier layer has (nor 'input')")
            names.add(layer.name)
            layers.append(layer)
        return cls(tuple(shape), bits, scale, tuple(layers))

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path, what: str = "integer model") -> IntegerModel:
        """The model in ``path``; a missing, truncated or foreign file is an `InputError` naming it."""
        return cls.from_dict(read_json(path, what, "JSON file written by IntegerModel.save"), str(path))


# ---- checks of the JSON values (a check may raise TypeError / ValueError: `json_key` counts that as refused)


def _list(value: object, length: int, kind: type) -> bool:
    return isinstance(value, list) and len(value) == length and all(type(v) is kind for v in value)


def _ints(value: object, length: int, lo: int | None = None, hi: int | None = None) -> bool:
    return _list(value, length, int) and all((lo is None or v >= lo) and (hi is None or v <= hi) for v in value)


def _strings(value: object, length: int) -> bool:
    return _list(value, length, str)


def _numbers(value: object, length: int, *, positive: bool = True) -> bool:
    """``length`` finite numbers, each > 0 (or >= 0 unless ``positive``)."""
    return (isinstance(value, list) and len(value) == length
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v < float("inf")
                    and (v > 0 if positive else v >= 0) for v in value))


def _array(value: object, dtype: type, dims: int, first: int) -> bool:
    """A nested list of ``dims`` dimensions, the first of ``first``, that numpy reads as ``dtype`` exactly."""
    array = np.asarray(value)
    integers = array.size == 0 or np.issubdtype(array.dtype, np.integer)
    return array.ndim == dims and array.shape[0] == first and integers and array.astype(dtype).shape == array.shape


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
