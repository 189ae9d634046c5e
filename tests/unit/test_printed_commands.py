"""Every command the project prints for pasting still works when pasted: paths with spaces, quotes and ~."""
import os
import subprocess

import pytest

from experiments.analysis.view import where_to_look
from experiments.errors import BadInput
from experiments.validate import check_command


def as_a_shell_reads(command: str) -> list[str]:
    """The words bash makes of a pasted command line (a command that prints them instead of running)."""
    shown = subprocess.run(["bash", "-c", f"set -- {command}; printf '%s\\n' \"$@\""], capture_output=True, text=True,
                           check=True)
    return shown.stdout.splitlines()


@pytest.mark.parametrize("folder", ["/tmp/my runs", "/tmp/it's mine", "/tmp/plain"])
def test_the_mlflow_ui_command_pastes_whole(folder):
    line = where_to_look(f"sqlite:///{folder}/mlflow.db", "1", "abc")
    command = line.removeprefix("See it in MLflow: ").split(", then open")[0]
    assert as_a_shell_reads(command) == ["mlflow", "ui", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
                                         "--port", "5000"]


def test_the_full_path_offered_for_a_tilde_pastes_whole(monkeypatch, tmp_path):
    home = tmp_path / "my home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(BadInput) as refused:
        check_command(["runs_dir=~/lenet runs"])
    offered = str(refused.value).split("write the full path: ")[1]
    assert as_a_shell_reads(offered) == [f"runs_dir={home}/lenet runs"]
    assert os.path.expanduser("~") == str(home)
