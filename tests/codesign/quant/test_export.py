import numpy as np
import pytest
import torch
from torch import nn

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.ir.executor import predict, run_model
from codesign.quant.datasets import load_digits
from codesign.quant.export import IntegerModel, export_quantnet
from codesign.quant.quantizers import input_integers
from codesign.quant.supernet import DIGITS, ArchChoice, LayerBits, SuperNet
from codesign.quant.train import fit, predictions

ARCH = ArchChoice(depths=(1, 2, 2), widths=(1.0, 1.0, 0.75), kernels=((3,), (5, 3), (7, 3)),
                  expands=((1,), (3, 3), (6, 1)))


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def trained(digits):
    """A mixed-precision (2 / 4 / 8-bit weights, 4 / 8-bit activations) subnet after a short float + QAT run."""
    torch.manual_seed(0)
    net = SuperNet(DIGITS)
    fit(net, digits.train, epochs=6, lr=3e-3, forward=lambda x: net(x, ARCH))
    bits = net.uniform_bits(ARCH, 4, 8)
    for name, layer in bits.items():
        if name.endswith("expand"):
            bits[name] = LayerBits(tuple((2, 4, 8)[c % 3] for c in range(len(layer.w))), 4)
    subnet = net.extract_subnet(ARCH, bits).set_quantized()
    fit(subnet, digits.train, epochs=3, lr=1e-3)
    return subnet.eval()


def test_integer_model_reproduces_the_fake_quant_predictions(trained, digits):
    model = export_quantnet(trained)
    integer = predict(model, digits.test.images)
    trained.train()                 # float32 fake-quant path (QAT forward; BatchNorm is frozen, nothing updates)
    fake_quant = predictions(trained, digits.test, forward=lambda x: trained.train()(x)).numpy()
    trained.eval()
    assert (integer == fake_quant).mean() >= 0.99
    assert (integer == predictions(trained, digits.test).numpy()).all()      # eval mode: integer arithmetic
    assert (integer == digits.test.labels.numpy()).mean() > 0.9


def test_every_layer_equals_the_reference_exactly(trained, digits):
    images = digits.test.images[:48]
    model = export_quantnet(trained)
    ours = run_model(model, input_integers(images).numpy())
    torch_int = trained.integer_outputs(images)
    assert set(torch_int) == {layer.name for layer in model.layers}
    for name, value in torch_int.items():
        expected = value.numpy()
        expected = expected.transpose(0, 2, 3, 1) if expected.ndim == 4 else expected[:, None, None, :]
        assert np.array_equal(ours[name], expected), name
    kinds = {layer.kind for layer in model.layers}
    assert kinds == {"conv", "dwconv", "add", "linear"}


def test_export_format_round_trips_through_json(trained, digits, tmp_path):
    model = export_quantnet(trained)
    model.save(tmp_path / "model.json")
    again = IntegerModel.load(tmp_path / "model.json")
    x = input_integers(digits.test.images[:8]).numpy()
    assert np.array_equal(run_model(again, x)["classifier"], run_model(model, x)["classifier"])
    expand = next(layer for layer in again.layers if layer.name == "blocks.1.expand")
    assert expand.w_bits.tolist()[:3] == [2, 4, 8] and expand.requant.out_bits == 4 and expand.requant.relu
    assert (np.abs(expand.weight[0]) <= 1).all() and expand.requant.mult.max() < 2 ** 16
    with pytest.raises(InputError, match="missing.json"):
        IntegerModel.load(tmp_path / "missing.json")


def test_unsupported_layers_and_bad_widths_are_named(trained):
    with pytest.raises(InputError, match="weight_bits_max=4"):
        export_quantnet(trained, HardwareConfig(weight_bits_max=4))
    trained.blocks[0].extra = nn.MaxPool2d(2)
    try:
        with pytest.raises(InputError, match=r"layer blocks\.0\.extra.*MaxPool2d"):
            export_quantnet(trained)
    finally:
        del trained.blocks[0].extra
    float_net = SuperNet(DIGITS).extract_subnet(ARCH, SuperNet(DIGITS).uniform_bits(ARCH, 8, 8))
    with pytest.raises(InputError, match="set_quantized"):
        export_quantnet(float_net)


def test_a_damaged_integer_model_file_names_the_file_and_the_key(trained, tmp_path):
    import json
    import re

    path = tmp_path / "model.json"
    export_quantnet(trained).save(path)
    text = path.read_text()
    good = json.loads(text)

    def refused(data, message, start=None):
        bad = tmp_path / "bad.json"
        bad.write_text(data if isinstance(data, str) else json.dumps(data))
        with pytest.raises(InputError, match=f"^{start or re.escape(str(bad))}{message}") as info:
            IntegerModel.load(bad)
        assert "KeyError" not in str(info.value) and len(str(info.value)) < 400
        return info.value

    error = refused(text[:len(text) // 2], ".*bad.json", "integer model: ")    # truncated: one line naming the file
    assert error.field == "integer model" and "valid JSON file written by IntegerModel.save (line" in error.allowed
    refused({k: v for k, v in good.items() if k != "input_shape"},
            " input_shape: 'missing' is not allowed; expected C, H, W: 3 positive integers")
    refused({**good, "input_shape": [1, 8]}, r" input_shape: \[1, 8\] is not allowed")
    refused([1, 2], ": \\[1, 2\\] is not allowed; expected a JSON object")
    refused({**good, "layers": []}, " layers: \\[\\] is not allowed; expected a non-empty list")

    def with_layer(index, **changes):
        layers = [dict(layer) for layer in good["layers"]]
        layers[index].update(changes)
        return {**good, "layers": layers}

    refused(with_layer(0, inputs=["nowhere"]), r" layers\[0\].inputs: \['nowhere'\] is not allowed; expected 1 names")
    refused(with_layer(0, name="../x"), r" layers\[0\].name: '../x' is not allowed")
    refused(with_layer(0, kind="pool"), r" layers\[0\].kind: 'pool' is not allowed")
    refused(with_layer(0, weight=[[1, 2], [3]]),
            r" layers\[0\].weight: \[\[1, 2\], \[3\]\] is not allowed; expected a 4-D")
    refused(with_layer(0, w_bits="8"), r" layers\[0\].w_bits: '8' is not allowed")
    refused(with_layer(0, requant={**good["layers"][0]["requant"], "relu": 1}), r" layers\[0\].requant.relu: 1 is")
    refused(with_layer(1, extra=1), r" layers\[1\].extra: 1 is not allowed; expected one of the keys")
    layer = {k: v for k, v in good["layers"][0].items() if k != "requant"}
    refused({**good, "layers": [layer]}, r" layers\[0\].requant: 'missing' is not allowed")
