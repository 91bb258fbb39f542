"""The search's cost terms: geometry, exactness against the mapper, gradients to every distribution."""

import pytest
import torch

from codesign.compiler.batchtile import Constants, HardwareBatch, LayerBatch, expected_tile_digits, price_mappings
from codesign.compiler.mapper import map_layers
from codesign.compiler.mapping import Gemm
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import HostOp
from codesign.jaq.arch_logits import ArchLogits
from codesign.jaq.hwspace import HardwareSpace
from codesign.jaq.search_cost import SearchCost, arch_layers, network_costs
from codesign.quant.supernet import DIGITS, ArchChoice, LayerBits, SuperNet

CONFIGS = HardwareSpace(rows=(4, 8), cols=(4, 8), digit_bits=(1, 2), act_buf_bytes=(16384,),
                        wgt_buf_bytes=(16384,)).candidates()


def _net():
    torch.manual_seed(0)
    net = SuperNet(DIGITS)
    net.csq_schedule(0.5, 1).refresh()
    return net


def test_arch_layers_name_and_shape_the_network_as_the_export_does():
    net = _net()
    arch = ArchChoice.largest(DIGITS)
    placed = arch_layers(net, arch)
    names = [p.layer.name for p in placed]
    subnet = net.subnet_layers(arch)
    assert names == [n for n in subnet]
    classifier = placed[-1].layer
    head = subnet["head"]
    # the classifier folds the pooling: K = pixels x channels of the last feature map (8x8 -> 2x2 after two strides)
    assert classifier.in_features == 2 * 2 * head.out_channels
    assert all(isinstance(p.layer, HostOp) for p in placed if p.layer.name.endswith(".add"))


def test_network_costs_match_the_mapper_on_every_candidate():
    net = _net()
    arch = ArchChoice.uniform(DIGITS, 5, 3)
    bits = net.uniform_bits(arch, 4, 8)
    bits["stem"] = LayerBits((2, 3, 4, 5, 6, 8) * 2 + (8,) * 4, 8)
    layers = [p.layer for p in arch_layers(net, arch, bits)]
    costs = network_costs(HardwareBatch.from_configs(CONFIGS), layers, Constants(), latency=20)
    for h in (0, len(CONFIGS) - 1):
        mapped = map_layers(CONFIGS[h], layers, latency=20, constants=Constants())
        assert abs(float(costs["cycles"][h]) - mapped["total_cycles"]) <= 1e-3 * mapped["total_cycles"]


def test_expected_cost_equals_the_exact_cost_when_the_bits_are_certain():
    """With every bit distribution one-hot (logits far apart), the differentiable cost is the exact one."""
    net = _net()
    arch = ArchChoice.uniform(DIGITS, 3, 3)
    for layer in net.search_layers():
        with torch.no_grad():
            layer.w_logits.fill_(-30.0)
            layer.w_logits[:, DIGITS.w_bits.index(4)] = 30.0
    hw = HardwareBatch.from_configs(CONFIGS, dtype=torch.float64)
    cost = SearchCost(hw, Constants(), latency=20)
    per_layer = cost.per_layer(net, arch, None)
    bits = net.uniform_bits(arch, 4, 8)
    exact = network_costs(hw, [p.layer for p in arch_layers(net, arch, bits)], Constants(), latency=20)
    assert torch.allclose(per_layer["cycles"].sum(-1), exact["cycles"], rtol=1e-6)


def test_cost_gradients_reach_the_architecture_the_bits_and_the_hardware():
    net = _net()
    logits = ArchLogits(DIGITS)
    hw = HardwareBatch.from_configs(CONFIGS)
    cost = SearchCost(hw, Constants(), latency=20)
    hw_logits = torch.zeros(len(CONFIGS), requires_grad=True)
    torch.manual_seed(1)
    arch, gates = logits.sample(1.0)
    assert all(float(g) == 1.0 for g in gates.stages)
    terms = cost.expected(cost.per_layer(net, arch, gates), hw_logits.softmax(0))
    terms["cycles"].backward()
    assert logits.width.grad.abs().sum() > 0
    assert net.stem.w_logits.grad.abs().sum() > 0
    assert hw_logits.grad.abs().sum() > 0
    # more bits cost more: the gradient pushes probability towards the narrow widths
    grad = net.stem.w_logits.grad.sum(0)
    assert grad[DIGITS.w_bits.index(8)] > grad[DIGITS.w_bits.index(2)]


def test_bigger_arrays_are_faster_and_larger():
    net = _net()
    layers = [p.layer for p in arch_layers(net, ArchChoice.largest(DIGITS))]
    small, big = HardwareConfig(rows=4, cols=4), HardwareConfig(rows=8, cols=8)
    hw = HardwareBatch.from_configs([small, big])
    costs = network_costs(hw, layers, Constants(), latency=20)
    assert costs["cycles"][1] < costs["cycles"][0]
    assert hw.t["area_luts"][1] > hw.t["area_luts"][0]


def test_the_expected_cost_is_differentiable_in_hardware_and_bit_probabilities():
    """`SearchCost.expected` on BatchTile's best mappings priced with expected tile digits (the search's one
    expectation; BatchTile itself only prices)."""
    configs = [HardwareConfig(rows=4, cols=4, digit_bits=1), HardwareConfig(rows=8, cols=8, digit_bits=2)]
    gemm = Gemm(64, 72, 12, (8,) * 12)
    values = [2, 4, 8]
    logits = torch.zeros(12, 3, dtype=torch.float64, requires_grad=True)
    probs = torch.softmax(logits, dim=-1)
    sums, maxes = zip(*(expected_tile_digits(probs, values, cfg.cols, cfg.digit_bits) for cfg in configs))
    digits = (torch.stack(sums)[:, None], torch.stack(maxes)[:, None])          # [H, L]
    hw_logits = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    hw = HardwareBatch.from_configs(configs, dtype=torch.float64)
    costs = price_mappings(hw, LayerBatch.from_gemms([gemm], dtype=torch.float64), Constants(), digits=digits)
    terms = SearchCost(hw, Constants(), latency=0).expected(costs.best(), torch.softmax(hw_logits, dim=0))
    assert float(terms["area_luts"].detach()) == pytest.approx(0.5 * float(hw.t["area_luts"].sum()))
    terms["cycles"].backward()
    assert hw_logits.grad.abs().sum() > 0
    # More probability on 2-bit weights must lower the expected cycles: the gradient on the 2-bit logits is negative.
    assert (logits.grad[:, 0] < 0).all() and (logits.grad[:, 2] > 0).all()


def test_the_expected_cost_leaves_out_candidates_the_network_does_not_fit():
    hw = HardwareBatch.from_configs(CONFIGS[:2], dtype=torch.float64)
    per_layer = {key: torch.tensor([[1.0, 2.0], [3.0, torch.inf]], dtype=torch.float64)
                 for key in ("cycles", "energy_pj", "dram_bytes")}
    terms = SearchCost(hw, Constants(), latency=0).expected(per_layer, torch.tensor([0.25, 0.75],
                                                                                      dtype=torch.float64))
    assert float(terms["cycles"]) == 0.25 * 3.0
