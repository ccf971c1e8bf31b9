"""Building downstream models from pre-trained runs (SPEC E1, E5, E6 transfer variants)."""

from __future__ import annotations

import pytest
import torch

from randlabels.models import create_model
from randlabels.train.config import load_config
from randlabels.train.run import run_training
from randlabels.transfer.pipeline import TransferError, apply_transfer_, transfer_keys

GAUSS = [
    "data.dataset=gaussian10",
    "data.n_samples=256",
    "data.synthetic_test=0",
    "data.labels=random:10",
    "model.name=mlp",
    "model.widths=[32,16]",
    "train.epochs=2",
    "train.batch_size=64",
    "train.lr=0.1",
]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre")
    dirs = []
    for seed in (0, 1):
        cfg = load_config(None, [*GAUSS, f"seed={seed}"])
        run_training(cfg, root / f"s{seed}", progress=False)
        dirs.append(root / f"s{seed}")
    return dirs


def downstream(seed=5):
    return create_model(
        "mlp", in_channels=10, input_size=1, widths=[32, 16], num_classes=3, seed=seed
    )


def test_transfer_keys_follow_forward_order_and_never_include_the_head():
    vgg = create_model("vgg_small", width=0.25, batch_norm=True, seed=0)
    keys, names = transfer_keys(vgg, 1)
    assert names == ["features.0"]
    assert "features.0.weight" in keys and "features.1.running_mean" in keys  # its BatchNorm
    assert not any(k.startswith("features.4") for k in keys)
    keys_all, names_all = transfer_keys(vgg)
    assert len(names_all) == 4 and not any(k.startswith("head") for k in keys_all)
    with pytest.raises(TransferError, match="m=9 but the model has 4 transferable layers"):
        transfer_keys(vgg, 9)


def test_variants_share_the_untransferred_layers_with_scratch(pretrained):
    scratch = downstream()
    apply_transfer_(scratch, "scratch")
    final = torch.load(pretrained[0] / "weights/final.pt")
    for mode in ("pretrained", "rescaled", "covariance"):
        model = downstream()
        info = apply_transfer_(
            model, mode, pretrained, m=1, generator=torch.Generator().manual_seed(0)
        )
        assert info["layers"] == ["features.0"]
        s, t = scratch.state_dict(), model.state_dict()
        first = info["layers"][0]
        for k in s:
            if not k.startswith(first + "."):
                assert torch.equal(s[k], t[k]), (mode, k)  # paired with scratch
        w = t[f"{first}.weight"]
        if mode == "pretrained":
            assert torch.equal(w, final[f"{first}.weight"])
        if mode == "rescaled":
            init = torch.load(pretrained[0] / "weights/init.pt")[f"{first}.weight"]
            assert w.norm().item() == pytest.approx(init.norm().item(), rel=1e-5)
        if mode == "covariance":
            assert info["samples"][first] == 64  # 32 filters x 2 pooled runs


def test_bad_transfers_are_explained(pretrained, tmp_path):
    wider = create_model("mlp", in_channels=10, input_size=1, widths=[64, 16], num_classes=3)
    with pytest.raises(TransferError, match="does not match: pre-trained"):
        apply_transfer_(wider, "pretrained", pretrained)
    unfinished = tmp_path / "unfinished"
    (unfinished / "weights").mkdir(parents=True)
    with pytest.raises(TransferError, match="has not finished"):
        apply_transfer_(downstream(), "rescaled", [unfinished])
    with pytest.raises(TransferError, match="unknown transfer mode"):
        apply_transfer_(downstream(), "magic", pretrained)


def test_transfer_command_trains_downstream_and_records_what_it_transferred(
    pretrained, tmp_path, capsys
):
    import json

    from randlabels.cli import main

    down = [*GAUSS, "seed=7", "data.labels=real"]
    out = tmp_path / "down"
    args = [
        "transfer",
        "--no-progress",
        "--from",
        str(pretrained[0]),
        "--mode",
        "rescaled",
        "--layers",
        "1",
        "--out",
        str(out),
        *down,
    ]
    assert main(args) == 0
    info = json.loads((out / "transfer.json").read_text())
    assert info["mode"] == "rescaled" and info["layers"] == ["features.0"]
    assert (out / "summary.json").exists()
    assert main(args) == 0 and "already finished" in capsys.readouterr().out
    bad = [
        "transfer",
        "--no-progress",
        "--from",
        str(tmp_path / "nowhere"),
        "--mode",
        "pretrained",
        "--out",
        str(tmp_path / "x"),
        *down,
    ]
    assert main(bad) == 2
    assert "has not finished" in capsys.readouterr().err


def test_covariance_init_of_deeper_layers_follows_their_new_inputs(tmp_path):
    from randlabels.transfer.pipeline import covariance_init_layers_

    cnn = [
        "data.dataset=cifar10",
        "data.labels=random:10",
        "model.name=vgg_small",
        "model.width=0.25",
        "train.epochs=1",
        "train.batch_size=32",
    ]
    from randlabels.data.dataset import ArrayDataset

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(96, 3, 16, 16, generator=g) * 255).to(torch.uint8)
    ds = ArrayDataset(
        "t", x, torch.randint(0, 10, (96,), generator=g), None, None, [str(i) for i in range(10)]
    )
    runs = []
    for seed in (0, 1):
        run_training(
            load_config(None, [*cnn, f"seed={seed}"]),
            tmp_path / f"s{seed}",
            dataset=ds,
            progress=False,
        )
        runs.append(tmp_path / f"s{seed}")
    model = create_model("vgg_small", width=0.25, input_size=16, seed=3)
    probe = torch.randn(64, 3, 16, 16, generator=g)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    info = covariance_init_layers_(model, runs, 2, probe, generator=g)
    assert info["layers"] == ["features.0", "features.3"]
    after = model.state_dict()
    assert not torch.equal(before["features.3.weight"], after["features.3.weight"])
    assert torch.equal(before["features.6.weight"], after["features.6.weight"])  # m=2 only
    # Pre-trained weights were rescaled to their initial norm before f was measured, so
    # the new filters keep about the scale of a fresh initialization.
    ratio = (after["features.3.weight"].std() / before["features.3.weight"].std()).item()
    assert 0.5 < ratio < 2.0
