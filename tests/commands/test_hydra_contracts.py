"""Hydra's own contract suites for launchers (hydra.test_utils.launcher_common_tests), run against the project's
joblib launcher (and its basic sweeper, in batches) as Hydra's plugins run them against theirs: trivial task
functions, Hydra's own test apps. What is the project's alone (a dead worker closed in one line, runs relaunched)
has real sweeps elsewhere."""
import pytest
from hydra.test_utils.launcher_common_tests import BatchedSweeperTestSuite, IntegrationTestSuite, LauncherTestSuite

from experiments.config import PROJECT_ROOT, compose_with_hydra, register_plugins

from ..support.contracts import BATCHES_OF_2, integration_flags


@pytest.fixture(autouse=True)
def the_projects_launchers(hydra_restore_singletons):
    """hydra/launcher=joblib is the project's for every test of a suite (Hydra's singletons are restored after)."""
    register_plugins()


def test_hydra_launcher_joblib_is_the_projects_launcher():
    launcher = compose_with_hydra(["hydra/launcher=joblib"]).hydra.launcher
    assert launcher._target_ == "hydra_plugins.lenet_sweeps.JoblibLauncher" and launcher.retries == 1


OURS = "hydra.launcher._target_=hydra_plugins.lenet_sweeps.JoblibLauncher"  # named, whatever a scan registered


@pytest.mark.parametrize("launcher_name, overrides", [("joblib", [OURS])])
class TestTheProjectsJoblibLauncher(LauncherTestSuite):
    pass


@pytest.mark.parametrize("launcher_name, overrides", [("joblib", [OURS, *BATCHES_OF_2])])
class TestTheProjectsSweeperInBatches(BatchedSweeperTestSuite):
    pass


@pytest.fixture
def discoverable(monkeypatch):
    """A plain Hydra app finds the project's launchers where the checkout's hydra_plugins/ is on its path (an
    editable install's import hook hides it from Hydra's plugin scan), as the README says."""
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))


# Hydra's test apps in processes of their own, which find the project's launcher by its name.
@pytest.mark.usefixtures("discoverable")
@pytest.mark.parametrize("task_launcher_cfg, extra_flags", [({}, integration_flags("joblib", OURS))])
class TestTheProjectsJoblibLauncherIntegration(IntegrationTestSuite):
    pass
