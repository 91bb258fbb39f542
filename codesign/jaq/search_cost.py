"""What a searched network costs on the hardware candidates: BatchTile inside the search's loss, and exact pricing of
derived designs.

`arch_layers` turns a supernet architecture (and, when known, its per-channel bits) into the layer IR of
`codesign.ir.layers`, named as `QuantNet` and the integer export name them: the stem, each block's expand /
depthwise / project convolutions and residual add, the head, and the classifier as a `Linear` over the whole last
feature map (the export folds the global average pooling into it). A run of
the accelerator takes a batch of images (M = batch x output pixels), as `make verify` runs them.

`SearchCost` is the differentiable cost of one search step: the sampled architecture's layers are priced on every
hardware candidate in one `price_mappings` call, with each column tile's digits replaced by their expectation
under the layers' per-channel bit probabilities (`expected_tile_digits`, per distinct (cols, g) of the
candidates); each layer's cost is multiplied by the straight-through gates of the choices it belongs to, so the
architecture logits, the bit logits and the hardware distribution all receive the cost's gradient.
`SearchCost.expected` takes the loss's expectations under the hardware distribution: the one place they are taken
(BatchTile prices; the search, its only user, weighs).

`network_costs` prices a fixed network (known bits) on every candidate exactly: the derivation and the baselines.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from codesign.compiler.batchtile import Constants, HardwareBatch, LayerBatch, expected_tile_digits, price_mappings
from codesign.compiler.mapper import gemm_entries
from codesign.ir.layers import Conv2d, HostOp, Layer, Linear, gemms, placement
from codesign.quant.csq import split_channels
from codesign.quant.supernet import ArchChoice, ArchGates, LayerBits, SearchConv, SuperNet

CLASSIFIER_BITS = 8           # the classifier keeps 8-bit weights (`SuperNet.chosen_bits`)


@dataclass(frozen=True)
class PlacedLayer:
    """A layer of the architecture, with the supernet layer that holds its bit logits and where its gates are."""

    layer: Layer
    search: SearchConv | None     # None: the classifier and the residual adds
    stage: int | None             # None: stem, head, classifier
    block: int | None             # index within the stage, None outside blocks


def arch_layers(net: SuperNet, arch: ArchChoice, bits: dict[str, LayerBits] | None = None, *,
                batch: int = 1) -> list[PlacedLayer]:
    """The architecture's layers in execution order, for ``batch`` images per accelerator run. Without ``bits``,
    weights are 8-bit placeholders (the search prices the bits through the digits it passes to BatchTile)."""
    spec = net.spec
    sub = net.subnet_layers(arch)

    def w_bits(name: str, channels: int) -> tuple[int, ...]:
        return tuple(bits[name].w) if bits is not None else (8,) * channels

    def a_bits(name: str) -> int:
        return bits[name].a if bits is not None else 8

    placed: list[PlacedLayer] = []
    size = spec.image_size

    def conv(name: str, stage, block, in_act_bits: int) -> None:
        nonlocal size
        s = sub[name]
        layer = s.layer
        groups = s.in_channels if layer.depthwise else 1
        conv = Conv2d(name, s.in_channels, s.out_channels, s.kernel, stride=layer.stride, padding=s.kernel // 2,
                      groups=groups, in_h=size, in_w=size, batch=batch, w_bits=w_bits(name, s.out_channels),
                      act_bits=in_act_bits, relu=layer.relu)
        placed.append(PlacedLayer(conv, layer, stage, block))
        size = conv.out_h

    act = 8                               # the input image's bits
    conv("stem", None, None, act)
    act = a_bits("stem")
    i = 0
    for s in range(len(spec.stages)):
        for b in range(arch.depths[s]):
            block_in = act
            for part in ("expand", "depthwise", "project"):
                name = f"blocks.{i}.{part}"
                if name in sub:
                    conv(name, s, b, act)
                    act = a_bits(name)
            if f"blocks.{i}.add" in sub:
                c = sub[f"blocks.{i}.add"].out_channels
                placed.append(PlacedLayer(HostOp(f"blocks.{i}.add", "add", (c, size, size), batch=batch,
                                                 act_bits=max(block_in, act)), None, s, b))
                act = a_bits(f"blocks.{i}.add")
            i += 1
    conv("head", None, None, act)
    head = sub["head"]
    classifier = sub["classifier"]
    placed.append(PlacedLayer(Linear("classifier", size * size * head.out_channels, classifier.out_channels,
                                     batch=batch, w_bits=w_bits("classifier", classifier.out_channels),
                                     act_bits=a_bits("head")), None, None, None))
    return placed


def channel_bit_probs(layer: SearchConv, out_channels: int, fraction: float) -> torch.Tensor:
    """[out_channels, bit choices]: each channel's bit distribution (its group's softmax). Channels outside the
    CSQ selection carry no branches and their logits learn nothing from the loss; they take the mean distribution
    of the selected channels, as `SearchConv.chosen_bits` gives them the layer's consensus."""
    probs = layer.w_logits.softmax(-1).repeat_interleave(layer.spec.group_size, 0)[:out_channels]
    sel, rest = split_channels(layer.rank, out_channels, fraction)
    if len(rest):
        probs = probs.index_copy(0, rest, probs.index_select(0, sel).mean(0).expand(len(rest), -1))
    return probs


