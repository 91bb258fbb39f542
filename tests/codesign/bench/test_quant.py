import pytest
import torch

from codesign.bench.quant import benchmark, mixed_bits
from codesign.errors import InputError
from codesign.quant.supernet import DIGITS, ArchChoice, SuperNet


@pytest.mark.skipif(torch.cuda.is_available(), reason="the guard is for machines without CUDA")
def test_cuda_path_is_refused_without_a_gpu(tmp_path):
    with pytest.raises(InputError, match="--device"):
        benchmark(out=tmp_path / "q.json", device="cuda")
    assert not (tmp_path / "q.json").exists()


def test_mixed_bits_give_the_larger_gammas_the_higher_width():
    net = SuperNet(DIGITS)
    arch = ArchChoice.uniform(DIGITS, 3, 3)
    net.stem.bn.weight.data = torch.linspace(-1.0, -0.1, 16)
    bits = mixed_bits(net, arch, 4, 2)
    assert bits["stem"].w == (4,) * 8 + (2,) * 8      # |gamma| is largest at the negative end
    assert bits["classifier"].w == (8,) * 10
