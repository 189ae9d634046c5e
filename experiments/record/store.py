"""Where runs go: a tracking URI checked before anything runs, then connected to, created if new, and
pointed at its artifacts if it was moved. Each problem is one line, and a check creates or writes nothing."""
from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import sqlite3
from pathlib import Path
from typing import NamedTuple

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lenet.atomic import atomic_write

from ..errors import message
from .client import PatientClient
from .exclusive import exclusive
from .session import current

log = logging.getLogger(__name__)

SQLITE = "sqlite:///"
SCHEMES = "sqlite:///PATH/mlflow.db, http(s)://HOST:PORT (a tracking server), postgresql+psycopg2://..., " \
          "mysql+pymysql://..."
DRIVER_HINTS = {"postgresql": "pip install -e '.[postgres]' (psycopg2) and write postgresql+psycopg2://...",
                "mysql": "pip install pymysql and write mysql+pymysql://..."}


class Tracking(NamedTuple):
    """Where runs go: a client and the id of the experiment they belong to."""

    client: MlflowClient
    experiment_id: str


class ExperimentDeleted(LookupError):
    """The experiment is in MLflow's trash (the UI's Delete): no run can be added until it is restored."""


def sqlite_path(uri: str) -> Path | None:
    """The file of a local store's URI (sqlite:///PATH), None for any other store."""
    return Path(uri[len(SQLITE):]) if uri.startswith(SQLITE) else None


def absolute(tracking_uri: str) -> str:
    """A local store's URI with an absolute path (runs_dir=myruns): MLflow makes no artifact URI from a
    relative one, and a printed `mlflow ui --backend-store-uri` must work from any directory."""
    path = sqlite_path(tracking_uri)
    return tracking_uri if path is None else SQLITE + os.path.abspath(path)


def connect(tracking_uri: str, experiment: str, patience_s: float = 120) -> Tracking:
    """A client for tracking_uri and the id of experiment, created if missing.

    A new experiment on a local store keeps its artifacts beside the store (under runs/), not in
    whatever directory the command happened to start in; a store moved or copied with its
    artifacts is pointed at them where it now is (relocate). A tracking server gets a PatientClient:
    an outage of up to patience_s (a restart) is waited out, a longer one raises TrackingUnavailable.
    """
    tracking_uri = absolute(tracking_uri)
    key, session = (tracking_uri, experiment, patience_s), current()
    if key not in session.connections:  # once per sweep: its jobs share it
        session.connections[key] = open_or_create(tracking_uri, experiment, patience_s, session.given_up)
    return session.connections[key]


def open_or_create(tracking_uri: str, experiment: str, patience_s: float, given_up: set | None = None) -> Tracking:
    if tracking_uri.startswith(("http://", "https://")):
        return get_or_create(PatientClient(tracking_uri, patience_s, given_up), experiment, None)
    store = sqlite_path(tracking_uri)
    if store is None:
        return get_or_create(MlflowClient(tracking_uri=tracking_uri), experiment, None)
    store.parent.mkdir(parents=True, exist_ok=True)
    # Processes that open a new store at once race on creating its schema and the experiment:
    # one at a time here. WAL lets concurrent jobs write while others read.
    with exclusive(store.with_name(store.name + ".lock")):
        if not store.exists() or store.stat().st_size == 0:
            create_store(store)
        client = MlflowClient(tracking_uri=tracking_uri)
        commit_without_fsync(client)
        close_pooled(client)  # MLflow keeps one engine per URI per process: no handle to a file deleted since
        relocate(store)
        found = get_or_create(client, experiment, (store.parent / "mlartifacts" / experiment).as_uri())
        with contextlib.closing(sqlite3.connect(store)) as db:
            db.execute("PRAGMA journal_mode=WAL")
        close_pooled(client)  # its connections made again now that the store is in WAL mode (commit_without_fsync)
    return found


def commit_without_fsync(client) -> None:
    """Every connection this process opens to a local store commits without an fsync of its own (SQLite's
    synchronous=NORMAL, which its documentation gives for WAL mode): a job commits 30-40 times, at about 3 ms of
    fsync each on a cloud disk. A process that crashes or is killed loses nothing it committed; a power cut or an
    OS crash can roll back the last commits, never the store's consistency (a run whose end was lost is left
    RUNNING, for the next sweep to close KILLED)."""
    from sqlalchemy import event

    engine = pooled_engine(client)
    if engine is not None and not event.contains(engine, "connect", synchronous_normal):
        event.listen(engine, "connect", synchronous_normal)


def synchronous_normal(dbapi_connection, connection_record) -> None:
    # only in WAL mode: with a rollback journal (a file system without WAL), NORMAL could corrupt it on a power cut
    if dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def pooled_engine(client):
    """The SQLAlchemy engine MLflow keeps for a database store's URI (None for a tracking server)."""
    return getattr(getattr(getattr(client, "_tracking_client", None), "store", None), "engine", None)


