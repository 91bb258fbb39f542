"""The searchable MobileNetV2-style supernet, with multi-branch bit search and CSQ, and subnet extraction.

Search space (per `SupernetSpec`):
- per block: depthwise kernel from ``kernels`` (3, 5, 7) and expansion ratio from ``expands`` (1, 3, 6);
- per stage: depth (1 .. the stage's maximum; blocks past it are skipped) and a width multiplier from ``widths``;
- per layer: a weight bit width per group of ``group_size`` output channels from ``w_bits`` and an activation bit
  width from ``a_bits``.

Weight sharing: one weight tensor per layer at its largest shape. A smaller kernel is the centre crop of the 7x7
kernel, a smaller expansion or width takes the first channels, and the BatchNorm is sliced the same way.

Modes: ``fp`` trains the shared weights in float; ``search`` mixes the weight bit branches and the activation bit
branches with Gumbel-softmax weights (temperature ``tau``) on the top ``csq_fraction`` of each layer's channels
(`codesign.quant.csq`), the other channels unquantized. The architecture is an argument of every forward pass
(`ArchChoice`); how it is sampled or relaxed is the search's business.

`extract_subnet(arch, bits)` builds the chosen network as a standalone `codesign.quant.qmodel.QuantNet` with its own
per-channel bit widths; `build_quantnet(spec)` rebuilds one from its JSON description.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from codesign.errors import InputError
from codesign.hw.config import ceil_div
from codesign.quant.csq import CsqSchedule, RecomputedTail, multibranch_conv, split_channels
from codesign.quant.qmodel import QuantNet, build_quantnet
from codesign.quant.quantizers import check_bits, input_fake_quant, lsq_init_step, lsq_quantize, positive, quant_range


@dataclass(frozen=True)
class StageSpec:
    channels: int     # output channels at width 1.0
    depth: int        # largest number of blocks
    stride: int       # stride of the stage's first block


@dataclass(frozen=True)
class SupernetSpec:
    in_channels: int = 1
    image_size: int = 8
    classes: int = 10
    stem_channels: int = 16
    stem_stride: int = 1
    stages: tuple[StageSpec, ...] = (StageSpec(16, 1, 1), StageSpec(24, 2, 2), StageSpec(32, 2, 2))
    head_channels: int = 64
    kernels: tuple[int, ...] = (3, 5, 7)
    expands: tuple[int, ...] = (1, 3, 6)
    widths: tuple[float, ...] = (0.5, 0.75, 1.0)
    w_bits: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
    a_bits: tuple[int, ...] = (4, 8)
    group_size: int = 1

    def __post_init__(self) -> None:
        check_bits("w_bits", self.w_bits)
        check_bits("a_bits", self.a_bits)
        if any(k % 2 == 0 or k < 1 for k in self.kernels):
            raise InputError("kernels", list(self.kernels), "odd kernel sizes")
        if self.group_size < 1:
            raise InputError("group_size", self.group_size, "a positive number of channels")


DIGITS = SupernetSpec()
CIFAR10 = SupernetSpec(in_channels=3, image_size=32, stem_channels=32, head_channels=192,
                       stages=(StageSpec(16, 1, 1), StageSpec(24, 2, 2), StageSpec(32, 3, 2),
                               StageSpec(64, 3, 2), StageSpec(96, 2, 1)))
# MobileNetV2's ImageNet layout, for the GPU memory benchmark at 224 x 224
IMAGENET = SupernetSpec(in_channels=3, image_size=224, classes=1000, stem_channels=32, stem_stride=2,
                        head_channels=1280,
                        stages=(StageSpec(16, 1, 1), StageSpec(24, 2, 2), StageSpec(32, 3, 2), StageSpec(64, 4, 2),
                                StageSpec(96, 3, 1), StageSpec(160, 3, 2), StageSpec(320, 1, 1)))


@dataclass(frozen=True)
class ArchChoice:
    """One network of the search space: per stage a depth and a width, per block a kernel and an expansion."""

    depths: tuple[int, ...]
    widths: tuple[float, ...]
    kernels: tuple[tuple[int, ...], ...]
    expands: tuple[tuple[int, ...], ...]

    @classmethod
    def largest(cls, spec: SupernetSpec) -> ArchChoice:
        return cls.uniform(spec, max(spec.kernels), max(spec.expands))

    @classmethod
    def uniform(cls, spec: SupernetSpec, kernel: int, expand: int) -> ArchChoice:
        return cls(tuple(s.depth for s in spec.stages), tuple(max(spec.widths) for _ in spec.stages),
                   tuple((kernel,) * s.depth for s in spec.stages), tuple((expand,) * s.depth for s in spec.stages))

    def validate(self, spec: SupernetSpec) -> None:
        n = len(spec.stages)
        for name in ("depths", "widths", "kernels", "expands"):
            if len(getattr(self, name)) != n:
                raise InputError(f"arch.{name}", getattr(self, name), f"one entry per stage ({n})")
        for s, stage in enumerate(spec.stages):
            if not 1 <= self.depths[s] <= stage.depth:
                raise InputError(f"arch.depths[{s}]", self.depths[s], f"an integer from 1 to {stage.depth}")
            if self.widths[s] not in spec.widths:
                raise InputError(f"arch.widths[{s}]", self.widths[s], f"one of {list(spec.widths)}")
            for name, allowed in (("kernels", spec.kernels), ("expands", spec.expands)):
                values = getattr(self, name)[s]
                if len(values) < self.depths[s] or any(v not in allowed for v in values[:self.depths[s]]):
                    raise InputError(f"arch.{name}[{s}]", values, f"{self.depths[s]} values from {list(allowed)}")

    def stage_channels(self, spec: SupernetSpec) -> list[int]:
        return [max(1, math.ceil(stage.channels * w)) for stage, w in zip(spec.stages, self.widths)]


@dataclass(frozen=True)
class ArchGates:
    """Straight-through multipliers (value 1) of a sampled architecture: per stage and block, the gate of its
    (kernel, expansion) choice; per stage, the gate of its (depth, width) choice."""

    blocks: tuple[tuple[torch.Tensor, ...], ...]
    stages: tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class LayerBits:
    """A subnet layer's bit widths: one weight width per output channel and the output activation width."""

    w: tuple[int, ...] = field(default=())
    a: int = 8


