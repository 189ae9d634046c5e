"""CPU fast path: LeNet's layers swapped, for training only, for channels-last-aware equivalents.

oneDNN runs convolutions and pooling fastest on channels-last (NHWC) maps, but two of torch's
layers undo that in LeNet: 2x2 average pooling has no fast NHWC kernel for 6 channels, and
Flatten hands the layer below a gradient in (C, H, W) order. `fast_cpu_layers(model)` converts
the model to channels-last and swaps those layers for the ones below while it trains, then puts
the plain torch layers back, so the model a user holds (and saves, and inspects) is plain torch.
Each swapped layer computes the same values and the same gradients as the one it replaces.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class _QuarterSums(torch.autograd.Function):
    """2x2/stride-2 average pooling computed as a depthwise convolution, with avg_pool2d's gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        channels = x.shape[1]
        quarter = torch.full((channels, 1, 2, 2), 0.25, dtype=x.dtype, device=x.device)
        return nn.functional.conv2d(x, quarter.contiguous(memory_format=torch.channels_last), stride=2,
                                    groups=channels)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.ops.aten.avg_pool2d_backward(grad, x, [2, 2], [2, 2], [0, 0], False, True, None)


class AvgPool2d(nn.AvgPool2d):
    """nn.AvgPool2d(2, 2); on channels-last CPU maps it runs as a depthwise 2x2 convolution.

    Same averages and the same gradient, but oneDNN's depthwise convolution pools a 256x6x28x28
    channels-last batch in 0.14 ms where avg_pool2d takes 0.6 ms: 5% of a d2l training step.
    """

    def __init__(self) -> None:
        super().__init__(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return _QuarterSums.apply(x)
        return super().forward(x)


class _ToContiguous(torch.autograd.Function):
    """x.contiguous() whose gradient goes back channels-last, as the layer below produced x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


class Flatten(nn.Flatten):
    """nn.Flatten that hands a channels-last input's gradient back channels-last.

    Flattening reorders a channels-last map to (C, H, W), and plain autograd then passes the
    layer below a (C, H, W)-ordered gradient; with its input channels-last, avg_pool2d's backward
    took a mixed-format path of 0.46 ms instead of 0.05 ms per CPU step.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            x = _ToContiguous.apply(x)
        return super().forward(x)


def fast_equivalent(layer: nn.Module) -> nn.Module | None:
    """The fast layer that computes exactly what layer does, or None to keep layer."""
    if type(layer) is nn.AvgPool2d and _is_plain_2x2(layer):
        return AvgPool2d()
    if type(layer) is nn.Flatten and (layer.start_dim, layer.end_dim) == (1, -1):
        return Flatten()
    return None


def _is_plain_2x2(pool: nn.AvgPool2d) -> bool:
    pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
    return (pair(pool.kernel_size), pair(pool.stride), pair(pool.padding)) == ((2, 2), (2, 2), (0, 0)) \
        and not pool.ceil_mode and pool.count_include_pad and pool.divisor_override is None


@contextmanager
def fast_cpu_layers(model: nn.Module) -> Iterator[nn.Module]:
    """Train model channels-last with the layers above; the plain layers come back on exit.

    oneDNN's NHWC convolutions and pools are ~15% faster on CPU than NCHW; the layer swaps
    add ~14% on a d2l step (30.9k -> 35.3k samples/s on 2 cores). The weights stay channels-last.
    """
    model.to(memory_format=torch.channels_last)
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            fast = fast_equivalent(child)
            if fast is not None:
                setattr(parent, name, fast)
                swapped.append((parent, name, child))
    try:
        yield model
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
