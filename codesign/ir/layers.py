"""The layer IR the compiler and the cost model work on: convolutions, linear layers and host operations.

A layer is a frozen dataclass with its shapes and bit widths (`Conv2d`, `Linear`, `HostOp`); construction validates
it and names the layer and field of any error. `gemms` lowers a layer to the GEMMs ``C[M, N] = A[M, K] @ W[K, N]``
of `codesign.compiler.mapping`, and `placement` says where it runs:

- `Conv2d`: im2col, then one GEMM per group with ``M = batch * out_h * out_w``, ``K = in_channels / groups * kh *
  kw``, ``N = out_channels / groups``. Groups whose channels have the same weight bits share one `Lowered` entry
  with a repeat count. Accelerator.
- a depthwise `Conv2d` that the array's depthwise mode takes (`depthwise_window`: kernels up to 7, stride 1 or 2,
  the same stride and padding both ways, no dilation): one GEMM with a `Window`, ``M = batch * out_h * out_w``,
  ``K = kh * kw``, ``N = C``, windowed on chip (`codesign.compiler.depthwise`). Other depthwise convs lower as
  grouped ones, C GEMMs of ``N = 1``. Accelerator.
- `Linear`: one GEMM with ``M = batch``, ``K = in_features``, ``N = out_features``. Accelerator.
- `HostOp`: element-wise and pooling operations (residual add, ReLU, pools). Host; no GEMM.

im2col happens on the host, as it lays A out: the host writes the patches directly in the activation-word layout of
`codesign.hw.isa`, so no separate im2col pass exists and its cost is the A bytes the DMA moves, which the cost model
counts per load (a 3x3 stride-1 conv's A is 9x its input feature map; a 1x1 stride-1 conv's A is the map itself).

`mobilenet_v2` builds the ImageNet MobileNetV2; `from_integer_model` reads the layers of an exported
`codesign.quant.export.IntegerModel`; `layers_to_json` / `load_layers` / `save_layers` store a layer list as JSON.

A layer's name becomes a file name (`codesign.compiler.network.write_programs`), so it follows
`codesign.files.check_file_name`. `check_layer_bits` is the one rule for a layer's bit widths on an accelerator.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import KW_ONLY, MISSING, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from codesign.compiler.mapping import Gemm, Window
from codesign.errors import InputError
from codesign.files import atomic_write_json, check_file_name, read_json
from codesign.hw.config import HardwareConfig
from codesign.hw.timing import DW_KERNEL_MAX, DW_STRIDES

if TYPE_CHECKING:       # the export pulls in torch; the cost model and the compiler need not
    from codesign.quant.export import IntegerModel

BITS_RANGE = (1, 16)
HOST_KINDS = ("add", "relu", "relu6", "avgpool", "maxpool", "global_avgpool")
POOL_KINDS = ("avgpool", "maxpool")


# ---- validation helpers


def _check_name(name: object) -> None:
    check_file_name("layer.name", name)         # it names the layer's program files


def _check_int(layer: str, attr: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{layer}.{attr}", value, f"an integer >= {minimum}")


def _check_bool(layer: str, attr: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InputError(f"{layer}.{attr}", value, "true or false")


def _check_bits(layer: str, attr: str, value: object) -> None:
    lo, hi = BITS_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InputError(f"{layer}.{attr}", value, f"a bit width from {lo} to {hi}")


def _ints(layer: str, attr: str, value: object, length: int, minimum: int) -> tuple[int, ...]:
    """An int (repeated ``length`` times) or a sequence of ``length`` ints, as a tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * length
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise InputError(f"{layer}.{attr}", value, f"an integer or {length} integers")
    for v in value:
        _check_int(layer, attr, v, minimum)
    return tuple(value)


