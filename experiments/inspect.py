"""python -m experiments.inspect model=classic [model.activation=tanh ...]

Prints d2l's layer-by-layer table (output shape of each layer for one input) and the parameter
count of the model that these overrides compose; the same table is logged with every run.
"""
from __future__ import annotations

import sys

from hydra.utils import instantiate

from lenet.model import layer_table

from .validate import BadInput, checked_config


def main(argv: list[str]) -> int:
    try:
        cfg = checked_config(argv)
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    net = instantiate(cfg.model)
    print(f"{cfg.model._target_}  input 1x{net.input_size}x{net.input_size}")
    print(layer_table(net))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
