"""A user's own `nn.Module` in OHQ mode: loading it, checking that the flow supports it, and its accelerator layers.

Supported operations are those the accelerator flow has a place for: convolutions and linear layers run on the
accelerator (BatchNorm folds into the convolution before them, ReLU / ReLU6 are the requantization's clamp), and
residual adds, pooling and flattening run on the host. `check_supported` walks the modules and traces the forward
pass with `torch.fx` (so that functions called in a container's ``forward``, such as a residual ``x + f(x)``, are
seen too) and refuses the model with one error that lists every unsupported module type and function.

`accelerator_layers` reads the layer IR (`codesign.ir.layers.Conv2d` / `Linear`, named as the modules are) from
forward hooks on a sample input. `fake_quantized` is the model with each layer's weights quantized per output
channel to the chosen widths (`codesign.ohq.sensitivity.quantize_weight`); with a BatchNorm after a convolution this is
the same as quantizing the folded weights, since a per-channel max-abs step scales with the channel. There is no
integer export for a user module, so neither an integer model nor accelerator programs are written for one.
"""

from __future__ import annotations

import copy
import operator
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from codesign.errors import InputError
from codesign.ir.layers import Conv2d, Layer, Linear
from codesign.ohq.sensitivity import quantize_weight

SUPPORTED_MODULES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d, nn.ReLU, nn.ReLU6, nn.MaxPool2d,
                     nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity, nn.Dropout)
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
SUPPORTED_FUNCTIONS = {operator.add, operator.iadd, torch.add, torch.flatten, torch.relu, F.relu, F.relu6,
                       F.adaptive_avg_pool2d, F.avg_pool2d, F.max_pool2d, torch.mean, getattr,
                       operator.getitem}
SUPPORTED_METHODS = {"add", "add_", "relu", "relu_", "flatten", "view", "reshape", "size", "mean", "contiguous"}


def load_module(path: Path, *, trust_pickle: bool) -> nn.Module:
    """A module pickled whole with ``torch.save(model)``. Unpickling runs code named in the file, so it happens only
    with ``trust_pickle``."""
    if not trust_pickle:
        raise InputError("--model", str(path), "a QuantNet checkpoint; a pickled nn.Module only with --trust-pickle "
                                               "(unpickling runs code from the file: use it for files you trust)")
    try:
        module = torch.load(path, weights_only=False)
    except Exception as exc:        # unpickling fails in many ways on a file that is not a pickled module
        raise InputError("--model", str(path), f"a file written by torch.save(model) ({exc})") from None
    if not isinstance(module, nn.Module):
        raise InputError("--model", f"{path} ({type(module).__name__})",
                         "a whole nn.Module (a state_dict has no architecture: save the module itself)")
    return module


def refuse_torchscript(path: Path) -> None:
    """TorchScript modules take no forward hooks, which read the layer shapes: ask for the module itself."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any("/code/" in name for name in archive.namelist()):
                raise InputError("--model", str(path), "a QuantNet checkpoint or a pickled nn.Module, not "
                                                       "TorchScript (save the module itself: torch.save(model, PATH))")


def check_supported(module: nn.Module) -> None:
    """Refuse ``module`` if any of its modules or traced functions has no place in the accelerator flow, naming
    them all in one error."""
    unsupported = sorted({type(m).__name__ for m in module.modules()
                          if not isinstance(m, SUPPORTED_MODULES + CONTAINERS) and not _is_composite(m)})
    try:
        graph = torch.fx.symbolic_trace(module).graph
    except Exception as exc:        # data-dependent control flow, untraceable calls
        raise InputError("model", type(module).__name__, f"a forward pass torch.fx can trace, so that every "
                                                          f"operation can be checked ({exc})") from None
    for node in graph.nodes:
        if node.op == "call_function" and node.target not in SUPPORTED_FUNCTIONS:
            unsupported.append(f"function {getattr(node.target, '__name__', node.target)}")
        elif node.op == "call_method" and node.target not in SUPPORTED_METHODS:
            unsupported.append(f"method .{node.target}()")
    if unsupported:
        raise InputError("model", ", ".join(dict.fromkeys(unsupported)),
                         "only " + ", ".join(m.__name__ for m in SUPPORTED_MODULES) +
                         ", residual adds, pooling, flattening, and containers of them")


def _is_composite(module: nn.Module) -> bool:
    """A user's container: its own forward composes children (checked through the trace)."""
    return type(module).forward is not nn.Module.forward and any(True for _ in module.children())


def accelerator_layers(module: nn.Module, input_shape: tuple[int, int, int], *, batch: int = 1) -> list[Layer]:
    """The convolutions and linear layers in call order, with the shapes they see on a ``batch`` of inputs."""
    layers: dict[str, Layer] = {}

    def hook(name):
        def record(m, inputs, _):
            if name in layers:
                raise InputError(f"layer {name}", "called twice", "each layer module used once in forward")
            x = inputs[0]
            if isinstance(m, nn.Conv2d):
                layers[name] = _conv_layer(name, m, x)
            else:
                layers[name] = Linear(name, m.in_features, m.out_features, batch=x.numel() // m.in_features,
                                      w_bits=8, relu=False)
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in module.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(batch, *input_shape))
    except InputError:
        raise
    except Exception as exc:         # wrong input shape, mostly
        raise InputError("input shape", ",".join(map(str, input_shape)), f"the shape the model takes ({exc})") \
            from None
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return list(layers.values())


def _conv_layer(name: str, m: nn.Conv2d, x: torch.Tensor) -> Conv2d:
    if m.padding_mode != "zeros":
        raise InputError(f"layer {name}.padding_mode", m.padding_mode, "'zeros'")
    padding = m.padding
    if isinstance(padding, str):     # "valid" or "same" (stride 1)
        padding = (0, 0) if padding == "valid" else tuple(d * (k - 1) // 2 for k, d in zip(m.kernel_size, m.dilation))
    return Conv2d(name, m.in_channels, m.out_channels, tuple(m.kernel_size), stride=tuple(m.stride),
                  padding=tuple(padding), dilation=tuple(m.dilation), groups=m.groups, in_h=x.shape[2],
                  in_w=x.shape[3], batch=x.shape[0], w_bits=8)


@torch.no_grad()
def fake_quantized(module: nn.Module, bits: dict[str, tuple[int, ...]]) -> nn.Module:
    """A copy of ``module`` whose named layers' weights are quantized, each output channel to its width."""
    quantized = copy.deepcopy(module)
    layers = dict(quantized.named_modules())
    for name, widths in bits.items():
        weight = layers[name].weight
        for width in set(widths):
            rows = torch.tensor([c for c, w in enumerate(widths) if w == width])
            weight[rows] = quantize_weight(weight[rows], int(width))
    return quantized
