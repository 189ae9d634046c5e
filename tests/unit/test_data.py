import pytest
import torch

from lenet.data import DatasetMissing, load_raw, prepare, split_validation, to_input_geometry

from ..support.idx import digits


@pytest.mark.parametrize("name, classes", [("mnist", "0 - zero"), ("fashion_mnist", "T-shirt/top")])
def test_torchvision_classes_load_idx_files_without_network(idx_root, name, classes):
    # download=True must not touch the network when the files are already there.
    raw = load_raw(name, idx_root, download=True)
    assert raw.train_images.shape == (200, 28, 28) and raw.train_images.dtype == torch.uint8
    assert raw.test_images.shape == (100, 28, 28)
    images, labels = digits(200, seed=1)
    assert torch.equal(raw.train_images, torch.from_numpy(images))
    assert raw.train_labels.tolist() == labels.tolist()
    assert raw.classes[0] == classes and len(raw.classes) == 10


def test_missing_files_offline_give_one_line_naming_the_place(tmp_path):
    with pytest.raises(DatasetMissing) as err:
        load_raw("fashion_mnist", tmp_path, download=False)
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "FashionMNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "download=True" in message  # the library's own words
    assert "data." not in message  # it knows no config keys: the harness names them (tests/unit/test_validate.py)


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'; choose one of: mnist5k, mnist, fashion_mnist"):
        load_raw("cifar")


def test_pad_centres_the_digit_in_a_zero_border_and_resize_stretches_it():
    white = torch.full((2, 28, 28), 255, dtype=torch.uint8)
    padded = to_input_geometry(white, 32, "pad")
    resized = to_input_geometry(white, 32, "resize")
    assert padded.shape == resized.shape == (2, 1, 32, 32)
    assert padded[:, :, 2:30, 2:30].eq(1).all() and padded.sum() == 2 * 28 * 28
    assert padded[:, :, :2].eq(0).all() and padded[:, :, :, 30:].eq(0).all()
    assert torch.allclose(resized, torch.ones_like(resized))  # no border: the image fills 32x32
    assert to_input_geometry(white, 28, "pad").shape == (2, 1, 28, 28)


def test_geometry_follows_the_model(idx_root):
    classic = prepare("mnist", input_size=32, root=idx_root, download=False, fit_to_input="resize")
    d2l = prepare("mnist", input_size=28, root=idx_root, download=False)
    assert classic.train.images.shape[1:] == (1, 32, 32) and d2l.train.images.shape[1:] == (1, 28, 28)
    assert d2l.train.images.max() == 1.0 and d2l.train.images.min() >= 0  # ToTensor's [0, 1]


def test_mean_std_normalisation(idx_root):
    data = prepare("mnist", 28, idx_root, download=False, normalize="mean_std", mean=0.5, std=0.25)
    assert data.train.images.max() == pytest.approx((1 - 0.5) / 0.25)


def test_validation_split_is_deterministic_per_seed_and_disjoint():
    images, labels = torch.arange(100).float().view(100, 1, 1, 1), torch.arange(100)
    train, val = split_validation(images, labels, 0.2, seed=3)
    again_train, again_val = split_validation(images, labels, 0.2, seed=3)
    _, other_val = split_validation(images, labels, 0.2, seed=4)
    assert (len(train), len(val)) == (80, 20)
    assert torch.equal(val.labels, again_val.labels) and torch.equal(train.labels, again_train.labels)
    assert not torch.equal(val.labels, other_val.labels)
    assert sorted(train.labels.tolist() + val.labels.tolist()) == list(range(100))
    assert split_validation(images, labels, 0.0, seed=3)[1] is None


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_val_fraction_outside_unit_interval_is_refused(fraction):
    with pytest.raises(ValueError, match=f"val_fraction {fraction} is outside"):
        split_validation(torch.zeros(10, 1, 1, 1), torch.zeros(10), fraction, seed=0)


def test_embedded_digits_have_a_fixed_test_set_whatever_the_seed():
    a = prepare("mnist5k", 28, val_fraction=0.1, seed=0)
    b = prepare("mnist5k", 28, val_fraction=0.1, seed=1)
    assert (len(a.train), len(a.val), len(a.test)) == (3600, 400, 1000)
    assert torch.equal(a.test.labels, b.test.labels) and torch.equal(a.test.images, b.test.images)
    assert not torch.equal(a.val.labels, b.val.labels)
    assert torch.bincount(a.test.labels).min() > 70  # all ten digits are in the test set
    assert a.classes == [str(d) for d in range(10)]


def test_cache_builds_once_and_serves_the_same_tensors(idx_root, tmp_path):
    kw = dict(name="mnist", input_size=32, root=idx_root, download=False, fit_to_input="resize", val_fraction=0.1)
    fresh = prepare(**kw)
    first = prepare(**kw, cache_dir=tmp_path)
    (cache_file,) = tmp_path.glob("mnist-32px-resize-none-*.pt")
    stamp = cache_file.stat().st_mtime_ns
    second = prepare(**kw, cache_dir=tmp_path)
    assert cache_file.stat().st_mtime_ns == stamp  # served, not rebuilt
    for data in (first, second):
        assert torch.equal(data.train.images, fresh.train.images) and torch.equal(data.val.labels, fresh.val.labels)
        assert torch.equal(data.test.images, fresh.test.images) and data.classes == fresh.classes
    prepare(**{**kw, "fit_to_input": "pad"}, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("mnist-32px-*.pt"))) == 2  # one file per geometry


