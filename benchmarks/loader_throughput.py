"""Training throughput: randlabels' trainer vs a plain DataLoader loop.

Both train the same model with the same optimizer, batch size and augmentation
(random crop with padding 4, horizontal flip) for the same number of steps:

  * trainer:  the dataset is one uint8 tensor on the device; crop, flip and
              standardization run on whole batches (randlabels.data.loader).
  * baseline: a torch.utils.data.Dataset that transforms each sample (pad, crop,
              flip, to float, normalize), batched by torch.utils.data.DataLoader,
              with num_workers 0 and 2 (the better one is the baseline).
  * for transparency, the baseline loop again with the trainer's channels-last
    memory layout, which separates the layout's gain from the data path's.

Prints images/s of each and the ratio trainer / best baseline, measured in this
run. Run it on a quiet machine:

    python benchmarks/loader_throughput.py                 # simple_cnn, batch 256
    python benchmarks/loader_throughput.py --model vgg_small --steps 30
    python benchmarks/loader_throughput.py --data-dir ../shared/data   # real CIFAR-10
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from randlabels.data.loader import TensorLoader
from randlabels.models import create_model
from randlabels.train.config import OptimConfig
from randlabels.train.trainer import Trainer

MEAN = torch.tensor([0.4914, 0.4822, 0.4465])
STD = torch.tensor([0.2470, 0.2435, 0.2616])


class PerSampleCifar(torch.utils.data.Dataset):
    """The usual per-sample pipeline: pad 4, random 32x32 crop, random flip, normalize."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.mean = MEAN[:, None, None]
        self.std = STD[:, None, None]

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int):
        img = F.pad(self.x[i], (4, 4, 4, 4))
        top, left = torch.randint(0, 9, (2,)).tolist()
        img = img[:, top : top + 32, left : left + 32]
        if torch.rand(()) < 0.5:
            img = img.flip(-1)
        img = (img.float() / 255 - self.mean) / self.std
        return img, self.y[i]


def load_images(args) -> tuple[torch.Tensor, torch.Tensor, str]:
    n = args.steps * args.batch_size
    if args.data_dir:
        from randlabels.data.registry import load_dataset

        ds = load_dataset("cifar10", args.data_dir)
        return ds.train_x[:n].contiguous(), ds.train_y[:n], "CIFAR-10 from " + args.data_dir
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return x, torch.randint(0, 10, (n,), generator=g), "random uint8 images (speed only)"


def make_model(args) -> torch.nn.Module:
    return create_model(args.model, num_classes=10, seed=0, first_layer_std=0.002)


def time_trainer(args, x, y) -> float:
    model = make_model(args).to(memory_format=torch.channels_last)
    loader = TensorLoader(
        x,
        y,
        batch_size=args.batch_size,
        augment=True,
        mean=MEAN,
        std=STD,
        seed=0,
        drop_last=True,
        channels_last=True,
    )
    cfg = OptimConfig(epochs=1, batch_size=args.batch_size, lr=0.01, momentum=0.9, log_every=10**9)
    trainer = Trainer(model, loader, cfg, progress=False)
    _warm_up(model, x, args)
    t0 = time.perf_counter()
    trainer.fit()
    return (len(loader) * args.batch_size) / (time.perf_counter() - t0)


def time_dataloader(args, x, y, workers: int, channels_last: bool = False) -> float:
    model = make_model(args)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    dl = torch.utils.data.DataLoader(
        PerSampleCifar(x, y),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=False,
    )
    _warm_up(model, x, args)
    model.train()
    t0 = time.perf_counter()
    n = 0
    for xb, yb in dl:
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += yb.shape[0]
    return n / (time.perf_counter() - t0)


def _warm_up(model, x, args) -> None:
    xb = (x[: args.batch_size].float() / 255 - MEAN[:, None, None]) / STD[:, None, None]
    for _ in range(2):
        model(xb).sum().backward()
    model.zero_grad(set_to_none=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="simple_cnn")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per measurement")
    p.add_argument("--repeats", type=int, default=3, help="best of this many measurements")
    p.add_argument("--data-dir", help="read CIFAR-10 from here instead of random images")
    args = p.parse_args()
    x, y, what = load_images(args)
    print(
        f"model {args.model}, batch {args.batch_size}, {args.steps} steps, "
        f"{torch.get_num_threads()} threads, data: {what}"
    )
    results: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, fn in [
            ("trainer (batch-level, on device)", lambda: time_trainer(args, x, y)),
            ("DataLoader, per-sample, 0 workers", lambda: time_dataloader(args, x, y, 0)),
            ("DataLoader, per-sample, 2 workers", lambda: time_dataloader(args, x, y, 2)),
            ("same, 0 workers, channels-last model", lambda: time_dataloader(args, x, y, 0, True)),
        ]:
            results[name] = max(results.get(name, 0.0), fn())
    for name, ips in results.items():
        print(f"  {name:36s} {ips:9.1f} images/s")
    trainer_ips = results["trainer (batch-level, on device)"]
    best = max(v for k, v in results.items() if k.startswith("DataLoader"))
    print(f"ratio trainer / best plain DataLoader loop: {trainer_ips / best:.2f}x (target >= 1.2x)")
    cl = results["same, 0 workers, channels-last model"]
    print(
        f"ratio trainer / DataLoader loop given the trainer's channels-last layout: "
        f"{trainer_ips / cl:.2f}x (the share of the batch-level data path alone)"
    )


if __name__ == "__main__":
    main()
