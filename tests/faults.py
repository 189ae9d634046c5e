"""Models that fail on purpose, reached through Hydra: model._target_=tests.faults.NAME."""
import torch

from lenet.model import lenet_classic


def exploding_lenet(**kw):
    """LeNet-5 whose training step raises, as a bug in user code would."""
    net = lenet_classic(**kw)

    def explode(module, args):
        if torch.is_grad_enabled():
            raise RuntimeError("injected fault in forward")

    net.register_forward_pre_hook(explode)
    return net
