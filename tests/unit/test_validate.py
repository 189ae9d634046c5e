"""The pre-check reads the command line as Hydra does, and enumerates a sweep's jobs with Hydra's public API."""
import pytest

from experiments.validate import check_command, hydra_args, job_overrides


def test_hydra_args_is_hydras_own_parser():
    # The one use of hydra._internal: if a Hydra upgrade moves or changes its parser, this fails first.
    args = hydra_args(["-m", "model=classic,d2l", "seed=1"])
    assert args is not None, "hydra._internal.utils.get_args_parser is gone: update experiments.validate.hydra_args"
    assert args.multirun and args.overrides == ["model=classic,d2l", "seed=1"]
    assert hydra_args(["--cfg", "job"]).cfg == "job" and hydra_args(["--help"]).help
    assert not hydra_args(["optim=sgd"]).multirun


@pytest.mark.parametrize("argv, jobs", [
    (["model=d2l"], [["model=d2l"]]),
    (["-m", "model=classic,d2l", "optim=sgd"], [["model=classic", "optim=sgd"], ["model=d2l", "optim=sgd"]]),
    (["-m", "model=glob(*)"], [["model=classic"], ["model=d2l"]]),  # a documented Hydra sweep over a group
    (["-m", "model=glob(d*)", "seed=range(0,2)"], [["model=d2l", "seed=0"], ["model=d2l", "seed=1"]]),
    (["-m", "optim.lr=interval(0.0001,1)", "seed=0"], [["seed=0"]]),  # a sweeper's search space: its to pick
    (["--cfg", "job"], None),
])
def test_every_job_of_the_command_is_enumerated(argv, jobs):
    assert job_overrides(argv) == jobs


def test_a_glob_sweep_passes_the_check_and_checks_every_model():
    configs = check_command(["-m", "model=glob(*)", "trainer.epochs=1"])
    assert sorted(cfg.model._target_ for cfg in configs) == ["lenet.model.lenet_classic", "lenet.model.lenet_d2l"]


def test_a_sweep_the_check_cannot_enumerate_is_left_to_hydra(monkeypatch):
    def cannot(overrides):
        raise RuntimeError("a sweep syntax from a newer Hydra")

    monkeypatch.setattr("experiments.validate.expand_sweep", cannot)
    assert job_overrides(["-m", "model=classic,d2l"]) is None
    assert check_command(["-m", "model=classic,d2l"]) == []
