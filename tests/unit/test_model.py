import pytest
import torch

from lenet.model import ACTIVATIONS, POOLS, layer_table, lenet, lenet_classic, lenet_d2l, parameter_count

CLASSIC_SHAPES = [
    ("Conv2d", (1, 6, 28, 28)), ("ReLU", (1, 6, 28, 28)), ("MaxPool2d", (1, 6, 14, 14)),
    ("Conv2d", (1, 16, 10, 10)), ("ReLU", (1, 16, 10, 10)), ("MaxPool2d", (1, 16, 5, 5)),
    ("Conv2d", (1, 120, 1, 1)), ("ReLU", (1, 120, 1, 1)), ("Flatten", (1, 120)),
    ("Linear", (1, 84)), ("ReLU", (1, 84)), ("Linear", (1, 10)),
]
D2L_SHAPES = [
    ("Conv2d", (1, 6, 28, 28)), ("Sigmoid", (1, 6, 28, 28)), ("AvgPool2d", (1, 6, 14, 14)),
    ("Conv2d", (1, 16, 10, 10)), ("Sigmoid", (1, 16, 10, 10)), ("AvgPool2d", (1, 16, 5, 5)),
    ("Flatten", (1, 400)), ("Linear", (1, 120)), ("Sigmoid", (1, 120)),
    ("Linear", (1, 84)), ("Sigmoid", (1, 84)), ("Linear", (1, 10)),
]


def output_shapes(net):
    x = torch.zeros(1, 1, net.input_size, net.input_size)
    shapes = []
    for layer in net:
        x = layer(x)
        shapes.append((type(layer).__name__, tuple(x.shape)))
    return shapes


@pytest.mark.parametrize("build, size, shapes", [(lenet_classic, 32, CLASSIC_SHAPES), (lenet_d2l, 28, D2L_SHAPES)])
def test_variant_layer_shapes_and_parameter_count(build, size, shapes):
    net = build()
    assert net.input_size == size
    assert output_shapes(net) == shapes
    # LeNet-5 and d2l's LeNet both have 61,706 weights: conv3's 120@5x5 == linear 400->120.
    assert parameter_count(net) == 61_706


def test_the_model_is_built_from_torchs_own_layers():
    # what a d2l reader recognises; the CPU fast path (lenet.fast_cpu) swaps layers only while training
    for net in (lenet_classic(), lenet_d2l()):
        assert all(type(layer).__module__.startswith("torch.nn.modules") for layer in net)


def test_layer_table_is_d2ls_format():
    table = layer_table(lenet_d2l()).splitlines()
    assert table[0] == "Conv2d output shape:\ttorch.Size([1, 6, 28, 28])"
    assert table[-1] == "Parameters: 61,706"


@pytest.mark.parametrize("variant", [lenet_classic, lenet_d2l])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("pool", sorted(POOLS))
def test_every_activation_and_pool_builds_and_backpropagates(variant, activation, pool):
    net = variant(activation=activation, pool=pool)
    x = torch.randn(4, 1, net.input_size, net.input_size)
    loss = torch.nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert grads[0].abs().sum() > 0  # the gradient reaches the first convolution
    assert sum(isinstance(m, ACTIVATIONS[activation]) for m in net) == 4


def test_xavier_init_bounds_weights_and_default_does_not_apply_it():
    torch.manual_seed(0)
    xavier = lenet_d2l(init="xavier")
    torch.manual_seed(0)
    default = lenet_d2l(init="default")
    fc = xavier[7]  # linear 400 -> 120: xavier bound sqrt(6 / 520) = 0.107, PyTorch's 1/sqrt(400) = 0.05
    assert fc.weight.abs().max() > 0.06
    assert default[7].weight.abs().max() <= 0.05


@pytest.mark.parametrize("kw, message", [
    (dict(activation="swish"), "unknown activation 'swish'; choose one of: sigmoid, tanh, relu"),
    (dict(pool="min"), "unknown pool 'min'; choose one of: avg, max"),
    (dict(init="he"), "unknown init 'he'; choose one of: xavier, default"),
])
def test_bad_choices_name_the_value_and_the_choices(kw, message):
    with pytest.raises(ValueError, match=message):
        lenet(**kw)
