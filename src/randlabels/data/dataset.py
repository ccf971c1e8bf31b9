"""The in-memory dataset record shared by every reader, and the data errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


class DataError(ValueError):
    """Input data is malformed, inconsistent or does not match what was asked."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset is not on disk (the message says where we looked and how to get it)."""


@dataclass
class ArrayDataset:
    """A whole dataset held as tensors.

    Images are ``uint8`` of shape ``[N, C, H, W]``; vector data (the synthetic
    Gaussian sets) are ``float32`` of shape ``[N, d]``. Labels are ``int64``
    ``[N]`` with values in ``range(len(classes))``. ``test_x``/``test_y`` are
    ``None`` when the dataset has no official test split.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None
    classes: list[str]
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        return self.train_x.dim() == 4

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def __post_init__(self) -> None:
        if self.train_x.shape[0] != self.train_y.shape[0]:
            raise DataError(
                f"{self.name}: {self.train_x.shape[0]} training inputs but "
                f"{self.train_y.shape[0]} labels"
            )
        if (self.test_x is None) != (self.test_y is None):
            raise DataError(f"{self.name}: test inputs and labels must both be given or both None")
        if self.test_x is not None and self.test_x.shape[0] != self.test_y.shape[0]:
            raise DataError(
                f"{self.name}: {self.test_x.shape[0]} test inputs but {self.test_y.shape[0]} labels"
            )
