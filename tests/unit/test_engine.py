import copy
import functools

import pytest
import torch

from lenet.data import prepare
from lenet.engine import evaluate, fit, make_optimizer
from lenet.model import lenet_classic


@pytest.fixture(scope="module")
def digits():
    return prepare("mnist5k", input_size=32, val_fraction=0.1, seed=0)


def train_classic(data, epochs=3, seed=0, limit_batches=None):
    torch.manual_seed(seed)
    net = lenet_classic()
    return net, fit(net, torch.optim.Adam(net.parameters(), lr=1e-3), data, epochs, 256, seed=seed,
                    limit_batches=limit_batches)


@pytest.fixture(scope="module")
def trained(digits):
    """LeNet-5 after 3 epochs of Adam on the embedded digits, seed 0: one training the tests below read."""
    return train_classic(digits)


def test_fit_learns_real_digits_and_reports_every_epoch(digits, trained):
    net, result = trained
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert set(result.history[0]) >= {"train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds",
                                     "samples_per_second"}
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] < 2.4
    assert result.history[-1]["val_acc"] > 0.7
    assert evaluate(net, digits.test)[1] > 0.7


def test_best_state_is_the_best_validation_epoch(digits, trained):
    net, result = copy.deepcopy(trained)
    best = max(result.history, key=lambda row: row["val_acc"])
    assert result.best_epoch == best["epoch"]
    net.load_state_dict(result.best_state)
    assert evaluate(net, digits.val)[1] == pytest.approx(best["val_acc"])


def test_same_seed_same_metrics_on_cpu(digits):
    first, second = (train_classic(digits, epochs=2, limit_batches=4)[1].history for _ in range(2))
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    assert [[row[k] for k in keys] for row in first] == [[row[k] for k in keys] for row in second]


@pytest.mark.parametrize("epochs, batch, message", [(0, 256, "^epochs 0 must be >= 1$"),
                                                         (1, 0, "^batch_size 0 must be >= 1$")])
def test_bad_schedule_is_refused(digits, epochs, batch, message):
    net = lenet_classic()
    with pytest.raises(ValueError, match=message):
        fit(net, torch.optim.SGD(net.parameters(), lr=0.1), digits, epochs, batch)


@pytest.mark.parametrize("make, fused", [
    (functools.partial(torch.optim.Adam, lr=1e-3), True),  # the recipes' optimizers get torch's fused CPU kernel
    (functools.partial(torch.optim.SGD, lr=0.9), True),
    (functools.partial(torch.optim.Adam, lr=1e-3, foreach=True), None),  # an implementation the config chose stays
    (functools.partial(torch.optim.Adam, lr=1e-3, fused=False), False),
    (functools.partial(torch.optim.RMSprop, lr=1e-3), None),  # no fused kernel: torch's default
])
def test_cpu_optimizers_run_fused_unless_the_config_chose(make, fused):
    optimizer = make_optimizer(make, lenet_classic().parameters(), torch.device("cpu"))
    assert type(optimizer) is make.func
    assert optimizer.defaults.get("fused") == fused
    assert optimizer.defaults["lr"] == make.keywords["lr"]


def test_limit_batches_trains_on_that_many_batches_and_evaluates_everything(digits, trained):
    torch.manual_seed(0)
    net = lenet_classic()
    result = fit(net, torch.optim.Adam(net.parameters(), lr=1e-3), digits, 2, 64, limit_batches=3)
    assert result.samples_per_epoch == 3 * 64 and len(result.history) == 2
    assert all(row["samples_per_second"] > 0 for row in result.history)
    assert trained[1].samples_per_epoch == len(digits.train)  # by default, every batch
    with pytest.raises(ValueError, match=r"^limit_batches 0 must be >= 1 \(or null: every batch\)$"):
        fit(net, torch.optim.Adam(net.parameters()), digits, 1, 64, limit_batches=0)
