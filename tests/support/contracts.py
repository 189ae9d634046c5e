"""What the runs of Hydra's launcher contract suites (hydra.test_utils.launcher_common_tests) share, whichever of
the project's launchers they run against."""

# The project's basic sweeper (it hands the launcher the configs it composed to check a batch), in batches of 2:
# BatchedSweeperTestSuite's overrides, beside the launcher's own.
BATCHES_OF_2 = ["hydra.sweeper._target_=hydra_plugins.lenet_sweeps.BasicSweeper", "hydra.sweeper.max_batch_size=2"]


def integration_flags(launcher: str, *overrides: str) -> list[str]:
    """IntegrationTestSuite's extra_flags: a multirun of Hydra's test apps on this launcher, without job logging."""
    return ["-m", "hydra/job_logging=hydra_debug", "hydra/job_logging=disabled", f"hydra/launcher={launcher}",
            *overrides]
