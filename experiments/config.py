"""Where the configs live, their types, the resolvers they use, and the identity of a job and of a sweep."""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf, open_dict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"


@dataclass
class TrainerConfig:
    """trainer: in conf/config.yaml (values there; types here, checked as Hydra composes)."""

    epochs: int = MISSING
    batch_size: int = MISSING
    progress: str = MISSING  # auto, bar, lines
    compile: str = MISSING  # auto, cuda_graph, torch_compile, off
    limit_batches: Optional[int] = None  # train on only this many batches an epoch (null: all)


@dataclass
class MlflowConfig:
    tracking_uri: str = MISSING
    experiment: str = MISSING
    log_model: bool = MISSING
    server_patience_s: float = MISSING
    heartbeat_s: float = MISSING
    heartbeat_timeout_s: float = MISSING
    claim_settle_s: float = MISSING


@dataclass
class Config:
    """The top level of conf/config.yaml; model, optim and data are checked by what they instantiate."""

    seed: int = MISSING
    device: str = MISSING
    runs_dir: str = MISSING
    resume: bool = MISSING
    reuse_other_code: bool = MISSING
    correction: str = MISSING  # holm or fdr_bh (analysis.family)
    trainer: TrainerConfig = MISSING
    mlflow: MlflowConfig = MISSING
    model: Any = MISSING
    optim: Any = MISSING
    data: Any = MISSING


def prepare_hydra() -> None:
    """What every command does before Hydra reads conf/: check it is there, register the config's types
    and the project's launcher, and let configs name the project root (safe to call again)."""
    from hydra.core.config_store import ConfigStore

    require_conf()
    ConfigStore.instance().store(name="lenet_schema", node=Config)  # conf/config.yaml's first default
    register_plugins()
    # runs/ sits at the project root whatever directory Hydra runs a job in.
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
    # Drawn once per config and cached, as ${now:} is: every job of a sweep sees the sweep's value.
    OmegaConf.register_new_resolver("unique", lambda: uuid.uuid4().hex[:6], use_cache=True, replace=True)


def register_plugins() -> None:
    """Hydra finds plugins by listing the folders of the hydra_plugins package, which misses ours in an
    editable install (`pip install -e`, served by an import hook): register it, and its config, by hand."""
    from hydra.core.plugins import Plugins

    import hydra_plugins.lenet_sweeps as ours

    plugins = Plugins.instance()  # Hydra's plugin scan, once per process: our configs go in after it
    plugins.register(ours.BasicSweeper)
    for launcher in ("SlurmLauncher", "LocalLauncher", "JoblibLauncher"):  # each there with its extra
        if hasattr(ours, launcher):
            plugins.register(getattr(ours, launcher))
    ours.register_configs()


def require_conf() -> None:
    """One line, not Hydra's traceback, when conf/ is not beside the code (pip install . leaves it out)."""
    if not (CONF_DIR / "config.yaml").is_file():
        raise SystemExit(f"error: no configs at {CONF_DIR}: lenet-sweeps runs from its checkout, where conf/ and "
                         f"runs/ live; clone it and install with: pip install -e .")


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, object]:
    """{"model": {"pool": "max"}} -> {"model.pool": "max"}; lists stay whole, as their str."""
    tree = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# Keys that say where files live or how a run is shown or logged, not what it computes: two
# people sharing a tracking server, or one who moved the project, count each other's runs.
NOT_IDENTITY = ("runs_dir", "data.root", "data.download", "data.mirror", "data.cache_dir", "trainer.progress",
                "mlflow.", "resume", "reuse_other_code", "correction")


# Keys added after runs were made, at the value that computes what those runs computed: left out of the identity
# there, so that the runs made before the key existed still count for their configs.
NEUTRAL = {"trainer.limit_batches": None}


