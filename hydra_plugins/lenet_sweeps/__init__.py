"""lenet-sweeps' Hydra plugin: the launchers of hydra/launcher=slurm (conf/hydra/launcher/slurm.yaml),
hydra/launcher=submitit_local and hydra/launcher=joblib, and their configs.

Hydra instantiates launchers only from the hydra_plugins package and imports every module in it at
start-up, so this stays small: the behaviour is in experiments.launchers, imported when a sweep
launches. Without the 'slurm' or 'parallel' extra there is nothing to define for it (and nothing for
Hydra to warn about).
"""
from dataclasses import dataclass
from typing import Sequence

try:
    from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher as SubmititLocalLauncher
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
except ImportError:
    SubmititSlurmLauncher = None

if SubmititSlurmLauncher is not None:
    from hydra.core.utils import JobReturn

    class SlurmLauncher(SubmititSlurmLauncher):
        """submitit's SLURM launcher with a bounded wait, cancellation on Ctrl-C/SIGTERM and one-line refusals."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            from experiments.launchers.slurm import launch

            return launch(self, job_overrides, initial_job_idx)

    @dataclass
    class LenetSlurmConf(SlurmQueueConf):
        """submitit's SLURM settings, and how this launcher watches its jobs (these stay out of sbatch)."""

        _target_: str = "hydra_plugins.lenet_sweeps.SlurmLauncher"
        poll_s: float = 2.0  # how often the queue is read while jobs run
        dead_job_grace_s: float = 15.0  # a job gone from the queue this long without a result has died
        pending_report_s: float = 60.0  # while jobs wait PENDING, say why this often
        pending_timeout_min: float = 60.0  # jobs still PENDING after this long: the sweep gives up on them

    class LocalLauncher(SubmititLocalLauncher):
        """submitit's local launcher whose jobs stop with their sweep, however it is stopped."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            from experiments.launchers.local import launch

            return launch(self, job_overrides, initial_job_idx)

    @dataclass
    class LenetLocalConf(LocalQueueConf):
        _target_: str = "hydra_plugins.lenet_sweeps.LocalLauncher"



try:
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
    from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as HydraJoblibLauncher
except ImportError:
    HydraJoblibLauncher = None

if HydraJoblibLauncher is not None:
    from hydra.core.utils import JobReturn

    class JoblibLauncher(HydraJoblibLauncher):
        """Hydra's joblib launcher whose sweep survives a worker that dies: its run closed, the rest launched."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            from experiments.launchers.joblib import launch

            return launch(self, job_overrides, initial_job_idx)

    @dataclass
    class LenetJoblibConf(JobLibLauncherConf):
        _target_: str = "hydra_plugins.lenet_sweeps.JoblibLauncher"
        retries: int = 1  # when a worker dies: how often the jobs left without a result are launched again



def register_configs() -> None:
    """Store the launchers' configs; hydra/launcher=joblib and submitit_local in place of Hydra's own. Hydra's
    plugin scan imports their plugins' config modules again, so experiments.config.register_plugins calls this
    after the scan."""
    from hydra.core.config_store import ConfigStore

    if SubmititSlurmLauncher is not None:
        ConfigStore.instance().store(group="hydra/launcher", name="lenet_slurm", node=LenetSlurmConf,
                                     provider="lenet_sweeps")
        ConfigStore.instance().store(group="hydra/launcher", name="submitit_local", node=LenetLocalConf,
                                     provider="lenet_sweeps")
    if HydraJoblibLauncher is not None:
        ConfigStore.instance().store(group="hydra/launcher", name="joblib", node=LenetJoblibConf,
                                     provider="lenet_sweeps")


register_configs()