def _weight_bits(layer: str, value: object, channels: int) -> tuple[int, ...]:
    """One weight bit width per output channel, from an int (all channels) or a sequence."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * channels
    if not isinstance(value, (list, tuple)) or len(value) != channels:
        raise InputError(f"{layer}.w_bits", value, f"a bit width or one per output channel ({channels})")
    for bits in value:
        _check_bits(layer, "w_bits", bits)
    return tuple(value)


# ---- layers


@dataclass(frozen=True)
class Conv2d:
    """A 2-D convolution (dense, grouped or depthwise) over ``batch`` images, its bias and requantization folded.

    ``kernel``, ``stride``, ``padding`` and ``dilation`` take an int or an ``(h, w)`` pair and are stored as pairs;
    ``w_bits`` takes one width for all output channels or one per channel and is stored per channel. ``act_bits``
    is the input activations' width; ``relu`` whether the output is clamped at 0 (MobileNetV2's ReLU6 is the
    unsigned output range).
    """

    name: str
    in_channels: int
    out_channels: int
    kernel: int | tuple[int, int]
    _: KW_ONLY
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    dilation: int | tuple[int, int] = 1
    groups: int = 1
    in_h: int
    in_w: int
    batch: int = 1
    w_bits: int | tuple[int, ...] = field(default=8, repr=False)   # one per channel: too long to print
    act_bits: int = 8
    relu: bool = True

    def __post_init__(self) -> None:
        _check_name(self.name)
        name = self.name
        for attr in ("in_channels", "out_channels", "in_h", "in_w", "batch", "groups"):
            _check_int(name, attr, getattr(self, attr), 1)
        for attr, minimum in (("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1)):
            object.__setattr__(self, attr, _ints(name, attr, getattr(self, attr), 2, minimum))
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise InputError(f"{name}.groups", self.groups,
                             f"a divisor of in_channels ({self.in_channels}) and out_channels ({self.out_channels})")
        padded = tuple(size + 2 * pad for size, pad in zip((self.in_h, self.in_w), self.padding))
        span = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))
        if span[0] > padded[0] or span[1] > padded[1]:
            raise InputError(f"{name}.kernel", self.kernel,
                             f"a kernel whose dilated extent ({span[0]} x {span[1]}) fits the padded input "
                             f"({padded[0]} x {padded[1]})")
        object.__setattr__(self, "w_bits", _weight_bits(name, self.w_bits, self.out_channels))
        _check_bits(name, "act_bits", self.act_bits)
        _check_bool(name, "relu", self.relu)

    @property
    def depthwise(self) -> bool:
        return self.groups == self.in_channels > 1

    @property
    def out_h(self) -> int:
        return _out_size(self.in_h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0])

    @property
    def out_w(self) -> int:
        return _out_size(self.in_w, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1])

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return self.out_channels, self.out_h, self.out_w


def _out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class Linear:
    """A fully connected layer over ``batch`` inputs; ``relu`` defaults to False (a classifier's logits)."""

    name: str
    in_features: int
    out_features: int
    _: KW_ONLY
    batch: int = 1
    w_bits: int | tuple[int, ...] = field(default=8, repr=False)
    act_bits: int = 8
    relu: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        for attr in ("in_features", "out_features", "batch"):
            _check_int(self.name, attr, getattr(self, attr), 1)
        object.__setattr__(self, "w_bits", _weight_bits(self.name, self.w_bits, self.out_features))
        _check_bits(self.name, "act_bits", self.act_bits)
        _check_bool(self.name, "relu", self.relu)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return self.out_features, 1, 1


@dataclass(frozen=True)
class HostOp:
    """An operation the host runs on ``batch`` feature maps of ``shape`` (C, H, W): ``kind`` from `HOST_KINDS`.

    ``add`` sums two such maps; ``avgpool`` / ``maxpool`` use ``kernel`` and ``stride`` (no padding);
    ``global_avgpool`` averages each channel to one value.
    """

    name: str
    kind: str
    shape: tuple[int, int, int]
    _: KW_ONLY
    batch: int = 1
    kernel: int = 1
    stride: int = 1
    act_bits: int = 8

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.kind not in HOST_KINDS:
            raise InputError(f"{self.name}.kind", self.kind, f"one of {list(HOST_KINDS)}")
        object.__setattr__(self, "shape", _ints(self.name, "shape", self.shape, 3, 1))
        for attr in ("batch", "kernel", "stride"):
            _check_int(self.name, attr, getattr(self, attr), 1)
        if self.kind in POOL_KINDS and self.kernel > min(self.shape[1:]):
            raise InputError(f"{self.name}.kernel", self.kernel,
                             f"a pooling window within the input ({self.shape[1]} x {self.shape[2]})")
        _check_bits(self.name, "act_bits", self.act_bits)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.shape
        if self.kind == "global_avgpool":
            return c, 1, 1
        if self.kind in POOL_KINDS:
            return c, (h - self.kernel) // self.stride + 1, (w - self.kernel) // self.stride + 1
        return self.shape


Layer = Conv2d | Linear | HostOp


# ---- lowering


@dataclass(frozen=True)
class Lowered:
    """``count`` GEMMs of one shape and one set of per-channel bit widths (the groups of a grouped conv that have
    the same weight bits; 1 for a dense conv or a linear layer)."""

    gemm: Gemm
    count: int = 1

    @property
    def macs(self) -> int:
        return self.count * self.gemm.m * self.gemm.k * self.gemm.n


def gemms(layer: Layer, *, windowed: bool = True) -> list[Lowered]:
    """The accelerator GEMMs of ``layer``, groups with identical bits merged (first-appearance order); none for a
    `HostOp`. A conv's A is its im2col, formed by the host as it lays A out (see the module docstring). With
    ``windowed=False`` a depthwise conv lowers as a grouped one (the path before the depthwise mode, which
    `codesign.bench.depthwise` compares against)."""
    if isinstance(layer, Linear):
        return [Lowered(Gemm(layer.batch, layer.in_features, layer.out_features, layer.w_bits))]
    if isinstance(layer, HostOp):
        return []
    m = layer.batch * layer.out_h * layer.out_w
    window = depthwise_window(layer) if windowed else None
    if window is not None:
        return [Lowered(Gemm(m, layer.kernel[0] * layer.kernel[1], layer.out_channels, layer.w_bits, window))]
    k = layer.in_channels // layer.groups * layer.kernel[0] * layer.kernel[1]
    n = layer.out_channels // layer.groups
    counts = Counter(layer.w_bits[g * n:(g + 1) * n] for g in range(layer.groups))
    return [Lowered(Gemm(m, k, n, bits), count) for bits, count in counts.items()]


def depthwise_window(layer: Conv2d) -> Window | None:
    """The `Window` of a depthwise conv that the array's depthwise mode runs, or None (see the module docstring)."""
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    if not (layer.depthwise and layer.out_channels == layer.in_channels and layer.dilation == (1, 1)
            and sh == sw in DW_STRIDES and ph == pw < min(kh, kw) and max(kh, kw) <= DW_KERNEL_MAX):
        return None
    return Window(height=layer.in_h, width=layer.in_w, kernel=(kh, kw), stride=sh, padding=ph, images=layer.batch)


def check_layer_bits(cfg: HardwareConfig, layer: Layer) -> None:
    """The one rule for a layer's bit widths on ``cfg``, which `codesign map`, `codesign sim layer` and
    `codesign verify` all apply: every weight at most ``weight_bits_max`` bits (the widest the PEs take digit by
    digit) and the activations at most ``act_bits`` (the buffers' and the requantizer's width; host layers too,
    since they work on the accelerator's feature maps). An `InputError` names the layer and the field."""
    if not isinstance(layer, HostOp) and max(layer.w_bits) > cfg.weight_bits_max:
        raise InputError(f"{layer.name} w_bits", max(layer.w_bits), f"at most weight_bits_max={cfg.weight_bits_max}")
    if layer.act_bits > cfg.act_bits:
        raise InputError(f"{layer.name} act_bits", layer.act_bits, f"at most act_bits={cfg.act_bits}")


def macs(layer: Layer) -> int:
    """Multiply-accumulates on the accelerator (0 for a host operation)."""
    return sum(lowered.macs for lowered in gemms(layer))


def placement(layer: Layer) -> str:
    """``"accelerator"`` for a conv or linear layer, ``"host"`` for a `HostOp`.

    A depthwise conv runs on the accelerator too: on its depthwise mode (`depthwise_window`), or else as per-channel
    GEMMs of N = 1, which use 1 of the array's ``cols`` columns and which `gemms` reports that way, so the cost model
    prices them honestly (slowly).
    """
    return "host" if isinstance(layer, HostOp) else "accelerator"


# ---- networks


# (expansion t, output channels c, blocks n, first stride s) per stage (Sandler et al. 2018, table 2)
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1))


