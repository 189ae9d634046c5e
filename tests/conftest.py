import os

# Test workers run side by side (pytest-xdist), each with torch's threads: idle OpenMP threads
# sleep instead of spinning on the cores the other worker needs. Results are unchanged.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .idx import write_dataset


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
