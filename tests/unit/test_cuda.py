"""The CUDA path (checked on a GPU machine; skipped where there is none, as in CI)."""
import pytest
import torch

from lenet.data import prepare
from lenet.engine import fit
from lenet.model import lenet_classic, lenet_d2l

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("build, optimizer", [
    (lenet_d2l, lambda p: torch.optim.SGD(p, lr=0.9)),
    (lenet_d2l, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    (lenet_classic, lambda p: torch.optim.Adam(p, lr=1e-3)),
])
def test_cuda_graph_step_trains_as_the_eager_step(idx_root, build, optimizer):
    # 180 training samples at batch 32: 5 full batches (3 warm-up, then graph replays) + one of 20.
    data = prepare("mnist", 32 if build is lenet_classic else 28, idx_root, download=False, val_fraction=0.1)
    data = data.to("cuda")
    histories = {}
    for compile in ("off", "cuda_graph"):
        torch.manual_seed(0)
        net = build().cuda()
        result = fit(net, optimizer(net.parameters()), data, 3, 32, seed=0, compile=compile)
        assert result.step_kind == {"off": "eager", "cuda_graph": "cuda_graph"}[compile]
        histories[compile] = result.history
    for eager, graph in zip(histories["off"], histories["cuda_graph"]):
        assert graph["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-3)
        assert graph["val_acc"] == pytest.approx(eager["val_acc"], abs=0.02)
    assert histories["cuda_graph"][-1]["train_loss"] < histories["cuda_graph"][0]["train_loss"]
