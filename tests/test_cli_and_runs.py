"""End-to-end: `randlabels train` run directories, resume after SIGTERM, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from randlabels.cli import main
from randlabels.train.config import load_config
from randlabels.train.run import RunDirError, read_metrics, run_lock, run_training

GAUSS = [
    "data.dataset=gaussian10",
    "data.n_samples=512",
    "data.synthetic_test=256",
    "data.labels=random:10",
    "model.name=mlp",
    "model.widths=[64]",
    "model.init=lecun",
    "train.batch_size=64",
    "train.lr=0.05",
    "train.log_every=4",
]


def cli(*args: str) -> int:
    return main(["train", "--no-progress", *args])


def test_train_writes_a_complete_run_directory_and_a_rerun_does_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli("--out", str(out), *GAUSS, "train.epochs=3", "train.save_epochs=[2]") == 0
    for name in [
        "config.yaml",
        "env.json",
        "data.json",
        "labels.pt",
        "metrics.jsonl",
        "summary.json",
        "checkpoints/last.pt",
        "weights/init.pt",
        "weights/epoch_002.pt",
        "weights/final.pt",
    ]:
        assert (out / name).exists(), name
    env = json.loads((out / "env.json").read_text())
    assert env["torch"] == torch.__version__ and "git_commit" in env
    data = json.loads((out / "data.json").read_text())
    assert data["labels"] == "random:10" and data["n_train"] == 512
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 * 8 and summary["epochs"] == 3
    mtime = (out / "summary.json").stat().st_mtime_ns
    capsys.readouterr()
    assert cli("--out", str(out), *GAUSS, "train.epochs=3", "train.save_epochs=[2]") == 0
    assert "already finished" in capsys.readouterr().out
    assert (out / "summary.json").stat().st_mtime_ns == mtime


def test_fewer_random_classes_than_real_ones_trains_without_a_test_score(tmp_path):
    # random:3 gives a 3-way head; the test set's real labels (10 classes) cannot score it.
    out = tmp_path / "run"
    args = [a for a in GAUSS if not a.startswith("data.labels")]
    assert cli("--out", str(out), *args, "data.labels=random:3", "train.epochs=1") == 0
    data = json.loads((out / "data.json").read_text())
    assert data["num_classes"] == 3 and data["n_test"] == 0
    assert not any("test_acc" in line for line in read_metrics(out))


def test_a_directory_holding_another_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli("--out", str(out), *GAUSS, "train.epochs=1") == 0
    before = sorted(p.name for p in out.iterdir())
    assert cli("--out", str(out), *GAUSS, "train.epochs=1", "train.lr=0.1") == 2
    err = capsys.readouterr().err
    assert "different config" in err and "train.lr: 0.05 vs 0.1" in err
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_locked_run_directory_is_refused(tmp_path):
    cfg = load_config(None, [*GAUSS, "train.epochs=1"])
    out = tmp_path / "run"
    out.mkdir()
    with run_lock(out), pytest.raises(RunDirError, match="in use by another process"):
        run_training(cfg, out, progress=False)


def _run_cli(out: Path, extra: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "randlabels",
            "train",
            "--no-progress",
            "--out",
            str(out),
            *GAUSS,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_sigterm_then_rerun_ends_exactly_like_an_uninterrupted_run(tmp_path):
    extra = ["data.n_samples=2048", "model.widths=[256,256]", "train.epochs=40"]
    ref = _run_cli(tmp_path / "ref", extra)
    assert ref.wait(timeout=300) == 0, ref.stderr.read()

    out = tmp_path / "killed"
    proc = _run_cli(out, extra)
    deadline = time.time() + 120
    # Wait until training is well under way but not finished, then SIGTERM it.
    while time.time() < deadline:
        metrics = out / "metrics.jsonl"
        if metrics.exists() and metrics.read_text().count("\n") >= 60:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    stderr = proc.stderr.read()
    assert code == 130, stderr
    assert "interrupted at step" in stderr and "again to resume" in stderr
    assert not (out / "summary.json").exists()
    stopped_at = torch.load(out / "checkpoints/last.pt", weights_only=False)["step"]
    assert 0 < stopped_at < 40 * 32

    again = _run_cli(out, extra)
    assert again.wait(timeout=300) == 0, again.stderr.read()
    ref_w = torch.load(tmp_path / "ref/weights/final.pt")
    res_w = torch.load(out / "weights/final.pt")
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)

    def strip(lines):
        return [{k: v for k, v in x.items() if k != "images_per_s"} for x in lines]

    assert strip(read_metrics(out)) == strip(read_metrics(tmp_path / "ref"))


@pytest.mark.parametrize(
    "args,message",
    [
        (["model.name=vgg99"], "vgg99.*mlp.*simple_cnn"),
        (["data.dataset=cifar11"], "cifar11.*cifar10"),
        (["train.lr=-0.1"], "train.lr must be > 0"),
        (["train.lrate=0.1"], "unknown config key train.'lrate'"),
        (["data.splits=[400,200]"], "add up to 600 but the training pool has only 512"),
        (["data.n_train=1000"], "data.n_train is 1000 but the training set has only 512"),
        (
            ["data.splits=[200,200]", "data.split=1", "data.n_train=300"],
            r"data.n_train is 300 but the training set \(split 1\) has only 200",
        ),
    ],
)
def test_bad_input_is_reported_and_leaves_no_run_behind(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert cli("--out", str(out), *GAUSS, "train.epochs=1", *args) == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)
    assert not out.exists()  # nothing half-made is left behind


def test_missing_dataset_says_where_it_looked(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = cli(
        "--out",
        str(tmp_path / "run"),
        "data.dataset=cifar10",
        f"data.data_dir={empty}",
        "data.download=false",
    )
    assert code == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "randlabels data prepare cifar10" in err


def test_unwritable_output_directory_is_reported(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert cli("--out", str(blocker / "run"), *GAUSS) == 2
    assert "cannot create output directory" in capsys.readouterr().err


def test_non_finite_loss_stops_with_a_clear_message(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli("--out", str(out), *GAUSS, "train.epochs=3", "train.lr=1e12") == 3
    err = capsys.readouterr().err
    assert "training loss became" in err and "lower learning rate" in err
    assert not (out / "summary.json").exists()


@pytest.mark.cifar
def test_random_label_training_moves_a_small_first_layer_on_cifar10(cifar10_cached, tmp_path):
    """SPEC 4, init_scale: with first-layer std 0.002 the first layer visibly learns."""
    dataset, _ = cifar10_cached
    cfg = load_config(
        Path(__file__).parents[1] / "configs/simple_cnn_random.yaml",
        ["data.n_train=1024", "data.n_test=500", "train.epochs=2", "model.widths=[64,32]"],
    )
    summary = run_training(cfg, tmp_path / "run", dataset=dataset, progress=False)
    init = torch.load(tmp_path / "run/weights/init.pt")["conv.weight"]
    final = torch.load(tmp_path / "run/weights/final.pt")["conv.weight"]
    assert init.std().item() == pytest.approx(0.002, rel=0.1)
    assert (final - init).norm() > 0.25 * init.norm()  # measured: 0.44 after these 8 steps
    assert summary["data"]["n_train"] == 1024 and summary["data"]["labels"] == "random:10"
    labels = torch.load(tmp_path / "run/labels.pt")
    assert len(set(dataset.train_y[labels["indices"]].tolist())) == 10  # not one class
