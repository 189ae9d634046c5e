"""lenet-sweeps' Hydra plugin: the SLURM launcher of conf/hydra/launcher/slurm.yaml.

Hydra instantiates launchers only from the hydra_plugins package and imports every module in it at
start-up, so this stays small: the behaviour is in experiments.slurm, imported when a sweep
launches. Without the 'slurm' extra there is nothing to define (and nothing for Hydra to warn about).
"""
from typing import Sequence

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
except ImportError:
    SubmititSlurmLauncher = None

if SubmititSlurmLauncher is not None:
    from hydra.core.utils import JobReturn

    class SlurmLauncher(SubmititSlurmLauncher):
        """submitit's SLURM launcher with a bounded wait, cancellation on Ctrl-C/SIGTERM and one-line refusals."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            from experiments.slurm import launch

            return launch(self, job_overrides, initial_job_idx)
