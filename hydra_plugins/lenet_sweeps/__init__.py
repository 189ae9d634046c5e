"""lenet-sweeps' Hydra plugin: the launchers of hydra/launcher=slurm (conf/hydra/launcher/slurm.yaml),
hydra/launcher=submitit_local and hydra/launcher=joblib, the basic sweeper, and their configs.

Hydra instantiates launchers only from the hydra_plugins package and imports every module in it at
start-up, so this stays small: the behaviour is in experiments.launchers, imported when a sweep
launches. Without the 'slurm' or 'parallel' extra there is nothing to define for it (and nothing for
Hydra to warn about).
"""
import copy
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

        def __call__(self, *args, **kwargs):  # the job itself, in its own process
            from experiments.launchers import take_signals

            take_signals()
            return super().__call__(*args, **kwargs)

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

        def __call__(self, *args, **kwargs):  # the job itself, in its own process
            from experiments.launchers import take_signals

            take_signals()
            return super().__call__(*args, **kwargs)

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



from hydra._internal.core_plugins.basic_sweeper import BasicSweeperConf  # noqa: E402
from hydra.plugins.sweeper import Sweeper  # noqa: E402


class BasicSweeper(Sweeper):
    """Hydra's basic sweeper, whose launcher is handed the configs the sweeper composed to check its batch: Hydra
    composes every job twice (to check the batch before launching any job, then to launch each), and a composition
    takes 0.15-0.18 s on 2 cores. A launcher that composes in a job's own process (submitit) composes there, as
    before. (Hydra's sweeper is wrapped, not subclassed: its plugin scan imports Hydra's module anew, and its class
    with it.)"""

    def __init__(self, max_batch_size: int | None = None, params: dict | None = None):
        from hydra._internal.core_plugins import basic_sweeper

        self.basic = basic_sweeper.BasicSweeper(max_batch_size=max_batch_size, params=params)

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.types import HydraContext

        reusing = HydraContext(config_loader=ComposedOnce(hydra_context.config_loader),
                               callbacks=hydra_context.callbacks)
        self.basic.setup(hydra_context=reusing, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]):
        return self.basic.sweep(arguments)


class ComposedOnce:
    """A ConfigLoader that keeps each job's config from its first composition (the sweeper's check) for the next
    request of it (the launcher's), which takes it: a later request composes afresh (a relaunched job)."""

    def __init__(self, loader):
        self.loader = loader
        self.composed: dict = {}

    def load_sweep_config(self, master_config, sweep_overrides):
        key = (id(master_config), tuple(sweep_overrides))
        if key in self.composed:
            return self.composed.pop(key)
        config = self.loader.load_sweep_config(master_config, sweep_overrides)
        self.composed[key] = copy.deepcopy(config)  # the caller's own to change (the launcher sets the job's number)
        return config

    def __getattr__(self, name):  # everything else is the loader's
        return getattr(self.loader, name)

    def __reduce__(self):
        # Pickled with a launcher into a job's process (submitit), it travels as (a copy of) the plain loader:
        # that process composes nothing, and the loader's class pickles even after Hydra's plugin scan has
        # re-imported this module, which leaves this class a stranger to pickle's lookup by name.
        return copy.copy, (self.loader,)


@dataclass
class LenetBasicSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.lenet_sweeps.BasicSweeper"


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
    ConfigStore.instance().store(group="hydra/sweeper", name="basic", node=LenetBasicSweeperConf,
                                 provider="lenet_sweeps")


register_configs()
