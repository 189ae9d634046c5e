"""Checks a command before anything runs: a bad value gets one line, and nothing is created.

Every job of the sweep is composed and its values checked (choices, ranges, dataset files,
tracking server) before the sweep's parent run exists, so a typo leaves stores and exports as they were.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import math
import numbers
import os
import shlex
import tempfile
import typing
from pathlib import Path

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import MissingConfigException, OverrideParseException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ValidationError

from lenet.data import check_data, check_val_fraction, ensure_available, training_samples
from lenet.engine import check_trainer, resolve_device

from . import cores
from .config import (CONF_DIR, Config, compose, compose_with_hydra, config_terms, override_key,
                     prepare_hydra)
from .errors import BadInput, message
from .record.store import check_store

PROGRESS = ("auto", "bar", "lines")
CORRECTIONS = ("holm", "fdr_bh")  # as analysis.family takes them (not imported here: it loads the statistics)
EXTRAS = {"joblib": "parallel", "submitit_local": "slurm", "submitit_slurm": "slurm", "optuna": "hpo"}
KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}

log = logging.getLogger(__name__)


def hydra_args(argv: list[str]) -> argparse.Namespace | None:
    """Hydra's own reading of the command line (-m, --cfg, overrides...), None if Hydra's parser is gone.

    Hydra has no public API for its parser: this is the project's one use of hydra._internal,
    and tests/test_validate.py fails loudly if a Hydra upgrade moves or changes it.
    """
    try:
        from hydra._internal.utils import get_args_parser
    except ImportError:
        return None
    return get_args_parser().parse_args(argv)


def job_overrides(argv: list[str]) -> list[list[str]] | None:
    """The override list of every job the command would launch; None for --help, --cfg and the like,
    or when the command line cannot be read here (then Hydra reads it, and each job checks itself)."""
    args = hydra_args(argv)
    if args is None or args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return None
    try:
        OverridesParser.create().parse_overrides(list(args.overrides))
    except OverrideParseException as err:
        raise BadInput(unreadable(err)) from None
    if not args.multirun:
        return [list(args.overrides)]
    try:
        return expand_sweep(args.overrides)
    except Exception as err:  # a sweep this check cannot enumerate: Hydra's own handling takes over
        log.debug("sweep not expanded for checking: %s", err)
        return None


def expand_sweep(overrides: list[str]) -> list[list[str]]:
    """Every job of a basic sweep (a,b / range() / glob() choices), as Hydra's basic sweeper makes them.

    A sweeper's search space (interval(), tag(...)) is left out: its values are the sweeper's to pick.
    """
    prepare_hydra()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())  # for glob()
        axes = []
        for override in parser.parse_overrides(list(overrides)):
            key = override.get_key_element()
            if not override.is_sweep_override():
                axes.append([f"{key}={override.get_value_element_as_str()}"])
            elif override.is_discrete_sweep():
                axes.append([f"{key}={value}" for value in override.sweep_string_iterator()])
    return [list(job) for job in itertools.product(*axes)]


def compose_job(overrides: list[str]) -> DictConfig:
    try:
        return compose(overrides)
    except MissingConfigException as err:
        group = (err.missing_cfg_file or "").rsplit("/", 1)[0]
        chosen = next((o.split("=", 1)[1] for o in overrides if override_key(o) == group), "?")
        extra = EXTRAS.get(chosen) if group.startswith("hydra/") else None
        if extra:
            raise BadInput(f"{group}={chosen} needs the {extra!r} extra: pip install -e '.[{extra}]'") from None
        raise BadInput(f"unknown {group} {chosen!r}; choose one of: {', '.join(err.options or [])}") from None
    except Exception as err:  # Hydra's own multi-line messages: keep the line that names the problem
        if isinstance(err.__cause__, ValidationError):  # a value of the wrong type for its key (config.Config)
            raise BadInput(wrong_type(err.__cause__)) from None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        key = first.split("'")[1] if first.startswith("Could not override") else None
        if key:
            raise BadInput(unknown_key_message(key)) from None
        raise BadInput(first) from None


def checked_config(overrides: list[str]) -> DictConfig:
    """The composed config of one job, or BadInput for its first bad key or value."""
    cfg = compose_job(overrides)
    check_values(cfg)
    return cfg


def wrong_type(err: ValidationError) -> str:
    """"trainer.epochs 'abc' must be a whole number", from OmegaConf's multi-line message."""
    kind = Config
    for part in str(err.full_key).split("."):
        kind = typing.get_type_hints(kind).get(part) if dataclasses.is_dataclass(kind) else None
    return f"{err.full_key} {err.value!r} must be {KINDS.get(kind, 'of another type')}"