def config_hash(cfg: DictConfig) -> str:
    """Identity of a job: equal hashes train the same thing (model, optim, data and its transforms,
    trainer, seed, device), wherever the files are."""
    flat = {k: v for k, v in flatten(cfg).items() if not k.startswith(NOT_IDENTITY)
            and not (k in NEUTRAL and v == NEUTRAL[k])}
    return hashlib.sha1(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()


def compose(overrides: list[str] = ()) -> DictConfig:
    """The config a run would get for these overrides, without running anything (no Hydra dirs)."""
    return compose_with_choices(overrides)[0]


def compose_with_choices(overrides: list[str] = ()) -> tuple[DictConfig, dict[str, str]]:
    """compose, and the option chosen in each config group ({"model": "classic", ...})."""
    cfg = compose_with_hydra(overrides)
    choices = group_choices(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def compose_with_hydra(overrides: list[str] = ()) -> DictConfig:
    """The config with Hydra's own part (launcher, sweeper, dirs), as a command would run it."""
    from hydra import compose as hydra_compose, initialize_config_dir

    prepare_hydra()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def sweep_key(experiment: str, overrides: list[str]) -> str:
    """Identity of a sweep: the same jobs in the same experiment, however the command was typed.

    Its overrides without the keys that say where files live or how jobs are launched (runs_dir=,
    hydra/launcher=...), in sorted order, each swept list of values sorted: `model=d2l,classic seed=1`
    in one runs_dir and `seed=1 model=classic,d2l` in another are one sweep.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parts = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.get_key_element()
        if override_key(key).startswith(NOT_IDENTITY + LAUNCH):
            continue
        if type(override.value()).__name__ == "ChoiceSweep":
            value = ",".join(sorted(override.sweep_string_iterator()))
        else:
            value = override.input_line.split("=", 1)[1] if "=" in override.input_line else ""
        parts.append(f"{key}={value}")
    return hashlib.sha1(json.dumps([experiment, sorted(parts)]).encode()).hexdigest()[:16]


# Keys that choose how jobs are launched, not what they compute: the same sweep under another launcher
# would train the same configs twice.
LAUNCH = ("hydra/launcher", "hydra.launcher.")

# A lenet error names the library's arguments; a user sets them as these config keys.
CONFIG_KEYS = {"epochs": "trainer.epochs", "batch_size": "trainer.batch_size", "compile": "trainer.compile",
               "limit_batches": "trainer.limit_batches",
               "val_fraction": "data.val_fraction", "fit_to_input": "data.fit_to_input",
               "normalize": "data.normalize", "mean": "data.mean", "std": "data.std", "download": "data.download"}
# An argument is named where a message starts with it ("epochs 0 must be >= 1"), after "unknown ", or set with =.
LIBRARY_WORDS = re.compile(r"(?:^|(?<=unknown )|(?<![\w.])(?=\w+=))(" + "|".join(CONFIG_KEYS)
                           + r")\b(?:=(True|False)\b)?")


def config_terms(message: str) -> str:
    """A lenet error in the config's words: "epochs 0 must be >= 1" -> "trainer.epochs 0 must be >= 1",
    "download=True" -> "data.download=true"; the same words in prose stay as they are."""
    return LIBRARY_WORDS.sub(lambda m: CONFIG_KEYS[m[1]] + (f"={m[2].lower()}" if m[2] else ""), message)


def recipe_keys(swept) -> list[str]:
    """A sweep's factors: what makes a recipe is every swept key but the seed (the seed makes its runs)."""
    return [key for key in swept or [] if key != "seed"]


def label(key: str, value) -> str:
    """A swept value as a recipe's name shows it: the group's option (classic), else key=value (model.pool=max)."""
    return str(value) if key in ("model", "optim", "data") else f"{key}={value}"


def recipe(keys: list[str], values) -> str:
    """A recipe's name (a cell: every swept value but the seed): classic+adam, classic+model.pool=max."""
    return "+".join(label(k, v) for k, v in zip(keys, values)) or "all runs"


def override_key(override: str) -> str:
    """The key a command-line override sets: "model" for model=d2l, +model.x=1 and ~model."""
    return override.split("=", 1)[0].lstrip("+~")


def group_choices(choices) -> dict[str, str]:
    """Hydra's runtime choices without its own groups (hydra/launcher, ...): {"model": "classic", ...}."""
    return {group: option for group, option in choices.items() if not group.startswith("hydra")}
