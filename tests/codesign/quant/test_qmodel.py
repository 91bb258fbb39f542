"""`QuantNet` weight widths changed after training: what is kept, what starts afresh, and the saved form."""

import torch

from codesign.quant.qmodel import load_quantnet, weight_layers, with_weight_bits
from codesign.quant.supernet import DIGITS, ArchChoice, SuperNet

TINY = ArchChoice((1, 1, 1), (0.5, 0.5, 0.5), ((3,), (3,), (3,)), ((1,), (1,), (1,)))


def test_new_widths_restart_only_the_changed_channels_steps(tmp_path):
    torch.manual_seed(0)
    net = SuperNet(DIGITS).extract_subnet(TINY, SuperNet(DIGITS).uniform_bits(TINY, 8, 8)).set_quantized().train()
    with torch.no_grad():
        net(torch.rand(8, 1, 8, 8))
    stem_steps = net.stem.wq.step.detach().clone()
    widths = (2,) * 8 + (8,) * 8
    changed = with_weight_bits(net, {"stem": widths, "classifier": (4,) * 10})
    assert changed.stem.wq.bits.tolist() == list(widths) and net.stem.wq.bits.tolist() == [8] * 16
    assert torch.equal(changed.stem.wq.step[8:], stem_steps[8:])
    folded = changed.stem.folded()[0].detach()
    assert torch.allclose(changed.stem.wq.step[:8], folded[:8].abs().flatten(1).amax(1) / 1)   # max-abs, qp = 1
    assert changed.spec["stem"]["w_bits"] == list(widths) and list(weight_layers(changed))[0] == "stem"
    changed.save(tmp_path / "m.pt")
    loaded = load_quantnet(tmp_path / "m.pt")
    assert loaded.classifier.wq.bits.tolist() == [4] * 10
    images = torch.rand(4, 1, 8, 8)
    loaded.eval(), changed.eval()
    assert torch.equal(loaded(images), changed(images))