def unknown_key_message(key: str) -> str:
    parent, _, _ = key.rpartition(".")
    node = compose([])
    siblings = OmegaConf.select(node, parent) if parent else node
    keys = ", ".join(str(k) for k in siblings) if isinstance(siblings, DictConfig) else ""
    return f"unknown key {key!r}" + (f"; keys under {parent or 'the top level'}: {keys}" if keys else "")


def check_values(cfg: DictConfig) -> None:
    """The values a job would fail on, checked without training anything."""
    lr = cfg.optim.get("lr")  # optim is a torch class's arguments: no schema types it
    if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        raise BadInput(f"optim.lr {lr!r} must be a finite number > 0")
    if cfg.correction not in CORRECTIONS:
        raise BadInput(f"unknown correction {cfg.correction!r}; choose one of: {', '.join(CORRECTIONS)}")
    if cfg.trainer.progress not in PROGRESS:
        raise BadInput(f"unknown trainer.progress {cfg.trainer.progress!r}; choose one of: {', '.join(PROGRESS)}")
    for key in ("server_patience_s", "heartbeat_s", "heartbeat_timeout_s", "claim_settle_s"):
        if not math.isfinite(cfg.mlflow[key]) or cfg.mlflow[key] <= 0:
            raise BadInput(f"mlflow.{key} {cfg.mlflow[key]:g} must be a number of seconds > 0")
    if not cfg.mlflow.experiment.strip():
        raise BadInput(f"mlflow.experiment {cfg.mlflow.experiment!r} must be a non-empty name")
    try:
        check_trainer(cfg.trainer.epochs, cfg.trainer.batch_size, cfg.trainer.compile, cfg.trainer.limit_batches)
        resolve_device(cfg.device)
        net = instantiate(cfg.model)
        check_optimizer(instantiate(cfg.optim, _convert_="all"), net)
        check_data(**{k: cfg.data[k] for k in ("name", "fit_to_input", "normalize", "val_fraction", "mean", "std")})
    except Exception as err:  # Hydra wraps what the target raised: report the target's own words, as config keys
        cause = err.__cause__ or err
        raise BadInput(config_terms(message(cause)) or type(cause).__name__) from None


def check_optimizer(make, net) -> None:
    """The optimizer's own checks of its arguments (lr, betas, momentum). torch's optimizers check every argument
    before they take a parameter, and taking one imports torch._dynamo (about 1 CPU s), which a parent whose jobs
    train in processes of their own (joblib, SLURM) never needs: so one of torch's is made on no parameters (what
    it checks after taking them is about them: dense, real tensors, as LeNet's are), any other on the network's."""
    if getattr(make, "func", make).__module__.split(".")[:2] == ["torch", "optim"]:
        try:
            make([])
        except ValueError as err:
            if str(err) == "optimizer got an empty parameter list":  # every argument has passed
                return
            raise
    make(net.parameters())


def check_command(argv: list[str]) -> list[DictConfig]:
    """Raise BadInput for the first problem in the command; return the config of each job it would run."""
    jobs = job_overrides(argv)
    if jobs is None:
        return []
    try:
        cores.check_setting()
    except ValueError as err:
        raise BadInput(str(err)) from None
    configs = [checked_config(overrides) for overrides in jobs]
    if hydra_args(argv).multirun:
        check_launcher(jobs[0])
    # What jobs share (output places, datasets, stores) is checked once each, in that order.
    checks = [(lambda cfg: tuple(paths(cfg).items()), lambda cfg: check_no_tilde(paths(cfg))),
              (lambda cfg: str(cfg.runs_dir), lambda cfg: check_writable(cfg.runs_dir, "runs_dir")),
              (lambda cfg: data_identity(cfg), check_dataset),
              (lambda cfg: cfg.mlflow.tracking_uri, lambda cfg: check_store(cfg.mlflow.tracking_uri))]
    for key, check in checks:
        seen = set()
        for cfg in configs:
            if key(cfg) not in seen:
                seen.add(key(cfg))
                try:
                    check(cfg)
                except (LookupError, RuntimeError, ValueError, OSError) as err:
                    raise BadInput(config_terms(message(err))) from None
    return configs


