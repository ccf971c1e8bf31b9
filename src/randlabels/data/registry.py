"""Datasets by name: where to find them, how to decode them, and the decoded-tensor cache.

    from randlabels.data.registry import load_dataset, channel_stats
    ds = load_dataset("cifar10")                       # data dir, then cache, then download
    ds = load_dataset("cifar10", data_dir="../shared/data")
    ds = load_dataset("imagefolder", source="my_images.tar.gz")
    ds = load_dataset("gaussian30", n_train=2000, seed=1)
    mean, std = channel_stats(ds.train_x)              # per channel, pixel units / 255

The data directory is ``data_dir``, else ``$RANDLABELS_DATA_DIR``, else
``~/.cache/randlabels/data``; decoded tensors are cached in ``cache_dir``,
else ``$RANDLABELS_CACHE``, else ``~/.cache/randlabels`` (see ``cache.py``).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from randlabels.data.cache import (
    cache_file,
    default_cache_dir,
    describe_cached,
    find_cached,
    load_cached,
    save_cached,
    source_fingerprint,
)
from randlabels.data.cifar import CIFAR_RELEASES, CifarRelease, detect_cifar_release, read_cifar
from randlabels.data.dataset import ArrayDataset, DataError, DatasetNotFoundError
from randlabels.data.download import DownloadError, download_url, is_url, md5sum, url_filename
from randlabels.data.idx import FASHION_MNIST_CLASSES, MNIST_CLASSES, read_idx_dataset
from randlabels.data.imagefolder import read_image_folder
from randlabels.data.synthetic import GAUSSIAN_PRESETS, gaussian_preset

DATA_DIR_ENV = "RANDLABELS_DATA_DIR"
_IMAGE_FOLDER_HINT = (
    "an image folder train/<class>/<image> (+ test/<class>/<image>) as a directory, .tar or .tar.gz"
)


@dataclass(frozen=True)
class _Entry:
    kind: str  # "cifar", "idx", "imagefolder" or "synthetic"
    candidates: tuple[str, ...] = ()  # looked for in the data directory, in this order
    shape: tuple[int | None, ...] | None = None  # expected [C, H, W] (None: any)
    classes: tuple[str, ...] | None = None
    release: CifarRelease | None = None
    sources: str = _IMAGE_FOLDER_HINT  # what --source may be, for error messages


def _cifar(release: CifarRelease, short: str) -> _Entry:
    return _Entry(
        kind="cifar",
        candidates=(
            release.archive,
            release.folder,
            f"{short}-jpg.tar.gz",
            f"{short}.tar.gz",
            f"{short}.tgz",
            f"{short}.tar",
            short,
        ),
        shape=(3, 32, 32),
        release=release,
        sources=f"the official {release.archive} or {release.folder}/, or {_IMAGE_FOLDER_HINT}",
    )


def _idx(dirs: tuple[str, ...], classes: list[str]) -> _Entry:
    return _Entry(
        kind="idx",
        candidates=dirs,
        shape=(1, 28, 28),
        classes=tuple(classes),
        sources="a directory with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
        "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]",
    )


def _downsampled_imagenet(size: int) -> _Entry:
    short = f"imagenet{size}"
    return _Entry(
        kind="imagefolder",
        candidates=(short, f"{short}.tar.gz", f"{short}.tgz", f"{short}.tar"),
        shape=(3, size, size),
        sources=f"{_IMAGE_FOLDER_HINT} of {size}x{size} images (train/<wnid>/*, val/<wnid>/*)",
    )


_REGISTRY: dict[str, _Entry] = {
    "cifar10": _cifar(CIFAR_RELEASES["cifar10"], "cifar10"),
    "cifar100": _cifar(CIFAR_RELEASES["cifar100"], "cifar100"),
    "mnist": _idx(("mnist", "MNIST/raw", "MNIST"), MNIST_CLASSES),
    "fashion_mnist": _idx(
        ("fashion_mnist", "fashion-mnist", "FashionMNIST/raw", "FashionMNIST"),
        FASHION_MNIST_CLASSES,
    ),
    "imagefolder": _Entry(kind="imagefolder"),
    "imagenet32": _downsampled_imagenet(32),
    "imagenet64": _downsampled_imagenet(64),
    **{name: _Entry(kind="synthetic") for name in GAUSSIAN_PRESETS},
}
DATASET_NAMES: tuple[str, ...] = tuple(_REGISTRY)
_SYNTHETIC_OPTIONS = {"n_train", "n_test", "num_classes", "seed"}
_FILE_OPTIONS = {"workers", "progress"}


def default_data_dir() -> Path:
    """``$RANDLABELS_DATA_DIR`` if set, else ``~/.cache/randlabels/data``."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "randlabels" / "data"


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    source: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
    cache: bool = True,
    **kwargs: Any,
) -> ArrayDataset:
    """Load dataset ``name`` as uint8 images ``[N, C, H, W]`` (or float32 ``[N, d]``) + labels.

    With ``source`` (a path, or an http/https/file URL that is downloaded to
    the data directory first) that source is read. Otherwise the data
    directory is searched for the entry's candidate files in order (for
    cifar10: ``cifar-10-python.tar.gz``, ``cifar-10-batches-py/``,
    ``cifar10-jpg.tar.gz``, ``cifar10.tar.gz``, ``cifar10.tgz``,
    ``cifar10.tar``, ``cifar10/``), then the cache for a prepared copy, then
    (CIFAR, ``download=True``) the official release is downloaded.

    Decoded files are cached under ``cache_dir`` keyed by the source's
    fingerprint, so the second load reads one tensor file
    (``ds.meta["loaded_from_cache"]``); ``cache=False`` neither reads nor
    writes the cache. Options: ``n_train``, ``n_test``, ``num_classes``,
    ``seed`` for the Gaussian sets; ``workers`` and ``progress`` for image
    folders.

    Raises DataError for an unknown name or malformed data, and
    DatasetNotFoundError (listing every path tried and how to provide the
    data) when nothing is found.
    """
    entry = _entry(name)
    if entry.kind == "synthetic":
        _check_options(name, kwargs, _SYNTHETIC_OPTIONS)
        return gaussian_preset(name, **kwargs)
    _check_options(name, kwargs, _FILE_OPTIONS)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if source is not None:
        path = _fetch(name, entry, source, data_dir)
        return _load_source(name, entry, path, cache_dir, cache=cache, **kwargs)
    if name == "imagefolder":
        raise DataError(
            "dataset 'imagefolder' needs an explicit source: load_dataset('imagefolder', "
            f"source=PATH) or --source PATH, where PATH is {_IMAGE_FOLDER_HINT}"
        )

    path = _in_data_dir(entry, data_dir)
    if path is not None:
        return _load_source(name, entry, path, cache_dir, cache=cache, **kwargs)
    tried = [str(data_dir / candidate) for candidate in entry.candidates]
    if cache:
        for path in find_cached(cache_dir, name):
            dataset = load_cached(path, name=name)
            if dataset is not None:
                return dataset
    tried.append(f"{cache_dir / (name + '-*.pt')} (a copy made by `randlabels data prepare`)")

    release = entry.release
    if release is not None and download:
        try:
            path = _download(release.url, data_dir / release.archive, release.md5)
        except DownloadError as exc:
            tried.append(f"download: {exc}")
        else:
            return _load_source(name, entry, path, cache_dir, cache=cache, **kwargs)
    elif release is not None:
        tried.append(f"download from {release.url}: not attempted (download=False)")
    raise DatasetNotFoundError(_not_found_message(name, entry, tried))


