import os

# Test workers run side by side (pytest-xdist, one per core), and each starts sweeps in
# subprocesses: with torch's default of a thread per core, two workers' processes put two busy
# threads on every core and both run at half speed (a 12-epoch sweep started twice at once took
# 43 s, against 21 s with a thread each). Each worker's processes get their share of the cores
# (torch reads OMP_NUM_THREADS); no check depends on the thread count.
os.environ.setdefault("OMP_NUM_THREADS",
                      str(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))))

import shutil
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .support.idx import write_dataset


TIERS = Path(__file__).parent
SLOW_TIERS = ("commands", "services")  # a subprocess per test, or a real service: seconds each


def pytest_collection_modifyitems(items):
    """The tiers by what they need: unit/ (no store), store/ (an MLflow store in this process), commands/ (the
    commands in a subprocess) and services/ (a real SLURM cluster or PostgreSQL server). The last two are
    marked slow: `-m "not slow"` is the loop to run after every change.

    Then files with the most slow tests first. xdist (--dist loadfile --no-loadscope-reorder) hands whole
    files to the workers in this order: the long ones start at once and the many quick files even out
    the end. Its default, most tests first, left single long tests (a server outage) for last."""
    for item in items:
        if item.path.relative_to(TIERS).parts[0] in SLOW_TIERS:
            item.add_marker(pytest.mark.slow)
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: a file's tests keep their order


@pytest.fixture(scope="session")
def idx_root(tmp_path_factory) -> Path:
    """A data root holding small MNIST and FashionMNIST IDX files, as torchvision expects them."""
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, "MNIST")
    write_dataset(root, "FashionMNIST")
    return root


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow sqlite store with its schema and no experiment of ours, made once.

    Creating a store runs MLflow's ~40 schema migrations (1.5-3 s); tests that are not about
    creating a store start from a copy. The tests that are (the README's first sweep, processes
    racing to create one) start from nothing.
    """
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()  # creates the schema
    return path


@pytest.fixture
def runs_dir(tmp_path, empty_store) -> Path:
    """A runs/ for one test, whose store already has MLflow's schema."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    return tmp_path