def _make_divisible(channels: float, divisor: int = 8) -> int:
    """Channels scaled by a width multiplier, rounded to a multiple of 8 and never 10 % below (the reference
    implementation's rule, so widths other than 1.0 match published models)."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def mobilenet_v2(resolution: int = 224, batch: int = 1, width: float = 1.0, w_bits: int = 8,
                 classes: int = 1000) -> list[Layer]:
    """The ImageNet MobileNetV2 at ``resolution`` x ``resolution``, named as `codesign.quant.supernet` names its layers.

    Stem 3x3 stride 2; inverted residual blocks (1x1 expand unless t = 1, 3x3 depthwise, 1x1 project without ReLU,
    a residual add where the stride is 1 and the channels match); 1x1 head to 1280 channels; global average
    pooling; the classifier.
    """
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise InputError("resolution", resolution, "a positive number of pixels")
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not 0 < width:
        raise InputError("width", width, "a positive width multiplier")
    common = {"batch": batch, "w_bits": w_bits}
    channels = _make_divisible(32 * width)
    stem = Conv2d("stem", 3, channels, 3, stride=2, padding=1, in_h=resolution, in_w=resolution, **common)
    layers: list[Layer] = [stem]
    size, i = stem.out_h, 0
    for t, c, n, s in MOBILENET_V2_STAGES:
        out_channels = _make_divisible(c * width)
        for b in range(n):
            stride, hidden = (s if b == 0 else 1), channels * t
            if t != 1:
                layers.append(Conv2d(f"blocks.{i}.expand", channels, hidden, 1, in_h=size, in_w=size, **common))
            depthwise = Conv2d(f"blocks.{i}.depthwise", hidden, hidden, 3, stride=stride, padding=1, groups=hidden,
                               in_h=size, in_w=size, **common)
            out = depthwise.out_h
            layers += [depthwise, Conv2d(f"blocks.{i}.project", hidden, out_channels, 1, in_h=out, in_w=out,
                                         relu=False, **common)]
            if stride == 1 and channels == out_channels:
                layers.append(HostOp(f"blocks.{i}.add", "add", (out_channels, out, out), batch=batch))
            channels, size, i = out_channels, out, i + 1
    head_channels = _make_divisible(1280 * max(1.0, width))
    layers += [Conv2d("head", channels, head_channels, 1, in_h=size, in_w=size, **common),
               HostOp("pool", "global_avgpool", (head_channels, size, size), batch=batch),
               Linear("classifier", head_channels, classes, **common)]
    return layers


def from_integer_model(model: IntegerModel, batch: int = 1) -> list[Layer]:
    """The layers of an exported integer model, in its execution order.

    ``conv`` and ``dwconv`` (``groups = C``) become `Conv2d` with the exported stride, padding and weight bits;
    ``linear`` becomes `Linear` with ``in_features = pool * C``, because the export folds the global average pooling
    into the classifier (A is the whole feature map per image); ``add`` becomes a `HostOp`.
    """
    shapes = {"input": tuple(model.input_shape)}
    layers: list[Layer] = []
    for layer in model.layers:
        c, h, w = (int(v) for v in shapes[layer.inputs[0]])
        act_bits = int(layer.in_bits[0])
        w_bits = None if layer.w_bits is None else tuple(int(b) for b in layer.w_bits)
        if layer.kind in ("conv", "dwconv"):
            layers.append(Conv2d(layer.name, c, int(layer.out_shape[0]), int(layer.weight.shape[-1]),
                                 stride=int(layer.stride), padding=int(layer.padding),
                                 groups=c if layer.kind == "dwconv" else 1, in_h=h, in_w=w, batch=batch,
                                 w_bits=w_bits, act_bits=act_bits, relu=bool(layer.requant.relu)))
        elif layer.kind == "linear":
            layers.append(Linear(layer.name, int(layer.pool) * c, int(layer.out_shape[0]), batch=batch,
                                 w_bits=w_bits, act_bits=act_bits, relu=bool(layer.requant.relu)))
        elif layer.kind == "add":
            layers.append(HostOp(layer.name, "add", (c, h, w), batch=batch, act_bits=act_bits))
        else:
            raise InputError(f"{layer.name}.kind", layer.kind, "one of ['conv', 'dwconv', 'linear', 'add']")
        shapes[layer.name] = layer.out_shape
    return layers


# ---- JSON


LAYER_TYPES = {"conv2d": Conv2d, "linear": Linear, "host": HostOp}
_TYPE_NAMES = {cls: name for name, cls in LAYER_TYPES.items()}


def _field_names(cls: type) -> dict[str, bool]:
    """A layer class's fields, each mapped to whether it is required."""
    return {f.name: f.default is MISSING for f in fields(cls)}


