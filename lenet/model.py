"""One parameterised LeNet and its two named variants (classic LeNet-5, d2l)."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


POOLS: dict[str, Callable[[], nn.Module]] = {
    "avg": lambda: nn.AvgPool2d(kernel_size=2, stride=2),
    "max": lambda: nn.MaxPool2d(kernel_size=2, stride=2),
}
INITS = ("xavier", "default")


def choose(kind: str, value: str, choices) -> str:
    """Return value if it is one of choices, else fail with a line naming both."""
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")
    return value


def feature_size(input_size: int, conv1_padding: int) -> int:
    """Side of the 16-channel map after conv1, pool, conv2, pool (5 for both variants)."""
    side = input_size + 2 * conv1_padding - 4  # conv1 5x5
    side = side // 2 - 4  # pool, conv2 5x5
    side //= 2  # pool
    if side < 1:
        raise ValueError(f"input_size {input_size} is too small for LeNet (needs >= {16 - 2 * conv1_padding})")
    return side


class LeNet(nn.Sequential):
    """nn.Sequential (so d2l's layer-by-layer table works on it) that knows its input side."""

    def __init__(self, layers: list[nn.Module], input_size: int, in_channels: int):
        super().__init__(*layers)
        self.input_size = input_size
        self.in_channels = in_channels


def lenet(
    input_size: int = 28,
    conv1_padding: int = 2,
    conv3: bool = False,
    activation: str = "sigmoid",
    pool: str = "avg",
    init: str = "xavier",
    num_classes: int = 10,
    in_channels: int = 1,
) -> LeNet:
    """The one LeNet; the named variants below differ from it only in these values.

    conv3=True is LeNet-5's third convolution (120@5x5 down to 1x1); conv3=False is d2l's
    flatten then linear 400->120. Both have the same parameter count at their native size.
    """
    act = ACTIVATIONS[choose("activation", activation, ACTIVATIONS)]
    make_pool = POOLS[choose("pool", pool, POOLS)]
    choose("init", init, INITS)
    side = feature_size(input_size, conv1_padding)
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, 6, kernel_size=5, padding=conv1_padding), act(), make_pool(),
        nn.Conv2d(6, 16, kernel_size=5), act(), make_pool(),
    ]
    if conv3:
        if side < 5:
            raise ValueError(f"input_size {input_size} leaves a {side}x{side} map, too small for conv3 5x5")
        layers += [nn.Conv2d(16, 120, kernel_size=5), act(), nn.Flatten()]
        layers += [nn.Linear(120 * (side - 4) ** 2, 84)]  # 120 at 32x32, where conv3 sees exactly 5x5
    else:
        layers += [nn.Flatten(), nn.Linear(16 * side * side, 120), act(), nn.Linear(120, 84)]
    layers += [act(), nn.Linear(84, num_classes)]
    net = LeNet(layers, input_size, in_channels)
    if init == "xavier":
        net.apply(_xavier)
    return net


def _xavier(module: nn.Module) -> None:
    # As d2l's train_ch6: Xavier-uniform weights for conv and linear, biases left as PyTorch sets them.
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


def lenet_classic(**overrides) -> LeNet:
    """LeNet-5 as LeCun 1998 draws it, with the classic PyTorch recipe's ReLU and max pooling."""
    kw = dict(input_size=32, conv1_padding=0, conv3=True, activation="relu", pool="max", init="default")
    return lenet(**{**kw, **overrides})


def lenet_d2l(**overrides) -> LeNet:
    """The d2l book's LeNet: 28x28 input padded by 2, sigmoid, average pooling, Xavier init."""
    kw = dict(input_size=28, conv1_padding=2, conv3=False, activation="sigmoid", pool="avg", init="xavier")
    return lenet(**{**kw, **overrides})


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def layer_table(net: LeNet) -> str:
    """d2l's layer-by-layer table: each layer's output shape for one input, then the parameter count."""
    side = net.input_size
    x = torch.zeros(1, net.in_channels, side, side, device=next(net.parameters()).device)
    lines = []
    with torch.no_grad():
        for layer in net:
            x = layer(x)
            lines.append(f"{layer.__class__.__name__} output shape:\t{x.shape}")
    lines.append(f"Parameters: {parameter_count(net):,}")
    return "\n".join(lines)