def test_a_corrupt_cache_file_is_rebuilt(idx_root, tmp_path):
    kw = dict(name="mnist", input_size=28, root=idx_root, download=False, cache_dir=tmp_path)
    good = prepare(**kw)
    (cache_file,) = tmp_path.glob("*.pt")
    cache_file.write_bytes(cache_file.read_bytes()[:100])
    assert torch.equal(prepare(**kw).train.images, good.train.images)
    assert cache_file.stat().st_size > 100_000


@pytest.mark.parametrize("contents", [
    {"something": torch.zeros(3)},  # a valid torch file that is not a dataset
    {"train_images": torch.zeros(5, 1, 28, 28), "train_labels": torch.zeros(4, dtype=torch.long),
     "test_images": torch.zeros(2, 1, 28, 28), "test_labels": torch.zeros(2, dtype=torch.long), "classes": ["0"]},
    {"train_images": torch.zeros(5, 1, 32, 32), "train_labels": torch.zeros(5, dtype=torch.long),  # other geometry
     "test_images": torch.zeros(2, 1, 32, 32), "test_labels": torch.zeros(2, dtype=torch.long), "classes": ["0"]},
    [1, 2, 3],
])
def test_a_cache_file_with_other_contents_is_rebuilt(idx_root, tmp_path, contents):
    kw = dict(name="mnist", input_size=28, root=idx_root, download=False, cache_dir=tmp_path)
    good = prepare(**kw)
    (cache_file,) = tmp_path.glob("*.pt")
    torch.save(contents, cache_file)
    assert torch.equal(prepare(**kw).train.images, good.train.images)
    assert len(torch.load(cache_file, weights_only=True)["train_labels"]) == 200  # rewritten whole


def test_a_cache_that_cannot_be_written_is_skipped_and_leaves_nothing(idx_root, tmp_path, caplog):
    kw = dict(name="mnist", input_size=28, root=idx_root, download=False)
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder would go")
    data = prepare(**kw, cache_dir=blocked)
    assert len(data.train) == 200 and "dataset cache not written" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_changed_source_files_invalidate_the_cache(tmp_path):
    from ..support.idx import write_dataset

    root = write_dataset(tmp_path / "data", "MNIST", n_train=50, n_test=20)
    kw = dict(name="mnist", input_size=28, root=root, download=False, cache_dir=tmp_path / "cache")
    assert len(prepare(**kw).train) == 50
    write_dataset(root, "MNIST", n_train=60, n_test=20)
    assert len(prepare(**kw).train) == 60


def test_download_through_torchvision_from_a_mirror(tmp_path, monkeypatch):
    """The real download path (torchvision's download_and_extract_archive) against a loopback mirror."""
    import functools
    import gzip
    import hashlib
    import http.server
    import threading

    from torchvision import datasets

    from ..support.idx import FILES, digits, idx_bytes

    served = tmp_path / "mirror"
    served.mkdir()
    resources = []
    for (split, kind), name in FILES.items():
        images, labels = digits(60 if split == "train" else 20, seed=3)
        blob = gzip.compress(idx_bytes(images if kind == "images" else labels))
        (served / f"{name}.gz").write_bytes(blob)
        resources.append((f"{name}.gz", hashlib.md5(blob).hexdigest()))
    monkeypatch.setattr(datasets.MNIST, "resources", resources)  # our small files' checksums
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = tmp_path / "data"
        raw = load_raw("mnist", root, download=True, mirror=f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.shutdown()
    assert raw.train_images.shape == (60, 28, 28) and len(raw.test_labels) == 20
    assert sorted(p.name for p in (root / "MNIST" / "raw").glob("*-ubyte")) == sorted(FILES.values())


def test_a_failed_download_is_one_line(tmp_path):
    with pytest.raises(DatasetMissing) as err:
        load_raw("mnist", tmp_path, download=True, mirror="http://127.0.0.1:9/")
    assert "\n" not in str(err.value) and "the download failed" in str(err.value)


def test_files_decoded_before_are_not_read_again_until_they_change(tmp_path):
    from lenet.data import DatasetCorrupt, ensure_available

    from ..support.idx import FILES, write_dataset

    root = write_dataset(tmp_path / "data", "MNIST", n_train=50, n_test=20)
    prepare("mnist", 28, root, download=False, cache_dir=tmp_path / "cache")
    images = root / "MNIST" / "raw" / FILES["train", "images"]
    stamp = images.stat()
    ensure_available("mnist", root, False, cache_dir=tmp_path / "cache")  # known good: not decoded
    images.write_bytes(images.read_bytes()[:1000])  # now truncated: size changed, so it is read and fails
    with pytest.raises(DatasetCorrupt):
        ensure_available("mnist", root, False, cache_dir=tmp_path / "cache")
    assert stamp.st_size > 1000