class SearchCost:
    """Expected cycles, energy, DRAM bytes and area of a sampled network under the hardware distribution."""

    def __init__(self, hw: HardwareBatch, constants: Constants, *, latency: float, batch: int = 1):
        self.hw, self.constants, self.latency, self.batch = hw, constants, latency, batch
        pairs = [(cfg.cols, cfg.digit_bits) for cfg in hw.configs]
        self.combos = sorted(set(pairs))
        device = hw.t["rows"].device
        self.combo_of = torch.tensor([self.combos.index(p) for p in pairs], device=device)

    def per_layer(self, net: SuperNet, arch: ArchChoice, gates: ArchGates | None) -> dict:
        """Per (candidate, layer) cycles / energy / bytes of the sampled network's accelerator layers, gated."""
        placed = [p for p in arch_layers(net, arch, batch=self.batch) if placement(p.layer) == "accelerator"]
        dtype, device = self.hw.t["rows"].dtype, self.hw.t["rows"].device
        values = torch.tensor(net.spec.w_bits, dtype=dtype, device=device)
        shapes, counts, sums, maxes, gate_values = [], [], [], [], []
        for p in placed:
            (lowered,) = gemms(p.layer)          # 8-bit placeholders: one GEMM (a depthwise layer on the depthwise
            #                                     mode too; one outside it, C single-column GEMMs)
            shapes.append(lowered.gemm)
            counts.append(lowered.count)
            if p.search is None:             # the classifier: fixed 8-bit weights
                probs, bits = torch.ones(lowered.gemm.n, 1, dtype=dtype, device=device), \
                    torch.tensor([float(CLASSIFIER_BITS)], dtype=dtype, device=device)
            else:
                channels = p.layer.out_channels
                probs, bits = channel_bit_probs(p.search, channels, net.csq_fraction).to(dtype), values
            s_d, m_d = [], []
            for cols, g in self.combos:
                if lowered.count > 1:        # depthwise outside the depthwise mode: a single-column GEMM a channel
                    per_channel = probs @ torch.ceil(bits / g)
                    s_d.append(per_channel.mean())
                    m_d.append(per_channel.max())
                else:
                    total, widest = expected_tile_digits(probs, bits, cols, g)
                    s_d.append(total)
                    m_d.append(widest)
            sums.append(torch.stack(s_d))
            maxes.append(torch.stack(m_d))
            gate = torch.ones((), dtype=dtype, device=device)
            if gates is not None and p.stage is not None:
                gate = gates.stages[p.stage].to(dtype) * gates.blocks[p.stage][p.block].to(dtype)
            gate_values.append(gate)
        digits = (torch.stack(sums, 1)[self.combo_of], torch.stack(maxes, 1)[self.combo_of])     # [H, L]
        layers = LayerBatch.from_gemms(shapes, counts=counts, names=[p.layer.name for p in placed],
                                       device=device, dtype=dtype)
        best = price_mappings(self.hw, layers, self.constants, latency=self.latency, digits=digits).best()
        gate = torch.stack(gate_values)[None]
        return {"names": layers.names, **{key: best[key] * gate for key in ("cycles", "energy_pj", "dram_bytes")}}

    def expected(self, per_layer: dict, hw_probs: torch.Tensor) -> dict:
        """The loss's terms: expectations under ``hw_probs`` [H] (zero on candidates the network does not fit)."""
        fits = torch.isfinite(per_layer["cycles"]).all(-1)
        terms = {}
        for key in ("cycles", "energy_pj", "dram_bytes"):
            totals = torch.where(fits, torch.nan_to_num(per_layer[key], posinf=0.0).sum(-1), 0.0)
            terms[key] = (hw_probs * totals).sum()
        for key in ("area_luts", "brams"):
            terms[key] = (hw_probs * self.hw.t[key]).sum()
        return terms


def network_costs(hw: HardwareBatch, layers: list[Layer], constants: Constants, *, latency: float) -> dict:
    """Exact totals of a network with known bits on every candidate: ``cycles``, ``energy_pj``, ``dram_bytes``
    [H] (inf where a layer fits no mapping) and ``layer_cycles`` [H, layers] per accelerator layer."""
    accel = [layer for layer in layers if placement(layer) == "accelerator"]
    entries, owner = gemm_entries(accel)
    dtype = torch.float64
    batch = LayerBatch.from_gemms([gemm for _, gemm, _ in entries], counts=[count for _, _, count in entries],
                                  device=hw.t["rows"].device, dtype=dtype)
    best = price_mappings(hw, batch, constants, latency=latency).best()
    owner_t = torch.tensor(owner, device=hw.t["rows"].device)
    result = {}
    for key in ("cycles", "energy_pj", "dram_bytes"):
        values = best[key].to(dtype)
        per_layer = torch.zeros(values.shape[0], len(accel), dtype=dtype, device=values.device)
        per_layer.index_add_(1, owner_t, values)
        result[key] = per_layer.sum(-1)
        if key == "cycles":
            result["layer_cycles"] = per_layer
    result["names"] = [layer.name for layer in accel]
    result["fits"] = torch.isfinite(result["cycles"])
    return result
