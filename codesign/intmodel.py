"""The integer executor: runs an `IntegerModel` in numpy, every multiply-accumulate through `codesign.reference`.

Activations are int64 NHWC arrays. ``conv`` is im2col then `reference.gemm_requant`; ``dwconv`` is one
`reference.gemm_accumulate` of N = 1 per channel then `reference.requantize` over all channels; ``add`` forms its
integer sum on the host and requantizes through `reference.requantize`; ``linear`` is one `gemm_requant` over the
flattened feature map (the folded global average pooling). So the integer model computes exactly what the
accelerator's arithmetic contract says, and the exported layer parameters are validated against the
`HardwareConfig` (widths, multiplier, shift) on every call.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import HardwareConfig
from .errors import InputError
from .export import KINDS, IntegerLayer, IntegerModel
from .quant import input_integers
from .reference import gemm_accumulate, gemm_requant, requantize


def im2col(x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """NHWC activations -> (N * H_out * W_out) x (C * k * k) patches, columns in OIHW weight order (c, kh, kw)."""
    padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]                    # N, H_out, W_out, C, k, k
    return windows.reshape(-1, windows.shape[3] * kernel * kernel)


def run_layer(cfg: HardwareConfig, layer: IntegerLayer, inputs: list[np.ndarray]) -> np.ndarray:
    """One layer's integer output (NHWC) from its integer inputs (NHWC)."""
    x = inputs[0]
    n = x.shape[0]
    c_out, h_out, w_out = layer.out_shape
    if layer.kind == "conv":
        a = im2col(x, layer.weight.shape[-1], layer.stride, layer.padding)
        y = gemm_requant(cfg, a, layer.weight.reshape(c_out, -1).T, layer.w_bits, layer.requant,
                         act_signed=layer.in_signed[0])
    elif layer.kind == "dwconv":
        k = layer.weight.shape[-1]
        patches = im2col(x, k, layer.stride, layer.padding).reshape(-1, c_out, k * k)
        acc = np.concatenate([gemm_accumulate(cfg, patches[:, c], layer.weight[c].reshape(-1, 1), layer.w_bits[c],
                                              act_signed=layer.in_signed[0]) for c in range(c_out)], axis=1)
        y = requantize(cfg, acc, layer.requant)
    elif layer.kind == "add":
        acc = sum(int(m) * t for m, t in zip(layer.input_mults, inputs))
        y = requantize(cfg, acc.reshape(-1, c_out), layer.requant)
    elif layer.kind == "linear":
        w = np.tile(layer.weight.T, (layer.pool, 1))           # rows in NHWC order: pixel-major, then channel
        y = gemm_requant(cfg, x.reshape(n, -1), w, layer.w_bits, layer.requant, act_signed=layer.in_signed[0])
    else:
        raise InputError(f"{layer.name}.kind", layer.kind, f"one of {list(KINDS)}")
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
