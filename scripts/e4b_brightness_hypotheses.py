"""Diagnostic for SPEC E4b's open question: why does our f not fall back at the largest
data eigenvalue (lambda ~ 20, the mean-brightness direction of a 3x3 patch) as the
paper's Figure 4 does?

Trains the quick-profile simple CNN (64 first-layer filters, first-layer std 0.002,
2,000 CIFAR-10 images, 10 random classes, SGD lr 0.01 momentum 0.9, batch 256,
24 epochs, 2 seeds) under variants and prints f at lambda_1 against the next
eigen-directions:

    python scripts/e4b_brightness_hypotheses.py --data-dir ../shared/data

Measured 2026-12-04 (2 CPU cores, ~1.5 min per variant): f peaked at lambda_1 in all:
    per-channel standardization (baseline)  f(l1)=0.154, f(l2..l4)=0.071-0.075
    per-image standardization               f(l1)=0.187, f(l2..l4)=0.090-0.097
    no bias in the first conv layer         f(l1)=0.150, f(l2..l4)=0.074-0.078
    weight decay 5e-4                       f(l1)=0.158, f(l2..l4)=0.071-0.075
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from randlabels.analysis import eigenvalue_function, patch_covariance, weight_covariance
from randlabels.data.registry import channel_stats, load_dataset
from randlabels.models import create_model


def train_f(data, y, sx, seeds=2, no_bias=False, weight_decay=0.0, epochs=24):
    fs = []
    for seed in range(seeds):
        m = create_model("simple_cnn", widths=[64, 64], first_layer_std=0.002, seed=seed)
        if no_bias:
            m.conv.bias.data.zero_()
            m.conv.bias.requires_grad_(False)
        params = [p for p in m.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=weight_decay)
        torch.manual_seed(seed)
        for _ in range(epochs):
            perm = torch.randperm(data.shape[0])
            for b in range(0, data.shape[0], 256):
                i = perm[b : b + 256]
                loss = F.cross_entropy(m(data[i]), y[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
        lam, f = eigenvalue_function(weight_covariance(m.conv.weight.detach()), sx)
        fs.append(f)
    return lam, torch.stack(fs).mean(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--n", type=int, default=2000)
    args = p.parse_args()
    ds = load_dataset("cifar10", args.data_dir, progress=False)
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(ds.train_x.shape[0], generator=g)[: args.n]
    x = ds.train_x[idx].float() / 255
    y = torch.randint(0, 10, (args.n,), generator=g)
    mean, std = channel_stats(ds.train_x)
    per_channel = (x - mean.float()[None, :, None, None]) / std.float()[None, :, None, None]
    flat = x.reshape(args.n, -1)
    per_image = ((flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True)).reshape(x.shape)
    variants = [
        ("per-channel (baseline)", per_channel, {}),
        ("per-image standardization", per_image, {}),
        ("no first-layer bias", per_channel, {"no_bias": True}),
        ("weight decay 5e-4", per_channel, {"weight_decay": 5e-4}),
    ]
    for name, data, kw in variants:
        sx = patch_covariance(data, 3)
        lam, f = train_f(data, y, sx, **kw)
        print(
            f"{name:28s} lambda_1 {lam[0]:.2f} f(lambda_1) {f[0]:.4f}; peak at lambda "
            f"{lam[int(f.argmax())]:.3f}; f(lambda_2..4) {[round(v, 4) for v in f[1:4].tolist()]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
