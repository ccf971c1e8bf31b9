"""Decoded datasets cached as one tensor file per (dataset, source).

A cache file ``<cache_dir>/<name>-<fingerprint>.pt`` is a ``torch.save`` of a
plain dict (uint8 image tensors, int64 labels, class names, provenance). The
fingerprint hashes the source's resolved path, size and modification time, so
a changed source gets a new file and is decoded again. Files are written
atomically (temporary file + ``os.replace``) and validated on load; a file
that fails validation is reported with a warning and treated as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from randlabels.data.dataset import ArrayDataset
from randlabels.utils.io import atomic_torch_save

CACHE_FORMAT_VERSION = 1
CACHE_ENV = "RANDLABELS_CACHE"
_KEYS = ("format_version", "name", "fingerprint", "source", "classes", "train_x", "train_y")


class CacheWarning(UserWarning):
    """A cache file was unreadable or inconsistent and is being ignored."""


def default_cache_dir() -> Path:
    """``$RANDLABELS_CACHE`` if set, else ``~/.cache/randlabels``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "randlabels"


def source_fingerprint(path: str | os.PathLike) -> str:
    """A 16-hex-digit hash of where ``path`` is and what it looks like on disk.

    For a file: resolved path, size and mtime. For a directory: the same for
    the directory, for every file directly inside it, and for every
    subdirectory down to three levels (adding or removing an image changes its
    class directory's mtime; editing a file in place deeper down does not).
    """
    root = Path(path).resolve()
    st = root.stat()
    entries: list[list[Any]] = [[str(root), st.st_size, st.st_mtime_ns]]
    if root.is_dir():
        _stat_tree(root, root, depth=1, entries=entries)
    blob = json.dumps(entries, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _stat_tree(root: Path, folder: Path, depth: int, entries: list[list[Any]]) -> None:
    with os.scandir(folder) as it:
        children = sorted(it, key=lambda e: e.name)
    for child in children:
        is_dir = child.is_dir()
        if is_dir or depth == 1:
            st = child.stat()
            rel = str(Path(child.path).relative_to(root))
            entries.append([rel, st.st_size if not is_dir else 0, st.st_mtime_ns])
        if is_dir and depth < 3:
            _stat_tree(root, Path(child.path), depth + 1, entries)


def cache_file(cache_dir: str | os.PathLike, name: str, fingerprint: str) -> Path:
    """Where the cache of dataset ``name`` decoded from a source with ``fingerprint`` lives."""
    return Path(cache_dir) / f"{name}-{fingerprint}.pt"


def save_cached(path: str | os.PathLike, dataset: ArrayDataset, fingerprint: str) -> Path:
    """Write ``dataset`` to ``path`` atomically (a crash leaves no file at ``path``)."""
    payload = {
        "format_version": CACHE_FORMAT_VERSION,
        "name": dataset.name,
        "fingerprint": fingerprint,
        "source": dataset.source,
        "classes": list(dataset.classes),
        "train_x": dataset.train_x.contiguous(),
        "train_y": dataset.train_y.contiguous(),
        "test_x": None if dataset.test_x is None else dataset.test_x.contiguous(),
        "test_y": None if dataset.test_y is None else dataset.test_y.contiguous(),
        "meta": json.loads(json.dumps(dataset.meta)),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_torch_save(path, payload)
    return Path(path)


def load_cached(
    path: str | os.PathLike, *, name: str | None = None, fingerprint: str | None = None
) -> ArrayDataset | None:
    """Load a cache file, or return ``None`` when it is missing or fails validation.

    A file that exists but cannot be trusted (unreadable, old format, wrong
    shapes or dtypes, labels out of range, other name or fingerprint) raises a
    :class:`CacheWarning` naming the file and the reason, and counts as missing
    so that the caller decodes the source again and overwrites it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: any loader error means "not usable"
        _warn(path, f"cannot be read ({type(exc).__name__}: {exc})")
        return None
    reason = _check_payload(payload, name=name, fingerprint=fingerprint)
    if reason is not None:
        _warn(path, reason)
        return None
    meta = dict(payload.get("meta") or {})
    meta.update(cache_file=str(path), loaded_from_cache=True)
    return ArrayDataset(
        name=payload["name"],
        train_x=payload["train_x"],
        train_y=payload["train_y"],
        test_x=payload["test_x"],
        test_y=payload["test_y"],
        classes=list(payload["classes"]),
        source=payload["source"],
        meta=meta,
    )


def find_cached(cache_dir: str | os.PathLike, name: str) -> list[Path]:
    """Cache files of dataset ``name`` in ``cache_dir``, newest first."""
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        return []
    files = [p for p in cache_dir.glob(f"{name}-*.pt") if _split_name(p)[0] == name]
    return sorted(files, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def describe_cached(path: str | os.PathLike) -> dict[str, Any] | None:
    """A summary of one cache file (memory-mapped, so large files load no pixels), or None."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        _warn(path, f"cannot be read ({type(exc).__name__}: {exc})", "it is not listed")
        return None
    reason = _check_payload(payload, name=None, fingerprint=None, check_labels=False)
    if reason is not None:
        _warn(path, reason, "it is not listed")
        return None
    test_x = payload["test_x"]
    return {
        "name": payload["name"],
        "source": payload["source"],
        "n_train": int(payload["train_x"].shape[0]),
        "n_test": 0 if test_x is None else int(test_x.shape[0]),
        "shape": list(payload["train_x"].shape[1:]),
        "classes": list(payload["classes"]),
        "file": str(path),
        "file_size": path.stat().st_size,
        "created": payload.get("created", ""),
    }


def _split_name(path: Path) -> tuple[str, str]:
    stem, _, fp = path.stem.rpartition("-")
    return stem, fp


def _check_payload(
    payload: Any, *, name: str | None, fingerprint: str | None, check_labels: bool = True
) -> str | None:
    """Why ``payload`` is not a valid cache dict, or None when it is."""
    if not isinstance(payload, dict):
        return f"expected a dict, found {type(payload).__name__}"
    missing = [k for k in _KEYS if k not in payload]
    if missing:
        return f"missing keys {missing}"
    if payload["format_version"] != CACHE_FORMAT_VERSION:
        return (
            f"cache format {payload['format_version']!r}, this version reads {CACHE_FORMAT_VERSION}"
        )
    if name is not None and payload["name"] != name:
        return f"holds dataset {payload['name']!r}, expected {name!r}"
    if fingerprint is not None and payload["fingerprint"] != fingerprint:
        return "was made from a different source"
    classes = payload["classes"]
    if not isinstance(classes, list) or not classes:
        return "has no class names"
    for split in ("train", "test"):
        x, y = payload.get(f"{split}_x"), payload.get(f"{split}_y")
        if split == "test" and x is None and y is None:
            continue
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            return f"{split} split is not a pair of tensors"
        if x.dtype not in (torch.uint8, torch.float32) or x.dim() not in (2, 4):
            return f"{split}_x has dtype {x.dtype} and {x.dim()} dims, expected uint8 [N,C,H,W]"
        if y.dtype != torch.int64 or y.dim() != 1 or y.shape[0] != x.shape[0]:
            return f"{split}_y is {y.dtype} {list(y.shape)}, expected int64 [{x.shape[0]}]"
        if split == "test" and x.shape[1:] != payload["train_x"].shape[1:]:
            return (
                f"test images are {list(x.shape[1:])}, train {list(payload['train_x'].shape[1:])}"
            )
        if check_labels and y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(classes)):
            return f"{split} labels outside [0, {len(classes)})"
    return None


def _warn(path: Path, reason: str, then: str = "it will be rebuilt from the source") -> None:
    warnings.warn(
        f"ignoring cache file {path}: {reason}; {then}",
        CacheWarning,
        stacklevel=3,
    )
