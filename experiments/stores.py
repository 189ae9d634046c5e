"""Tracking stores checked before anything runs: each problem one line, and nothing created or written."""
from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

SCHEMES = "sqlite:///PATH/mlflow.db, http(s)://HOST:PORT (a tracking server), postgresql+psycopg2://..., " \
          "mysql+pymysql://..."
DRIVER_HINTS = {"postgresql": "pip install -e '.[postgres]' (psycopg2) and write postgresql+psycopg2://...",
                "mysql": "pip install pymysql and write mysql+pymysql://..."}


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
    if not uri.startswith("sqlite:///"):
        raise LookupError(f"{option} {uri!r}: write a local store as sqlite:///PATH (three slashes, then the path)")
    path = Path(uri.removeprefix("sqlite:///"))
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
        reason = " ".join(str(getattr(err, "orig", err)).split())[:200]
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

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=5).raise_for_status()
    except requests.RequestException as err:
        raise LookupError(f"cannot reach the MLflow tracking server at {uri} ({type(err).__name__}); start it, "
                          f"or set {option}") from None
