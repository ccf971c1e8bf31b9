"""Covariances of layer inputs (Sigma_x) and of weights (Sigma_w), SPEC 2.1 and 2.2.

    sigma_x = patch_covariance(images, 3)                   # first conv layer, d = 27
    sigma_x = layer_input_covariance(model, "features.3", loader.batches(0), max_batches=20)
    sigma_w = weight_covariance([m.conv.weight for m in seeds])   # pooled over seeds
    eigenvalues, eigenvectors = sigma_x.eigh()              # descending, columns

Every result is a :class:`Covariance` in float64 on the CPU.

Precision and speed. Sums are accumulated in float64 relative to a shift (the
mean of the first chunk), so centering does not cancel digits. float32 inputs
are multiplied in float32 in blocks of at most a few thousand vectors and each
block's product is added in float64. Against a float64 computation the relative
(Frobenius) error was 2e-8 for the 45M 3x3 patches of CIFAR-10 (the smallest
eigenvalues, ~6e-5 of 21, off by < 0.1%) and 9e-7 for 7,200 patches of d = 2304
(benchmarks/patch_covariance.py). float64 inputs are computed in float64
throughout: pass ``x.double()`` where that is not enough.

Conv patches are never materialized k*k times. Patches overlap: the product of
patch entries (c1, a1, b1) and (c2, a2, b2) summed over all anchors depends on
the image rows only through sums over rows r of G[r, Δ] = <row r, row r + Δ>,
Δ = a2 - a1, where a "row" holds the k horizontal shifts of one image row
(c, b, image, column). So each chunk is unfolded only horizontally (k copies
instead of k*k) and one batched matrix product per chunk gives every G[r, Δ];
the full Gram matrix is assembled from row sums at the end. This does about
k/2 times fewer multiply-adds than a symmetric rank-k update on the patch
matrix and moves k times fewer bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

# float32 vectors per matrix product before the result is added in float64; the
# float32 accumulation error of one product grows like sqrt(rows) * 6e-8.
_BLOCK_ROWS = 4096
# Target number of patch rows (images x output columns) per batched product.
_TARGET_K = 2048
# Largest horizontally unfolded chunk kept in memory, in elements (64 MB of float32).
_MAX_CHUNK_ELEMENTS = 16 * 2**20


@dataclass
class Covariance:
    """Mean and covariance of ``count`` vectors of dimension ``d``.

    Attributes:
        mean: float64 ``[d]``.
        cov: float64 ``[d, d]``, symmetric. ``centered=True``: the covariance with
            the unbiased ``1 / (count - 1)`` normalization; ``centered=False``: the
            uncentered second moment ``sum(x x^T) / count``.
        count: number of vectors (patches, input vectors or weight rows).
        centered: which of the two ``cov`` holds.
        shape: shape of one vector before flattening, when known: ``(C, kh, kw)``
            for conv patches and conv filters, ``(d,)`` for dense inputs/weights.
    """

    mean: Tensor
    cov: Tensor
    count: int
    centered: bool
    shape: tuple[int, ...] | None = None

    @property
    def dim(self) -> int:
        return int(self.cov.shape[0])

    def eigh(self) -> tuple[Tensor, Tensor]:
        """Eigenvalues descending ``[d]`` and eigenvectors as columns ``[d, d]``, float64.

        Each eigenvector's sign is fixed so its largest-magnitude entry is positive,
        which makes the result reproducible and eigenvector images comparable.
        """
        return sorted_eigh(self.cov)


def sorted_eigh(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """``eigh`` of a symmetric matrix in float64, eigenvalues descending, signs fixed."""
    values, vectors = torch.linalg.eigh(matrix.to(torch.float64))
    values, vectors = values.flip(0), vectors.flip(1)
    idx = vectors.abs().argmax(dim=0)
    signs = torch.sign(vectors[idx, torch.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return values, vectors * signs


def describe_dim(d: int, shape: tuple[int, ...] | None) -> str:
    """``d=75 (5x5x3)`` for a conv shape ``(C, kh, kw)`` = (3, 5, 5), else ``d=75``."""
    if shape is not None and len(shape) == 3:
        c, kh, kw = shape
        return f"d={d} ({kh}x{kw}x{c})"
    return f"d={d}"


class CovarianceAccumulator:
    """Streaming mean and covariance of vectors of dimension ``dim``, summed in float64.

        acc = CovarianceAccumulator(27)
        for x in chunks:            # x [n, 27]
            acc.update(x)
        sigma = acc.result()        # same as one update with all rows

    Sums are kept relative to a shift (the mean of the first update), so that
    centering does not cancel digits when the mean is large compared to the spread.
    """

    def __init__(self, dim: int, *, shape: tuple[int, ...] | None = None) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer; got {dim!r}")
        self.dim = dim
        self.shape = shape
        self.count = 0
        self.shift: Tensor | None = None  # float64 [d], on the device of the first update
        self.total: Tensor | None = None  # sum of (x - shift), float64 [d]
        self.gram: Tensor | None = None  # sum of (x - shift)(x - shift)^T, float64 [d, d]
        self._buffer: Tensor | None = None

    def _start(self, shift: Tensor) -> None:
        self.shift = shift.to(torch.float64)
        self.total = torch.zeros(self.dim, dtype=torch.float64, device=shift.device)
        self.gram = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=shift.device)

    def update(self, x: Tensor) -> None:
        """Add the rows of ``x`` ``[n, dim]`` (any float dtype, any device)."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"expected vectors [n, {self.dim}]; got {got}")
        if not x.is_floating_point():
            raise ValueError(f"expected a float tensor; got dtype {x.dtype}")
        if x.shape[0] == 0:
            return
        x = x.detach()
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        if self.shift is None:
            # Rounded to the compute dtype so that the shift is exactly what is subtracted.
            self._start(x[:_BLOCK_ROWS].to(dtype).mean(0).to(dtype))
        shift = self.shift.to(x.device, dtype)
        if torch.equal(shift.to(torch.float64), self.shift.to(x.device)):
            gram, total = self.gram, self.total  # same shift: add in place
        else:  # e.g. float32 rows after float64 ones: sum about the rounded shift
            gram = torch.zeros_like(self.gram, device=x.device)
            total = torch.zeros_like(self.total, device=x.device)
        if self._buffer is None or self._buffer.dtype != dtype or self._buffer.device != x.device:
            self._buffer = torch.empty(self.dim, self.dim, dtype=dtype, device=x.device)
        for start in range(0, x.shape[0], _BLOCK_ROWS):
            block = x[start : start + _BLOCK_ROWS].to(dtype) - shift
            torch.mm(block.T, block, out=self._buffer)
            gram += self._buffer.to(gram.device)
            total += block.sum(0, dtype=torch.float64).to(total.device)
        if gram is self.gram:
            self.count += x.shape[0]
        else:
            self.update_gram(gram, total, x.shape[0], shift=shift.to(torch.float64))

    def update_gram(
        self, gram: Tensor, total: Tensor, count: int, *, shift: Tensor | None = None
    ) -> None:
        """Add a pre-reduced chunk: ``gram = sum (x - shift)(x - shift)^T`` ``[d, d]``,
        ``total = sum (x - shift)`` ``[d]`` over ``count`` vectors (``shift`` ``[d]``,
        default zero, i.e. raw sums)."""
        d = self.dim
        if gram.shape != (d, d) or total.shape != (d,):
            raise ValueError(
                f"expected gram [{d}, {d}] and total [{d}]; got {tuple(gram.shape)} and "
                f"{tuple(total.shape)}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a non-negative integer; got {count!r}")
        gram = gram.detach().to(torch.float64)
        total = total.detach().to(gram.device, torch.float64)
        shift = (
            torch.zeros(d, dtype=torch.float64, device=gram.device)
            if shift is None
            else shift.detach().to(gram.device, torch.float64)
        )
        if self.shift is None:
            self._start(shift)
        # Re-express sums about `shift` as sums about self.shift: x - s = (x - s') + delta.
        delta = (shift - self.shift.to(gram.device)).to(gram.device)
        if bool(delta.any()):
            outer = torch.outer(total, delta)
            gram = gram + outer + outer.T + count * torch.outer(delta, delta)
            total = total + count * delta
        self.gram += gram.to(self.gram.device)
        self.total += total.to(self.total.device)
        self.count += count

    def result(self, centered: bool = True) -> Covariance:
        """The :class:`Covariance` of everything added so far (float64, CPU).

        ``centered=True`` divides by ``count - 1`` (unbiased; needs 2 vectors),
        ``centered=False`` gives the second moment ``sum(x x^T) / count``.
        Raises ValueError when sums are not finite (NaN or Inf in the input).
        """
        need = 2 if centered else 1
        if self.count < need:
            raise ValueError(
                f"a {'centered' if centered else 'uncentered'} covariance needs at least "
                f"{need} vectors; got {self.count}"
            )
        n = self.count
        gram, total, shift = self.gram.cpu(), self.total.cpu(), self.shift.cpu()
        if not (bool(torch.isfinite(gram).all()) and bool(torch.isfinite(total).all())):
            raise ValueError("the vectors contain NaN or Inf; expected finite values")
        mean_dev = total / n
        if centered:
            cov = (gram - torch.outer(total, mean_dev)) / (n - 1)
        else:
            outer = torch.outer(total, shift)
            cov = (gram + outer + outer.T) / n + torch.outer(shift, shift)
        cov = (cov + cov.T) / 2
        return Covariance(shift + mean_dev, cov, n, centered, self.shape)


