"""`QuantNet`: a standalone quantized MobileNetV2-style network (a subnet extracted from the supernet).

Each layer runs in one of three modes, set for the whole network:

- ``fp``:  float conv -> BatchNorm (batch statistics) -> ReLU. Pre-training before QAT.
- ``qat``: BatchNorm folded into the conv with its running statistics (frozen from here on; gamma and beta still
  learn through the fold), LSQ fake quantization of the folded weights (per channel, own bit widths) and of every
  layer output, the bias rounded to the accumulator's grid. Float32 with straight-through gradients.
- ``int``: exactly the integer arithmetic of `codesign.hw.reference`, in float64 (exact for these magnitudes):
  integer weights and activations, integer bias, requantization by ``mult / 2**shift`` with round-half-up and the
  clamp. `QuantNet.forward` uses it whenever a quantized network is in eval mode, so the accuracy one measures in
  torch is the accuracy of the exported integer model, bit for bit (`codesign.ir.executor` checks it through the
  reference itself).

The clamp of an unsigned activation quantizer is the ReLU (as in the reference), so a quantized layer has no
separate ReLU. Layer outputs travel with their quantization step: ``forward(x, step) -> (y, step)``; ``step`` is
None in ``fp`` mode.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from codesign.errors import InputError
from codesign.files import atomic_write_bytes
from codesign.quant.quantizers import (
    INPUT_STEP,
    ActQuantizer,
    WeightQuantizer,
    fixed_point_multiplier,
    input_fake_quant,
    input_integers,
    max_abs_step,
    quant_range,
    round_half_up,
    round_ste,
)


@dataclass(frozen=True)
class IntegerParams:
    """A layer's integer weights and per-channel requantization (float64 tensors holding integers)."""

    weight: torch.Tensor | None
    bias: torch.Tensor
    mult: torch.Tensor
    shift: torch.Tensor


def requantize_exact(acc: torch.Tensor, p: IntegerParams, lo: float, hi: float) -> torch.Tensor:
    """`codesign.hw.reference.requantize` on a float64 NCHW (or NC) accumulator; exact while |x * mult| < 2**53."""
    view = (1, -1) + (1,) * (acc.dim() - 2)
    x = acc + p.bias.view(view)
    half = (p.shift > 0).double().view(view) * 0.5
    y = torch.floor(x * p.mult.view(view).double() / torch.pow(2.0, p.shift.view(view).double()) + half)
    return y.clamp(lo, hi)


class QLayer(nn.Module):
    """Common state: the mode and the output activation quantizer."""

    def __init__(self, act_bits: int, *, signed: bool):
        super().__init__()
        self.mode = "fp"
        self.aq = ActQuantizer(act_bits, signed=signed)

    @property
    def out_range(self) -> tuple[float, float]:
        qn, qp = self.aq.qrange
        return qn.item(), qp.item()

    def out_step(self) -> torch.Tensor:
        return self.aq.scale().detach().double()


class QConv(QLayer):
    """Conv (dense or depthwise) + BatchNorm (+ ReLU) with per-channel weight bits and a quantized output."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, *, depthwise: bool,
                 relu: bool, w_bits: Sequence[int], act_bits: int):
        super().__init__(act_bits, signed=not relu)
        if depthwise and in_channels != out_channels:
            raise InputError("depthwise channels", (in_channels, out_channels), "equal input and output channels")
        if len(w_bits) != out_channels:
            raise InputError("w_bits", len(w_bits), f"one bit width per output channel ({out_channels})")
        self.depthwise, self.relu = depthwise, relu
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2,
                              groups=out_channels if depthwise else 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.wq = WeightQuantizer(w_bits)

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias with the BatchNorm folded in, using its running statistics."""
        inv_std = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        return self.conv.weight * inv_std.view(-1, 1, 1, 1), self.bn.bias - self.bn.running_mean * inv_std

    def _conv(self, x, weight):
        return F.conv2d(x, weight, None, self.conv.stride, self.conv.padding, 1, self.conv.groups)

    def integer_params(self, in_step: torch.Tensor) -> IntegerParams:
        with torch.no_grad():
            weight, bias = self.folded()
            acc_step = in_step * self.wq.scale().double()
            mult, shift = fixed_point_multiplier(acc_step / self.out_step())
            return IntegerParams(self.wq.integer(weight).double(), round_half_up(bias.double() / acc_step),
                                 mult, shift)

    def forward(self, x: torch.Tensor, in_step):
        if self.mode == "fp":
            y = self.bn(self.conv(x))
            return (F.relu(y) if self.relu else y), None
        if self.mode == "int":
            p = self.integer_params(in_step)
            return requantize_exact(self._conv(x, p.weight), p, *self.out_range), self.out_step()
        weight, bias = self.folded()
        weight = self.wq(weight)      # first: its first call initializes the step
        acc_step = in_step * self.wq.scale()
        bias = round_ste(bias / acc_step) * acc_step
        y = self._conv(x, weight) + bias.view(1, -1, 1, 1)
        return self.aq(y), self.aq.scale()