def locate_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> Path | None:
    """Where ``load_dataset(name, data_dir, download=False)`` would read ``name`` from, found
    without decoding it: a candidate in the data directory, else a prepared copy in the cache
    (its header checked, no pixels read). ``None`` when there is neither.

    Raises DataError for an unknown name and for generated (synthetic) datasets.
    """
    entry = _entry(name)
    if entry.kind == "synthetic":
        raise DataError(f"{name} is generated from a seed; there is no file to locate")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = _in_data_dir(entry, data_dir)
    if path is not None:
        return path
    for path in find_cached(cache_dir, name):
        info = describe_cached(path)
        if info is not None and info["name"] == name:
            return path
    return None


def _in_data_dir(entry: _Entry, data_dir: Path) -> Path | None:
    """The first of the entry's candidate files that exists in ``data_dir``."""
    return next((data_dir / c for c in entry.candidates if (data_dir / c).exists()), None)


def prepare_dataset(
    name: str,
    source: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Decode ``source`` (path or URL) into the cache and return the cache file's path.

    Afterwards ``load_dataset(name)`` finds the prepared copy even when the
    source is gone. URLs are downloaded into the data directory first (CIFAR
    archives are md5-checked).
    """
    entry = _entry(name)
    if entry.kind == "synthetic":
        raise DataError(f"{name} is generated from a seed; there is nothing to prepare")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    path = _fetch(name, entry, source, data_dir)
    dataset = _load_source(name, entry, path, cache_dir, cache=True, strict_cache=True)
    return Path(dataset.meta["cache_file"])


def dataset_info(cache_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """What is cached: one dict per cache file (name, source, n_train, n_test, shape, classes,
    file, file_size, created), sorted by name."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not cache_dir.is_dir():
        return []
    infos = [describe_cached(p) for p in sorted(cache_dir.glob("*.pt"))]
    return sorted((i for i in infos if i is not None), key=lambda i: (i["name"], i["file"]))


def channel_stats(x_uint8: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of uint8 images ``[N, C, H, W]``, in [0, 1] units.

    Returns two float64 tensors ``[C]``. The statistics come from an exact
    per-channel histogram of the 256 pixel values (int64 counts, accumulated
    over chunks of ``chunk`` images so memory stays bounded), combined in
    exact rational arithmetic before the final division by 255.
    """
    if x_uint8.dtype != torch.uint8 or x_uint8.dim() != 4:
        raise DataError(
            f"channel_stats expects uint8 images [N, C, H, W], got {x_uint8.dtype} "
            f"of shape {list(x_uint8.shape)}"
        )
    n_images, channels = x_uint8.shape[:2]
    if x_uint8.numel() == 0:
        raise DataError(f"channel_stats needs at least one pixel, got shape {list(x_uint8.shape)}")
    hist = torch.zeros(channels, 256, dtype=torch.int64)
    for start in range(0, n_images, chunk):
        block = x_uint8[start : start + chunk].transpose(0, 1).reshape(channels, -1)
        for c in range(channels):
            hist[c] += torch.bincount(block[c], minlength=256)
    values = [Fraction(v) for v in range(256)]
    means, stds = [], []
    for counts in hist.tolist():
        n = sum(counts)
        mean = sum(v * k for v, k in zip(values, counts, strict=True)) / n
        var = sum(v * v * k for v, k in zip(values, counts, strict=True)) / n - mean * mean
        means.append(float(mean) / 255.0)
        stds.append(math.sqrt(var) / 255.0)
    return torch.tensor(means, dtype=torch.float64), torch.tensor(stds, dtype=torch.float64)


# --------------------------------------------------------------------------- internals


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    return _REGISTRY[name]


def _check_options(name: str, kwargs: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise DataError(f"unexpected options for {name}: {unknown}; allowed: {sorted(allowed)}")


def _fetch(name: str, entry: _Entry, source: str | os.PathLike, data_dir: Path) -> Path:
    """A local path for ``source``: the path itself, or a URL downloaded into ``data_dir``."""
    if isinstance(source, str) and is_url(source):
        filename = url_filename(source)
        release = entry.release
        md5 = release.md5 if release is not None and filename == release.archive else None
        dest = data_dir / filename
        try:
            return _download(source, dest, md5)
        except DownloadError as exc:
            raise DatasetNotFoundError(
                _not_found_message(name, entry, [f"download: {exc}"])
            ) from exc
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(
            _not_found_message(name, entry, [f"{path} (given as source; does not exist)"])
        )
    return path


def _download(url: str, dest: Path, md5: str | None) -> Path:
    """Download ``url`` to ``dest`` unless a copy with the right md5 is already there."""
    if dest.is_file() and (md5 is None or md5sum(dest) == md5):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return download_url(url, dest, md5=md5)
    except DownloadError:
        raise
    except OSError as exc:  # e.g. a read-only data directory
        raise DownloadError(f"cannot write {dest}: {exc.strerror or exc}") from exc


def _load_source(
    name: str,
    entry: _Entry,
    path: Path,
    cache_dir: Path,
    *,
    cache: bool,
    strict_cache: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> ArrayDataset:
    """Read ``path`` as dataset ``name``, through the cache."""
    fingerprint = source_fingerprint(path)
    target = cache_file(cache_dir, name, fingerprint)
    if cache:
        dataset = load_cached(target, name=name, fingerprint=fingerprint)
        if dataset is not None:
            return dataset
    dataset = _decode(name, entry, path, workers=workers, progress=progress)
    _check_expected(name, entry, dataset, path)
    if cache:
        try:
            save_cached(target, dataset, fingerprint)
        except OSError as exc:
            if strict_cache:
                raise
            warnings.warn(f"could not write cache file {target}: {exc}", stacklevel=3)
        else:
            dataset.meta.update(cache_file=str(target))
    dataset.meta.update(loaded_from_cache=False)
    return dataset


def _decode(
    name: str, entry: _Entry, path: Path, *, workers: int | None, progress: bool
) -> ArrayDataset:
    if entry.kind == "idx":
        if not path.is_dir():
            raise DataError(f"{path}: expected a directory of IDX files for {name}")
        return read_idx_dataset(path, name=name, classes=entry.classes)
    if entry.kind == "cifar":
        found = detect_cifar_release(path)
        if found == entry.release.name:
            return read_cifar(path, name)
        if found is not None:
            raise DataError(f"{path} is the {found} release, not {name}")
    return read_image_folder(path, name=name, workers=workers, progress=progress)


def _check_expected(name: str, entry: _Entry, dataset: ArrayDataset, path: Path) -> None:
    """Catch a source that decodes fine but is not the dataset asked for (never cache it)."""
    if entry.shape is not None:
        shape = dataset.input_shape
        ok = len(shape) == len(entry.shape) and all(
            e is None or e == s for e, s in zip(entry.shape, shape, strict=True)
        )
        if not ok:
            raise DataError(
                f"{path}: {name} images should be {list(entry.shape)}, found {list(shape)}"
            )
    expected = entry.release.num_classes if entry.release is not None else None
    if expected is not None and dataset.num_classes != expected:
        raise DataError(
            f"{path}: {name} has {expected} classes, found {dataset.num_classes} class "
            f"directories: {dataset.classes[:12]}"
        )


def _not_found_message(name: str, entry: _Entry, tried: list[str]) -> str:
    lines = [f"dataset {name!r} not found. Looked for:"]
    lines += [f"  {t}" for t in tried]
    lines += [
        "Provide it in one of these ways:",
        f"  randlabels data prepare {name} --source PATH_OR_URL",
        f"      where PATH is {entry.sources}",
    ]
    if entry.candidates:
        lines += [
            f"  or put one of {', '.join(entry.candidates)} in a directory and pass "
            f"--data-dir DIR (or set {DATA_DIR_ENV}=DIR)",
        ]
    return "\n".join(lines)
