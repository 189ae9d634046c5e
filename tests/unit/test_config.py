import hashlib
import inspect
import itertools
import json

import pytest
import torch
from hydra.utils import instantiate

from experiments.config import NOT_IDENTITY, compose, config_hash, flatten
from lenet.data import prepare

MODELS, OPTIMS, DATA = ("classic", "d2l"), ("sgd", "adam"), ("mnist5k", "mnist", "fashion_mnist")


@pytest.mark.parametrize("model, optim, data", itertools.product(MODELS, OPTIMS, DATA))
def test_every_combination_composes_and_instantiates(model, optim, data, idx_root):
    cfg = compose([f"model={model}", f"optim={optim}", f"data={data}", f"data.root={idx_root}"])
    net = instantiate(cfg.model)
    assert net.input_size == {"classic": 32, "d2l": 28}[model]
    opt = instantiate(cfg.optim, _convert_="all")(net.parameters())
    assert isinstance(opt, {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optim])
    assert opt.defaults["lr"] == {"sgd": 0.9, "adam": 1e-3}[optim]
    assert set(cfg.data) <= set(inspect.signature(prepare).parameters)
    assert cfg.data.name == data


def test_defaults_are_the_recipes():
    d2l = compose(["model=d2l"]).model
    classic = compose([]).model
    assert (d2l.activation, d2l.pool, d2l.init) == ("sigmoid", "avg", "xavier")
    assert (classic.activation, classic.pool, classic.init) == ("relu", "max", "default")
    cfg = compose(["data=mnist"])
    assert (cfg.trainer.epochs, cfg.trainer.batch_size, cfg.data.normalize) == (10, 256, "none")
    # The embedded digits bring their own settings (conf/data/mnist5k.yaml says why) ...
    small = compose([])
    assert (small.data.name, small.trainer.epochs, small.trainer.batch_size) == ("mnist5k", 18, 64)
    # ... which a user's override still beats.
    assert compose(["trainer.epochs=3"]).trainer.epochs == 3


def test_overrides_reach_the_objects():
    cfg = compose(["model=d2l", "model.activation=relu", "model.pool=max", "optim=sgd", "optim.lr=0.1",
                   "optim.momentum=0.9", "optim.weight_decay=1e-4"])
    net = instantiate(cfg.model)
    assert type(net[1]).__name__ == "ReLU" and type(net[2]).__name__ == "MaxPool2d"
    opt = instantiate(cfg.optim, _convert_="all")(net.parameters())
    assert (opt.defaults["lr"], opt.defaults["momentum"], opt.defaults["weight_decay"]) == (0.1, 0.9, 1e-4)


def test_default_store_is_under_runs_at_the_project_root():
    from experiments.config import PROJECT_ROOT

    cfg = compose([])
    assert cfg.mlflow.tracking_uri == f"sqlite:///{PROJECT_ROOT}/runs/mlflow.db"


def test_a_tiny_run_is_a_config_of_its_own_and_the_default_keeps_earlier_runs_identity():
    default = compose([])
    assert config_hash(default) == config_hash(compose(["trainer.limit_batches=null"]))
    assert config_hash(default) != config_hash(compose(["trainer.limit_batches=2"]))
    before = {k: v for k, v in flatten(default).items()  # the identity as it was before the key existed
              if not k.startswith(NOT_IDENTITY) and k != "trainer.limit_batches"}
    assert config_hash(default) == hashlib.sha1(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()