class QAdd(QLayer):
    """Residual add, requantized to its own signed step: ``(x * mult_x + f * mult_f + round) >> shift``."""

    def __init__(self, act_bits: int):
        super().__init__(act_bits, signed=True)

    def input_mults(self, x_step: torch.Tensor, f_step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One multiplier per input and a common shift, set by the larger of the two scale ratios."""
        ratios = torch.stack([x_step, f_step]).double() / self.out_step()
        top, shift = fixed_point_multiplier(ratios.max())
        mults = torch.floor(ratios * torch.pow(2.0, shift.double()) + 0.5).to(torch.int64)
        return mults, shift

    def forward(self, x, x_step, f, f_step):
        if self.mode == "fp":
            return x + f, None
        if self.mode == "int":
            mults, shift = self.input_mults(x_step, f_step)
            acc = x * mults[0].double() + f * mults[1].double()
            p = IntegerParams(None, torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.int64),
                              shift.view(1))
            return requantize_exact(acc, p, *self.out_range), self.out_step()
        return self.aq(x + f), self.aq.scale()


class QClassifier(QLayer):
    """Global average pooling + linear, the pooling folded into the GEMM: it sums over the H*W pixels (K = H*W*C,
    the weights repeated per pixel) and the 1/(H*W) goes into the requantization multiplier. Signed logits."""

    def __init__(self, in_features: int, classes: int, *, w_bits: Sequence[int], act_bits: int = 8):
        super().__init__(act_bits, signed=True)
        if len(w_bits) != classes:
            raise InputError("w_bits", len(w_bits), f"one bit width per class ({classes})")
        self.linear = nn.Linear(in_features, classes)
        self.wq = WeightQuantizer(w_bits)

    def integer_params(self, in_step: torch.Tensor, pool: int) -> IntegerParams:
        with torch.no_grad():
            acc_step = in_step * self.wq.scale().double() / pool
            mult, shift = fixed_point_multiplier(acc_step / self.out_step())
            return IntegerParams(self.wq.integer(self.linear.weight).double(),
                                 round_half_up(self.linear.bias.double() / acc_step), mult, shift)

    def forward(self, x, in_step):
        pool = x.shape[2] * x.shape[3]
        if self.mode == "fp":
            return self.linear(x.mean((2, 3))), None
        if self.mode == "int":
            p = self.integer_params(in_step, pool)
            return requantize_exact(F.linear(x.sum((2, 3)), p.weight), p, *self.out_range), self.out_step()
        weight = self.wq(self.linear.weight)
        acc_step = in_step * self.wq.scale() / pool
        bias = round_ste(self.linear.bias / acc_step) * acc_step
        return self.aq(F.linear(x.mean((2, 3)), weight) + bias), self.aq.scale()


class QBlock(nn.Module):
    """Inverted residual: [1x1 expand] -> kxk depthwise -> 1x1 linear project [-> + input]."""

    def __init__(self, expand: QConv | None, depthwise: QConv, project: QConv, add: QAdd | None):
        super().__init__()
        self.expand, self.depthwise, self.project, self.add = expand, depthwise, project, add

    def forward(self, x, step, trace: dict | None = None, name: str = ""):
        h, s = x, step
        for part in ("expand", "depthwise", "project"):
            layer = getattr(self, part)
            if layer is not None:
                h, s = layer(h, s)
                _record(trace, f"{name}.{part}", h)
        if self.add is not None:
            h, s = self.add(x, step, h, s)
            _record(trace, f"{name}.add", h)
        return h, s


class QuantNet(nn.Module):
    """stem conv -> inverted-residual blocks -> 1x1 head conv -> pooled classifier."""

    def __init__(self, spec: dict, stem: QConv, blocks: Sequence[QBlock], head: QConv, classifier: QClassifier):
        super().__init__()
        self.spec = spec               # JSON-able description from `codesign.quant.supernet.extract_subnet`
        self.stem, self.blocks, self.head, self.classifier = stem, nn.ModuleList(blocks), head, classifier
        self.quantized = False

    def qlayers(self):
        return [m for m in self.modules() if isinstance(m, QLayer)]

    def set_quantized(self, quantized: bool = True) -> QuantNet:
        """Switch to QAT: from here on BatchNorm statistics are frozen and folded into the weights."""
        self.quantized = quantized
        return self

    def forward(self, images: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        mode = "fp" if not self.quantized else ("qat" if self.training else "int")
        for layer in self.qlayers():
            layer.mode = mode
        if mode == "fp":
            x, step = images, None
        elif mode == "qat":
            x, step = input_fake_quant(images), torch.tensor(INPUT_STEP)
        else:
            x, step = input_integers(images), torch.tensor(INPUT_STEP, dtype=torch.float64)
        x, step = self.stem(x, step)
        _record(trace, "stem", x)
        for i, block in enumerate(self.blocks):
            x, step = block(x, step, trace, f"blocks.{i}")
        x, step = self.head(x, step)
        _record(trace, "head", x)
        logits, step = self.classifier(x, step)
        _record(trace, "classifier", logits)
        return logits if mode == "fp" else (logits * step).float()

    @torch.no_grad()
    def integer_outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer's integer output (NCHW, float64) in ``int`` mode, named as in the export."""
        if not self.quantized:
            raise InputError("model", "float (not quantized)", "a QuantNet switched to QAT with set_quantized()")
        was_training = self.training
        self.eval()
        trace: dict[str, torch.Tensor] = {}
        self(images, trace)
        self.train(was_training)
        return trace

    def save(self, path: str | Path) -> None:
        """Written atomically: an interrupted save leaves the previous file."""
        buffer = io.BytesIO()
        torch.save({"spec": self.spec, "quantized": self.quantized, "state": self.state_dict()}, buffer)
        atomic_write_bytes(path, buffer.getvalue())


def weight_layers(net: QuantNet) -> dict[str, QConv | QClassifier]:
    """The layers with weights, named as in the export (``stem``, ``blocks.1.expand``, ..., ``classifier``)."""
    return {name: m for name, m in net.named_modules() if isinstance(m, (QConv, QClassifier))}


def with_weight_bits(net: QuantNet, bits: dict[str, Sequence[int]]) -> QuantNet:
    """A copy of ``net`` in which the named layers (`weight_layers` names) take the given per-channel weight widths.

    A channel whose width changes starts from the max-abs step of its (folded) weights at the new width, the
    quantization under which OHQ's MQE measured that width's sensitivity (`codesign.ohq.sensitivity.quantize_weight`);
    every other learned parameter, step and statistic is kept, so a short QAT continues from there.
    """
    layers = weight_layers(net)
    for name, widths in bits.items():
        if name not in layers:
            raise InputError("bits layer", name, f"one of {list(layers)}")
        if len(widths) != len(layers[name].wq.bits):
            raise InputError(f"{name} w_bits", len(widths),
                             f"one width per output channel ({len(layers[name].wq.bits)})")
    spec = copy.deepcopy(net.spec)
    entries = {"stem": spec["stem"], "head": spec["head"], "classifier": spec["classifier"]}
    for i, block in enumerate(spec["blocks"]):
        entries.update({f"blocks.{i}.{part}": block[part]
                        for part in ("expand", "depthwise", "project") if block[part]})
    state = net.state_dict()
    for name, widths in bits.items():
        entries[name]["w_bits"] = [int(b) for b in widths]
        state[f"{name}.wq.bits"] = torch.tensor(entries[name]["w_bits"], dtype=torch.int64)
    copied = build_quantnet(spec).set_quantized(net.quantized)
    copied.load_state_dict(state)
    copied.train(net.training)
    with torch.no_grad():
        for name, layer in weight_layers(copied).items():
            changed = layer.wq.bits != layers[name].wq.bits
            if changed.any() and layer.wq.initialized:
                weight = layer.folded()[0] if isinstance(layer, QConv) else layer.linear.weight
                qp = quant_range(layer.wq.bits, signed=True)[1]
                fresh = max_abs_step(weight, qp)
                layer.wq.step[changed] = fresh[changed]
    return copied


def load_quantnet(path: str | Path) -> QuantNet:
    """A network saved by `QuantNet.save`, loaded with ``weights_only=True`` (no code from the file runs)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("model", str(path), "an existing file written by QuantNet.save")
    try:
        data = torch.load(path, weights_only=True)
        net = build_quantnet(data["spec"]).set_quantized(bool(data["quantized"]))
        net.load_state_dict(data["state"])
    except Exception as exc:        # torch.load fails in many ways on a file that is not a checkpoint
        if isinstance(exc, InputError):
            raise
        raise InputError("model", str(path), f"a QuantNet checkpoint (spec, quantized, state) ({exc})") from None
    return net


def build_quantnet(spec: dict) -> QuantNet:
    """A `QuantNet` from its JSON description (written by `codesign.quant.supernet.SuperNet.extract_subnet`, kept in
    saved models)."""
    try:
        blocks = [QBlock(_qconv(b["expand"]) if b["expand"] else None, _qconv(b["depthwise"]),
                         _qconv(b["project"]), QAdd(b["add_bits"]) if b["add_bits"] else None)
                  for b in spec["blocks"]]
        c = spec["classifier"]
        classifier = QClassifier(c["in"], c["out"], w_bits=c["w_bits"], act_bits=c["act_bits"])
        return QuantNet(spec, _qconv(spec["stem"]), blocks, _qconv(spec["head"]), classifier)
    except (KeyError, TypeError) as exc:
        raise InputError("subnet spec", repr(exc), "stem, blocks (expand, depthwise, project, add_bits), head "
                         "and classifier entries as written by extract_subnet") from None


def _qconv(e: dict) -> QConv:
    return QConv(e["in"], e["out"], e["kernel"], e["stride"], depthwise=e["depthwise"], relu=e["relu"],
                 w_bits=e["w_bits"], act_bits=e["act_bits"])


def _record(trace: dict | None, name: str, value: torch.Tensor) -> None:
    if trace is not None:
        trace[name] = value