def mean_weight_bits(bits: dict[str, LayerBits]) -> float:
    """Mean weight width over the channels of every layer but the classifier (which keeps 8 bits)."""
    widths = [b for name, layer in bits.items() if name != "classifier" for b in layer.w]
    return sum(widths) / len(widths)


@dataclass(frozen=True)
class SubnetLayer:
    layer: SearchConv | None     # the shared layer (None for a residual add and for the classifier)
    in_channels: int
    out_channels: int
    kernel: int


class SearchConv(nn.Module):
    """One searchable conv + BatchNorm (+ ReLU): shared weights at the largest shape, bit logits and LSQ steps per
    bit choice, the CSQ channel ranking."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, *, depthwise: bool,
                 relu: bool, spec: SupernetSpec):
        super().__init__()
        self.depthwise, self.relu, self.stride, self.spec = depthwise, relu, stride, spec
        self.weight = nn.Parameter(torch.empty(out_channels, 1 if depthwise else in_channels, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bn = nn.BatchNorm2d(out_channels)
        groups = ceil_div(out_channels, spec.group_size)
        self.w_logits = nn.Parameter(torch.zeros(groups, len(spec.w_bits)))
        self.a_logits = nn.Parameter(torch.zeros(len(spec.a_bits)))
        self.w_steps = nn.Parameter(torch.ones(len(spec.w_bits), out_channels))
        self.a_steps = nn.Parameter(torch.ones(len(spec.a_bits)))
        self.register_buffer("rank", torch.arange(out_channels))
        self.register_buffer("searched", torch.zeros(groups, dtype=torch.bool))   # groups that carried branches
        self.register_buffer("steps_initialized", torch.tensor(False))

    def shared_weight(self, in_channels: int, out_channels: int, kernel: int) -> torch.Tensor:
        """Weight sharing: the first channels and the centre ``kernel x kernel`` crop."""
        crop = (self.weight.shape[-1] - kernel) // 2
        weight = self.weight[:out_channels, :1 if self.depthwise else in_channels]
        return weight[:, :, crop:crop + kernel, crop:crop + kernel]

    def _conv(self, x, weight):
        return F.conv2d(x, weight, None, self.stride, weight.shape[-1] // 2, 1,
                        weight.shape[0] if self.depthwise else 1)

    def forward(self, x: torch.Tensor, out_channels: int, kernel: int, *, mode: str, fraction: float = 1.0,
                tau: float = 1.0) -> torch.Tensor:
        out_channels = x.shape[1] if self.depthwise else out_channels
        weight = self.shared_weight(x.shape[1], out_channels, kernel)
        bn = self.bn
        gamma, beta = bn.weight[:out_channels], bn.bias[:out_channels]
        if mode == "fp":
            y = F.batch_norm(self._conv(x, weight), bn.running_mean[:out_channels], bn.running_var[:out_channels],
                             gamma, beta, self.training, bn.momentum, bn.eps)
            return F.relu(y) if self.relu else y
        sel, rest = split_channels(self.rank, out_channels, fraction)
        self._init_steps(weight, x)
        self.searched[sel // self.spec.group_size] = True
        probs = F.gumbel_softmax(self.w_logits, tau).index_select(0, sel // self.spec.group_size)
        branches = [self._weight_branch(i, sel, weight) for i in range(len(self.spec.w_bits))]
        x_sel, x_rest = (x.index_select(1, sel), x.index_select(1, rest)) if self.depthwise else (x, x)
        y = multibranch_conv(x_sel, x_rest, weight, sel, rest, branches, probs, self._conv)
        self._update_bn_stats(y)
        a_probs = F.gumbel_softmax(self.a_logits, tau)
        return RecomputedTail.apply(lambda *t: self._tail(sel, *t), y, gamma, beta, a_probs, self.a_steps)

    def _weight_branch(self, i: int, sel: torch.Tensor, weight: torch.Tensor):
        qn, qp = quant_range(torch.tensor(self.spec.w_bits[i]), signed=True)
        step = positive(self.w_steps[i].index_select(0, sel)).view(-1, 1, 1, 1)
        factor = 1.0 / math.sqrt(weight[0].numel() * qp.item())
        return lambda w: lsq_quantize(w, step, qn, qp, factor)

    def _tail(self, sel, y, gamma, beta, a_probs, a_steps):
        """BatchNorm with batch statistics, ReLU, activation-bit branches on the selected channels."""
        a = F.batch_norm(y, None, None, gamma, beta, True, 0.0, self.bn.eps)
        a = F.relu(a) if self.relu else a
        a_sel = a.index_select(1, sel)
        factor = 1.0 / math.sqrt(a_sel[0].numel())
        mixed = sum(a_probs[j] * lsq_quantize(a_sel, positive(a_steps[j]), *quant_range(torch.tensor(b), not self.relu),
                                              factor / math.sqrt(2 ** b))
                    for j, b in enumerate(self.spec.a_bits))
        return a.index_copy(1, sel, mixed)

    @torch.no_grad()
    def _update_bn_stats(self, y: torch.Tensor) -> None:
        """Running statistics outside the recomputed tail, so the recomputation does not count a batch twice."""
        if self.training:
            c, m = y.shape[1], self.bn.momentum
            self.bn.running_mean[:c].mul_(1 - m).add_(y.mean((0, 2, 3)), alpha=m)
            self.bn.running_var[:c].mul_(1 - m).add_(y.var((0, 2, 3)), alpha=m)

    @torch.no_grad()
    def _init_steps(self, weight: torch.Tensor, x: torch.Tensor) -> None:
        if self.steps_initialized:
            return
        for i, b in enumerate(self.spec.w_bits):
            qp = quant_range(torch.tensor(b), signed=True)[1]
            self.w_steps[i, :weight.shape[0]] = lsq_init_step(weight, qp, (1, 2, 3))
        y = F.relu(x) if self.relu else x    # a stand-in of the output's magnitude before the first batch
        for j, b in enumerate(self.spec.a_bits):
            self.a_steps[j] = lsq_init_step(y, quant_range(torch.tensor(b), not self.relu)[1], ())
        self.steps_initialized.fill_(True)

    def chosen_bits(self, out_channels: int) -> LayerBits:
        """The most probable bit choices: per channel (through its group) and for the activation.

        A group that CSQ never selected has untrained logits; it takes the layer's consensus (the choice with the
        highest mean probability over the searched groups) instead of an arbitrary first choice.
        """
        choice = self.w_logits.argmax(1)
        if self.searched.any():
            consensus = self.w_logits[self.searched].softmax(1).mean(0).argmax()
            choice = torch.where(self.searched, choice, consensus)
        w = torch.tensor(self.spec.w_bits)[choice.cpu()]
        w = w.repeat_interleave(self.spec.group_size)[:out_channels]
        return LayerBits(tuple(int(b) for b in w), int(self.spec.a_bits[int(self.a_logits.argmax())]))


class SearchBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, spec: SupernetSpec):
        super().__init__()
        hidden = in_channels * max(spec.expands)
        self.stride = stride
        self.expand = SearchConv(in_channels, hidden, 1, 1, depthwise=False, relu=True, spec=spec)
        self.depthwise = SearchConv(hidden, hidden, max(spec.kernels), stride, depthwise=True, relu=True, spec=spec)
        self.project = SearchConv(hidden, out_channels, 1, 1, depthwise=False, relu=False, spec=spec)

    def forward(self, x, out_channels: int, kernel: int, expand: int, gate: torch.Tensor | None = None, **kw):
        h = self.expand(x, x.shape[1] * expand, 1, **kw) if expand > 1 else x
        h = self.depthwise(h, h.shape[1], kernel, **kw)
        h = self.project(h, out_channels, 1, **kw)
        if gate is not None:        # the straight-through gate of the sampled (kernel, expand): 1 forward
            h = h * gate
        return x + h if self.stride == 1 and x.shape[1] == out_channels else h


class SuperNet(nn.Module):
    def __init__(self, spec: SupernetSpec = DIGITS):
        super().__init__()
        self.spec = spec
        self.csq_fraction = 1.0
        self.stem = SearchConv(spec.in_channels, spec.stem_channels, 3, spec.stem_stride, depthwise=False,
                               relu=True, spec=spec)
        stages, in_channels = [], spec.stem_channels
        for stage in spec.stages:
            blocks = [SearchBlock(in_channels if i == 0 else stage.channels, stage.channels,
                                  stage.stride if i == 0 else 1, spec) for i in range(stage.depth)]
            stages.append(nn.ModuleList(blocks))
            in_channels = stage.channels
        self.stages = nn.ModuleList(stages)
        self.head = SearchConv(in_channels, spec.head_channels, 1, 1, depthwise=False, relu=True, spec=spec)
        self.classifier = nn.Linear(spec.head_channels, spec.classes)

    def search_layers(self) -> list[SearchConv]:
        return [m for m in self.modules() if isinstance(m, SearchConv)]

    def csq_schedule(self, fraction: float, refresh_every: int) -> CsqSchedule:
        """CSQ with the top ``fraction`` of channels searched, the ranking refreshed every ``refresh_every`` steps."""
        schedule = CsqSchedule(self.search_layers(), fraction, refresh_every)
        self.csq_fraction = fraction
        return schedule

    def forward(self, images: torch.Tensor, arch: ArchChoice, *, mode: str = "fp", tau: float = 1.0,
                gates: ArchGates | None = None):
        """Logits of the network ``arch``. ``gates`` (from `codesign.jaq.arch_logits.ArchLogits.sample`) multiply
        each block's branch and each stage's output by the straight-through one-hot value of the sampled choice,
        1 in the forward pass, so the architecture logits get the loss's gradient (GDAS-style single-path
        search: only the sampled path runs)."""
        if mode not in ("fp", "search"):
            raise InputError("mode", mode, "'fp' or 'search'")
        kw = {"mode": mode, "fraction": self.csq_fraction, "tau": tau}
        x = self.stem(input_fake_quant(images) if mode == "search" else images, self.spec.stem_channels, 3, **kw)
        for s, (stage, width) in enumerate(zip(self.stages, arch.stage_channels(self.spec))):
            for b in range(arch.depths[s]):
                x = stage[b](x, width, arch.kernels[s][b], arch.expands[s][b],
                             gate=None if gates is None else gates.blocks[s][b], **kw)
            if gates is not None:
                x = x * gates.stages[s]
        x = self.head(x, self.spec.head_channels, 1, **kw)
        return self.classifier(x.mean((2, 3)))

    # ---- subnets

    def subnet_layers(self, arch: ArchChoice) -> dict[str, SubnetLayer]:
        """The subnet's quantized layers in order, named as in `QuantNet` and in the integer export."""
        arch.validate(self.spec)
        layers = {"stem": SubnetLayer(self.stem, self.spec.in_channels, self.spec.stem_channels, 3)}
        in_channels, i = self.spec.stem_channels, 0
        for s, width in enumerate(arch.stage_channels(self.spec)):
            for b in range(arch.depths[s]):
                block, hidden = self.stages[s][b], in_channels * arch.expands[s][b]
                if arch.expands[s][b] > 1:
                    layers[f"blocks.{i}.expand"] = SubnetLayer(block.expand, in_channels, hidden, 1)
                layers[f"blocks.{i}.depthwise"] = SubnetLayer(block.depthwise, hidden, hidden, arch.kernels[s][b])
                layers[f"blocks.{i}.project"] = SubnetLayer(block.project, hidden, width, 1)
                if block.stride == 1 and in_channels == width:
                    layers[f"blocks.{i}.add"] = SubnetLayer(None, width, width, 1)
                in_channels, i = width, i + 1
        layers["head"] = SubnetLayer(self.head, in_channels, self.spec.head_channels, 1)
        layers["classifier"] = SubnetLayer(None, self.spec.head_channels, self.spec.classes, 1)
        return layers

    def chosen_bits(self, arch: ArchChoice) -> dict[str, LayerBits]:
        """Bits from the search's logits (most probable choice). A residual add takes its project layer's width;
        the classifier keeps 8 / 8 bits."""
        bits = {}
        for name, sub in self.subnet_layers(arch).items():
            if sub.layer is not None:
                bits[name] = sub.layer.chosen_bits(sub.out_channels)
            elif name.endswith(".add"):
                bits[name] = LayerBits((), bits[name.replace(".add", ".project")].a)
            else:
                bits[name] = LayerBits((8,) * sub.out_channels, 8)
        return bits

    def uniform_bits(self, arch: ArchChoice, w_bits: int, a_bits: int) -> dict[str, LayerBits]:
        """Every conv at ``w_bits`` / ``a_bits``; the classifier at 8 / 8 (its logits decide the prediction)."""
        bits = {}
        for name, sub in self.subnet_layers(arch).items():
            if name == "classifier":
                bits[name] = LayerBits((8,) * sub.out_channels, 8)
            else:
                bits[name] = LayerBits((w_bits,) * sub.out_channels if sub.layer is not None else (), a_bits)
        return bits

    def extract_subnet(self, arch: ArchChoice, bits: dict[str, LayerBits]) -> QuantNet:
        """The chosen network as a standalone `QuantNet` holding copies of the shared weights, in ``fp`` mode."""
        layers = self.subnet_layers(arch)
        missing = sorted(set(layers) - set(bits))
        if missing:
            raise InputError("bits", missing[0], f"LayerBits for every layer: {list(layers)}")
        entries = {name: {"in": sub.in_channels, "out": sub.out_channels, "kernel": sub.kernel,
                          "stride": sub.layer.stride, "depthwise": sub.layer.depthwise, "relu": sub.layer.relu,
                          "w_bits": list(bits[name].w), "act_bits": bits[name].a}
                   for name, sub in layers.items() if sub.layer is not None}
        n_blocks = sum(name.endswith(".depthwise") for name in layers)
        blocks = [{"expand": entries.get(f"blocks.{i}.expand"), "depthwise": entries[f"blocks.{i}.depthwise"],
                   "project": entries[f"blocks.{i}.project"],
                   "add_bits": bits[f"blocks.{i}.add"].a if f"blocks.{i}.add" in layers else None}
                  for i in range(n_blocks)]
        classifier = layers["classifier"]
        spec = {"in_channels": self.spec.in_channels, "image_size": self.spec.image_size,
                "classes": self.spec.classes, "stem": entries["stem"], "blocks": blocks, "head": entries["head"],
                "classifier": {"in": classifier.in_channels, "out": classifier.out_channels,
                               "w_bits": list(bits["classifier"].w), "act_bits": bits["classifier"].a}}
        net = build_quantnet(spec)
        self._copy_weights(net, layers)
        return net

    @torch.no_grad()
    def _copy_weights(self, net: QuantNet, layers: dict[str, SubnetLayer]) -> None:
        targets = dict(net.named_modules())
        for name, sub in layers.items():
            if sub.layer is None:
                continue
            target = targets[name]
            target.conv.weight.copy_(sub.layer.shared_weight(sub.in_channels, sub.out_channels, sub.kernel))
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(target.bn, key).copy_(getattr(sub.layer.bn, key)[:sub.out_channels])
        net.classifier.linear.load_state_dict(self.classifier.state_dict())


def sample_arch(spec: SupernetSpec, generator: torch.Generator) -> ArchChoice:
    """A uniformly random architecture (single-path sampling, for training the shared weights)."""
    def pick(options: Sequence, n: int) -> tuple:
        return tuple(options[int(i)] for i in torch.randint(len(options), (n,), generator=generator))

    depths = tuple(int(torch.randint(1, s.depth + 1, (), generator=generator)) for s in spec.stages)
    return ArchChoice(depths, pick(spec.widths, len(spec.stages)),
                      tuple(pick(spec.kernels, s.depth) for s in spec.stages),
                      tuple(pick(spec.expands, s.depth) for s in spec.stages))
