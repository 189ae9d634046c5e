from pathlib import Path

import pytest

from .idx import write_dataset


@pytest.fixture(scope="session")
def idx_root(tmp_path_factory) -> Path:
    """A data root holding small MNIST and FashionMNIST IDX files, as torchvision expects them."""
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, "MNIST")
    write_dataset(root, "FashionMNIST")
    return root
