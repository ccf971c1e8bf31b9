"""Shared fixtures. ``cifar10_cached`` decodes the real CIFAR-10 asset once per test session."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

# The shared development data sits next to the repository, never inside it (see
# ../shared/data/README.md); tests that use it are marked `cifar` and skip without it.
CIFAR10_JPG = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Keep tests away from the user's dataset cache and data directory."""
    root = tmp_path_factory.getbasetemp() / "user-dirs"
    monkeypatch.setenv("RANDLABELS_CACHE", str(root / "cache"))
    monkeypatch.setenv("RANDLABELS_DATA_DIR", str(root / "data"))


@pytest.fixture(scope="session")
def cifar10_cached(tmp_path_factory: pytest.TempPathFactory):
    """(ArrayDataset of real CIFAR-10, cache_dir holding its decoded cache file).

    The first load decodes the 60,000 JPEGs (several seconds); reload it cheaply with
    ``load_dataset("cifar10", data_dir=CIFAR10_JPG.parent, cache_dir=cache_dir)``.
    """
    if not CIFAR10_JPG.is_file():
        pytest.skip(f"needs {CIFAR10_JPG}")
    from randlabels.data.registry import load_dataset

    cache_dir = tmp_path_factory.mktemp("cifar10-cache")
    start = time.perf_counter()
    dataset = load_dataset(
        "cifar10", data_dir=CIFAR10_JPG.parent, cache_dir=cache_dir, download=False, progress=False
    )
    dataset.meta["decode_seconds"] = time.perf_counter() - start
    return dataset, cache_dir
