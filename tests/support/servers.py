"""Real services for tests, on loopback: an MLflow tracking server that can be stopped and started again."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """`mlflow server` on a free loopback port, artifacts served by the server; the backend store
    (sqlite in folder by default, or any database URI) outlives stop() and start()."""

    def __init__(self, folder: Path, backend: str | None = None, host_name: str | None = None,
                 app_name: str | None = None, env: dict | None = None):
        """host_name: serve on every interface (--host 0.0.0.0) for clients that use this name, as a team
        server does; MLflow answers 403 to a Host it was not told of (--allowed-hosts). app_name: MLflow's
        --app-name (basic-auth), with the variables it reads in env."""
        self.folder, self.port = folder, free_port()
        self.app = ["--app-name", app_name] if app_name else []
        self.env = env or {}
        self.backend = backend or f"sqlite:///{folder}/server.db"
        self.uri = f"http://{host_name or '127.0.0.1'}:{self.port}"
        self.network = (["--host", "0.0.0.0", "--allowed-hosts", f"{host_name}:{self.port},{host_name}"] if host_name
                        else ["--host", "127.0.0.1"])
        self.artifacts = folder / "store"
        self.pid_file = folder / "server.pid"  # its process group's id, while it runs
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> MlflowServer:
        mlflow = Path(sys.executable).with_name("mlflow")
        log = open(self.folder / "server.log", "a")
        self.proc = subprocess.Popen(
            [str(mlflow), "server", *self.app, *self.network, "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", self.backend, "--artifacts-destination", str(self.artifacts)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            # MLflow 3's server also starts 8 job-runner processes (GenAI judges, trace rollups) that
            # a tracking server for training runs never uses: each start cost ~20 s of CPU
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **self.env})
        self.pid_file.write_text(str(self.proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.uri}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server did not start within {timeout} s; see {self.folder / 'server.log'}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
