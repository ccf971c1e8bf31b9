"""The ImageNet path: image folders of any size, decoded and resized while training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from randlabels.data.imagefolder import ImageFolderStream
from randlabels.data.loader import StreamingLoader
from randlabels.train.config import load_config
from randlabels.train.run import read_metrics, run_training


def make_folder(root, n_per_class=6, classes=("n01", "n02", "n03")):
    rng = np.random.default_rng(0)
    for split, n in (("train", n_per_class), ("val", 2)):
        for c, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                h, w = rng.integers(40, 90, size=2)  # every image a different size
                arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                arr[..., c] = 255  # a class-dependent colour, so real labels are learnable
                Image.fromarray(arr).save(root / split / cls / f"{i:03d}.JPEG", format="PNG")
    return root


def test_streaming_loader_batches_are_resumable_and_labelled_by_the_loader(tmp_path):
    ds = ImageFolderStream(make_folder(tmp_path / "inet"), "train", size=32)
    idx = torch.tensor([0, 3, 5, 7, 9, 11, 13, 17])
    labels = torch.arange(8) + 100  # loader labels, e.g. random ones, not the folder's
    loader = StreamingLoader(ds, idx, labels, batch_size=3, augment=True, seed=1)
    assert len(loader) == 3
    full = list(loader.batches(epoch=2))
    tail = list(loader.batches(epoch=2, start=1))
    for (xa, ya), (xb, yb) in zip(full[1:], tail):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert sorted(torch.cat([y for _, y in full]).tolist()) == list(range(100, 108))
    assert full[0][0].shape == (3, 3, 32, 32)


def test_train_on_a_streamed_image_folder(tmp_path):
    root = make_folder(tmp_path / "inet")
    cfg = load_config(
        None,
        [
            "data.dataset=imagenet",
            f"data.source={root}",
            "data.image_size=32",
            "data.workers=0",
            "data.labels=random:3",
            "model.name=vgg_small",
            "model.width=0.25",
            "train.epochs=2",
            "train.batch_size=4",
            "train.lr=0.01",
        ],
    )
    summary = run_training(cfg, tmp_path / "run", progress=False)
    assert summary["data"]["n_train"] == 18 and summary["data"]["n_test"] == 6
    assert summary["data"]["num_classes"] == 3
    lines = read_metrics(tmp_path / "run")
    assert "test_acc" in lines[-1] and lines[-1]["step"] == 2 * 5


def test_streamed_random_labels_with_other_class_count_skip_the_test_set(tmp_path):
    # 5 random classes against 3 real ones: the real-label val set cannot score the head.
    root = make_folder(tmp_path / "inet")
    cfg = load_config(None, ["data.dataset=imagenet", f"data.source={root}",
                             "data.image_size=32", "data.workers=0", "data.labels=random:5",
                             "model.name=vgg_small", "model.width=0.25", "train.epochs=1",
                             "train.batch_size=4"])  # fmt: skip
    summary = run_training(cfg, tmp_path / "run", progress=False)
    assert summary["data"]["num_classes"] == 5 and summary["data"]["n_test"] == 0
    assert not any("test_acc" in line for line in read_metrics(tmp_path / "run"))


def test_missing_streamed_folder_is_named(tmp_path):
    cfg = load_config(None, ["data.dataset=imagenet", f"data.source={tmp_path / 'nope'}"])
    with pytest.raises(FileNotFoundError, match="ILSVRC-2012 layout"):
        run_training(cfg, tmp_path / "run", progress=False)
