import pytest
import torch
import torch.nn.functional as F

from codesign.errors import InputError
from codesign.quant.qmodel import load_quantnet
from codesign.quant.supernet import CIFAR10, DIGITS, ArchChoice, LayerBits, SuperNet, SupernetSpec, sample_arch

ARCH = ArchChoice(depths=(1, 2, 1), widths=(1.0, 0.75, 0.5), kernels=((5,), (3, 7), (3, 3)),
                  expands=((1,), (6, 3), (3, 1)))


def test_smaller_kernel_is_the_centre_crop():
    net = SuperNet(DIGITS)
    layer = net.stages[1][0].depthwise
    assert torch.equal(layer.shared_weight(32, 32, 3), layer.weight[:32, :, 2:5, 2:5])
    assert torch.equal(net.stages[1][0].expand.shared_weight(16, 48, 1), net.stages[1][0].expand.weight[:48, :16])


def test_extracted_subnet_computes_what_the_supernet_computes():
    torch.manual_seed(0)
    net = SuperNet(DIGITS)
    x = torch.rand(8, 1, 8, 8)
    net.train()
    for _ in range(3):
        net(x, ARCH)                                # running statistics for this architecture
    net.eval()
    subnet = net.extract_subnet(ARCH, net.uniform_bits(ARCH, 4, 8)).eval()
    assert torch.allclose(subnet(x), net(x, ARCH), atol=1e-5)
    assert len(subnet.blocks) == 4 and subnet.blocks[0].expand is None and subnet.blocks[0].add is not None
    assert subnet.blocks[1].depthwise.conv.kernel_size == (3, 3)
    assert subnet.blocks[1].project.conv.out_channels == 18          # 24 * 0.75


def test_subnet_has_its_own_per_channel_bits():
    net = SuperNet(DIGITS)
    bits = net.uniform_bits(ARCH, 4, 8)
    bits["blocks.1.expand"] = LayerBits(tuple([2, 8] * 48), 4)
    subnet = net.extract_subnet(ARCH, bits)
    assert subnet.blocks[1].expand.wq.bits.tolist() == [2, 8] * 48
    assert subnet.blocks[1].expand.aq.bits_value == 4
    del bits["head"]
    with pytest.raises(InputError, match="head"):
        net.extract_subnet(ARCH, bits)


def test_search_mode_trains_bit_logits_and_steps():
    torch.manual_seed(0)
    net = SuperNet(DIGITS)
    net.csq_schedule(0.5, refresh_every=1).refresh()
    F.cross_entropy(net(torch.rand(4, 1, 8, 8), ARCH, mode="search"), torch.arange(4)).backward()
    layer = net.stages[1][0].expand
    assert layer.w_logits.grad.abs().sum() > 0 and layer.w_steps.grad.abs().sum() > 0
    assert layer.a_logits.grad.abs().sum() > 0
    bits = net.chosen_bits(ARCH)
    assert set(bits["blocks.1.expand"].w) <= set(DIGITS.w_bits)
    assert bits["blocks.0.add"].a == bits["blocks.0.project"].a


def test_cifar_sized_supernet_runs():
    net = SuperNet(CIFAR10)
    arch = sample_arch(CIFAR10, torch.Generator().manual_seed(0))
    arch.validate(CIFAR10)
    assert net(torch.rand(2, 3, 32, 32), arch).shape == (2, 10)


def test_bad_arch_and_bits_are_refused():
    with pytest.raises(InputError, match=r"arch.kernels\[1\]"):
        ArchChoice((1, 2, 2), (1.0, 1.0, 1.0), ((3,), (4, 3), (3, 3)), ((1,), (3, 3), (3, 3))).validate(DIGITS)
    with pytest.raises(InputError, match=r"arch.depths\[0\]"):
        ArchChoice((2, 2, 2), (1.0,) * 3, ((3,), (3, 3), (3, 3)), ((1,), (3, 3), (3, 3))).validate(DIGITS)
    with pytest.raises(InputError, match="w_bits"):
        SupernetSpec(w_bits=(1, 4))
    with pytest.raises(InputError, match="a_bits"):
        SupernetSpec(a_bits=(16,))


def test_saved_subnet_loads_with_weights_only(tmp_path):
    net = SuperNet(DIGITS)
    subnet = net.extract_subnet(ARCH, net.uniform_bits(ARCH, 4, 8)).eval()
    subnet.save(tmp_path / "net.pt")
    again = load_quantnet(tmp_path / "net.pt").eval()
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(again(x), subnet(x))
    with pytest.raises(InputError, match="nothing.pt"):
        load_quantnet(tmp_path / "nothing.pt")
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="bad.pt"):
        load_quantnet(tmp_path / "bad.pt")


def test_channels_csq_never_searched_take_the_layer_consensus():
    net = SuperNet(DIGITS)
    layer = net.stem
    with torch.no_grad():
        layer.w_logits.zero_()
        layer.w_logits[:4, 3] = 5.0                 # the searched groups prefer 5 bits
        layer.w_logits[4, 1] = 9.0                  # an unsearched group's logits do not count
    layer.searched[:4] = True
    bits = layer.chosen_bits(16).w
    assert bits == (5,) * 16
    layer.searched[4] = True
    assert layer.chosen_bits(16).w[4] == 3
