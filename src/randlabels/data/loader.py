"""A batch loader that keeps the whole dataset as one tensor on the training device.

Augmentation (random crop with zero padding, horizontal flip) runs on whole
batches with a few tensor ops, as in airbench, instead of per sample in worker
processes. The order and every augmentation parameter of an epoch are a pure
function of ``(seed, epoch)``, so a run resumed in the middle of an epoch sees
exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from randlabels.data.dataset import DataError


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, stream)`` without collisions."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class TensorLoader:
    """Batches of a tensor dataset, standardized and optionally augmented on the device.

    Args:
        x: uint8 images ``[N, C, H, W]`` (pixel values 0..255) or float vectors ``[N, d]``.
        y: int64 labels ``[N]``.
        batch_size: examples per batch.
        shuffle: a new permutation every epoch (from ``seed`` and the epoch).
        augment: random crop (zero padding ``pad``) and horizontal flip; images only.
        mean, std: per-channel statistics in [0, 1] pixel units (images) or per-feature
            (vectors); the batch is returned as ``(x / 255 - mean) / std`` for images and
            ``(x - mean) / std`` for vectors. ``None`` leaves values as they are
            (images are still scaled to [0, 1]).
        device: where the data lives and batches are produced.
        drop_last: drop a final incomplete batch.
        channels_last: return image batches in channels-last memory layout (the
            logical shape stays ``[B, C, H, W]``). With a channels-last model this is
            2-3x faster for conv nets on CPU (benchmarks/loader_throughput.py).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool = True,
        augment: bool = False,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        drop_last: bool = False,
        pad: int = 4,
        channels_last: bool = False,
    ) -> None:
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{x.shape[0]} inputs but {y.shape[0]} labels")
        if x.shape[0] == 0:
            raise DataError("cannot build a loader over an empty dataset")
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        self.is_image = x.dim() == 4
        if augment and not self.is_image:
            raise DataError(f"augmentation needs images [N, C, H, W], got shape {tuple(x.shape)}")
        if self.is_image and x.dtype != torch.uint8:
            raise DataError(f"images must be uint8 [N, C, H, W], got dtype {x.dtype}")
        self.device = torch.device(device)
        # A "meta" x is a shape-only stand-in (StreamingLoader keeps pixels on disk).
        self.x = x if x.is_meta else x.to(self.device)
        self.y = y.to(self.device, torch.int64)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment
        self.seed = int(seed)
        self.drop_last = drop_last
        self.pad = int(pad)
        self.channels_last = channels_last and self.is_image
        self.scale, self.shift = self._affine(mean, std)

    def _affine(self, mean, std) -> tuple[torch.Tensor, torch.Tensor]:
        # Standardization folded into one multiply-add: x * scale + shift.
        n_ch = self.x.shape[1]
        shape = (1, n_ch, 1, 1) if self.is_image else (1, n_ch)
        base = 1.0 / 255.0 if self.is_image else 1.0
        mean_t = torch.zeros(n_ch, dtype=torch.float64) if mean is None else torch.as_tensor(mean)
        std_t = torch.ones(n_ch, dtype=torch.float64) if std is None else torch.as_tensor(std)
        mean_t, std_t = mean_t.double().flatten(), std_t.double().flatten()
        if mean_t.numel() != n_ch or std_t.numel() != n_ch:
            raise DataError(
                f"mean/std must have one entry per channel ({n_ch}), "
                f"got {mean_t.numel()} and {std_t.numel()}"
            )
        if not bool((std_t > 0).all()):
            raise DataError(f"std must be positive, got {std_t.tolist()}")
        scale = (base / std_t).float().reshape(shape).to(self.device)
        shift = (-mean_t / std_t).float().reshape(shape).to(self.device)
        return scale, shift

    def __len__(self) -> int:
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self) -> int:
        return int(self.x.shape[0])

    def epoch_plan(self, epoch: int) -> dict[str, torch.Tensor]:
        """The permutation and augmentation parameters of one epoch (all on the device)."""
        n = self.x.shape[0]
        g = epoch_generator(self.seed, epoch)
        plan = {
            "order": torch.randperm(n, generator=g) if self.shuffle else torch.arange(n),
        }
        if self.augment:
            plan["dy"] = torch.randint(0, 2 * self.pad + 1, (n,), generator=g)
            plan["dx"] = torch.randint(0, 2 * self.pad + 1, (n,), generator=g)
            plan["flip"] = torch.rand(n, generator=g) < 0.5
        return {k: v.to(self.device) for k, v in plan.items()}

    def batches(
        self, epoch: int = 0, start: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(inputs, labels)`` of epoch ``epoch``, beginning at batch index ``start``."""
        plan = self.epoch_plan(epoch)
        order = plan["order"]
        for b in range(start, len(self)):
            sel = order[b * self.batch_size : (b + 1) * self.batch_size]
            xb = self.x[sel]
            if self.augment:
                pos = b * self.batch_size
                end = pos + sel.shape[0]
                xb = crop_and_flip(
                    xb, plan["dy"][pos:end], plan["dx"][pos:end], plan["flip"][pos:end], self.pad
                )
            yield self.standardize(xb), self.y[sel]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches(0)

    def standardize(self, xb: torch.Tensor) -> torch.Tensor:
        out = torch.addcmul(self.shift, xb.float(), self.scale)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out


def crop_and_flip(
    x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, pad: int
) -> torch.Tensor:
    """Random crop after zero padding and horizontal flip, per example, on a whole batch.

    Args:
        x: ``[B, C, H, W]`` batch.
        dy, dx: int ``[B]`` crop offsets in ``0..2*pad`` of the padded image.
        flip: bool ``[B]``, flip horizontally where True.
    """
    b, c, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = (dy[:, None] + ar_h)[:, None, :, None].expand(b, c, h, w + 2 * pad)
    out = xp.gather(2, rows)
    # Flipping is folded into the column index: column j reads j or w-1-j.
    cols_idx = torch.where(flip[:, None], (w - 1) - ar_w, ar_w) + dx[:, None]
    cols = cols_idx[:, None, None, :].expand(b, c, h, w)
    return out.gather(3, cols)


class _Positions(torch.utils.data.Dataset):
    """Item ``i`` of a subset: (image, i), so labels can come from the loader's own tensor."""

    def __init__(self, dataset: torch.utils.data.Dataset, indices: torch.Tensor) -> None:
        self.dataset = dataset
        self.indices = indices.tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.dataset[self.indices[i]][0], i


class StreamingLoader(TensorLoader):
    """The :class:`TensorLoader` interface over images decoded on the fly (the ImageNet path).

    ``dataset[i]`` must return ``(uint8 [C, H, W], label)`` with one size for all
    items (e.g. :class:`randlabels.data.imagefolder.ImageFolderStream`, which
    resizes and center-crops). Decoding runs in ``num_workers`` DataLoader
    processes; order and augmentation are the same pure functions of
    ``(seed, epoch)`` as in :class:`TensorLoader`, so resuming stays exact.

    Args:
        dataset: the full image set.
        indices: int64 ``[N]`` positions of this loader's examples in ``dataset``.
        labels: int64 ``[N]`` their labels (real, random or corrupted).
        Other arguments as for :class:`TensorLoader`.
    """

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        indices: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool = True,
        augment: bool = False,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        drop_last: bool = False,
        pad: int = 4,
        channels_last: bool = False,
        num_workers: int = 0,
    ) -> None:
        if indices.shape[0] != labels.shape[0]:
            raise DataError(f"{indices.shape[0]} indices but {labels.shape[0]} labels")
        if indices.shape[0] == 0:
            raise DataError("cannot build a loader over an empty dataset")
        first, _ = dataset[int(indices[0])]
        if first.dim() != 3 or first.dtype != torch.uint8:
            raise DataError(
                f"streamed items must be uint8 [C, H, W] images, got {first.dtype} "
                f"{tuple(first.shape)}"
            )
        stub = torch.empty((indices.shape[0], *first.shape), dtype=torch.uint8, device="meta")
        super().__init__(
            stub,
            labels,
            batch_size=batch_size,
            shuffle=shuffle,
            augment=augment,
            mean=mean,
            std=std,
            device=device,
            seed=seed,
            drop_last=drop_last,
            pad=pad,
            channels_last=channels_last,
        )
        self.num_workers = int(num_workers)
        self.source = _Positions(dataset, indices)

    def batches(
        self, epoch: int = 0, start: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        plan = self.epoch_plan(epoch)
        order = plan["order"].cpu()
        stop = len(self) * self.batch_size
        todo = order[start * self.batch_size : stop]
        if todo.numel() == 0:
            return
        dl = torch.utils.data.DataLoader(
            self.source,
            batch_size=self.batch_size,
            sampler=todo.tolist(),
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        for b, (xb, pos) in enumerate(dl, start=start):
            xb = xb.to(self.device, non_blocking=True)
            pos = pos.to(self.device)
            if self.augment:
                lo = b * self.batch_size
                hi = lo + xb.shape[0]
                xb = crop_and_flip(
                    xb, plan["dy"][lo:hi], plan["dx"][lo:hi], plan["flip"][lo:hi], self.pad
                )
            yield self.standardize(xb), self.y[pos]