def close_pooled(client) -> None:
    """Close the idle pooled connections of a local store's engine, which MLflow shares by URI for the life of the
    process: after `rm -r runs/` in a notebook, a pooled handle would go on writing to the deleted file while the
    next sweep made a new one at the same path."""
    engine = pooled_engine(client)
    if engine is not None:
        with contextlib.suppress(Exception):
            engine.dispose()


def create_store(store: Path) -> None:
    """A new, empty local store: a copy of this MLflow version's empty store, made once per machine (MLflow's
    own creation runs its schema migrations one by one: 1.5-4 s for every new runs/). Without a writable
    cache folder, MLflow creates it as usual."""
    try:
        template = store_template()
        atomic_write(store, lambda tmp: shutil.copyfile(template, tmp))
    except OSError as err:
        log.debug("no store template (%s): MLflow creates the store", err)
        return
    with contextlib.closing(sqlite3.connect(store)) as db, db:  # as MLflow would: its Default experiment here
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                   (os.path.abspath("mlruns") + "/0",))


def store_template() -> Path:
    """This machine's empty store of this MLflow version, created by MLflow the first time (OSError if the
    cache folder cannot be written)."""
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lenet-sweeps"
    template = cache / f"empty-store-mlflow-{mlflow.__version__}.db"
    if not template.exists():
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write(template, lambda tmp: MlflowClient(tracking_uri=f"{SQLITE}{tmp}").search_experiments())
    return template


ARTIFACT_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("logged_models", "artifact_location"))


def relocate(store: Path) -> list[str]:
    """Point a local store that was moved or copied, with its mlartifacts/ beside it, at that mlartifacts/.

    MLflow records artifact places as absolute file URIs, so a runs/ moved elsewhere would keep
    reading and writing the old place. Only URIs under an old `.../mlartifacts/` (the layout this
    harness makes) are rewritten, and only when mlartifacts/ exists beside the store; returns the
    old roots. Call it holding the store's lock.
    """
    here = store.parent / "mlartifacts"
    if not here.is_dir():
        return []
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "experiments" not in tables:
            return []
        roots = set()
        for (location,) in db.execute("SELECT artifact_location FROM experiments"):
            if (location or "").startswith("file://") and "/mlartifacts/" in location:
                root = location[: location.rindex("/mlartifacts/") + len("/mlartifacts")]
                if root != here.as_uri():
                    roots.add(root)
        for root in roots:
            for table, column in ARTIFACT_COLUMNS:
                if table in tables:
                    db.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                               f"WHERE substr({column}, 1, ?) = ?", (here.as_uri(), len(root) + 1, len(root) + 1,
                                                                    root + "/"))
            log.warning("this store was moved or copied from %s: its artifacts are read and written in %s now",
                        root.removeprefix("file://"), here)
    return sorted(roots)


EXPERIMENT_TAGS = {
    # What MLflow 3's UI reads to open an experiment on its runs rather than its GenAI view (traces,
    # token usage). MLflow 3.17's UI follows its GenAI / Model training switch instead, so the links the
    # sweep prints carry ?workflowType=machine_learning (analysis.view.where_to_look).
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.note.content": ("LeNet variants trained by lenet-sweeps. Each sweep is a parent run, named sweep "
                            "and its overrides, whose description holds the comparison (tables, tests, "
                            "the factorial model); its jobs are its children, one run per config and seed."),
}


def get_or_create(client: MlflowClient, experiment: str, artifact_location: str | None) -> Tracking:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            return Tracking(client, client.create_experiment(experiment, artifact_location=artifact_location,
                                                             tags=EXPERIMENT_TAGS))
        except MlflowException as err:
            # Another sweep created it since we looked (both started at once on a new server): use theirs.
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = client.get_experiment_by_name(experiment)
    if found.lifecycle_stage == "deleted":  # MLflow refuses new runs in it; its own message names no way out
        uri = client.tracking_uri
        restore = (f"MLFLOW_TRACKING_URI={shlex.quote(uri)} mlflow experiments restore "
                   f"--experiment-id {found.experiment_id}")
        raise ExperimentDeleted(
            f"the MLflow experiment {experiment!r} at {uri} was deleted (its runs are kept until the store is "
            f"cleaned up); restore it with `{restore}`, or name another with mlflow.experiment=NAME")
    for key, value in EXPERIMENT_TAGS.items():  # experiments made before, or elsewhere: what the user set stays
        if key not in found.tags:
            client.set_experiment_tag(found.experiment_id, key, value)
    return Tracking(client, found.experiment_id)


