"""Small IDX files in the layout torchvision's MNIST and FashionMNIST classes read."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

FILES = {
    ("train", "images"): "train-images-idx3-ubyte", ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte", ("test", "labels"): "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic (0, 0, 0x08 = ubyte, ndim), big-endian dims, data."""
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 images whose class shows as a bright horizontal bar at row 2 + 2 * label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.uint8) % 10
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
    return images, labels


def write_dataset(root: Path, folder: str, n_train: int = 200, n_test: int = 100) -> Path:
    """Write ROOT/FOLDER/raw/* (FOLDER is MNIST or FashionMNIST) and return root."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        images, labels = digits(n, seed)
        (raw / FILES[split, "images"]).write_bytes(idx_bytes(images))
        (raw / FILES[split, "labels"]).write_bytes(idx_bytes(labels))
    return root