def layers_to_json(layers: list[Layer]) -> list[dict]:
    """JSON-ready objects: ``"type"`` (``"conv2d"``, ``"linear"`` or ``"host"``) and every field."""
    return [{"type": _TYPE_NAMES[type(layer)], **{f.name: _json_value(getattr(layer, f.name)) for f in fields(layer)}}
            for layer in layers]


def _json_value(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def layers_from_json(data: object) -> list[Layer]:
    """Layers from JSON objects as `layers_to_json` writes them (optional fields may be left out); at least one."""
    if not isinstance(data, list):
        raise InputError("layers", type(data).__name__, "a JSON list of layer objects")
    if not data:
        raise InputError("layers", "[]", "a JSON list of at least one layer object")
    layers: list[Layer] = []
    names: set[str] = set()
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise InputError(f"layers[{i}]", entry, "an object with a 'type' key")
        cls = LAYER_TYPES.get(entry.get("type"))
        if cls is None:
            raise InputError(f"layers[{i}].type", entry.get("type"), f"one of {list(LAYER_TYPES)}")
        label = f"layers[{i}] ({entry['name']})" if isinstance(entry.get("name"), str) else f"layers[{i}]"
        known = _field_names(cls)
        for key in entry:
            if key != "type" and key not in known:
                raise InputError(f"{label}.{key}", entry[key], f"a {entry['type']} field: one of {list(known)}")
        for key, required in known.items():
            if required and key not in entry:
                raise InputError(f"{label}.{key}", "missing",
                                 f"a value: {entry['type']} needs {[k for k, r in known.items() if r]}")
        try:
            layer = cls(**{key: value for key, value in entry.items() if key != "type"})
        except InputError as exc:
            raise exc.within(f"layers[{i}]") from None
        if layer.name in names:
            raise InputError(f"layers[{i}].name", layer.name, "a name no earlier layer has")
        names.add(layer.name)
        layers.append(layer)
    return layers


def save_layers(path: str | Path, layers: list[Layer]) -> Path:
    return atomic_write_json(path, layers_to_json(layers))


def load_layers(path: str | Path) -> list[Layer]:
    """The layers of a JSON file; an error in an entry names the file too."""
    data = read_json(path, "layers file", "JSON file: a list of layer objects")
    try:
        return layers_from_json(data)
    except InputError as exc:
        raise exc.within(str(path)) from None
