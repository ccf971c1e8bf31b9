"""Dataset readers: CIFAR python release, image folders, IDX files, Gaussian sets, the cache.

Every fixture is built by hand in tmp_path; only the test marked `cifar` reads the real
CIFAR-10 JPEG archive in ../shared/data (through the session fixture in conftest.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from randlabels.data import registry
from randlabels.data.cache import CacheWarning, source_fingerprint
from randlabels.data.cifar import read_cifar
from randlabels.data.dataset import DataError, DatasetNotFoundError
from randlabels.data.download import md5sum
from randlabels.data.idx import read_idx, read_idx_dataset
from randlabels.data.imagefolder import (
    ImageFolderStream,
    epoch_permutation,
    read_image_folder,
    resize_center_crop,
    stream_loader,
)
from randlabels.data.registry import (
    DATASET_NAMES,
    channel_stats,
    dataset_info,
    load_dataset,
    prepare_dataset,
)
from randlabels.data.synthetic import GAUSSIAN_PRESETS, gaussian_dataset

CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


# --------------------------------------------------------------------------- builders


def write_cifar10_release(root: Path, per_batch: int = 2, n_test: int = 3) -> dict:
    """A miniature cifar-10-batches-py/ pickled like the real (Python 2) release."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {f"data_batch_{i}": per_batch for i in range(1, 6)} | {"test_batch": n_test}
    arrays = {}
    for fname, n in batches.items():
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        arrays[fname] = (data, labels)
        batch = {b"batch_label": fname.encode(), b"labels": labels, b"data": data}
        (folder / fname).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return arrays


def make_tar(src: Path, dest: Path, mode: str = "w:gz", arc_root: str = "") -> Path:
    """Pack the contents of ``src`` into ``dest``, under ``arc_root/`` if given."""
    with tarfile.open(dest, mode) as tar:
        for child in sorted(src.iterdir()):
            tar.add(child, arcname=f"{arc_root}/{child.name}" if arc_root else child.name)
    return dest


def pixels(seed: int, size=(6, 5), mode="RGB") -> np.ndarray:
    """Deterministic pixels of a W x H image: [H, W, 3] for RGB, [H, W] for L."""
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_image_folder(root: Path, classes=("cat", "dog", "emu"), per_class=2, n_test=1,
                       size=(6, 5), mode="RGB") -> dict[str, np.ndarray]:  # fmt: skip
    """train/<class>/<i>.png (+ test/<class>/<i>.png); returns relative path -> pixels."""
    written = {}
    seed = 0
    for split, n in (("train", per_class), ("test", n_test)):
        for cls in classes:
            for i in range(n):
                rel = f"{split}/{cls}/{i:03d}.png"
                (root / split / cls).mkdir(parents=True, exist_ok=True)
                arr = pixels(seed, size, mode)
                Image.fromarray(arr, mode).save(root / rel)
                written[rel] = arr
                seed += 1
    return written


def write_idx(path: Path, array: np.ndarray, code: int = 0x08) -> Path:
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    raw = header + array.tobytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def write_mnist_dir(root: Path, n_train=5, n_test=3, gz=True) -> tuple[np.ndarray, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    ext = ".gz" if gz else ""
    train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n_train).astype(np.uint8)
    write_idx(root / f"train-images-idx3-ubyte{ext}", train)
    write_idx(root / f"train-labels-idx1-ubyte{ext}", labels)
    write_idx(root / f"t10k-images-idx3-ubyte{ext}", train[:n_test])
    write_idx(root / f"t10k-labels-idx1-ubyte{ext}", labels[:n_test])
    return train, labels


