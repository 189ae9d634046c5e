"""The basic sweeper's config loader: each job's config composed once, for the batch's check, and handed to its
launch; a second launch of the same job (a relaunched worker) composes afresh, and a launcher pickled into a job's
own process (submitit) travels as the plain loader, without the configs."""
import importlib
import pickle

from omegaconf import OmegaConf

import hydra_plugins.lenet_sweeps as plugin
from hydra_plugins.lenet_sweeps import ComposedOnce


class Loader:
    """A ConfigLoader that counts its compositions."""

    def __init__(self):
        self.compositions = 0

    def load_sweep_config(self, master_config, sweep_overrides):
        self.compositions += 1
        return OmegaConf.create({"overrides": list(sweep_overrides), "hydra": {"job": {"num": 0}}})

    def get_search_path(self):
        return "the loader's own"


def test_the_launch_gets_the_config_the_check_composed_as_a_copy_of_its_own():
    loader, master = Loader(), OmegaConf.create({})
    once = ComposedOnce(loader)
    checked = once.load_sweep_config(master, ["model=d2l"])
    checked.hydra.job.num = 7  # what the check does with its config is not the launch's
    launched = once.load_sweep_config(master, ["model=d2l"])
    assert loader.compositions == 1 and launched.overrides == ["model=d2l"] and launched.hydra.job.num == 0
    again = once.load_sweep_config(master, ["model=d2l"])
    assert loader.compositions == 2 and again.overrides == ["model=d2l"]


def test_another_job_or_another_master_config_is_composed_for_itself():
    loader = Loader()
    once = ComposedOnce(loader)
    first, second = OmegaConf.create({}), OmegaConf.create({})
    once.load_sweep_config(first, ["model=d2l"])
    assert once.load_sweep_config(first, ["model=classic"]).overrides == ["model=classic"]
    once.load_sweep_config(second, ["model=d2l"])
    assert loader.compositions == 3
    assert once.get_search_path() == "the loader's own"


def test_pickled_into_a_job_process_it_is_the_plain_loader_with_no_configs():
    once = ComposedOnce(Loader())
    once.load_sweep_config(OmegaConf.create({}), ["model=d2l"])
    importlib.reload(plugin)  # as Hydra's plugin scan does: the class `once` was made from is no longer the module's
    copy = pickle.loads(pickle.dumps(once))
    assert type(copy) is Loader and copy.compositions == 1
