"""Run configuration: nested dataclasses, read from YAML/TOML, overridden from the command line.

A config file holds any subset of the keys below; the rest take their
defaults. ``section.key=value`` overrides are parsed as YAML scalars
(``train.lr=0.1``, ``model.widths=[512,512]``, ``data.labels=random:10``).
Unknown keys are errors that list the valid ones.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config key does not exist or a value is invalid."""


@dataclass
class DataConfig:
    dataset: str = "cifar10"
    data_dir: str | None = None  # where datasets are looked for (default: the user cache)
    download: bool = True  # fetch a missing public dataset (CIFAR) when the network allows
    source: str | None = None  # an explicit archive, folder or URL (image folders, IDX dirs)
    splits: list[int] | None = None  # sizes of disjoint subsets of the training pool
    split: int = 0  # which of those subsets this run trains on
    split_seed: int = 0
    n_train: int | None = None  # use only the first n of the (split) training set
    n_test: int | None = None  # evaluate on the first n test examples
    labels: str = "real"  # real | random:K | corrupt:P
    label_seed: int | None = None  # default: the run seed
    augment: bool = False  # random crop (pad 4) + horizontal flip
    standardize: bool = True  # per-channel mean/std of the whole training pool
    image_size: int = 224  # imagenet (streamed): resize + center crop to this size
    workers: int = 4  # imagenet (streamed): decoding processes
    stats_sample: int = 5000  # imagenet (streamed): images used for mean/std
    n_samples: int = 10000  # synthetic Gaussian sets: training examples
    synthetic_test: int = 2000  # synthetic Gaussian sets: test examples


@dataclass
class ModelConfig:
    name: str = "simple_cnn"
    width: float = 1.0
    widths: list[int] | None = None  # mlp hidden widths
    stage_widths: list[float] | None = None  # vgg per-stage width multipliers
    init: str = "he"  # he | lecun | torch
    init_scale: float = 1.0
    first_layer_std: float | None = None  # absolute std of the first layer's weights
    first_kernel: int = 3
    batch_norm: bool = False


@dataclass
class OptimConfig:
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "constant"  # constant | step | cosine
    warmup_epochs: float = 0.0  # linear warm-up from 0, then the schedule
    milestones: list[float] = field(default_factory=list)  # step schedule, in epochs
    gamma: float = 0.1  # step schedule factor
    log_every: int = 20  # steps between train-metric lines
    eval_every: int = 0  # steps between evaluations; 0 = at the end of every epoch
    eval_train: bool = False  # also measure accuracy on the whole training set
    save_epochs: list[int] = field(default_factory=list)  # keep model weights after these
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    channels_last: bool = True  # memory layout of conv nets: 2-3x faster on CPU


@dataclass
class RunConfig:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> RunConfig:
        _validate(self)
        return self


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": OptimConfig}


def _field_types(cls) -> dict[str, Any]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _unknown(key: str, valid: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"unknown config key {where}{key!r}{hint}; valid keys: {', '.join(sorted(valid))}"
    )


def _coerce(value: Any, f: dataclasses.Field, name: str) -> Any:
    """Check a value against the field's annotated type (a small, explicit set of types)."""
    ann = str(f.type)
    optional = "None" in ann
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name} may not be null")
    if ann.startswith("bool"):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name} expects true or false, got {value!r}")
    if ann.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{name} expects an integer, got {value!r}")
        return value
    if ann.startswith("float"):
        if isinstance(value, str):
            # PyYAML reads "1e-3" (no dot) as a string; accept any float literal.
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} expects a number, got {value!r}")
        return float(value)
    if ann.startswith("str"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{name} expects a string, got {value!r}")
        return value
    if ann.startswith("list"):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} expects a list, got {value!r}")
        item = "int" if "list[int]" in ann else "float"
        out = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"{name} expects a list of numbers, got {value!r}")
            if item == "int" and not float(v).is_integer():
                raise ConfigError(f"{name} expects a list of integers, got {value!r}")
            out.append(int(v) if item == "int" else float(v))
        return out
    return value  # pragma: no cover


def config_from_dict(d: dict[str, Any] | None, base: RunConfig | None = None) -> RunConfig:
    """Build a validated config from a (partial) nested dict, on top of ``base``."""
    cfg = dataclasses.replace(base) if base is not None else RunConfig()
    cfg = RunConfig(
        seed=cfg.seed,
        data=dataclasses.replace(cfg.data),
        model=dataclasses.replace(cfg.model),
        train=dataclasses.replace(cfg.train),
    )
    if d is None:
        return cfg
    if not isinstance(d, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(d).__name__}")
    top = ["seed", *_SECTIONS]
    for key, value in d.items():
        if key == "seed":
            cfg.seed = _coerce(value, _field_types(RunConfig)["seed"], "seed")
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"config section {key!r} must be a mapping, got {value!r}")
            section = getattr(cfg, key)
            fields = _field_types(_SECTIONS[key])
            for k, v in value.items():
                if k not in fields:
                    raise _unknown(k, list(fields), f"{key}.")
                setattr(section, k, _coerce(v, fields[k], f"{key}.{k}"))
        else:
            raise _unknown(key, top, "")
    return cfg


