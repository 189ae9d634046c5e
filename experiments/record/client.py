"""The patient client: a tracking server that restarts is waited for, one that stays down is said in one line."""
from __future__ import annotations

import functools
import logging
import os
import time

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..errors import message

log = logging.getLogger(__name__)


class TrackingUnavailable(Exception):
    """The tracking server stopped answering for longer than the patience allowed."""


class AccessDenied(Exception):
    """The tracking server refused who this is (401) or what they asked (403): every later call would be too."""


def user() -> str | None:
    """Who this process is to a tracking server: MLflow's MLFLOW_TRACKING_USERNAME, or ~/.mlflow/credentials."""
    from mlflow.utils.credentials import read_mlflow_creds

    return read_mlflow_creds().username


def refusal(uri: str, status: int, what: str = "") -> str | None:
    """The one line for a server's 401 or 403 (what: the call it refused), else None."""
    who = user()
    if status == 401 and who is None:
        return (f"the MLflow tracking server at {uri} asks who you are (401 Unauthorized): set "
                f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to your user on it (its admin creates users)")
    if status == 401:
        return (f"the MLflow tracking server at {uri} refused user {who!r} (401 Unauthorized: no such user, or a "
                f"wrong password); check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    if status == 403:
        reads = any(word in what for word in ("get", "search", "list"))
        return (f"the MLflow tracking server at {uri} does not let {f'user {who!r}' if who else 'these credentials'} "
                f"{'read' if reads else 'write to'} this experiment (403 Permission denied{f': {what}' if what else ''}"
                f"); ask its owner or the server's admin for {'READ' if reads else 'EDIT'} on it, or log to one of "
                f"your own with mlflow.experiment=NAME")
    return None


def denied(err: MlflowException) -> int | None:
    """401 or 403 if err is a tracking server's refusal of who is asking or of what they ask."""
    code = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403}.get(err.error_code)
    if code is None:  # a refusal whose body is not MLflow's JSON says its status in words
        code = next((c for c in (401, 403) if f"error code {c} != 200" in str(err)), None)
    return code


class PatientClient:
    """An MlflowClient for a tracking server whose calls wait out an outage of up to patience_s.

    MLflow's own client retries a dead server for about 20 minutes (7 retries with doubling
    waits, 120 s timeouts); here each request is tried once with a 30 s timeout and the waiting
    is this class's: 1, 2, 4, ... 10 s between tries until patience_s have passed since the first
    failure. Once one client has given up on a server, every client sharing given_up (the sweep's,
    record.session) fails at once for it: a sweep stops in one line instead of waiting again for each
    job; the next sweep tries the server again.
    """

    def __init__(self, uri: str, patience_s: float, given_up: set[str] | None = None):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        self.raw, self.uri, self.patience_s = MlflowClient(tracking_uri=uri), uri, patience_s
        self.given_up = set() if given_up is None else given_up

    def __getattr__(self, name: str):
        attr = getattr(self.raw, name)
        if not callable(attr):
            return attr
        return functools.partial(self.call, attr)

    def call(self, method, *args, **kwargs):
        deadline, wait = None, 1.0
        while True:
            if self.uri in self.given_up:
                raise TrackingUnavailable(self.gave_up())
            try:
                return method(*args, **kwargs)
            except MlflowException as err:
                if status := denied(err):
                    endpoint = str(err).split("endpoint ")[-1].split(" ")[0] if "endpoint " in str(err) else ""
                    raise AccessDenied(refusal(self.uri, status, endpoint.removeprefix("/api/2.0/mlflow/"))) \
                        from None
                if not no_answer(err):
                    raise
                log.debug("%s: %s", getattr(method, "__name__", method), message(err, 300))
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.patience_s
                    log.warning("the MLflow tracking server at %s does not answer; waiting up to %.0f s for it",
                                self.uri, self.patience_s)
                if now >= deadline:
                    self.given_up.add(self.uri)
                    raise TrackingUnavailable(self.gave_up()) from None
                time.sleep(min(wait, deadline - now))
                wait = min(wait * 2, 10.0)

    def gave_up(self) -> str:
        return f"the MLflow tracking server at {self.uri} stopped answering and was not back within " \
               f"{self.patience_s:g} s (mlflow.server_patience_s)"


def no_answer(err: MlflowException) -> bool:
    """Whether err says the server did not answer (refused, reset, timed out, 5xx), not that it refused the call."""
    text = str(err)
    return text.startswith("API request to") and (" failed with exception" in text or "timeout" in text)


def patiently(client, method, *args, **kwargs):
    """method(*args, **kwargs) with client's patience if it has one (mlflow.pytorch.log_model takes no client)."""
    if isinstance(client, PatientClient):
        return client.call(method, *args, **kwargs)
    return method(*args, **kwargs)


def raw(client) -> MlflowClient:
    """The MlflowClient under a PatientClient (a background thread must not wait on a server for minutes)."""
    return getattr(client, "raw", client)
