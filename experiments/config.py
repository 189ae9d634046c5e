"""Where the configs live, the resolvers they use, and a job's identity."""
from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """What every command does before Hydra reads conf/: check it is there, and let configs name the project root."""
    require_conf()
    # runs/ sits at the project root whatever directory Hydra runs a job in.
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
    # Drawn once per config and cached, as ${now:} is: every job of a sweep sees the sweep's value.
    OmegaConf.register_new_resolver("unique", lambda: uuid.uuid4().hex[:6], use_cache=True, replace=True)


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
                "mlflow.", "resume")


def config_hash(cfg: DictConfig) -> str:
    """Identity of a job: equal hashes train the same thing (model, optim, data and its transforms,
    trainer, seed, device), wherever the files are."""
    flat = {k: v for k, v in flatten(cfg).items() if not k.startswith(NOT_IDENTITY)}
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

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def override_key(override: str) -> str:
    """The key a command-line override sets: "model" for model=d2l, +model.x=1 and ~model."""
    return override.split("=", 1)[0].lstrip("+~")


def group_choices(choices) -> dict[str, str]:
    """Hydra's runtime choices without its own groups (hydra/launcher, ...): {"model": "classic", ...}."""
    return {group: option for group, option in choices.items() if not group.startswith("hydra")}