def check_launcher(overrides: list[str]) -> None:
    """A SLURM request the cluster cannot satisfy is refused here, before a parent run or a job exists."""
    launcher = compose_with_hydra(overrides).hydra.launcher
    if not str(launcher.get("_target_", "")).endswith("SlurmLauncher"):
        return
    from .launchers.slurm_cluster import SlurmUnavailable, preflight, too_short

    if problem := too_short(launcher.get("timeout_min"), launcher.get("signal_delay_s")):
        raise BadInput(problem)
    request = {k: launcher.get(k) for k in ("partition", "nodes", "tasks_per_node", "gpus_per_node", "gpus_per_task",
                                            "cpus_per_task", "mem_gb", "timeout_min")}
    try:
        preflight(request)
    except (SlurmUnavailable, ValueError) as err:
        raise BadInput(str(err)) from None


def data_identity(cfg: DictConfig) -> tuple:
    return (cfg.data.name, cfg.data.root, cfg.data.download, cfg.data.get("mirror"), cfg.data.get("cache_dir"),
            cfg.data.val_fraction)


def check_dataset(cfg: DictConfig) -> None:
    """Missing files, a failed download, corrupt IDX, or a split that leaves nothing to train on."""
    d = cfg.data
    ensure_available(d.name, d.root, d.download, d.get("mirror"), d.get("cache_dir"))
    check_val_fraction(d.val_fraction, training_samples(d.name, d.root))


def paths(cfg: DictConfig) -> dict[str, str]:
    """The places a job reads or writes, by key (a data config may have no cache)."""
    places = {"runs_dir": cfg.runs_dir, "data.root": cfg.data.root, "data.cache_dir": cfg.data.get("cache_dir"),
              "mlflow.tracking_uri": cfg.mlflow.tracking_uri}
    return {key: str(value) for key, value in places.items() if value is not None}


def check_no_tilde(places: dict[str, str]) -> None:
    """ValueError for a path starting with ~: zsh and sh leave it after = as typed, and it would make a
    folder named ~ in the working directory (which `rm -rf ~` then "cleans up")."""
    for key, value in places.items():
        if message := tilde(key, value):
            raise ValueError(message)


def tilde(key: str, value: str) -> str | None:
    """What to write instead of a path value (or sqlite:/// URI) starting with ~, if it does."""
    path = value.removeprefix("sqlite:///")
    if not path.startswith("~"):
        return None
    full = value.replace(path, os.path.expanduser(path), 1)
    return (f"{key} {value}: ~ is not expanded here (the shell left it as typed); write the full path: "
            f"{shlex.quote(f'{key}={full}')}")


def unreadable(err: OverrideParseException) -> str:
    """One line for an override Hydra's grammar cannot read: a ~ path, or how to quote the value."""
    key, _, value = err.override.partition("=")
    if message := tilde(override_key(err.override), value):
        return message
    lines = [line.strip() for line in err.message.splitlines()]
    reason = next((line for line in lines if line and line != "^" and not line.startswith(("Error parsing", "See "))),
                  "")
    if reason.startswith("LexerNoViableAltException"):
        reason = "a character it does not take unquoted"
    quoted = shlex.quote(key + '="' + value + '"')  # for Hydra's grammar, then for the shell
    return (f"cannot read the override {err.override!r} ({reason}); quote the value for Hydra: {quoted} "
            f"(https://hydra.cc/docs/advanced/override_grammar/basic)")


def check_writable(path: str, key: str) -> None:
    """ValueError unless path is a directory this process can write in, or could create: creates nothing."""
    target = Path(path)
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ValueError(f"{key} {path} cannot be created: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK) or not can_make_dir(existing):
        why = "the file system is read-only" if read_only(existing) else "no permission to write"
        raise ValueError(f"{key} {path} cannot be {'written' if existing == target else 'created'}: {why} "
                         f"in {existing}")


def can_make_dir(folder: Path) -> bool:
    """Whether a directory can be made in folder, found by making one and removing it at once
    (os.access says yes to root in /proc and the like)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".lenet-probe-", dir=folder))
    except OSError:
        return False
    return True


def read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
