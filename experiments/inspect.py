"""python -m experiments.inspect model=classic [model.activation=tanh ...]

Prints d2l's layer-by-layer table (output shape of each layer for one input) and the parameter
count of the model that these overrides compose; the same table is logged with every run.
"""
from __future__ import annotations

from hydra.utils import instantiate

from lenet.model import layer_table

from . import cli
from .validate import checked_config


@cli.one_line_errors
def main(argv: list[str]) -> int:
    cfg = checked_config(argv)
    net = instantiate(cfg.model)
    print(f"{cfg.model._target_}  input 1x{net.input_size}x{net.input_size}")
    print(layer_table(net))
    return cli.OK


if __name__ == "__main__":
    cli.start(main)
