"""Speed and float64 accuracy of randlabels.analysis.patch_covariance, measured in one run.

Case 1, first layer: 3x3 patches of 50,000 standardized 32x32x3 images (45M
patches, d = 27). patch_covariance against the straightforward chunked float64
reference (F.unfold of a chunk, converted to float64, X^T X accumulated).
Target: >= 5x faster, relative Frobenius error <= 1e-6 against the reference.

Case 2, deep layer: 3x3 patches of the input of a VGG conv layer with 256
channels at 8x8 (10,000 images, 360,000 patches, d = 2304). Achieved FLOP/s,
counting n * d^2 FLOPs (a symmetric rank-n update: 2 * n * d * d / 2), as a
fraction of this machine's float32 rate on a 4096x4096 matrix product measured
in the same run. Target: >= 50%. The relative error against the float64
reference is reported for the first 200 images (7,200 patches).

Random float32 data by default (speed does not depend on content; the deep case
uses ReLU(N(0, 1)) activations in channels-last layout, as a channels-last model
produces them). Run it on a quiet machine: with another process busy on the same
cores, multi-threaded torch ops slow down by 10x or more and the ratios are noise.

    python benchmarks/patch_covariance.py                          # both cases
    python benchmarks/patch_covariance.py --data-dir ../shared/data   # real CIFAR-10
    python benchmarks/patch_covariance.py --case deep --deep-images 2000
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import randlabels  # noqa: F401  (before any allocation: enables huge pages)
from randlabels.analysis import patch_covariance


def first_layer_images(args) -> tuple[torch.Tensor, str]:
    n = args.images
    if args.data_dir:
        from randlabels.data.registry import channel_stats, load_dataset

        ds = load_dataset("cifar10", args.data_dir)
        raw = ds.train_x[:n]
        mean, std = channel_stats(raw)
        x = torch.empty(raw.shape, dtype=torch.float32)
        scale = (1 / (255 * std)).float()[None, :, None, None]
        shift = (-mean / std).float()[None, :, None, None]
        for i in range(0, raw.shape[0], 4096):
            torch.addcmul(shift, raw[i : i + 4096].float(), scale, out=x[i : i + 4096])
        return x, f"{x.shape[0]} standardized CIFAR-10 training images from {args.data_dir}"
    x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return x, f"{n} random float32 images 3x32x32"


def reference(x: torch.Tensor, k: int, chunk: int = 64) -> torch.Tensor:
    """Centered covariance from float64 patch matrices, chunk by chunk.

    64 images per chunk was the reference's fastest setting on the 2-core development
    machine (16: 1.16 s, 32: 0.92 s, 64: 0.87 s, 128: 1.09 s, 256: 1.63 s per 5,000 images).
    """
    d = x.shape[1] * k * k
    gram = torch.zeros(d, d, dtype=torch.float64)
    total = torch.zeros(d, dtype=torch.float64)
    n = 0
    for i in range(0, x.shape[0], chunk):
        u = F.unfold(x[i : i + chunk], k).transpose(1, 2).reshape(-1, d).double()
        gram += u.T @ u
        total += u.sum(0)
        n += u.shape[0]
    return (gram - torch.outer(total, total) / n) / (n - 1)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def case_first(args) -> bool:
    x, what = first_layer_images(args)
    n_patches = x.shape[0] * 30 * 30
    print(f"case 1: {what}; {n_patches / 1e6:.1f}M 3x3 patches, d=27")
    patch_covariance(x[:256], 3)  # warm up both paths
    reference(x[:256], 3)
    t_ref, c_ref = timed(lambda: reference(x, 3), args.repeats)
    t_fast, c_fast = timed(lambda: patch_covariance(x, 3).cov, args.repeats)
    err = rel_err(c_fast, c_ref)
    print(f"  reference (unfold + float64 X^T X): {t_ref:.2f} s")
    print(f"  patch_covariance:                   {t_fast:.2f} s")
    ok = t_ref / t_fast >= 5 and err <= 1e-6
    print(
        f"SUMMARY first layer: speedup {t_ref / t_fast:.1f}x (target >= 5x), relative error "
        f"{err:.1e} (target <= 1e-6): {'MET' if ok else 'NOT MET'}"
    )
    return ok


def matmul_rate(size: int = 4096, repeats: int = 3) -> float:
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    t, _ = timed(lambda: torch.mm(a, b, out=out), repeats)
    return 2 * size**3 / t


def case_deep(args) -> bool:
    n, c, s, k = args.deep_images, 256, 8, 3
    gen = torch.Generator().manual_seed(0)
    acts = torch.empty(n, s, s, c)
    for i in range(0, n, 1000):
        acts[i : i + 1000] = torch.randn(acts[i : i + 1000].shape, generator=gen).relu_()
    acts = acts.permute(0, 3, 1, 2)  # [n, C, 8, 8] in channels-last memory layout
    d, n_patches = c * k * k, n * (s - k + 1) ** 2
    flops = n_patches * d * d
    print(f"case 2: {n} ReLU activations 256x8x8 (channels-last); {n_patches} patches, d={d}")
    rate = matmul_rate()
    patch_covariance(acts[:64], k)  # warm up
    t, cov = timed(lambda: patch_covariance(acts, k).cov, args.repeats)
    sub = acts[:200]
    err = rel_err(patch_covariance(sub, k).cov, reference(sub, k, chunk=50))
    frac = flops / t / rate
    print(f"  4096x4096 float32 matmul: {rate / 1e9:.1f} GFLOP/s")
    print(
        f"  patch_covariance: {t:.2f} s, {flops / t / 1e9:.1f} GFLOP/s counting n*d^2 = "
        f"{flops:.3g} FLOPs"
    )
    ok = frac >= 0.5
    print(
        f"SUMMARY deep layer: {frac:.0%} of the matmul rate (target >= 50%): "
        f"{'MET' if ok else 'NOT MET'}; relative error against float64 on 200 images {err:.1e}"
    )
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--case", choices=["first", "deep", "both"], default="both")
    p.add_argument("--images", type=int, default=50_000, help="case 1 images")
    p.add_argument("--deep-images", type=int, default=10_000, help="case 2 images")
    p.add_argument("--repeats", type=int, default=1, help="best of this many timings")
    p.add_argument("--data-dir", help="case 1 on real CIFAR-10 read from here")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.case in ("first", "both"):
        case_first(args)
    if args.case in ("deep", "both"):
        case_deep(args)


if __name__ == "__main__":
    main()
