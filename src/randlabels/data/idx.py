"""MNIST-format IDX files (MNIST, Fashion-MNIST), plain or gzipped.

An IDX file is a 4-byte magic number -- two zero bytes, a type code (0x08
uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and
the number of dimensions -- then one big-endian uint32 per dimension, then
the values in C order, big-endian. A dataset directory holds
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally
``.gz``; some copies write ``train-images.idx3-ubyte``).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from randlabels.data.dataset import ArrayDataset, DataError, DatasetNotFoundError

IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file (``.gz`` decompressed on the fly) into an array of its dims and type.

    Raises DataError naming the file when the magic number is wrong, the type
    code unknown, or the file shorter or longer than its header says.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path}: {type(exc).__name__}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{path}: not an IDX file; expected magic bytes 00 00 <type> <ndim>, found "
            f"{raw[:4].hex(' ') or 'an empty file'}"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise DataError(
            f"{path}: unknown IDX type code 0x{code:02X}; expected one of "
            f"{', '.join(f'0x{c:02X}' for c in IDX_DTYPES)}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{path}: truncated header; {ndim} dims need {header} bytes, found {len(raw)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(
            f"{path}: {what}; header says dims {list(dims)} of {dtype.name} = {expected} bytes, "
            f"file has {len(raw)}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=True)


def find_idx_file(directory: str | os.PathLike, stem: str) -> Path | None:
    """``directory/stem`` or its ``.gz`` (also the ``train-images.idx3-ubyte`` spelling)."""
    directory = Path(directory)
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def read_idx_dataset(
    directory: str | os.PathLike, name: str = "mnist", classes: Sequence[str] | None = None
) -> ArrayDataset:
    """Read an MNIST-format directory into uint8 images ``[N, 1, H, W]`` and int64 labels.

    ``classes`` defaults to ``"0".."K-1"`` with K = largest label + 1. The
    test files are optional; a missing training file raises
    DatasetNotFoundError listing the names looked for.
    """
    directory = Path(directory)
    paths = {key: find_idx_file(directory, stem) for key, stem in IDX_FILES.items()}
    for key in ("train_images", "train_labels"):
        if paths[key] is None:
            stem = IDX_FILES[key]
            raise DatasetNotFoundError(
                f"{directory}: no {stem} (or {stem}.gz); expected MNIST-format files "
                f"{', '.join(IDX_FILES.values())}"
            )
    if (paths["test_images"] is None) != (paths["test_labels"] is None):
        present = paths["test_images"] or paths["test_labels"]
        raise DataError(f"{directory}: found {present.name} but not its images/labels partner")
    train_x, train_y = _pair(paths["train_images"], paths["train_labels"])
    test_x = test_y = None
    if paths["test_images"] is not None:
        test_x, test_y = _pair(paths["test_images"], paths["test_labels"])
        if test_x.shape[1:] != train_x.shape[1:]:
            raise DataError(
                f"{paths['test_images']}: images are {list(test_x.shape[2:])}, training images "
                f"{list(train_x.shape[2:])}"
            )
    max_label = int(max(train_y.max(), test_y.max() if test_y is not None else 0))
    classes = list(classes) if classes is not None else [str(i) for i in range(max_label + 1)]
    if max_label >= len(classes):
        raise DataError(
            f"{directory}: label {max_label} found, but {name} has {len(classes)} classes"
        )
    return ArrayDataset(
        name=name,
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        classes=classes,
        source=str(directory.resolve()),
        meta={"format": "idx"},
    )


def _pair(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(
            f"{images_path}: expected uint8 images [N, H, W], found {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{labels_path}: expected integer labels [N], found {labels.dtype} {labels.shape}"
        )
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: holds no images")
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{labels_path}: {labels.shape[0]} labels but {images_path.name} has "
            f"{images.shape[0]} images"
        )
    if labels.size and labels.min() < 0:
        raise DataError(f"{labels_path}: negative label {labels.min()}")
    x = torch.from_numpy(np.ascontiguousarray(images[:, None]))
    return x, torch.from_numpy(labels.astype(np.int64))
