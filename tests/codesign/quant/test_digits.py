"""The digits subnet: its QAT recipe, and the checkpoint with its record, written once (here untrained), then reused."""

import json

import pytest
import torch

from codesign.quant.datasets import DataSplit, ImageSet, load_digits
from codesign.quant.digits import SUBNET, digits_model, qat
from codesign.quant.qmodel import load_quantnet
from codesign.quant.supernet import DIGITS, SuperNet
from codesign.quant.train import accuracy

# written with zero QAT epochs (seconds instead of minutes): `qat` then has no epoch time to average
pytestmark = pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")


def test_subnet_is_a_valid_architecture_of_the_digits_supernet():
    SUBNET.validate(DIGITS)
    assert SUBNET.depths == tuple(s.depth for s in DIGITS.stages)      # every block of the supernet


def test_qat_trains_the_extracted_subnet_at_the_given_bits():
    torch.manual_seed(0)
    digits = load_digits()
    small = ImageSet(digits.train.images[:64], digits.train.labels[:64])     # one step: seconds, not minutes
    data = DataSplit(small, small, ImageSet(digits.test.images[:100], digits.test.labels[:100]), digits.classes)
    net = SuperNet(DIGITS)
    bits = net.uniform_bits(SUBNET, 4, 8)
    before = net.extract_subnet(SUBNET, bits).stem.conv.weight.detach().clone()
    subnet, acc, seconds = qat(net, bits, data, epochs=1)
    assert subnet.quantized and seconds > 0
    assert subnet.stem.wq.bits.tolist() == [4] * len(before)
    assert not torch.equal(subnet.stem.conv.weight.detach(), before)           # it was trained
    assert acc == accuracy(subnet, data.test)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits") / "models" / "digits_w8a8.pt"
    return path, digits_model(path, fp_epochs=0, qat_epochs=0)


def test_the_checkpoint_and_its_record_are_written(written):
    path, facts = written
    record = json.loads(path.with_suffix(".json").read_text())
    assert json.loads(json.dumps(facts)) == {**record, "path": str(path)}
    assert (record["fp_epochs"], record["qat_epochs"]) == (0, 0)
    assert record["subnet"]["depths"] == list(SUBNET.depths)
    net = load_quantnet(path)
    assert net.quantized
    assert {b for m in net.modules() if hasattr(m, "wq") for b in m.wq.bits.tolist()} == {8}
    assert accuracy(net, load_digits().test) == record["acc_w8a8"]          # the record is of this checkpoint
    assert 0.0 <= record["acc_fp32"] <= 1.0


def test_existing_files_are_reused(written):
    path, facts = written
    before = path.stat().st_mtime_ns, path.read_bytes()
    again = digits_model(path, fp_epochs=50, qat_epochs=50)                # nothing trained: the epochs are moot
    assert again == json.loads(json.dumps(facts))
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before

