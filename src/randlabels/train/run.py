"""Run directories: everything one training run needs and leaves behind.

A run directory holds

    config.yaml        the fully resolved config
    env.json           library versions, git commit, device, command line
    data.json          dataset, source, split, label regime and standardization used
    labels.pt          the training indices and labels actually used
    metrics.jsonl      one JSON object per logged step
    checkpoints/last.pt  full training state (model, optimizer, RNGs, counters)
    weights/init.pt, weights/epoch_NNN.pt, weights/final.pt   model weights
    summary.json       written last: its presence marks the run as finished

Rerunning a finished run does nothing; rerunning an unfinished one resumes it.
Every file is written atomically, and a lock keeps two processes out of one run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from randlabels.data.dataset import ArrayDataset, DataError
from randlabels.data.labels import apply_label_regime, disjoint_splits
from randlabels.data.loader import TensorLoader
from randlabels.train.config import ConfigError, RunConfig, config_from_dict, config_to_yaml
from randlabels.train.trainer import Callback, Trainer
from randlabels.utils.io import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    ensure_writable_dir,
)
from randlabels.utils.lock import LockHeldError, pid_lock

# Keys that may differ between the run that wrote a directory and the one that
# resumes it: they say where things are, not what is computed.
_LOCATION_KEYS = {("train", "device"), ("data", "data_dir"), ("data", "download")}


class RunDirError(RuntimeError):
    """A run directory is locked by another process or holds a different run."""


@dataclass
class PreparedData:
    """The tensors and facts one run trains and evaluates on.

    For streamed image folders (``data.dataset=imagenet``) ``train_x``/``test_x``
    are ``None`` and ``stream``/``test_stream`` hold the on-disk datasets, with
    ``indices``/``test_indices`` selecting from them.
    """

    train_x: torch.Tensor | None
    train_y: torch.Tensor
    indices: torch.Tensor  # positions in the dataset's training pool
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None
    num_classes: int
    mean: torch.Tensor | None
    std: torch.Tensor | None
    info: dict[str, Any]
    input_shape: tuple[int, ...] = ()
    stream: Any = None
    test_stream: Any = None
    test_indices: torch.Tensor | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"train.device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but no CUDA device is available")
    return device


def load_run_dataset(cfg: RunConfig, progress: bool = True) -> ArrayDataset:
    from randlabels.data.registry import load_dataset

    d = cfg.data
    kwargs: dict[str, Any] = {"progress": progress}
    if d.dataset.startswith("gaussian"):
        kwargs = {"n_train": d.n_samples, "n_test": d.synthetic_test, "seed": d.split_seed}
    return load_dataset(d.dataset, d.data_dir, source=d.source, download=d.download, **kwargs)


def prepare_data(
    cfg: RunConfig, dataset: ArrayDataset | None = None, progress: bool = True
) -> PreparedData:
    """Select the split, apply the label regime and compute standardization statistics."""
    d = cfg.data
    if d.dataset == STREAMED and dataset is None:
        return _prepare_streamed(cfg)
    ds = dataset if dataset is not None else load_run_dataset(cfg, progress)
    n_pool = ds.train_x.shape[0]
    indices = select_training_indices(n_pool, d)
    label_seed = cfg.seed if d.label_seed is None else d.label_seed
    labels, k = apply_label_regime(ds.train_y[indices], d.labels, ds.num_classes, label_seed)
    mean = std = None
    if d.standardize and ds.is_image:
        from randlabels.data.registry import channel_stats

        # SPEC 2.1: statistics of the whole training pool, not of this split.
        mean, std = channel_stats(ds.train_x)
    test_x = test_y = None
    # The test set keeps its real labels; with another number of classes (random:K,
    # K != the dataset's) the model's head cannot be scored on it, so it is not evaluated.
    if ds.test_x is not None and d.n_test != 0 and k == ds.num_classes:
        test_x, test_y = ds.test_x, ds.test_y
        if d.n_test is not None and d.n_test < ds.test_x.shape[0]:
            # A fixed random subset: test folders are stored class by class too.
            pick = disjoint_splits(ds.test_x.shape[0], [d.n_test], seed=0)[0]
            test_x, test_y = test_x[pick], test_y[pick]
    info = _data_info(
        d, ds.name, ds.source, n_pool, indices, labels, k, label_seed, mean, std,
        n_test=0 if test_x is None else int(test_x.shape[0]),
        input_shape=list(ds.input_shape),
    )  # fmt: skip
    return PreparedData(
        ds.train_x[indices],
        labels,
        indices,
        test_x,
        test_y,
        k,
        mean,
        std,
        info,
        input_shape=tuple(ds.input_shape),
    )


def _data_info(
    d, name, source, pool_size, indices, labels, k, label_seed, mean, std, *, n_test, input_shape
) -> dict[str, Any]:
    """What data.json records: enough to check that a run saw exactly these examples."""
    return {
        "dataset": name,
        "source": str(source),
        "pool_size": pool_size,
        "n_train": int(indices.numel()),
        "n_test": n_test,
        "input_shape": input_shape,
        "labels": d.labels,
        "label_seed": label_seed,
        "num_classes": k,
        "splits": d.splits,
        "split": d.split if d.splits else None,
        "split_seed": d.split_seed,
        "indices_sha256": hashlib.sha256(indices.numpy().tobytes()).hexdigest(),
        "labels_sha256": hashlib.sha256(labels.numpy().tobytes()).hexdigest(),
        "mean": None if mean is None else mean.tolist(),
        "std": None if std is None else std.tolist(),
    }


def select_training_indices(n_pool: int, d) -> torch.Tensor:
    """Positions in the training pool used by a run: its split, then a random subset."""
    if d.splits is not None:
        indices = disjoint_splits(n_pool, d.splits, d.split_seed)[d.split]
    else:
        indices = torch.arange(n_pool)
    if d.n_train is not None:
        if d.n_train > indices.numel():
            raise DataError(
                f"data.n_train is {d.n_train} but the training set "
                f"{'(split ' + str(d.split) + ') ' if d.splits else ''}has only "
                f"{indices.numel()} examples"
            )
        # A random subset (from split_seed), never the first n: image folders are
        # stored class by class, so a prefix would hold a single class.
        pick = disjoint_splits(indices.numel(), [d.n_train], d.split_seed + 1)[0]
        indices = indices[pick]
    return indices


STREAMED = "imagenet"


def _prepare_streamed(cfg: RunConfig) -> PreparedData:
    """ILSVRC-2012-style folders (train/<wnid>/*, val/<wnid>/*) decoded on the fly."""
    from randlabels.data.imagefolder import ImageFolderStream
    from randlabels.data.registry import channel_stats, default_data_dir

    d = cfg.data
    root = Path(d.source) if d.source else Path(d.data_dir or default_data_dir()) / "imagenet"
    train = ImageFolderStream(root, "train", size=d.image_size)
    indices = select_training_indices(len(train), d)
    label_seed = cfg.seed if d.label_seed is None else d.label_seed
    true = torch.from_numpy(train.labels)[indices]
    labels, k = apply_label_regime(true, d.labels, len(train.classes), label_seed)
    mean = std = None
    if d.standardize:
        # Decoding the whole pool for two numbers per channel is too slow at
        # ImageNet scale; a seeded random sample estimates them.
        n_stats = min(d.stats_sample, len(train))
        pick = disjoint_splits(len(train), [n_stats], seed=d.split_seed + 2)[0]
        mean, std = channel_stats(torch.stack([train[int(i)][0] for i in pick]))
    test = test_indices = test_y = None
    if (root / "val").is_dir() and d.n_test != 0 and k == len(train.classes):
        test = ImageFolderStream(root, "val", size=d.image_size, classes=train.classes)
        test_indices = torch.arange(len(test))
        if d.n_test is not None and d.n_test < len(test):
            test_indices = disjoint_splits(len(test), [d.n_test], seed=0)[0]
        test_y = torch.from_numpy(test.labels)[test_indices]
    info = _data_info(
        d, STREAMED, root, len(train), indices, labels, k, label_seed, mean, std,
        n_test=0 if test is None else int(test_indices.numel()),
        input_shape=[3, d.image_size, d.image_size],
    )  # fmt: skip
    info["stats_sample"] = d.stats_sample if d.standardize else None
    return PreparedData(
        None,
        labels,
        indices,
        None,
        test_y,
        k,
        mean,
        std,
        info,
        input_shape=(3, d.image_size, d.image_size),
        stream=train,
        test_stream=test,
        test_indices=test_indices,
    )


def build_model(cfg: RunConfig, num_classes: int, input_shape: Sequence[int]) -> torch.nn.Module:
    from randlabels.models import create_model

    m = cfg.model
    if len(input_shape) == 3:
        in_channels, input_size = input_shape[0], input_shape[1]
    else:
        in_channels, input_size = int(input_shape[0]), 1
    kwargs: dict[str, Any] = {}
    if m.widths is not None:
        kwargs["widths"] = m.widths
    if m.stage_widths is not None:
        kwargs["stage_widths"] = m.stage_widths
    return create_model(
        m.name,
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=input_size,
        width=m.width,
        init_scale=m.init_scale,
        first_kernel=m.first_kernel,
        init=m.init,
        first_layer_std=m.first_layer_std,
        batch_norm=m.batch_norm,
        seed=cfg.seed,
        **kwargs,
    )


def build_loaders(
    cfg: RunConfig, data: PreparedData, device: torch.device
) -> tuple[TensorLoader, dict[str, TensorLoader]]:
    t = cfg.train
    common = {
        "mean": data.mean,
        "std": data.std,
        "device": device,
        "channels_last": t.channels_last,
    }
    if data.stream is not None:
        return _streamed_loaders(cfg, data, common)
    train = TensorLoader(
        data.train_x,
        data.train_y,
        batch_size=t.batch_size,
        shuffle=True,
        augment=cfg.data.augment,
        seed=cfg.seed,
        **common,
    )
    evals: dict[str, TensorLoader] = {}
    eval_batch = max(t.batch_size, 500)
    if data.test_x is not None:
        evals["test"] = TensorLoader(
            data.test_x, data.test_y, batch_size=eval_batch, shuffle=False, **common
        )
    if t.eval_train:
        evals["train_full"] = TensorLoader(
            data.train_x, data.train_y, batch_size=eval_batch, shuffle=False, **common
        )
    return train, evals


def _streamed_loaders(cfg: RunConfig, data: PreparedData, common: dict[str, Any]):
    from randlabels.data.loader import StreamingLoader

    t, workers = cfg.train, cfg.data.workers
    train = StreamingLoader(
        data.stream,
        data.indices,
        data.train_y,
        batch_size=t.batch_size,
        augment=cfg.data.augment,
        seed=cfg.seed,
        num_workers=workers,
        **common,
    )
    evals: dict[str, TensorLoader] = {}
    if data.test_stream is not None:
        evals["test"] = StreamingLoader(
            data.test_stream,
            data.test_indices,
            data.test_y,
            batch_size=t.batch_size,
            shuffle=False,
            num_workers=workers,
            **common,
        )
    if t.eval_train:
        evals["train_full"] = StreamingLoader(
            data.stream,
            data.indices,
            data.train_y,
            batch_size=t.batch_size,
            shuffle=False,
            num_workers=workers,
            **common,
        )
    return train, evals


# ---------------------------------------------------------------- run dirs
def config_hash(cfg: RunConfig) -> str:
    d = cfg.to_dict()
    for section, key in _LOCATION_KEYS:
        d[section].pop(key, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def default_run_dir(cfg: RunConfig, root: str | Path = "runs") -> Path:
    return Path(root) / f"{cfg.model.name}-{cfg.data.dataset}-{config_hash(cfg)}"


def is_finished(run_dir: str | Path) -> bool:
    return (Path(run_dir) / "summary.json").exists()


def read_run_config(run_dir: str | Path) -> RunConfig:
    path = Path(run_dir) / "config.yaml"
    return config_from_dict(yaml.safe_load(path.read_text(encoding="utf-8")))


def _differences(a: RunConfig, b: RunConfig) -> list[str]:
    da, db = a.to_dict(), b.to_dict()
    out = []
    if da["seed"] != db["seed"]:
        out.append(f"seed: {da['seed']} vs {db['seed']}")
    for section in ("data", "model", "train"):
        for key in da[section]:
            if (section, key) in _LOCATION_KEYS:
                continue
            if da[section][key] != db[section][key]:
                out.append(f"{section}.{key}: {da[section][key]!r} vs {db[section][key]!r}")
    return out


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Exclusive lock on a run directory; a second process gets a clear error naming the pid."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(pid_lock(run_dir / "run.lock", f"run directory {run_dir}"))
        except LockHeldError as exc:
            raise RunDirError(str(exc)) from None
        yield


def environment_info(device: torch.device) -> dict[str, Any]:
    import numpy

    from randlabels import __version__

    info: dict[str, Any] = {
        "randlabels": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch_threads": torch.get_num_threads(),
        "command": sys.argv,
        "git_commit": None,
        "git_dirty": None,
    }
    src = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5
        )
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=src,
                capture_output=True,
                text=True,
                timeout=5,
            )
            info["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def run_training(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    callbacks: Sequence[Callback] = (),
    dataset: ArrayDataset | None = None,
    progress: bool = True,
    model_hook=None,
) -> dict[str, Any]:
    """Train one run into ``run_dir``: fresh, resumed, or (if finished) not at all.

    Args:
        cfg: a validated config.
        run_dir: the run directory (created if needed).
        callbacks: trainer callbacks (their state is checkpointed).
        dataset: an already loaded dataset to use instead of loading ``cfg.data.dataset``.
        model_hook: called as ``model_hook(model, data)`` after the model is built and
            before training starts or resumes (e.g. to transfer pretrained weights).

    Returns:
        The run's summary (also in ``run_dir/summary.json``), with ``"skipped": True``
        when the run had already finished.
    """
    cfg.validate()
    created = not Path(run_dir).exists()
    run_dir = ensure_writable_dir(run_dir)
    try:
        return _run_locked(cfg, run_dir, callbacks, dataset, progress, model_hook)
    except BaseException:
        # A run that failed before writing its config leaves nothing behind.
        if created and not (run_dir / "config.yaml").exists():
            (run_dir / "run.lock").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        raise


def _run_locked(cfg, run_dir, callbacks, dataset, progress, model_hook) -> dict[str, Any]:
    with run_lock(run_dir):
        config_path = run_dir / "config.yaml"
        if config_path.exists():
            try:
                previous = read_run_config(run_dir)
            except (ConfigError, yaml.YAMLError) as exc:
                raise RunDirError(f"{config_path} cannot be read ({exc})") from None
            diffs = _differences(previous, cfg)
            if diffs:
                raise RunDirError(
                    f"run directory {run_dir} holds a run with a different config "
                    f"({'; '.join(diffs)}); use another output directory or delete it"
                )
        if is_finished(run_dir):
            summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            summary["skipped"] = True
            return summary
        device = resolve_device(cfg.train.device)
        data = prepare_data(cfg, dataset, progress)
        model = build_model(cfg, data.num_classes, data.input_shape)
        if model_hook is not None:
            model_hook(model, data)
        model.to(device)
        if cfg.train.channels_last and len(data.input_shape) == 3:
            model.to(memory_format=torch.channels_last)
        train_loader, eval_loaders = build_loaders(cfg, data, device)
        if not config_path.exists():
            atomic_write_text(config_path, config_to_yaml(cfg))
        atomic_write_json(run_dir / "env.json", environment_info(device))
        atomic_write_json(run_dir / "data.json", data.info)
        if not (run_dir / "labels.pt").exists():
            atomic_torch_save(
                run_dir / "labels.pt", {"indices": data.indices, "labels": data.train_y}
            )
        trainer = Trainer(
            model,
            train_loader,
            cfg.train,
            eval_loaders=eval_loaders,
            run_dir=run_dir,
            callbacks=callbacks,
            progress=progress,
        )
        summary = trainer.fit()
        atomic_torch_save(run_dir / "weights" / "final.pt", model.state_dict())
        summary.update(
            {
                "run_dir": str(run_dir),
                "config_hash": config_hash(cfg),
                "data": data.info,
                "num_parameters": sum(p.numel() for p in model.parameters()),
            }
        )
        atomic_write_json(run_dir / "summary.json", summary)
        return summary


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


__all__ = [
    "PreparedData",
    "RunDirError",
    "build_loaders",
    "build_model",
    "config_hash",
    "default_run_dir",
    "is_finished",
    "prepare_data",
    "read_metrics",
    "run_training",
]
