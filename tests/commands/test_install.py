"""What a user gets from each way of installing the project."""
import os
import shutil
import subprocess
import sys


from experiments.config import PROJECT_ROOT


def test_a_non_editable_install_says_in_one_line_to_install_from_a_checkout(tmp_path):
    # pip install . packages lenet/ and experiments/ but not conf/ (nor runs/): the commands cannot run from it.
    source = tmp_path / "src"
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "build", "*.egg-info",
                                                                         "__pycache__", ".pytest_cache"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(site), str(source)], check=True, capture_output=True, timeout=300)
    assert (site / "experiments" / "run.py").exists() and not (site / "conf").exists()
    env = {**os.environ, "PYTHONPATH": str(site)}
    for command in (["experiments.run", "-m", "model=classic,d2l"], ["experiments.inspect"], ["experiments.export"]):
        proc = subprocess.run([sys.executable, "-m", *command], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr == (f"error: no configs at {site / 'conf'}: lenet-sweeps runs from its checkout, where "
                               "conf/ and runs/ live; clone it and install with: pip install -e .\n")
