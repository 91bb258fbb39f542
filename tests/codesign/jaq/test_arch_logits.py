"""ArchLogits: hard Gumbel samples are valid architectures; their straight-through gates carry gradients back."""

import pytest
import torch

from codesign.jaq.arch_logits import ArchLogits
from codesign.quant.supernet import DIGITS, ArchChoice, SupernetSpec


def test_a_sample_is_a_valid_architecture_with_unit_gates():
    torch.manual_seed(0)
    logits = ArchLogits(DIGITS)
    for _ in range(20):
        arch, gates = logits.sample(1.0)
        arch.validate(DIGITS)
        assert len(gates.stages) == len(DIGITS.stages)
        assert [len(b) for b in gates.blocks] == [s.depth for s in DIGITS.stages]
        for gate in (*gates.stages, *(g for block in gates.blocks for g in block)):
            assert float(gate.detach()) == 1.0 and gate.requires_grad


def test_sampling_repeats_under_the_same_seed():
    logits = ArchLogits(DIGITS)
    torch.manual_seed(3)
    first = [logits.sample(0.5)[0] for _ in range(5)]
    torch.manual_seed(3)
    assert [logits.sample(0.5)[0] for _ in range(5)] == first
    assert len(set(first)) > 1


def test_the_gates_gradient_reaches_only_the_sampled_choices_logits():
    torch.manual_seed(1)
    logits = ArchLogits(DIGITS)
    arch, gates = logits.sample(1.0)
    loss = sum(gates.stages) + sum(g for block in gates.blocks for g in block)
    loss.backward()
    for s, stage in enumerate(DIGITS.stages):
        if stage.depth > 1:                                # a single depth choice has a constant softmax
            depth_grad = logits.depth[s].grad
            assert depth_grad.abs().sum() > 0
            # the straight-through one-hot: its entry's gradient is the softmax's, largest at the sampled logit
            assert int(depth_grad.argmax()) == arch.depths[s] - 1
        assert logits.kernel[s].grad.abs().sum() > 0 and logits.expand[s].grad.abs().sum() > 0
    assert logits.width.grad.abs().sum() > 0


def test_confident_logits_decide_the_sample_and_the_argmax():
    logits = ArchLogits(DIGITS)
    with torch.no_grad():
        for s in range(len(DIGITS.stages)):
            logits.depth[s][-1] = 50.0
            logits.kernel[s][:, DIGITS.kernels.index(5)] = 50.0
            logits.expand[s][:, DIGITS.expands.index(3)] = 50.0
        logits.width[:, DIGITS.widths.index(0.75)] = 50.0
    want = ArchChoice(tuple(s.depth for s in DIGITS.stages), (0.75,) * len(DIGITS.stages),
                      tuple((5,) * s.depth for s in DIGITS.stages), tuple((3,) * s.depth for s in DIGITS.stages))
    assert logits.argmax() == want
    torch.manual_seed(0)
    assert all(logits.sample(1.0)[0] == want for _ in range(5))


def test_probabilities_start_uniform():
    spec = SupernetSpec(widths=(0.5, 1.0))
    probs = ArchLogits(spec).probabilities()
    assert probs["width"] == [[0.5, 0.5]] * len(spec.stages)
    assert probs["depth"][1] == pytest.approx([0.5, 0.5])
    assert all(row == pytest.approx([1 / 3] * 3) for stage in probs["kernel"] for row in stage)
    assert len(probs["expand"][2]) == spec.stages[2].depth
