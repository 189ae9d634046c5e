"""The CPU fast path computes what torch's layers compute, and only while training."""
import pytest
import torch
from torch import nn

from lenet.data import prepare
from lenet.engine import fit
from lenet.fast_cpu import AvgPool2d, Flatten, fast_cpu_layers
from lenet.model import lenet_classic, lenet_d2l


@pytest.mark.parametrize("layer, reference", [(AvgPool2d(), nn.AvgPool2d(2, 2)), (Flatten(), nn.Flatten())])
def test_channels_last_fast_paths_compute_what_torch_layers_do(layer, reference):
    x = torch.randn(8, 6, 28, 28).contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(reference(x))
    outputs, grads = [], []
    for module in (layer, reference):
        leaf = x.clone().requires_grad_()
        out = module(leaf)
        out.backward(grad)
        outputs.append(out)
        grads.append(leaf.grad)
    torch.testing.assert_close(outputs[0], outputs[1])
    torch.testing.assert_close(grads[0], grads[1])
    # the gradient leaves in the layout the layer below works in (plain autograd returns (C, H, W) order)
    assert grads[0].is_contiguous(memory_format=torch.channels_last)


def test_the_swap_covers_lenets_pools_and_flatten_and_is_undone():
    net = lenet_d2l()
    plain = [type(layer) for layer in net]
    with fast_cpu_layers(net) as fast:
        swapped = [type(layer) for layer in fast]
        assert swapped.count(AvgPool2d) == 2 and swapped.count(Flatten) == 1
        assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert [type(layer) for layer in net] == plain
    with fast_cpu_layers(lenet_classic()) as fast:  # max pooling has no swap; its Flatten does
        assert [type(layer) for layer in fast].count(Flatten) == 1
    odd = nn.Sequential(nn.AvgPool2d(3, 2), nn.AvgPool2d(2, 2, ceil_mode=True), nn.Flatten(0))
    with fast_cpu_layers(odd):
        assert [type(layer) for layer in odd] == [nn.AvgPool2d, nn.AvgPool2d, nn.Flatten]  # not equivalent: kept


def test_fit_trains_with_the_fast_layers_and_hands_back_the_plain_model(idx_root):
    data = prepare("mnist", 28, idx_root, download=False, val_fraction=0.1)
    net = lenet_d2l()
    seen = []
    fit(net, torch.optim.SGD(net.parameters(), lr=0.9), data, 1, 32,
        on_epoch=lambda row: seen.append([type(layer) for layer in net]))
    assert AvgPool2d in seen[0] and Flatten in seen[0]
    assert [type(layer) for layer in net] == [type(layer) for layer in lenet_d2l()]
