"""Image folders: ``train/<class>/<image>`` and ``test/<class>/<image>`` (or ``val/``).

Two readers:

- :func:`read_image_folder` decodes a whole folder into memory (CIFAR-10 as
  JPEGs, downsampled ImageNet at 32x32 or 64x64). The folder may be a
  directory, a ``.tar`` or a ``.tar.gz``/``.tgz`` (members are read from the
  archive, nothing is extracted), optionally wrapped in one top-level folder
  (``cifar10/train/...``). Sorted class directory names give labels 0..K-1.
- :class:`ImageFolderStream` lists a large folder (ILSVRC-2012 layout
  ``train/<wnid>/*.JPEG``, ``val/<wnid>/*``) once and decodes, resizes and
  center-crops each image when it is asked for; :func:`stream_loader` wraps it
  in a DataLoader whose order depends only on (seed, epoch).
"""

from __future__ import annotations

import io
import multiprocessing
import multiprocessing.pool
import os
import sys
import tarfile
import warnings
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from randlabels.data.dataset import ArrayDataset, DataError, DatasetNotFoundError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp"}
)
TEST_SPLITS = ("test", "val")
_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)
_PARALLEL_MIN_IMAGES = 4096  # below this, starting worker processes costs more than it saves


# --------------------------------------------------------------------------- in memory


def read_image_folder(
    path: str | os.PathLike,
    *,
    name: str = "imagefolder",
    workers: int | None = None,
    progress: bool = True,
) -> ArrayDataset:
    """Decode an image folder (directory, .tar or .tar.gz) into uint8 tensors.

    Returns ``train_x`` ``[N, C, H, W]`` with C = 3 (every image converted to
    RGB) or C = 1 when every image is grayscale, int64 labels given by the
    sorted class directory names, and the test split from ``test/`` (or
    ``val/``) or None when there is none. Images are ordered by class, then
    by path. ``workers`` decoding processes (default: up to 4 for large
    folders, 0 = in this process); the result does not depend on it.

    Raises DataError when the layout is not ``train/<class>/<image>``, when
    train and test class sets differ, when a class directory has no images,
    when an image cannot be decoded (naming it), or when images differ in size
    (naming one file of each size).
    """
    path = Path(path)
    if path.is_dir():
        files, dirs = _list_directory(path)
    elif path.is_file():
        files, dirs = _list_tar(path)
    else:
        raise DatasetNotFoundError(
            f"image folder {path} does not exist; expected a directory, .tar or .tar.gz holding "
            "train/<class>/<image> (and optionally test/<class>/<image>)"
        )
    prefix = _find_root(files, path)
    splits = _split_entries(files, dirs, prefix, path)
    classes = sorted({cls for cls, _ in splits["train"]})
    test_split = next((s for s in TEST_SPLITS if splits.get(s)), None)
    if test_split is not None:
        test_classes = sorted({cls for cls, _ in splits[test_split]})
        if test_classes != classes:
            only_train = sorted(set(classes) - set(test_classes))
            only_test = sorted(set(test_classes) - set(classes))
            raise DataError(
                f"{path}: train/ and {test_split}/ must have the same class directories; "
                f"only in train/: {only_train}, only in {test_split}/: {only_test}"
            )

    label_of = {cls: i for i, cls in enumerate(classes)}
    order = [("train", e) for e in splits["train"]]
    if test_split is not None:
        order += [(test_split, e) for e in splits[test_split]]
    keys = [key for _, (_, key) in order]
    payloads = [files[k] for k in keys]
    images = _decode_many(keys, payloads, path, workers, progress)
    x = _stack(images, keys, path)
    y = torch.tensor([label_of[cls] for _, (cls, _) in order], dtype=torch.int64)
    n_train = len(splits["train"])
    return ArrayDataset(
        name=name,
        train_x=x[:n_train],
        train_y=y[:n_train],
        test_x=x[n_train:] if test_split is not None else None,
        test_y=y[n_train:] if test_split is not None else None,
        classes=classes,
        source=str(path.resolve()),
        meta={"format": "imagefolder", "test_split": test_split},
    )


