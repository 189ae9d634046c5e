"""The engine computes what the replicated loops compute: same weights and batches in, same losses out."""
import copy
import functools

import pytest
import torch

from lenet.data import Data, load_raw, prepare
from lenet.engine import fit, make_optimizer
from lenet.model import lenet_classic, lenet_d2l
from lenet.reference import PilImages, classic_loader, loader, per_sample_transform, train_ch6, train_classic


CPU = torch.device("cpu")


@pytest.mark.parametrize("build, make", [(lenet_d2l, functools.partial(torch.optim.SGD, lr=0.9)),
                                         (lenet_classic, functools.partial(torch.optim.Adam, lr=1e-3))])
def test_engine_and_train_ch6_give_the_same_losses_for_the_same_batches(idx_root, build, make):
    torch.manual_seed(0)
    net = build()
    raw = load_raw("mnist", idx_root, download=False)
    transform = per_sample_transform(net.input_size, "pad")
    train_iter = loader(PilImages(raw.train_images, raw.train_labels, transform), 32, shuffle=False, workers=0)
    test_iter = loader(PilImages(raw.test_images, raw.test_labels, transform), 32, shuffle=False, workers=0)
    reference_net = copy.deepcopy(net)
    reference = train_ch6(reference_net, train_iter, test_iter, 3, make(reference_net.parameters()), "cpu",
                          init_weights=False)

    data = prepare("mnist", net.input_size, idx_root, download=False, fit_to_input="pad")
    data = Data(data.train, data.test, data.test, data.classes)
    # The engine's own optimizer: torch's fused kernel where it has one, the replica's is torch's default
    ours = fit(net, make_optimizer(make, net.parameters(), CPU), data, 3, 32, shuffle=False, compile="off").history

    for theirs, mine in zip(reference, ours):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
        assert mine["train_acc"] == pytest.approx(theirs["train_acc"])
        assert mine["val_acc"] == pytest.approx(theirs["test_acc"])
    for a, b in zip(net.parameters(), reference_net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert ours[-1]["train_loss"] != ours[0]["train_loss"]  # it trained: the comparison is not vacuous


def test_engine_and_the_classic_loop_give_the_same_losses_for_the_same_batches(idx_root):
    torch.manual_seed(0)
    net = lenet_classic()
    mean, std = 0.1307, 0.3081
    raw = load_raw("mnist", idx_root, download=False)
    transform = per_sample_transform(net.input_size, "pad", "mean_std", mean, std)
    train_loader = classic_loader(PilImages(raw.train_images, raw.train_labels, transform), 32, shuffle=False)
    test_loader = classic_loader(PilImages(raw.test_images, raw.test_labels, transform), 32, shuffle=False)
    reference_net = copy.deepcopy(net)
    reference = train_classic(reference_net, train_loader, test_loader, 3,
                              torch.optim.Adam(reference_net.parameters(), lr=1e-3), "cpu")

    data = prepare("mnist", net.input_size, idx_root, download=False, normalize="mean_std", mean=mean, std=std)
    data = Data(data.train, data.test, data.test, data.classes)
    adam = make_optimizer(functools.partial(torch.optim.Adam, lr=1e-3), net.parameters(), CPU)
    ours = fit(net, adam, data, 3, 32, shuffle=False, compile="off").history

    for theirs, mine in zip(reference, ours):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
        assert mine["train_acc"] == pytest.approx(theirs["train_acc"])
        assert mine["val_loss"] == pytest.approx(theirs["test_loss"], rel=1e-5)
        assert mine["val_acc"] == pytest.approx(theirs["test_acc"])
    assert ours[-1]["train_loss"] < ours[0]["train_loss"]  # it learned: the comparison is not vacuous