def open_experiment(tracking_uri: str, experiment: str, option: str = "--tracking-uri") -> Tracking:
    """A client and the id of an existing experiment, for commands that read runs: unlike connect,
    it never creates a store or an experiment, so a typo leaves nothing behind; LookupError otherwise."""
    path = sqlite_path(tracking_uri)
    if path is not None and not path.exists():
        raise LookupError(f"no MLflow store at {tracking_uri}; run a sweep first, or set {option}")
    if path is not None and path.stat().st_size == 0:  # MLflow's client would write its schema into it
        raise LookupError(f"the MLflow store {tracking_uri} is an empty file: it holds no runs yet; run a sweep "
                          f"first, or set {option}")
    check_store(tracking_uri, option)
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments())) or "none yet"
        raise LookupError(f"no experiment {experiment!r} at {tracking_uri}; experiments there: {names}")
    return Tracking(client, found.experiment_id)


def check_store(uri: str, option: str = "mlflow.tracking_uri") -> None:
    """LookupError in one line for a tracking URI that cannot be used now; reads only, creates nothing."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in ("http", "https"):
        check_reachable(uri, option)
    elif scheme == "sqlite":
        check_sqlite(uri, option)
    elif scheme.split("+")[0] in ("postgresql", "mysql", "mssql"):
        check_database(uri, option)
    else:
        hint = "; MLflow 3 keeps no runs in a file store" if scheme in ("", "file") else ""
        raise LookupError(f"{option} {uri!r} is not a tracking store this harness can use{hint}; use one of: "
                          f"{SCHEMES}")


def check_sqlite(uri: str, option: str) -> None:
    """An existing file at a sqlite:/// URI must be an MLflow store; it is opened read-only to find out."""
    path = sqlite_path(uri)
    if path is None:
        raise LookupError(f"{option} {uri!r}: write a local store as sqlite:///PATH (three slashes, then the path)")
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return  # MLflow creates it
    if not path.is_file():
        raise LookupError(f"{option} {uri}: {path} is not a file")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as err:
        raise LookupError(f"{option} {uri}: {path} is not a readable MLflow store ({err}); move it aside to start "
                          f"a new one, or restore it from a backup") from None
    if not {"experiments", "runs", "alembic_version"} <= tables:
        raise LookupError(f"{option} {uri}: {path} is an SQLite database but not an MLflow store; "
                          f"point {option} elsewhere")


def damage(uri: str) -> str | None:
    """What sqlite's own quick_check finds wrong with a local store (read-only; None: sound, or not a local store).
    Another program that truncates or overwrites mlflow.db during a sweep leaves it so."""
    path = sqlite_path(uri)
    if path is None:
        return None
    if not path.is_file() or path.stat().st_size == 0:
        return "the file is gone or empty"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            found = [row[0] for row in db.execute("PRAGMA quick_check")]
            if not {"experiments", "runs"} <= {row[0] for row in db.execute("SELECT name FROM sqlite_master")}:
                return "it is no longer an MLflow store"
    except sqlite3.DatabaseError as err:
        return str(err)
    return None if found == ["ok"] else "; ".join(found[:3])


def check_database(uri: str, option: str) -> None:
    """A database URI whose driver is importable and whose server answers (5 s at most)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    try:
        url = make_url(uri)
        url.get_dialect().import_dbapi()
    except ArgumentError as err:
        raise LookupError(f"{option}: {err}") from None
    except ImportError as err:
        hint = DRIVER_HINTS.get(url.get_backend_name(), "install its driver")
        raise LookupError(f"{option} {url.render_as_string(hide_password=True)}: its database driver is not "
                          f"installed ({err}); {hint}") from None
    timeout = {"connect_timeout": 5} if url.get_backend_name() in ("postgresql", "mysql") else {}
    engine = create_engine(url, connect_args=timeout)
    try:
        with engine.connect() as db:
            db.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        reason = message(getattr(err, "orig", err), 200)
        raise LookupError(f"cannot connect to the database at {url.render_as_string(hide_password=True)} "
                          f"({reason}); start it, or set {option}") from None
    finally:
        engine.dispose()


def check_reachable(uri: str, option: str = "mlflow.tracking_uri") -> None:
    """LookupError in one line if uri is a tracking server that does not answer now.

    Asked once with a short timeout, since MLflow's client retries a dead server for minutes.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import requests
    from mlflow.utils.credentials import read_mlflow_creds

    from .client import refusal

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=5).raise_for_status()
        # A server that asks who you are (mlflow server --app-name basic-auth) says so to any API call.
        creds = read_mlflow_creds()
        answer = requests.get(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                              auth=(creds.username, creds.password) if creds.username else None, timeout=5)
    except requests.RequestException as err:
        raise LookupError(f"cannot reach the MLflow tracking server at {uri} ({type(err).__name__}); start it, "
                          f"or set {option}") from None
    if problem := refusal(uri, answer.status_code):
        raise LookupError(problem)