def _is_hidden(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _list_directory(root: Path) -> tuple[dict[str, str | bytes], set[str]]:
    """Image files (relative posix path -> absolute path) and directories under ``root``."""
    files: dict[str, str | bytes] = {}
    dirs: set[str] = set()
    for folder, subdirs, names in os.walk(root, followlinks=True):
        rel = PurePosixPath(Path(folder).relative_to(root).as_posix())
        subdirs[:] = [d for d in subdirs if not _is_hidden([d])]
        for d in subdirs:
            dirs.add(str(rel / d))
        for n in names:
            if not _is_hidden([n]) and Path(n).suffix.lower() in IMAGE_EXTENSIONS:
                files[str(rel / n)] = os.path.join(folder, n)
    return files, dirs


def _list_tar(path: Path) -> tuple[dict[str, str | bytes], set[str]]:
    """Image members (normalised path -> bytes) and directories of a tar archive."""
    files: dict[str, str | bytes] = {}
    dirs: set[str] = set()
    try:
        # Stream mode reads the (possibly gzip-compressed) archive once, front to back.
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                parts = [p for p in PurePosixPath(member.name).parts if p not in ("/", ".")]
                if not parts or ".." in parts or _is_hidden(parts):
                    continue
                key = "/".join(parts)
                if member.isdir():
                    dirs.add(key)
                elif member.isfile() and PurePosixPath(key).suffix.lower() in IMAGE_EXTENSIONS:
                    files[key] = tar.extractfile(member).read()
                    dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    except _TAR_ERRORS as exc:
        raise DataError(
            f"cannot read archive {path}: {type(exc).__name__}: {exc}; expected a readable "
            ".tar/.tar.gz of train/<class>/<image> (is it truncated or corrupt?)"
        ) from exc
    return files, dirs


def _find_root(files: dict[str, str | bytes], source: Path) -> str:
    """The prefix under which ``train/`` lives: '' or one wrapping folder ('cifar10/')."""
    tops = {k.split("/", 1)[0] for k in files}
    if "train" in tops:
        return ""
    if len(tops) == 1:
        top = next(iter(tops))
        if any(k.startswith(f"{top}/train/") for k in files):
            return f"{top}/"
    found = sorted(tops)[:10] if tops else "no image files"
    raise DataError(
        f"{source}: expected an image folder train/<class>/<image> (optionally inside one "
        f"top-level folder), found top-level entries {found}"
    )


def _split_entries(
    files: dict[str, str | bytes], dirs: set[str], prefix: str, source: Path
) -> dict[str, list[tuple[str, str]]]:
    """Per split, sorted (class, file key) pairs; checks that each class directory has images."""
    splits: dict[str, list[tuple[str, str]]] = {s: [] for s in ("train", *TEST_SPLITS)}
    for key in files:
        if not key.startswith(prefix):
            continue
        parts = key[len(prefix) :].split("/")
        if parts[0] not in splits:
            continue
        if len(parts) < 3:
            raise DataError(
                f"{source}: image {key} lies directly in {parts[0]}/; expected "
                f"{parts[0]}/<class>/<image>"
            )
        splits[parts[0]].append((parts[1], key))
    for split, entries in splits.items():
        entries.sort()
        with_images = {cls for cls, _ in entries}
        class_dirs = {
            d[len(prefix) :].split("/")[1]
            for d in dirs
            if d.startswith(f"{prefix}{split}/") and d.count("/") == prefix.count("/") + 1
        }
        empty = sorted(class_dirs - with_images)
        if empty and (entries or split == "train"):
            raise DataError(
                f"{source}: class directories without images in {split}/: {empty[:10]} "
                "(every class needs at least one image)"
            )
    return splits


def _decode_many(
    keys: list[str],
    payloads: list[str | bytes],
    source: Path,
    workers: int | None,
    progress: bool,
) -> list[np.ndarray]:
    """Decode every image, in order; worker processes only speed this up."""
    if not keys:
        raise DataError(f"{source}: no images found under train/<class>/")
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if len(keys) >= _PARALLEL_MIN_IMAGES else 0
    step = max(256, min(4096, len(keys) // (8 * max(workers, 1)) + 1))
    chunks = [payloads[i : i + step] for i in range(0, len(payloads), step)]
    bar = tqdm(
        total=len(keys),
        desc=f"decoding {source.name}",
        unit="img",
        disable=not progress or len(keys) < _PARALLEL_MIN_IMAGES,
        leave=False,
    )
    results: list[tuple[np.ndarray | None, str | None]] = []
    pool = _pool(workers) if workers > 1 else None
    try:
        parts = pool.imap(_decode_chunk, chunks) if pool is not None else map(_decode_chunk, chunks)
        with bar:
            for part in parts:
                results.extend(part)
                bar.update(len(part))
    finally:
        if pool is not None:
            pool.terminate()
    bad = [(k, err) for k, (_, err) in zip(keys, results, strict=True) if err is not None]
    if bad:
        key, err = bad[0]
        more = f" ({len(bad) - 1} more unreadable images)" if len(bad) > 1 else ""
        raise DataError(f"{source}: cannot decode image {key}: {err}{more}")
    return [img for img, _ in results]


def _pool(workers: int) -> multiprocessing.pool.Pool | None:
    """A process pool, or None where processes cannot be started (then decode in-process)."""
    # Workers only run Pillow and numpy. Forking skips re-importing torch in each worker
    # (about 1.5 s), which is most of what a pool saves on a CIFAR-sized folder.
    method = "fork" if sys.platform == "linux" else "spawn"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            return multiprocessing.get_context(method).Pool(workers)
    except OSError:
        return None


def _decode_chunk(payloads: list[str | bytes]) -> list[tuple[np.ndarray | None, str | None]]:
    """Decode images (file paths or encoded bytes) to ``[H, W]`` (grayscale) or ``[H, W, 3]``."""
    out: list[tuple[np.ndarray | None, str | None]] = []
    for payload in payloads:
        try:
            with Image.open(io.BytesIO(payload) if isinstance(payload, bytes) else payload) as im:
                converted = im.convert("L" if im.mode in ("1", "L") else "RGB")
            out.append((np.asarray(converted), None))
        except Exception as exc:  # Pillow raises many types for corrupt files; report them all
            out.append((None, f"{type(exc).__name__}: {exc}"))
    return out


def _stack(images: list[np.ndarray], keys: list[str], source: Path) -> torch.Tensor:
    """``[N, C, H, W]`` uint8; grayscale images are repeated to RGB unless all are grayscale."""
    first_of_size: dict[tuple[int, int], str] = {}
    for img, key in zip(images, keys, strict=True):
        first_of_size.setdefault(img.shape[:2], key)
    if len(first_of_size) > 1:
        listing = ", ".join(f"{k} is {w}x{h}" for (h, w), k in list(first_of_size.items())[:6])
        raise DataError(
            f"{source}: all images must have the same size (W x H); found "
            f"{len(first_of_size)} sizes: {listing}. Resize them first, or use "
            "ImageFolderStream, which resizes on the fly"
        )
    h, w = images[0].shape[:2]
    channels = 3 if any(img.ndim == 3 for img in images) else 1
    x = np.empty((len(images), channels, h, w), dtype=np.uint8)
    for i, img in enumerate(images):
        x[i] = img if img.ndim == 2 else img.transpose(2, 0, 1)
    return torch.from_numpy(x)


# --------------------------------------------------------------------------- streaming


class ImageFolderStream(Dataset):
    """A large image folder decoded on the fly: item ``i`` is (uint8 ``[3, size, size]``, label).

    Each image is converted to RGB, resized so that its shorter side is
    ``resize`` pixels (default ``round(size / 0.875)``, i.e. 256 for 224) and
    center-cropped to ``size`` x ``size``. The file list is made once, sorted
    by class and name; paths are kept in a numpy byte array so DataLoader
    worker processes share it without copying. Pass the training set's
    ``classes`` when reading ``val/`` so labels agree.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        *,
        size: int = 224,
        resize: int | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.size = int(size)
        self.resize = int(resize) if resize is not None else round(self.size / 0.875)
        if self.size < 1 or self.resize < self.size:
            raise DataError(f"need 1 <= size <= resize, got size={size}, resize={self.resize}")
        split_dir = self.root / split
        if not split_dir.is_dir():
            raise DatasetNotFoundError(
                f"{split_dir} does not exist; expected an image folder "
                f"{self.root}/{split}/<class>/<image> (ILSVRC-2012 layout: train/<wnid>/*.JPEG)"
            )
        found = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and e.name[0] != ".")
        self.classes = list(classes) if classes is not None else found
        unknown = sorted(set(found) - set(self.classes))
        if unknown:
            raise DataError(
                f"{split_dir}: class directories {unknown[:10]} are not among the "
                f"{len(self.classes)} given classes"
            )
        paths: list[str] = []
        labels: list[int] = []
        for label, cls in enumerate(self.classes):
            if not (split_dir / cls).is_dir():
                continue
            with os.scandir(split_dir / cls) as it:
                names = sorted(
                    e.name
                    for e in it
                    if e.is_file()
                    and e.name[0] != "."
                    and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
                )
            paths.extend(f"{split}/{cls}/{n}" for n in names)
            labels.extend([label] * len(names))
        if not paths:
            raise DataError(f"{split_dir}: no images found under <class>/ directories")
        self.paths = np.array([p.encode() for p in paths])
        self.labels = np.array(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.root / self.paths[index].decode()
        try:
            with Image.open(path) as im:
                img = resize_center_crop(im.convert("RGB"), self.size, self.resize)
        except Exception as exc:
            raise DataError(f"cannot decode image {path}: {type(exc).__name__}: {exc}") from exc
        x = torch.from_numpy(np.asarray(img).transpose(2, 0, 1).copy())
        return x, int(self.labels[index])


def resize_center_crop(img: Image.Image, size: int, resize: int) -> Image.Image:
    """Resize so the shorter side is ``resize`` (bilinear); crop the central ``size`` square."""
    w, h = img.size
    scale = resize / min(w, h)
    new_w, new_h = max(resize, round(w * scale)), max(resize, round(h * scale))
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """A permutation of ``range(n)`` (int64 ``[n]``) that depends only on (seed, epoch)."""
    mixed = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint64)[0]
    gen = torch.Generator().manual_seed(int(mixed))
    return torch.randperm(n, generator=gen)


class _FixedOrder(Sampler[int]):
    def __init__(self, order: torch.Tensor) -> None:
        self.order = order

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


def stream_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset`` whose batch order is fixed by (seed, epoch).

    Batches are (uint8 ``[B, 3, size, size]``, int64 ``[B]``). With
    ``shuffle=False`` the order is the dataset's own.
    """
    n = len(dataset)
    order = epoch_permutation(n, seed, epoch) if shuffle else torch.arange(n)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=_FixedOrder(order),
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=False,
    )
