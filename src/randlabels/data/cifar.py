"""CIFAR-10 and CIFAR-100 from the official python release (Krizhevsky, 2009).

The release is ``cifar-10-python.tar.gz`` (folder ``cifar-10-batches-py/``:
``data_batch_1..5``, ``test_batch``, ``batches.meta``) or
``cifar-100-python.tar.gz`` (folder ``cifar-100-python/``: ``train``, ``test``,
``meta``). Each batch is a pickled dict with ``data``, a uint8 array
``[N, 3072]`` stored channel-major (1024 red, 1024 green, 1024 blue values of
a 32x32 image), and the labels. Both the archive (read in place, never
extracted) and the extracted folder are accepted.

The pickles are read with an unpickler that can only rebuild numpy arrays and
plain Python values, so a tampered file cannot run code.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from randlabels.data.dataset import ArrayDataset, DataError


@dataclass(frozen=True)
class CifarRelease:
    """Where one official release lives and how its batches are named."""

    name: str
    archive: str
    folder: str
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int


CIFAR10 = CifarRelease(
    name="cifar10",
    archive="cifar-10-python.tar.gz",
    folder="cifar-10-batches-py",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    meta_file="batches.meta",
    label_key="labels",
    names_key="label_names",
    num_classes=10,
)
CIFAR100 = CifarRelease(
    name="cifar100",
    archive="cifar-100-python.tar.gz",
    folder="cifar-100-python",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
    train_files=("train",),
    test_files=("test",),
    meta_file="meta",
    label_key="fine_labels",
    names_key="fine_label_names",
    num_classes=100,
)
CIFAR_RELEASES = {r.name: r for r in (CIFAR10, CIFAR100)}

_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)


def read_cifar(path: str | os.PathLike, name: str = "cifar10") -> ArrayDataset:
    """Read the official CIFAR-10 or CIFAR-100 python release.

    ``path`` is the archive (``cifar-10-python.tar.gz``), the extracted folder
    (``cifar-10-batches-py/``) or a directory that contains that folder.
    Returns uint8 images ``[N, 3, 32, 32]`` (50000 train, 10000 test for the
    real release), int64 labels and the class names from the meta file
    (CIFAR-100: the 100 fine labels).
    """
    if name not in CIFAR_RELEASES:
        raise DataError(f"unknown CIFAR release {name!r}; expected one of {sorted(CIFAR_RELEASES)}")
    release = CIFAR_RELEASES[name]
    path = Path(path)
    wanted = (release.meta_file, *release.train_files, *release.test_files)
    if path.is_dir():
        blobs = _read_folder(path, release, wanted)
    elif path.is_file():
        blobs = _read_archive(path, release, wanted)
    else:
        raise DataError(f"{path} does not exist; expected {release.archive} or {release.folder}/")

    meta = _unpickle(blobs[release.meta_file], blobs.where(release.meta_file))
    classes = _class_names(meta, release, blobs.where(release.meta_file))
    train_x, train_y = _read_batches(blobs, release.train_files, release, len(classes))
    test_x, test_y = _read_batches(blobs, release.test_files, release, len(classes))
    return ArrayDataset(
        name=name,
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        classes=classes,
        source=str(path.resolve()),
        meta={"format": "cifar-python"},
    )


def detect_cifar_release(path: str | os.PathLike) -> str | None:
    """``"cifar10"``/``"cifar100"`` if ``path`` looks like an official python release, else None.

    Looks only at names: a folder holding the meta file (or the release
    folder), or an archive whose first file lies under the release folder.
    """
    path = Path(path)
    for release in CIFAR_RELEASES.values():
        if not path.is_dir():
            break
        if (path / release.folder).is_dir() or (
            (path / release.meta_file).is_file() and (path / release.train_files[0]).is_file()
        ):
            return release.name
    if path.is_file():
        try:
            with tarfile.open(path, "r|*") as tar:
                first = next((m for m in tar if m.isfile()), None)
        except _TAR_ERRORS:
            return None
        if first is not None:
            parts = PurePosixPath(first.name).parts
            for release in CIFAR_RELEASES.values():
                if release.folder in parts:
                    return release.name
    return None


class _Blobs(dict):
    """File name -> bytes, remembering where each came from for error messages."""

    def __init__(self, origin: Path, archive: bool) -> None:
        super().__init__()
        self.origin = origin
        self.archive = archive

    def where(self, key: str) -> str:
        return f"{self.origin}:{key}" if self.archive else str(self.origin / key)


def _read_folder(path: Path, release: CifarRelease, wanted: tuple[str, ...]) -> _Blobs:
    folder = path / release.folder if (path / release.folder).is_dir() else path
    missing = [f for f in wanted if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"{folder} is not a complete {release.folder}/ folder: expected files "
            f"{list(wanted)}, missing {missing}"
        )
    blobs = _Blobs(folder, archive=False)
    for f in wanted:
        blobs[f] = (folder / f).read_bytes()
    return blobs


def _read_archive(path: Path, release: CifarRelease, wanted: tuple[str, ...]) -> _Blobs:
    blobs = _Blobs(path, archive=True)
    try:
        # Stream mode: one sequential pass through the gzip stream, no seeking.
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if member.isfile() and len(parts) >= 2 and parts[-2] == release.folder:
                    if parts[-1] in wanted:
                        blobs[parts[-1]] = tar.extractfile(member).read()
    except _TAR_ERRORS as exc:
        raise DataError(
            f"cannot read archive {path}: {type(exc).__name__}: {exc}; the file is corrupt or "
            f"truncated (expected the official {release.archive})"
        ) from exc
    missing = [f for f in wanted if f not in blobs]
    if missing:
        raise DataError(
            f"archive {path} is not the CIFAR python release: expected members "
            f"{release.folder}/{{{','.join(wanted)}}}, missing {missing}"
        )
    return blobs


def _read_batches(
    blobs: _Blobs, files: tuple[str, ...], release: CifarRelease, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for f in files:
        where = blobs.where(f)
        batch = _unpickle(blobs[f], where)
        data = batch.get("data")
        labels = batch.get(release.label_key)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
            found = (
                f"{data.dtype} array of shape {data.shape}"
                if isinstance(data, np.ndarray)
                else type(data).__name__
            )
            raise DataError(f"{where}: expected 'data' as a uint8 array [N, 3072], found {found}")
        if data.shape[1] != 3 * 32 * 32:
            raise DataError(f"{where}: expected 'data' of shape [N, 3072], found {data.shape}")
        if labels is None:
            raise DataError(f"{where}: no '{release.label_key}' entry (keys: {sorted(batch)})")
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != data.shape[0] or labels.dtype.kind not in "iu":
            raise DataError(
                f"{where}: expected {data.shape[0]} integer labels, found {labels.dtype} "
                f"array of shape {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataError(
                f"{where}: labels must lie in [0, {num_classes}), found "
                f"[{labels.min()}, {labels.max()}]"
            )
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels.astype(np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def _class_names(meta: dict[str, Any], release: CifarRelease, where: str) -> list[str]:
    names = meta.get(release.names_key)
    if not isinstance(names, list) or len(names) != release.num_classes:
        found = f"{len(names)} names" if isinstance(names, list) else type(names).__name__
        raise DataError(
            f"{where}: expected '{release.names_key}' with {release.num_classes} class names, "
            f"found {found}"
        )
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


# (module, name) pairs a CIFAR pickle may reference: numpy array reconstruction and
# the codec Python 3 pickles use for raw bytes. Anything else is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core."):
            # numpy >= 2 moved numpy.core to numpy._core (old name still warns on access).
            try:
                module = "numpy._core." + module.removeprefix("numpy.core.")
                return getattr(importlib.import_module(module), name)
            except ImportError:
                module = "numpy.core." + module.removeprefix("numpy._core.")
        return getattr(importlib.import_module(module), name)


def _unpickle(blob: bytes, where: str) -> dict[str, Any]:
    try:
        obj = _ArrayUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means a corrupt or foreign file
        raise DataError(
            f"{where}: cannot unpickle ({type(exc).__name__}: {exc}); expected a pickled dict"
        ) from exc
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a pickled dict, found {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
