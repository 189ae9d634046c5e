"""A team's tracking server that asks who you are: a real `mlflow server --app-name basic-auth`, set up as the
README's recipe does (the admin's password from the environment, users made by the admin, loopback only)."""
import pytest
import requests

from ..support.commands import printed, run
from ..support.servers import MlflowServer
from ..support.store import client_of, runs_in, the_sweep

ADMIN = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "admin-pw-for-tests"}
ALICE = {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "alice-pw-for-tests"}
BOB = {"MLFLOW_TRACKING_USERNAME": "bob", "MLFLOW_TRACKING_PASSWORD": "bob-pw-for-tests"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The README's basic-auth server, with two users (alice, bob) its admin made."""
    folder = tmp_path_factory.mktemp("auth")
    (folder / "basic_auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{folder}/basic_auth.db\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\nauth_cache_ttl_seconds = 60\n")
    server = MlflowServer(folder, app_name="basic-auth", env={
        "MLFLOW_AUTH_CONFIG_PATH": str(folder / "basic_auth.ini"), "MLFLOW_FLASK_SERVER_SECRET_KEY": "tests-only",
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN["MLFLOW_TRACKING_PASSWORD"]}).start()
    for user in (ALICE, BOB):
        answer = requests.post(f"{server.uri}/api/2.0/mlflow/users/create", timeout=10,
                               auth=(ADMIN["MLFLOW_TRACKING_USERNAME"], ADMIN["MLFLOW_TRACKING_PASSWORD"]),
                               json={"username": user["MLFLOW_TRACKING_USERNAME"],
                                     "password": user["MLFLOW_TRACKING_PASSWORD"]})
        assert answer.ok, answer.text
    yield server
    server.stop()


def as_admin(monkeypatch):
    for key, value in ADMIN.items():
        monkeypatch.setenv(key, value)


def test_a_request_without_credentials_is_refused_and_the_sweep_says_so_in_one_line(server, tmp_path, monkeypatch):
    assert requests.get(f"{server.uri}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10).status_code == 401
    for who, said in ((None, "asks who you are (401 Unauthorized): set MLFLOW_TRACKING_USERNAME and "
                             "MLFLOW_TRACKING_PASSWORD"),
                      ({**ALICE, "MLFLOW_TRACKING_PASSWORD": "wrong"}, "refused user 'alice' (401 Unauthorized")):
        env = who or {"MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": ""}
        proc = run("experiments.run", "-m", "model=classic,d2l", "trainer.epochs=1", f"runs_dir={tmp_path}",
                   f"mlflow.tracking_uri={server.uri}", check=False, env=env)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
            f"error: the MLflow tracking server at {server.uri} {said}" + proc.stderr.split(said)[1].rstrip()]
        assert "Traceback" not in printed(proc)
    assert not (tmp_path / "hydra").exists()  # refused before anything ran
    as_admin(monkeypatch)
    assert runs_in(server.uri) == []


def test_the_main_sweep_lands_whole_with_credentials_and_a_user_without_permission_cannot_write_to_it(
        server, tmp_path, monkeypatch):
    main = ["experiments.run", "-m", "model=classic,d2l", "optim=sgd,adam", "trainer.epochs=1",
            f"mlflow.tracking_uri={server.uri}", f"runs_dir={tmp_path}"]
    run(*main, env=ALICE)
    as_admin(monkeypatch)
    parent, children = the_sweep(server.uri)
    assert parent.info.status == "FINISHED" and len(children) == 4
    # Whole: every run ended as it trained (at 1 epoch the SGD recipes fail: lr 0.9, sigmoid), its epoch logged.
    outcomes = {r.info.run_name: r.data.tags["lenet.outcome"] for r in children}
    assert outcomes["classic+adam"] == "ok" and set(outcomes.values()) <= {"ok", "collapsed", "diverged"}
    client = client_of(server.uri)
    assert all([m.step for m in client.get_metric_history(r.info.run_id, "train_loss")] == [1] for r in children)
    # bob may read alice's experiment (default_permission READ), not write to it: the same command, as bob
    proc = run(*main, check=False, env=BOB)
    assert proc.returncode == 1 and "Traceback" not in printed(proc), printed(proc)
    (line,) = [ln for ln in printed(proc).splitlines() if "error:" in ln]
    assert "does not let user 'bob' write to this experiment (403 Permission denied" in line
    assert "mlflow.experiment=NAME" in line
    after = runs_in(server.uri) + runs_in(server.uri, "sweep")
    assert sorted((r.info.run_id, r.info.status) for r in after) == sorted(
        (r.info.run_id, r.info.status) for r in [parent, *children])  # nothing of alice's touched, nothing added