# ------------------------------------------------------------------------------ patches


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
    ):
        raise ValueError(f"{name} must be an int or a pair of ints; got {value!r}")
    return int(pair[0]), int(pair[1])


class _PatchMoments:
    """Float64 moments of all kh x kw patches of image chunks (see the module docstring).

    Per image row r and row offset Δ it accumulates ``G[r, Δ] = sum over images and
    output columns of u[r] u[r + Δ]^T``, where ``u[r]`` is the (channel, column
    shift) vector of row r; the patch Gram block of rows (a1, a1 + Δ) is the sum
    of ``G[i * stride + a1, Δ]`` over output rows i.
    """

    def __init__(
        self,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        chunk_size: int | None,
    ) -> None:
        self.kh, self.kw = kernel
        self.sh, self.sw = stride
        self.ph, self.pw = padding
        self.chunk_size = chunk_size
        self.geometry: tuple[int, int, int] | None = None  # (C, H, W) of the first batch
        self.count = 0

    def _setup(self, x: Tensor) -> None:
        c, h, w = x.shape[1:]
        hp, wp = h + 2 * self.ph, w + 2 * self.pw
        if hp < self.kh or wp < self.kw:
            raise ValueError(
                f"a {self.kh}x{self.kw} kernel does not fit in {h}x{w} images "
                f"(padding {self.ph},{self.pw})"
            )
        self.geometry = (c, h, w)
        self.out_h = (hp - self.kh) // self.sh + 1
        self.out_w = (wp - self.kw) // self.sw + 1
        self.rows = (self.out_h - 1) * self.sh + self.kh  # image rows that patches touch
        self.ck = c * self.kw
        self.dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        self.device = x.device
        per_image = self.rows * self.ck * self.out_w
        if self.chunk_size is None:
            chunk = max(1, math.ceil(_TARGET_K / self.out_w))
            chunk = min(chunk, max(1, _MAX_CHUNK_ELEMENTS // per_image))
        else:
            chunk = self.chunk_size
        self.chunk = chunk
        # Shift: per-channel mean of the first chunk (rounded to the compute dtype).
        self.shift = x[:chunk].to(self.dtype).mean(dim=(0, 2, 3)).to(self.dtype)
        self._store = torch.empty(chunk * per_image, dtype=self.dtype, device=self.device)
        # Unused entries (rows near the bottom have fewer offsets) stay zero.
        self._out = torch.zeros(
            self.rows, self.ck, self.kh * self.ck, dtype=self.dtype, device=self.device
        )
        self.acc = torch.zeros(self._out.shape, dtype=torch.float64, device=self.device)
        self.pixel_sum = torch.zeros(c, hp, wp, dtype=torch.float64, device=self.device)

    def update(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"expected images [N, C, H, W]; got {got}")
        if not x.is_floating_point():
            raise ValueError(
                f"expected float images [N, C, H, W] (standardized); got dtype {x.dtype}"
            )
        if x.shape[0] == 0:
            return
        x = x.detach()
        if self.geometry is None:
            self._setup(x)
        elif tuple(x.shape[1:]) != self.geometry:
            raise ValueError(
                f"all batches must have the same [C, H, W]; expected {list(self.geometry)}, "
                f"got {list(x.shape[1:])}"
            )
        for start in range(0, x.shape[0], self.chunk):
            self._update_chunk(x[start : start + self.chunk].to(self.device))

    def _update_chunk(self, x: Tensor) -> None:
        b = x.shape[0]
        if self.ph or self.pw:
            # Padding is zero in the input's own units, so pad before shifting.
            x = nn.functional.pad(x, (self.pw, self.pw, self.ph, self.ph))
        rows, ck, kh, k = self.rows, self.ck, self.kh, b * self.out_w
        unfolded = x[:, :, :rows].unfold(3, self.kw, self.sw)  # [b, C, rows, out_w, kw]
        r = self._store[: rows * ck * k].view(rows, x.shape[1], self.kw, b, self.out_w)
        torch.sub(
            unfolded.permute(2, 1, 4, 0, 3), self.shift.view(1, -1, 1, 1, 1), out=r
        )  # r[row, c, b, image, column] = x[image, c, row, column * sw + b] - shift[c]
        flat = r.view(rows, ck, k)
        full = rows - kh + 1  # rows that have all kh offsets below them
        # Rows row..row+kh-1 are contiguous in `flat`: an overlapping view, no copy.
        window = flat.as_strided((full, kh * ck, k), (ck * k, k, 1))
        torch.bmm(flat[:full], window.transpose(1, 2), out=self._out[:full])
        for row in range(full, rows):
            span = (rows - row) * ck
            torch.mm(flat[row], flat[row:].reshape(span, k).T, out=self._out[row, :, :span])
        self.acc += self._out
        # Summed over at most `chunk` images in the compute dtype (a float64 sum would
        # first copy the chunk to float64), then added in float64.
        self.pixel_sum += x.sum(0, dtype=self.dtype)
        self.count += b * self.out_h * self.out_w

    def result(self, centered: bool, shape: tuple[int, ...] | None) -> Covariance:
        if self.geometry is None or self.count == 0:
            raise ValueError("no images were given; expected at least one [N, C, H, W] batch")
        c = self.geometry[0]
        kh, kw, sh, sw = self.kh, self.kw, self.sh, self.sw
        oh, ow = self.out_h, self.out_w
        g = self.acc.cpu().view(self.rows, c, kw, kh, c, kw)  # row, c1, b1, Δ, c2, b2
        gram = torch.zeros(c, kh, kw, c, kh, kw, dtype=torch.float64)
        for a1 in range(kh):
            anchor_rows = torch.arange(oh) * sh + a1
            for a2 in range(a1, kh):
                block = g[anchor_rows, :, :, a2 - a1].sum(0)  # c1, b1, c2, b2
                gram[:, a1, :, :, a2, :] = block
                gram[:, a2, :, :, a1, :] = block.permute(2, 3, 0, 1)
        d = c * kh * kw
        pixels = self.pixel_sum.cpu()
        total = torch.empty(c, kh, kw, dtype=torch.float64)
        for a in range(kh):
            for b in range(kw):
                window = pixels[:, a : a + (oh - 1) * sh + 1 : sh, b : b + (ow - 1) * sw + 1 : sw]
                total[:, a, b] = window.sum((1, 2))
        shift = self.shift.cpu().to(torch.float64)
        patch_shift = shift.view(c, 1, 1).expand(c, kh, kw).reshape(d)
        total = total.reshape(d) - self.count * patch_shift  # sums of shifted patches
        acc = CovarianceAccumulator(d, shape=shape)
        acc.update_gram(gram.reshape(d, d), total, self.count, shift=patch_shift)
        return acc.result(centered)


def _image_batches(images) -> Iterator[Tensor]:
    if isinstance(images, Tensor):
        yield images
        return
    if not isinstance(images, Iterable):
        raise ValueError(
            f"expected images [N, C, H, W] or an iterable of such batches; got "
            f"{type(images).__name__}"
        )
    for batch in images:
        if isinstance(batch, (tuple, list)):
            if not batch:
                raise ValueError("got an empty tuple as a batch; expected (images, ...)")
            batch = batch[0]
        if not isinstance(batch, Tensor):
            raise ValueError(
                f"expected each batch to be a tensor [N, C, H, W] or a tuple whose first "
                f"element is one; got {type(batch).__name__}"
            )
        yield batch


def patch_covariance(
    images: Tensor | Iterable,
    kernel_size: int | tuple[int, int],
    *,
    centered: bool = True,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    chunk_size: int | None = None,
) -> Covariance:
    """Covariance of all ``kh x kw x C`` patches of ``images`` (SPEC 2.1).

    Args:
        images: float tensor ``[N, C, H, W]`` (any memory layout, any device), or an
            iterable of such batches; a batch may be a tuple ``(x, y, ...)`` as
            yielded by ``TensorLoader.batches``, whose first element is used.
        kernel_size: ``k`` or ``(kh, kw)``.
        centered: covariance (``1/(n-1)``) or uncentered second moment (``1/n``).
        stride, padding: patch anchors as in ``nn.Conv2d``; the default, stride 1
            and no padding, gives all valid positions (SPEC 2.1).
        chunk_size: images per batched product (default: about 2048 patch rows).

    float32 (and lower) inputs are multiplied in float32 and summed in float64
    (relative error ~1e-8, see the module docstring); float64 inputs give a
    float64-exact result, a few times slower.

    Returns:
        :class:`Covariance` of dimension ``d = C * kh * kw`` with vectors flattened in
        (channel, row, column) order, the order of ``conv.weight.reshape(out, -1)``;
        ``count`` = number of patches; ``shape`` = ``(C, kh, kw)``.
    """
    kernel = _pair(kernel_size, "kernel_size")
    stride_ = _pair(stride, "stride")
    padding_ = _pair(padding, "padding")
    if min(kernel) < 1 or min(stride_) < 1 or min(padding_) < 0:
        raise ValueError(
            f"expected kernel_size >= 1, stride >= 1, padding >= 0; got kernel_size="
            f"{kernel_size!r}, stride={stride!r}, padding={padding!r}"
        )
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive integer or None; got {chunk_size!r}")
    moments = _PatchMoments(kernel, stride_, padding_, chunk_size)
    with torch.no_grad():
        for batch in _image_batches(images):
            moments.update(batch)
    if moments.geometry is None:
        raise ValueError("no images were given; expected at least one [N, C, H, W] batch")
    return moments.result(centered, (moments.geometry[0], *kernel))


# ------------------------------------------------------------------------------- layers


class _StopForward(Exception):
    """Raised by the hook once the layer's input is recorded; the rest of forward is skipped."""


def layer_input_covariance(
    model: nn.Module,
    layer: str,
    batches: Tensor | Iterable,
    *,
    centered: bool = True,
    max_batches: int | None = None,
    padding: str = "valid",
) -> Covariance:
    """Sigma_x of one analysable layer: the covariance of what that layer receives (SPEC 2.1).

    Args:
        model: any module; ``layer`` is a name from
            :func:`randlabels.models.analysable_layers` (Conv2d or Linear).
        batches: model inputs ``[N, ...]``, or an iterable of batches (tuples: first
            element), moved to the model's device.
        centered: covariance or uncentered second moment (see :class:`Covariance`).
        max_batches: use at most this many batches.
        padding: ``"valid"`` (default, SPEC 2.1): a Conv2d's vectors are its input's
            ``kh x kw`` patches at stride 1 over valid positions, whatever the layer's
            own stride and padding. ``"layer"``: the patches the layer itself sees,
            with its own stride and zero padding (for inputs smaller than the kernel,
            e.g. the 2x2 inputs of VGG's last stage at 32x32).

    For a Linear the vectors are the flattened input vectors. The model runs in eval mode without
    gradients and only up to the layer; training modes are restored afterwards.
    """
    from randlabels.models import analysable_layers

    layers = analysable_layers(model)
    if layer not in layers:
        raise ValueError(
            f"unknown layer {layer!r}; analysable layers of {type(model).__name__} are: "
            f"{', '.join(layers) or '(none)'}"
        )
    module = layers[layer]
    if padding not in ("valid", "layer"):
        raise ValueError(f"padding must be 'valid' or 'layer'; got {padding!r}")
    if max_batches is not None and (
        isinstance(max_batches, bool) or not isinstance(max_batches, int) or max_batches < 1
    ):
        raise ValueError(f"max_batches must be a positive integer or None; got {max_batches!r}")
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or module.dilation != (1, 1):
            raise ValueError(
                f"layer {layer!r} has groups={module.groups}, dilation={module.dilation}; "
                "only ungrouped, undilated convolutions are supported"
            )
        if padding == "valid":
            sink = _PatchMoments(module.kernel_size, (1, 1), (0, 0), None)
        elif isinstance(module.padding, tuple) and module.padding_mode == "zeros":
            sink = _PatchMoments(module.kernel_size, module.stride, module.padding, None)
        else:
            raise ValueError(
                f"padding='layer' needs numeric zero padding; layer {layer!r} has "
                f"padding={module.padding!r}, padding_mode={module.padding_mode!r}"
            )
    else:
        sink = CovarianceAccumulator(module.in_features, shape=(module.in_features,))

    def hook(_module: nn.Module, inputs: tuple) -> None:
        x = inputs[0]
        if isinstance(module, nn.Conv2d):
            sink.update(x)
        else:
            sink.update(x.reshape(-1, x.shape[-1]))
        raise _StopForward

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    modes = {m: m.training for m in model.modules()}
    handle = module.register_forward_pre_hook(hook)
    try:
        model.eval()
        with torch.no_grad():
            source = [batches] if isinstance(batches, Tensor) else batches
            for i, batch in enumerate(_image_batches(source)):
                if max_batches is not None and i >= max_batches:
                    break
                try:
                    model(batch.to(device))
                except _StopForward:
                    pass
                else:
                    raise ValueError(
                        f"layer {layer!r} did not run in the forward pass of {type(model).__name__}"
                    )
    finally:
        handle.remove()
        for m, mode in modes.items():
            m.training = mode
    if isinstance(sink, _PatchMoments):
        if sink.geometry is None:
            raise ValueError("no batches were given; expected at least one input batch")
        return sink.result(centered, (sink.geometry[0], *module.kernel_size))
    if sink.count == 0:
        raise ValueError("no batches were given; expected at least one input batch")
    return sink.result(centered)


# ------------------------------------------------------------------------------ weights


def weight_covariance(weights: Tensor | Sequence[Tensor], *, centered: bool = True) -> Covariance:
    """Sigma_w: covariance of the rows of ``w.reshape(out, -1)`` (SPEC 2.2), in float64.

    ``weights`` is one weight tensor ``[out, ...]`` or a sequence of them (one per
    model/seed) whose rows are pooled; all must have the same row length. Raises
    ValueError for mismatched shapes or non-finite weights.
    """
    tensors = [weights] if isinstance(weights, Tensor) else list(weights)
    if not tensors:
        raise ValueError("weight_covariance needs at least one weight tensor; got none")
    rows, shapes = [], []
    for i, w in enumerate(tensors):
        if not isinstance(w, Tensor) or w.dim() < 1 or not w.is_floating_point():
            got = f"{w.dtype} {tuple(w.shape)}" if isinstance(w, Tensor) else type(w).__name__
            raise ValueError(f"weights[{i}]: expected a float tensor [out, ...]; got {got}")
        w = w.detach().to("cpu", torch.float64)
        w = w.reshape(1, -1) if w.dim() == 1 else w.reshape(w.shape[0], -1)
        if not bool(torch.isfinite(w).all()):
            raise ValueError(f"weights[{i}] (shape {tuple(tensors[i].shape)}) contain NaN or Inf")
        rows.append(w)
        shapes.append(tuple(tensors[i].shape))
    if len({r.shape[1] for r in rows}) > 1:
        raise ValueError(
            "all weight tensors must have the same row length (w.reshape(out, -1)) to pool "
            f"them; got shapes {shapes}"
        )
    first = shapes[0]
    shape = tuple(first[1:]) if len(first) > 1 else None
    acc = CovarianceAccumulator(rows[0].shape[1], shape=shape)
    for r in rows:
        acc.update(r)
    return acc.result(centered)
