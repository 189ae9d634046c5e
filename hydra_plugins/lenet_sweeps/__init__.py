"""lenet-sweeps' Hydra plugin: the SLURM launcher of conf/hydra/launcher/slurm.yaml, and its config.

Hydra instantiates launchers only from the hydra_plugins package and imports every module in it at
start-up, so this stays small: the behaviour is in experiments.launchers.slurm, imported when a sweep
launches. Without the 'slurm' extra there is nothing to define (and nothing for Hydra to warn about).
"""
from dataclasses import dataclass
from typing import Sequence

try:
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
except ImportError:
    SubmititSlurmLauncher = None

if SubmititSlurmLauncher is not None:
    from hydra.core.config_store import ConfigStore
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

    ConfigStore.instance().store(group="hydra/launcher", name="lenet_slurm", node=LenetSlurmConf,
                                 provider="lenet_sweeps")
