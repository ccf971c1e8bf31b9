"""Label regimes, disjoint splits, the on-device batch loader and config handling."""

from __future__ import annotations

import pytest
import torch

from randlabels.data.dataset import DataError
from randlabels.data.labels import apply_label_regime, check_disjoint, disjoint_splits
from randlabels.data.loader import TensorLoader, crop_and_flip
from randlabels.train.config import ConfigError, load_config


# ------------------------------------------------------------------ labels
def test_random_labels_are_fixed_by_the_seed_and_independent_of_real_labels():
    real = torch.arange(10_000) % 10
    a, k = apply_label_regime(real, "random:7", 10, seed=3)
    b, _ = apply_label_regime(real, "random:7", 10, seed=3)
    c, _ = apply_label_regime(real, "random:7", 10, seed=4)
    assert k == 7 and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() == 0 and a.max() == 6
    assert abs((a == real).float().mean().item() - 1 / 10 * 1) < 0.03  # chance agreement


def test_corrupted_labels_replace_exactly_the_requested_fraction():
    real = torch.zeros(1000, dtype=torch.int64)
    labels, k = apply_label_regime(real, "corrupt:0.3", 10, seed=0)
    changed = (labels != real).sum().item()
    # 300 examples get a uniform label; about a tenth of them keep label 0 by chance.
    assert k == 10 and 230 <= changed <= 300
    same, _ = apply_label_regime(real, "real", 10, seed=0)
    assert torch.equal(same, real)


@pytest.mark.parametrize(
    "bad", ["random", "random:0", "random:x", "corrupt:1.5", "fake", "corrupt:-0.1"]
)
def test_bad_label_regimes_say_what_is_expected(bad):
    with pytest.raises(DataError, match="expected 'real', 'random:K'"):
        apply_label_regime(torch.zeros(3, dtype=torch.int64), bad, 10, 0)


def test_splits_are_disjoint_reproducible_and_checked():
    a, b = disjoint_splits(50_000, [20_000, 25_000], seed=0)
    assert len(a) == 20_000 and len(b) == 25_000
    assert len(set(a.tolist()) & set(b.tolist())) == 0
    a2, _ = disjoint_splits(50_000, [20_000, 25_000], seed=0)
    assert torch.equal(a, a2)
    with pytest.raises(DataError, match="add up to 60000 but the training pool has only 50000"):
        disjoint_splits(50_000, [30_000, 30_000], seed=0)
    with pytest.raises(DataError, match="overlap"):
        check_disjoint([torch.tensor([1, 2, 3]), torch.tensor([3, 4])])


# ------------------------------------------------------------------ loader
def test_loader_standardizes_and_covers_every_example_once_per_epoch():
    x = torch.randint(0, 256, (100, 3, 4, 4), dtype=torch.uint8)
    y = torch.arange(100)
    mean, std = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.25, 2.0])
    loader = TensorLoader(x, y, batch_size=32, mean=mean, std=std, seed=1)
    assert len(loader) == 4
    seen = torch.cat([yb for _, yb in loader.batches(epoch=0)])
    assert sorted(seen.tolist()) == list(range(100))
    xb, yb = next(loader.batches(epoch=0))
    expected = (x[yb].double() / 255 - mean.double()[:, None, None]) / std.double()[:, None, None]
    assert torch.allclose(xb.double(), expected, atol=1e-5)
    order0 = torch.cat([yb for _, yb in loader.batches(epoch=0)])
    order1 = torch.cat([yb for _, yb in loader.batches(epoch=1)])
    assert torch.equal(order0, seen) and not torch.equal(order0, order1)


def test_loader_resumes_mid_epoch_with_identical_batches():
    x = torch.randint(0, 256, (70, 3, 8, 8), dtype=torch.uint8)
    loader = TensorLoader(x, torch.arange(70), batch_size=16, augment=True, seed=5)
    full = list(loader.batches(epoch=3))
    tail = list(loader.batches(epoch=3, start=2))
    for (xa, ya), (xb, yb) in zip(full[2:], tail):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_batch_crop_and_flip_equal_per_image_crop_and_flip():
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    dy, dx = torch.tensor([0, 8, 4, 1, 7, 3]), torch.tensor([8, 0, 4, 2, 5, 6])
    flip = torch.tensor([True, False, True, False, True, False])
    out = crop_and_flip(x, dy, dx, flip, pad=4)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(6):
        ref = padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
        assert torch.equal(out[i], ref.flip(-1) if flip[i] else ref)


def test_loader_rejects_bad_input():
    x = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(DataError, match="4 inputs but 3 labels"):
        TensorLoader(x, torch.zeros(3), batch_size=2)
    with pytest.raises(DataError, match="augmentation needs images"):
        TensorLoader(torch.zeros(4, 5), torch.zeros(4), batch_size=2, augment=True)
    with pytest.raises(DataError, match="std must be positive"):
        TensorLoader(x, torch.zeros(4), batch_size=2, mean=torch.zeros(3), std=torch.zeros(3))


# ------------------------------------------------------------------ config
def test_config_file_plus_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 3\nmodel:\n  name: vgg11\ntrain:\n  lr: 0.1\n")
    cfg = load_config(path, ["train.lr=0.02", "data.labels=random:10", "model.widths=[64, 32]"])
    assert cfg.seed == 3 and cfg.model.name == "vgg11" and cfg.train.lr == 0.02
    assert cfg.data.labels == "random:10" and cfg.model.widths == [64, 32]
    toml = tmp_path / "c.toml"
    toml.write_text("[train]\nepochs = 4\n")
    assert load_config(toml).train.epochs == 4


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.lrr=0.1", r"unknown config key train.'lrr' \(did you mean 'lr'\?\); valid keys:"),
        ("optim.lr=0.1", "unknown config key 'optim'"),
        ("train.lr=-0.1", r"train.lr must be > 0, got -0.1"),
        ("train.epochs=1.5", "train.epochs expects an integer, got 1.5"),
        ("train.optimizer=rmsprop", "train.optimizer must be 'sgd' or 'adam'"),
        ("data.splits=[20000,-5]", "data.splits must be positive sizes"),
        ("data.labels=random:0", "data.labels"),
        ("train.save_epochs=[99]", r"train.save_epochs must lie in 1..10"),
        ("lr", "section.key=value"),
    ],
)
def test_bad_config_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
