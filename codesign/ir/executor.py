"""The integer executor: runs an `IntegerModel` in numpy, every multiply-accumulate through `codesign.hw.reference`.

Activations are int64 NHWC arrays. The GEMM layers run through `gemm_operands`, the operands exactly as the
accelerator receives them (`codesign.compiler.network` compiles the same ones): ``conv`` is im2col then one
`reference.gemm_requant`; ``dwconv`` is one `gemm_requant` of N = 1 per channel; ``linear`` is one `gemm_requant`
over the flattened feature map (the folded global average pooling). ``add`` forms its integer sum on the host and
requantizes through `reference.requantize`. So the integer model computes exactly what the
accelerator's arithmetic contract says, and the exported layer parameters are validated against the
`HardwareConfig` (widths, multiplier, shift) on every call.
"""

from __future__ import annotations

import numpy as np
import torch

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import Requant, gemm_requant, requantize
from codesign.quant.export import KINDS, IntegerLayer, IntegerModel
from codesign.quant.quantizers import input_integers


def im2col(x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """NHWC activations -> (N * H_out * W_out) x (C * k * k) patches, columns in OIHW weight order (c, kh, kw)."""
    padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]                    # N, H_out, W_out, C, k, k
    return windows.reshape(-1, windows.shape[3] * kernel * kernel)


def gemm_operands(layer: IntegerLayer, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, Requant]]:
    """The accelerator GEMMs of ``layer`` on NHWC input ``x``: (A, W, per-channel weight bits, requantization) each.
    Their outputs, side by side, are the layer's channels."""
    c_out = layer.out_shape[0]
    if layer.kind == "conv":
        a = im2col(x, layer.weight.shape[-1], layer.stride, layer.padding)
        return [(a, layer.weight.reshape(c_out, -1).T, layer.w_bits, layer.requant)]
    if layer.kind == "linear":
        w = np.tile(layer.weight.T, (layer.pool, 1))            # rows in NHWC order: pixel-major, then channel
        return [(x.reshape(len(x), -1), w, layer.w_bits, layer.requant)]
    if layer.kind == "dwconv":
        k = layer.weight.shape[-1]
        patches = im2col(x, k, layer.stride, layer.padding).reshape(-1, c_out, k * k)
        rq = layer.requant
        return [(patches[:, c], layer.weight[c].reshape(-1, 1), layer.w_bits[c:c + 1],
                 Requant(rq.bias[c:c + 1], rq.mult[c:c + 1], rq.shift[c:c + 1], rq.relu, rq.out_bits))
                for c in range(c_out)]
    raise InputError(f"{layer.name}.kind", layer.kind, "a layer with GEMMs: conv, dwconv or linear")


def run_layer(cfg: HardwareConfig, layer: IntegerLayer, inputs: list[np.ndarray]) -> np.ndarray:
    """One layer's integer output (NHWC) from its integer inputs (NHWC)."""
    if layer.kind not in KINDS:
        raise InputError(f"{layer.name}.kind", layer.kind, f"one of {list(KINDS)}")
    n = inputs[0].shape[0]
    c_out, h_out, w_out = layer.out_shape
    if layer.kind == "add":
        acc = sum(int(m) * t for m, t in zip(layer.input_mults, inputs))
        y = requantize(cfg, acc.reshape(-1, c_out), layer.requant)
    else:
        y = np.concatenate([gemm_requant(cfg, a, w, bits, rq, act_signed=layer.in_signed[0])
                            for a, w, bits, rq in gemm_operands(layer, inputs[0])], axis=1)
    return y.reshape(n, h_out, w_out, c_out)


def run_model(model: IntegerModel, x: np.ndarray, cfg: HardwareConfig = HardwareConfig()) -> dict[str, np.ndarray]:
    """Every layer's integer output (NHWC int64) for integer input images ``x`` (NCHW, unsigned input_bits)."""
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(model.input_shape):
        raise InputError("images", x.shape, f"N x {' x '.join(map(str, model.input_shape))} integer images")
    outputs = {"input": x.transpose(0, 2, 3, 1)}
    for layer in model.layers:
        outputs[layer.name] = run_layer(cfg, layer, [outputs[name] for name in layer.inputs])
    return outputs


def predict(model: IntegerModel, images: torch.Tensor, cfg: HardwareConfig = HardwareConfig(),
            batch_size: int = 32) -> np.ndarray:
    """Class predictions for float images in [0, 1], quantized as the network's input quantizer does."""
    x = input_integers(images).numpy().astype(np.int64)
    last = model.layers[-1].name
    return np.concatenate([run_model(model, x[i:i + batch_size], cfg)[last].reshape(-1, model.layers[-1].out_shape[0])
                           .argmax(1) for i in range(0, len(x), batch_size)])