def parse_override(text: str) -> dict[str, Any]:
    """``"train.lr=0.1"`` -> ``{"train": {"lr": 0.1}}`` (values parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"an override must look like section.key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse the value of override {text!r}: {exc}") from None
    parts = key.strip().split(".")
    if parts == ["seed"]:
        return {"seed": value}
    if len(parts) != 2:
        raise ConfigError(
            f"an override key must be 'seed' or 'section.key' with section one of "
            f"{', '.join(_SECTIONS)}, got {key!r}"
        )
    return {parts[0]: {parts[1]: value}}


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            return tomllib.loads(text)
        return yaml.safe_load(text) or {}
    except Exception as exc:
        raise ConfigError(f"cannot parse config file {str(path)!r}: {exc}") from None


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    """A config from an optional file plus ``section.key=value`` overrides, validated."""
    cfg = config_from_dict(read_config_file(path)) if path is not None else RunConfig()
    for o in overrides:
        cfg = config_from_dict(parse_override(o), cfg)
    return cfg.validate()


def _validate(cfg: RunConfig) -> None:
    t, d, m = cfg.train, cfg.data, cfg.model

    def positive(name: str, value: float) -> None:
        if not value > 0:
            raise ConfigError(f"{name} must be > 0, got {value}")

    def non_negative(name: str, value: float) -> None:
        if not value >= 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")

    positive("train.lr", t.lr)
    positive("train.epochs", t.epochs)
    positive("train.batch_size", t.batch_size)
    non_negative("train.momentum", t.momentum)
    non_negative("train.weight_decay", t.weight_decay)
    non_negative("train.warmup_epochs", t.warmup_epochs)
    positive("train.log_every", t.log_every)
    non_negative("train.eval_every", t.eval_every)
    positive("train.gamma", t.gamma)
    if t.optimizer not in ("sgd", "adam"):
        raise ConfigError(f"train.optimizer must be 'sgd' or 'adam', got {t.optimizer!r}")
    if t.schedule not in ("constant", "step", "cosine"):
        raise ConfigError(
            f"train.schedule must be 'constant', 'step' or 'cosine', got {t.schedule!r}"
        )
    if t.nesterov and (t.optimizer != "sgd" or t.momentum == 0):
        raise ConfigError("train.nesterov needs optimizer 'sgd' with momentum > 0")
    if len(t.betas) != 2 or not all(0 <= b < 1 for b in t.betas):
        raise ConfigError(f"train.betas must be two numbers in [0, 1), got {t.betas}")
    if any(e < 1 or e > t.epochs for e in t.save_epochs):
        raise ConfigError(f"train.save_epochs must lie in 1..{t.epochs}, got {t.save_epochs}")
    from randlabels.data.registry import DATASET_NAMES
    from randlabels.models import MODEL_NAMES

    if m.name not in MODEL_NAMES:
        raise ConfigError(
            f"model.name: unknown model {m.name!r}; expected one of: {', '.join(MODEL_NAMES)}"
        )
    datasets = (*DATASET_NAMES, "imagenet")
    if d.dataset not in datasets:
        raise ConfigError(
            f"data.dataset: unknown dataset {d.dataset!r}; expected one of: {', '.join(datasets)}"
        )
    positive("model.width", m.width)
    positive("model.init_scale", m.init_scale)
    if m.first_layer_std is not None:
        positive("model.first_layer_std", m.first_layer_std)
    if d.splits is not None:
        if not d.splits or any(s <= 0 for s in d.splits):
            raise ConfigError(f"data.splits must be positive sizes, got {d.splits}")
        if not 0 <= d.split < len(d.splits):
            raise ConfigError(
                f"data.split must index data.splits (0..{len(d.splits) - 1}), got {d.split}"
            )
    if d.n_train is not None:
        positive("data.n_train", d.n_train)
    if d.n_test is not None:
        non_negative("data.n_test", d.n_test)
    positive("data.n_samples", d.n_samples)
    from randlabels.data.labels import parse_label_regime

    try:
        parse_label_regime(d.labels)
    except ValueError as exc:
        raise ConfigError(f"data.labels: {exc}") from None


def config_to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