def files_in(folder: Path) -> list[str]:
    """Everything in a directory, hidden temporary files included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- CIFAR


def test_cifar_folder_is_decoded_channel_major(tmp_path):
    arrays = write_cifar10_release(tmp_path)
    ds = read_cifar(tmp_path / "cifar-10-batches-py", "cifar10")
    assert ds.train_x.shape == (10, 3, 32, 32) and ds.train_x.dtype == torch.uint8
    assert ds.test_x.shape == (3, 3, 32, 32)
    assert ds.classes == CIFAR10_NAMES
    data, labels = arrays["data_batch_2"]  # images 2 and 3 of the training set
    # The release stores 1024 red, then 1024 green, then 1024 blue values, row-major.
    assert ds.train_x[2, 0, 1, 5] == data[0, 1 * 32 + 5]
    assert ds.train_x[3, 2, 31, 0] == data[1, 2048 + 31 * 32]
    assert ds.train_y[2:4].tolist() == labels
    assert ds.test_y.tolist() == arrays["test_batch"][1]


def test_cifar_archive_via_registry_then_from_cache(tmp_path):
    write_cifar10_release(tmp_path / "src")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    make_tar(tmp_path / "src", data_dir / "cifar-10-python.tar.gz")
    cache_dir = tmp_path / "cache"
    first = load_dataset("cifar10", data_dir, cache_dir=cache_dir, download=False)
    second = load_dataset("cifar10", data_dir, cache_dir=cache_dir, download=False)
    reference = read_cifar(tmp_path / "src", "cifar10")
    assert torch.equal(first.train_x, reference.train_x)
    assert torch.equal(second.test_y, reference.test_y)
    assert first.meta["loaded_from_cache"] is False
    assert second.meta["loaded_from_cache"] is True
    assert files_in(cache_dir) == [Path(second.meta["cache_file"]).name]


def test_official_release_is_preferred_over_an_image_folder(tmp_path):
    write_cifar10_release(tmp_path)
    write_image_folder(tmp_path / "cifar10", classes=CIFAR10_NAMES, per_class=1, size=(32, 32))
    ds = load_dataset("cifar10", tmp_path, cache_dir=tmp_path / "cache", download=False)
    assert ds.meta["format"] == "cifar-python"


def test_truncated_cifar_archive_names_the_file_and_caches_nothing(tmp_path):
    write_cifar10_release(tmp_path / "src")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    archive = make_tar(tmp_path / "src", data_dir / "cifar-10-python.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    cache_dir = tmp_path / "cache"
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", data_dir, cache_dir=cache_dir, download=False)
    assert files_in(cache_dir) == []


def test_cifar_batch_with_wrong_shape_names_the_batch(tmp_path):
    write_cifar10_release(tmp_path)
    bad = {b"labels": [0, 1], b"data": np.zeros((2, 100), np.uint8)}
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps(bad))
    with pytest.raises(DataError, match=r"data_batch_3.*\[N, 3072\].*\(2, 100\)"):
        read_cifar(tmp_path, "cifar10")


def test_cifar_pickle_cannot_run_code(tmp_path):
    write_cifar10_release(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match="test_batch.*refusing to load builtins.print"):
        read_cifar(tmp_path, "cifar10")


def test_missing_dataset_lists_paths_tried_and_how_to_provide_it(tmp_path):
    cache_dir = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", tmp_path / "data", cache_dir=cache_dir, download=False)
    message = str(info.value)
    for name in ("cifar-10-python.tar.gz", "cifar-10-batches-py", "cifar10-jpg.tar.gz",
                 "cifar10.tar.gz", "cifar10.tar"):  # fmt: skip
        assert str(tmp_path / "data" / name) in message
    assert str(cache_dir / "cifar10-*.pt") in message
    assert "randlabels data prepare cifar10 --source PATH_OR_URL" in message
    assert "--data-dir" in message
    assert files_in(cache_dir) == []


def test_unreachable_download_is_dataset_not_found(tmp_path, monkeypatch):
    entry = registry._REGISTRY["cifar10"]
    dead = dataclasses.replace(entry.release, url="http://127.0.0.1:9/cifar-10-python.tar.gz")
    monkeypatch.setitem(registry._REGISTRY, "cifar10", dataclasses.replace(entry, release=dead))
    data_dir = tmp_path / "data"
    with pytest.raises(
        DatasetNotFoundError, match=r"(?s)cannot fetch http://127.0.0.1:9/.*prepare"
    ):
        load_dataset("cifar10", data_dir, cache_dir=tmp_path / "cache")
    assert files_in(data_dir) == []


def test_download_with_md5_mismatch_keeps_nothing(tmp_path):
    write_cifar10_release(tmp_path / "src")
    served = make_tar(tmp_path / "src", tmp_path / "cifar-10-python.tar.gz")
    data_dir, cache_dir = tmp_path / "data", tmp_path / "cache"
    with pytest.raises(DataError, match="md5 mismatch.*expected c58f30108f718f92721af3b95e74349a"):
        load_dataset("cifar10", data_dir, source=served.as_uri(), cache_dir=cache_dir)
    assert files_in(data_dir) == []
    assert files_in(cache_dir) == []


def test_prepare_from_url_then_load_without_source(tmp_path, monkeypatch):
    write_cifar10_release(tmp_path / "src")
    served = make_tar(tmp_path / "src", tmp_path / "cifar-10-python.tar.gz")
    entry = registry._REGISTRY["cifar10"]
    ours = dataclasses.replace(entry.release, md5=md5sum(served))
    monkeypatch.setitem(registry._REGISTRY, "cifar10", dataclasses.replace(entry, release=ours))
    cache_dir = tmp_path / "cache"
    path = prepare_dataset(
        "cifar10", served.as_uri(), data_dir=tmp_path / "data", cache_dir=cache_dir
    )
    assert (tmp_path / "data" / "cifar-10-python.tar.gz").is_file()
    assert path.parent == cache_dir and path.is_file()
    # No source anywhere in this data dir: the prepared copy in the cache is used.
    ds = load_dataset("cifar10", tmp_path / "empty", cache_dir=cache_dir, download=False)
    assert ds.meta["loaded_from_cache"] and ds.train_x.shape == (10, 3, 32, 32)
    [info] = dataset_info(cache_dir)
    assert info["name"] == "cifar10" and info["n_train"] == 10 and info["n_test"] == 3
    assert info["shape"] == [3, 32, 32] and info["classes"] == CIFAR10_NAMES
    assert info["file_size"] == path.stat().st_size


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(DataError, match="unknown dataset 'cifar11'") as info:
        load_dataset("cifar11")
    assert all(name in str(info.value) for name in DATASET_NAMES)


# --------------------------------------------------------------------------- image folders


@pytest.mark.parametrize("form", ["dir", "tar", "tar.gz", "wrapped tgz"])
def test_image_folder_forms_decode_identically(tmp_path, form):
    root = tmp_path / "folder"
    written = write_image_folder(root)
    if form == "dir":
        source = root
    elif form == "tar":
        source = make_tar(root, tmp_path / "f.tar", "w")
    elif form == "tar.gz":
        source = make_tar(root, tmp_path / "f.tar.gz")
    else:
        source = make_tar(root, tmp_path / "f.tgz", arc_root="mydata")
    ds = read_image_folder(source, workers=0)
    assert ds.classes == ["cat", "dog", "emu"]
    assert ds.train_x.shape == (6, 3, 5, 6) and ds.test_x.shape == (3, 3, 5, 6)
    assert ds.train_y.tolist() == [0, 0, 1, 1, 2, 2] and ds.test_y.tolist() == [0, 1, 2]
    assert np.array_equal(ds.train_x[3].permute(1, 2, 0).numpy(), written["train/dog/001.png"])
    assert np.array_equal(ds.test_x[2].permute(1, 2, 0).numpy(), written["test/emu/000.png"])


def test_worker_processes_give_the_same_result(tmp_path):
    write_image_folder(tmp_path, per_class=5)
    serial = read_image_folder(tmp_path, workers=0)
    parallel = read_image_folder(tmp_path, workers=2)
    assert torch.equal(serial.train_x, parallel.train_x)
    assert torch.equal(serial.test_x, parallel.test_x)


def test_grayscale_folder_stays_one_channel_and_mixed_becomes_rgb(tmp_path):
    written = write_image_folder(tmp_path, mode="L", n_test=0)
    gray = read_image_folder(tmp_path, workers=0)
    assert gray.train_x.shape == (6, 1, 5, 6) and gray.test_x is None
    Image.fromarray(pixels(99)).save(tmp_path / "train" / "cat" / "rgb.png")
    mixed = read_image_folder(tmp_path, workers=0)
    assert mixed.train_x.shape == (7, 3, 5, 6)
    first = written["train/cat/000.png"]
    assert all(np.array_equal(mixed.train_x[0, c].numpy(), first) for c in range(3))


def test_mixed_image_sizes_name_a_file_of_each_size(tmp_path):
    write_image_folder(tmp_path, classes=CIFAR10_NAMES, per_class=1, size=(32, 32))
    Image.fromarray(pixels(5, size=(30, 32))).save(tmp_path / "train" / "dog" / "odd.png")
    cache_dir = tmp_path / "cache"
    with pytest.raises(
        DataError, match=r"train/airplane/000.png is 32x32.*train/dog/odd.png is 30x32"
    ):
        load_dataset("cifar10", source=tmp_path, cache_dir=cache_dir)
    assert files_in(cache_dir) == []


def test_corrupt_image_is_named(tmp_path):
    write_image_folder(tmp_path)
    (tmp_path / "test" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    archive = make_tar(tmp_path, tmp_path.parent / "corrupt.tar.gz")
    cache_dir = tmp_path.parent / "cache"
    with pytest.raises(DataError, match="cannot decode image test/dog/broken.png"):
        load_dataset("imagefolder", source=archive, cache_dir=cache_dir)
    assert files_in(cache_dir) == []


def test_truncated_image_archive_is_named(tmp_path):
    write_image_folder(tmp_path)
    archive = make_tar(tmp_path, tmp_path.parent / "t.tar.gz")
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cannot read archive .*t.tar.gz"):
        read_image_folder(archive)


def test_image_folder_layout_errors(tmp_path):
    write_image_folder(tmp_path / "a")
    (tmp_path / "a" / "test" / "yak").mkdir()
    Image.fromarray(pixels(0)).save(tmp_path / "a" / "test" / "yak" / "0.png")
    with pytest.raises(DataError, match=r"only in train/: \[\], only in test/: \['yak'\]"):
        read_image_folder(tmp_path / "a")
    (tmp_path / "b" / "cat").mkdir(parents=True)
    Image.fromarray(pixels(0)).save(tmp_path / "b" / "cat" / "0.png")
    with pytest.raises(DataError, match=r"expected an image folder train/<class>/<image>"):
        read_image_folder(tmp_path / "b")
    write_image_folder(tmp_path / "c", n_test=0)
    (tmp_path / "c" / "train" / "empty").mkdir()
    with pytest.raises(DataError, match=r"without images in train/: \['empty'\]"):
        read_image_folder(tmp_path / "c")


def test_cifar_name_checks_class_count_and_requires_a_source_for_imagefolder(tmp_path):
    write_image_folder(tmp_path, size=(32, 32))
    cache_dir = tmp_path / "cache"
    with pytest.raises(DataError, match=r"cifar10 has 10 classes, found 3"):
        load_dataset("cifar10", source=tmp_path, cache_dir=cache_dir)
    assert files_in(cache_dir) == []
    with pytest.raises(DataError, match="needs an explicit source"):
        load_dataset("imagefolder", cache_dir=cache_dir)


# --------------------------------------------------------------------------- cache


def test_crash_while_writing_the_cache_leaves_no_file(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "src")
    cache_dir = tmp_path / "cache"

    def disk_full(obj, f, *args, **kwargs):
        # Write part of the file first, as a real crash would, then fail.
        with open(f, "wb") if isinstance(f, (str, Path)) else contextlib.nullcontext(f) as fh:
            fh.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        prepare_dataset("imagefolder", tmp_path / "src", cache_dir=cache_dir)
    assert files_in(cache_dir) == []
    with pytest.warns(UserWarning, match="could not write cache file"):
        ds = load_dataset("imagefolder", source=tmp_path / "src", cache_dir=cache_dir)
    assert ds.train_x.shape[0] == 6 and "cache_file" not in ds.meta
    assert files_in(cache_dir) == []


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path):
    write_image_folder(tmp_path / "src")
    cache_dir = tmp_path / "cache"
    path = prepare_dataset("imagefolder", tmp_path / "src", cache_dir=cache_dir)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(CacheWarning, match=f"ignoring cache file {path}"):
        ds = load_dataset("imagefolder", source=tmp_path / "src", cache_dir=cache_dir)
    assert ds.train_x.shape == (6, 3, 5, 6) and not ds.meta["loaded_from_cache"]
    again = load_dataset("imagefolder", source=tmp_path / "src", cache_dir=cache_dir)
    assert again.meta["loaded_from_cache"] and torch.equal(again.train_x, ds.train_x)


def test_changed_source_is_decoded_again(tmp_path):
    src = tmp_path / "src"
    write_image_folder(src)
    cache_dir = tmp_path / "cache"
    before = source_fingerprint(src)
    assert load_dataset("imagefolder", source=src, cache_dir=cache_dir).train_x.shape[0] == 6
    Image.fromarray(pixels(7)).save(src / "train" / "emu" / "new.png")
    assert source_fingerprint(src) != before
    ds = load_dataset("imagefolder", source=src, cache_dir=cache_dir)
    assert ds.train_x.shape[0] == 7 and not ds.meta["loaded_from_cache"]


def test_channel_stats_match_a_direct_computation():
    x = torch.randint(
        0, 256, (37, 3, 5, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    mean, std = channel_stats(x, chunk=8)
    ref = x.double().div(255).permute(1, 0, 2, 3).reshape(3, -1)
    assert mean.dtype == torch.float64 and mean.shape == (3,)
    torch.testing.assert_close(mean, ref.mean(1), rtol=0, atol=1e-12)
    torch.testing.assert_close(std, ref.std(1, unbiased=False), rtol=0, atol=1e-12)
    with pytest.raises(DataError, match=r"expects uint8 images \[N, C, H, W\]"):
        channel_stats(x.float())


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory_reads_as_mnist(tmp_path, gz):
    images, labels = write_mnist_dir(tmp_path / "mnist", gz=gz)
    ds = load_dataset("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert ds.train_x.shape == (5, 1, 28, 28) and ds.train_x.dtype == torch.uint8
    assert np.array_equal(ds.train_x[:, 0].numpy(), images)
    assert ds.train_y.tolist() == labels.tolist() and ds.test_x.shape == (3, 1, 28, 28)
    assert ds.classes == [str(i) for i in range(10)]


def test_idx_reads_other_types_big_endian(tmp_path):
    values = (np.arange(6).reshape(2, 3) * 300).astype(">i2")  # as IDX stores them
    assert read_idx(write_idx(tmp_path / "x.idx", values, code=0x0B)).tolist() == values.tolist()


def test_bad_idx_files_are_named(tmp_path):
    write_mnist_dir(tmp_path, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    raw = images.read_bytes()
    images.write_bytes(raw[:-10])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated"):
        read_idx_dataset(tmp_path)
    images.write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: not an IDX file.*01 02 08 03"):
        read_idx_dataset(tmp_path)
    images.write_bytes(raw)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: 4 labels but .* has 5 images"):
        read_idx_dataset(tmp_path)
    gz = write_idx(tmp_path / "t.gz", np.zeros((3, 28, 28), np.uint8))
    gz.write_bytes(gz.read_bytes()[:20])
    with pytest.raises(DataError, match=r"cannot read IDX file .*t.gz"):
        read_idx(gz)


# --------------------------------------------------------------------------- Gaussian


def test_gaussian_presets_have_the_papers_variances():
    assert GAUSSIAN_PRESETS["gaussian10"] == pytest.approx([1.0 + 0.1 * i for i in range(10)])
    assert GAUSSIAN_PRESETS["gaussian30"] == pytest.approx([0.1 * i for i in range(1, 31)])
    ds = load_dataset("gaussian30", n_train=20_000, n_test=10, seed=3)
    assert ds.train_x.shape == (20_000, 30) and ds.train_x.dtype == torch.float32
    assert ds.test_x.shape == (10, 30) and ds.num_classes == 10
    var = ds.train_x.double().var(0)
    # The sample variance of 20k draws has relative std sqrt(2/20000) = 1%.
    torch.testing.assert_close(
        var, torch.tensor(GAUSSIAN_PRESETS["gaussian30"]).double(), rtol=0.05, atol=0
    )
    counts = torch.bincount(ds.train_y, minlength=10)
    assert counts.min() > 1800 and counts.max() < 2200


def test_gaussian_is_deterministic_and_streams_are_separate():
    a = gaussian_dataset([1.0, 2.0], n_train=50, n_test=5, seed=1)
    more_test = gaussian_dataset([1.0, 2.0], n_train=50, n_test=9, seed=1)
    more_train = gaussian_dataset([1.0, 2.0], n_train=80, n_test=5, seed=1)
    c = gaussian_dataset([1.0, 2.0], n_train=50, n_test=5, seed=2)
    assert torch.equal(a.train_x, more_test.train_x) and torch.equal(a.train_y, more_test.train_y)
    assert torch.equal(a.test_x, more_train.test_x) and torch.equal(a.test_y, more_train.test_y)
    assert not torch.equal(a.train_x, c.train_x)
    with pytest.raises(DataError, match="variances must be finite and >= 0"):
        gaussian_dataset([1.0, -1.0], n_train=5)
    with pytest.raises(DataError, match=r"unexpected options for gaussian10: \['workers'\]"):
        load_dataset("gaussian10", workers=2)


# --------------------------------------------------------------------------- streaming


def test_resize_center_crop_keeps_the_center():
    img = np.zeros((20, 40, 3), np.uint8)  # H=20, W=40: left half red, right half blue
    img[:, :20, 0] = 255
    img[:, 20:, 2] = 255
    out = np.asarray(resize_center_crop(Image.fromarray(img), size=8, resize=10))
    assert out.shape == (8, 8, 3)  # resized to 20x10, then columns 6..13 kept
    assert (out[:, :3, 0] == 255).all() and (out[:, 5:, 2] == 255).all()


def test_stream_dataset_and_loader_order(tmp_path):
    root = tmp_path / "imagenet"
    write_image_folder(root, classes=("n01", "n02"), per_class=3, size=(23, 17))
    Image.fromarray(pixels(50, size=(40, 30))).save(root / "train" / "n02" / "big.JPEG")
    train = ImageFolderStream(root, "train", size=12, resize=14)
    test = ImageFolderStream(root, "test", size=12, resize=14, classes=train.classes)
    assert len(train) == 7 and len(test) == 2 and train.classes == ["n01", "n02"]
    x, y = train[6]
    assert x.shape == (3, 12, 12) and x.dtype == torch.uint8 and y == 1
    order = [y.tolist() for _, y in stream_loader(train, 3, seed=0, epoch=0)]
    again = [y.tolist() for _, y in stream_loader(train, 3, seed=0, epoch=0)]
    assert order == again and sorted(sum(order, [])) == sorted(train.labels.tolist())
    assert epoch_permutation(7, 0, 0).tolist() == epoch_permutation(7, 0, 0).tolist()
    assert epoch_permutation(50, 0, 0).tolist() != epoch_permutation(50, 0, 1).tolist()
    (root / "train" / "n01" / "000.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot decode image .*train/n01/000.png"):
        train[0]


# --------------------------------------------------------------------------- real CIFAR-10


@pytest.mark.cifar
def test_real_cifar10_image_folder(cifar10_cached):
    ds, cache_dir = cifar10_cached
    assert ds.classes == CIFAR10_NAMES
    assert ds.train_x.shape == (50_000, 3, 32, 32) and ds.test_x.shape == (10_000, 3, 32, 32)
    assert torch.bincount(ds.train_y).tolist() == [5000] * 10
    assert torch.bincount(ds.test_y).tolist() == [1000] * 10
    mean, _ = channel_stats(ds.train_x)
    # The well-known CIFAR-10 means (0.4914, 0.4822, 0.4465); JPEG moves them slightly.
    torch.testing.assert_close(
        mean, torch.tensor([0.4914, 0.4822, 0.4465]).double(), rtol=0, atol=3e-3
    )
    start = time.perf_counter()
    again = load_dataset(
        "cifar10", data_dir=Path(ds.source).parent, cache_dir=cache_dir, download=False
    )
    seconds = time.perf_counter() - start
    assert again.meta["loaded_from_cache"] and seconds < max(2.0, ds.meta["decode_seconds"] / 3)
    assert torch.equal(again.train_x[::997], ds.train_x[::997])
