"""Alignment of Sigma_w with Sigma_x: misalignment score, eigenvalue function f (SPEC 2.3-2.5).

    report = misalignment_report(sigma_w, sigma_x)       # M_data, M_random, ratio
    lam, f = eigenvalue_function(sigma_w, sigma_x)       # f(lambda_i) = sqrt(v_i^T Sigma_w v_i)
    sigma = covariance_from_f(eigenvectors, f)           # SPEC 2.7 variant

Where a covariance is expected, a :class:`~randlabels.analysis.covariance.Covariance`
or a symmetric float tensor ``[d, d]`` is accepted. Everything is computed in float64.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .covariance import Covariance, describe_dim, sorted_eigh

# Sigma_w counts as singular when its smallest eigenvalue is below this fraction of its
# mean eigenvalue tr/d (condition number > 1e12: S^-1 would be dominated by rounding).
SINGULAR_RTOL = 1e-12
# Ridge added to a singular Sigma_w, as a fraction of tr/d (SPEC 2.2).
RIDGE_EPS = 1e-6
# Largest |V^T V - I| entry accepted for an orthonormal basis.
ORTHONORMAL_ATOL = 1e-6


def _matrix(sigma: Covariance | Tensor, name: str) -> Tensor:
    """The float64 CPU matrix of a Covariance or a tensor, validated as symmetric and finite."""
    cov = sigma.cov if isinstance(sigma, Covariance) else sigma
    if not isinstance(cov, Tensor) or cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        got = tuple(cov.shape) if isinstance(cov, Tensor) else type(cov).__name__
        raise ValueError(f"{name}: expected a Covariance or a square matrix [d, d]; got {got}")
    if not cov.is_floating_point():
        raise ValueError(f"{name}: expected a float matrix; got dtype {cov.dtype}")
    cov = cov.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(cov).all()):
        raise ValueError(f"{name} contains NaN or Inf; expected finite values")
    scale = float(cov.abs().max()) if cov.numel() else 0.0
    asym = float((cov - cov.T).abs().max()) if cov.numel() else 0.0
    if asym > 1e-8 * max(scale, 1e-300):
        raise ValueError(f"{name}: expected a symmetric matrix; max |S - S^T| = {asym:.3g}")
    return (cov + cov.T) / 2


def _shape_of(sigma: Covariance | Tensor) -> str:
    if isinstance(sigma, Covariance):
        return describe_dim(sigma.dim, sigma.shape)
    return describe_dim(int(sigma.shape[0]), None)


def check_compatible(sigma_w: Covariance | Tensor, sigma_x: Covariance | Tensor) -> int:
    """Check that weights and data live in the same space; return ``d``.

    Raises ValueError when the dimensions differ (e.g. a 5x5 filter against 3x3
    patches) or either matrix is not a finite symmetric ``[d, d]`` float matrix.
    """
    w = _matrix(sigma_w, "Sigma_w (weights)")
    x = _matrix(sigma_x, "Sigma_x (data)")
    if w.shape != x.shape:
        raise ValueError(
            f"weights have {_shape_of(sigma_w)} but data patches have {_shape_of(sigma_x)}; "
            "expected the same kernel size and channels"
        )
    return int(w.shape[0])


def _haar_stream(d: int, count: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(count):
        q, r = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
        signs = torch.sign(torch.diagonal(r))
        signs[signs == 0] = 1.0
        yield q * signs


def haar_bases(d: int, count: int = 20, seed: int = 0) -> Tensor:
    """``count`` Haar-random orthonormal bases of R^d, ``[count, d, d]`` float64 (columns).

    QR of a Gaussian matrix with the signs of R's diagonal moved into Q (without the
    sign fix QR is not Haar). Uses a local generator: the global RNG is untouched.
    """
    for name, value, low in (("d", d, 1), ("count", count, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return torch.stack(list(_haar_stream(d, count, seed)))


def _check_basis(basis: Tensor, d: int) -> Tensor:
    if not isinstance(basis, Tensor) or basis.shape != (d, d):
        got = tuple(basis.shape) if isinstance(basis, Tensor) else type(basis).__name__
        raise ValueError(f"expected a basis [d, d] = [{d}, {d}] (columns v_i); got {got}")
    basis = basis.detach().to("cpu", torch.float64)
    dev = float((basis.T @ basis - torch.eye(d, dtype=torch.float64)).abs().max())
    if not dev <= ORTHONORMAL_ATOL:
        raise ValueError(
            f"basis must be orthonormal (columns v_i); max |V^T V - I| = {dev:.3g} "
            f"> {ORTHONORMAL_ATOL:g}"
        )
    return basis


def _misalignment(sigma: Tensor, eigvals: Tensor, eigvecs: Tensor, basis: Tensor) -> float:
    # a_i = v_i^T S v_i directly; b_i = v_i^T S^-1 v_i = sum_j (u_j . v_i)^2 / lambda_j
    # from S's eigendecomposition. Cauchy-Schwarz gives a_i b_i >= 1; rounding can
    # push an aligned term a hair below 1, so each term is clamped at 0.
    a = (basis * (sigma @ basis)).sum(0)
    b = ((eigvecs.T @ basis) ** 2 / eigvals[:, None]).sum(0)
    return float((torch.sqrt(a * b) - 1).clamp_min(0).sum())


def _positive_definite(sigma: Tensor, ridge: float | None) -> tuple[Tensor, Tensor, Tensor]:
    """``(sigma + ridge I, its eigenvalues, its eigenvectors)``; ValueError unless positive."""
    if ridge is not None:
        if not (isinstance(ridge, (int, float)) and math.isfinite(ridge) and ridge >= 0):
            raise ValueError(f"ridge must be a finite number >= 0 or None; got {ridge!r}")
    values, vectors = torch.linalg.eigh(sigma)
    if ridge:
        sigma = sigma + ridge * torch.eye(sigma.shape[0], dtype=torch.float64)
        values = values + ridge  # same eigenvectors
    if not float(values[0]) > 0:
        raise ValueError(
            f"Sigma_w is not positive definite (smallest eigenvalue {float(values[0]):.3g}); "
            "pool more samples, pass ridge=, or use misalignment_report, which adds a ridge"
        )
    return sigma, values, vectors


def misalignment(
    sigma_w: Covariance | Tensor, basis: Tensor, *, ridge: float | None = None
) -> float:
    """M(Sigma_w; V) = sum_i [sqrt((v_i^T S v_i)(v_i^T S^-1 v_i)) - 1] (SPEC 2.4).

    Args:
        sigma_w: positive definite ``[d, d]`` (Covariance or tensor).
        basis: orthonormal ``[d, d]`` with the v_i as columns.
        ridge: added to the diagonal of Sigma_w first (absolute value), or None.

    Returns M >= 0, which is 0 exactly when every v_i is an eigenvector of Sigma_w;
    it is invariant to scaling Sigma_w. Raises ValueError for a non-orthonormal basis
    or a Sigma_w that is not positive definite.
    """
    sigma = _matrix(sigma_w, "Sigma_w")
    basis = _check_basis(basis, sigma.shape[0])
    sigma, values, vectors = _positive_definite(sigma, ridge)
    return _misalignment(sigma, values, vectors, basis)


@dataclass
class MisalignmentResult:
    """M in the data eigenbasis against M in random bases (SPEC 2.4).

    ``ratio = data / random_mean`` (< 1: aligned; about 1: no preference for the data
    basis; NaN when random_mean is 0). ``random_std`` is the sample standard deviation
    over ``num_random`` bases (0 for one). ``samples`` is Sigma_w's count (None for a
    raw matrix); ``ridge`` is the absolute ridge that was added (None if none was needed).
    """

    data: float
    random_mean: float
    random_std: float
    ratio: float
    d: int
    samples: int | None
    ridge: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _min_samples(sigma_w: Covariance, d: int) -> int:
    return d + 1 if sigma_w.centered else d


def misalignment_report(
    sigma_w: Covariance | Tensor,
    sigma_x: Covariance | Tensor,
    *,
    num_random: int = 20,
    seed: int = 0,
) -> MisalignmentResult:
    """Misalignment of Sigma_w in the eigenbasis of Sigma_x and in ``num_random`` Haar bases.

    A centered Sigma_w needs at least d+1 samples to be invertible (d for an
    uncentered one): a Covariance with fewer raises ValueError. A Sigma_w that is
    still singular (smallest eigenvalue <= 1e-12 * tr/d) gets the ridge
    ``1e-6 * (tr/d) * I`` (SPEC 2.2), reported in ``ridge``.
    """
    d = check_compatible(sigma_w, sigma_x)
    samples = sigma_w.count if isinstance(sigma_w, Covariance) else None
    if isinstance(sigma_w, Covariance) and sigma_w.count < _min_samples(sigma_w, d):
        need = _min_samples(sigma_w, d)
        raise ValueError(
            f"Sigma_w was estimated from {sigma_w.count} weight vectors, but an invertible "
            f"{'centered ' if sigma_w.centered else ''}covariance in d={d} needs at least "
            f"{need}; pool the weights of more seeds (weight_covariance([w_seed0, w_seed1, "
            f"...])) to reach {need} samples"
        )
    if isinstance(num_random, bool) or not isinstance(num_random, int) or num_random < 1:
        raise ValueError(f"num_random must be a positive integer; got {num_random!r}")
    sigma = _matrix(sigma_w, "Sigma_w")
    mean_eig = float(torch.trace(sigma)) / d
    if not mean_eig > 0:
        raise ValueError(f"Sigma_w has trace {mean_eig * d:.3g}; expected a positive trace")
    values, vectors = torch.linalg.eigh(sigma)
    ridge = None
    if float(values[0]) <= SINGULAR_RTOL * mean_eig:
        ridge = RIDGE_EPS * mean_eig
        sigma = sigma + ridge * torch.eye(d, dtype=torch.float64)
        values = values + ridge
    _, data_basis = sorted_eigh(_matrix(sigma_x, "Sigma_x"))
    m_data = _misalignment(sigma, values, vectors, data_basis)
    # One random basis at a time: 20 bases of d = 2304 would take 850 MB at once.
    m_random = torch.tensor(
        [_misalignment(sigma, values, vectors, v) for v in _haar_stream(d, num_random, seed)],
        dtype=torch.float64,
    )
    mean = float(m_random.mean())
    std = float(m_random.std()) if num_random > 1 else 0.0
    ratio = m_data / mean if mean > 0 else float("nan")
    return MisalignmentResult(m_data, mean, std, ratio, d, samples, ridge)


def eigenvalue_function(
    sigma_w: Covariance | Tensor, sigma_x: Covariance | Tensor
) -> tuple[Tensor, Tensor]:
    """Data eigenvalues lambda_i (descending) and f(lambda_i) = sqrt(v_i^T Sigma_w v_i) (SPEC 2.5).

    Returns two float64 tensors ``[d]``: f is the standard deviation of the weights
    along data direction v_i (``s`` everywhere for an isotropic init with std ``s``).
    """
    check_compatible(sigma_w, sigma_x)
    sigma = _matrix(sigma_w, "Sigma_w")
    lam, v = sorted_eigh(_matrix(sigma_x, "Sigma_x"))
    f = (v * (sigma @ v)).sum(0).clamp_min(0).sqrt()
    return lam, f


def eigenvector_overlap(
    sigma_w: Covariance | Tensor, sigma_x: Covariance | Tensor, k: int = 10
) -> Tensor:
    """``|<u_i, v_i>|`` for the top ``k`` eigenvectors of Sigma_w (u) and Sigma_x (v) (SPEC E3).

    Returns float64 ``[k]``; 1 where the i-th principal directions coincide.
    """
    d = check_compatible(sigma_w, sigma_x)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= d:
        raise ValueError(f"k must be an integer in [1, d={d}]; got {k!r}")
    _, u = sorted_eigh(_matrix(sigma_w, "Sigma_w"))
    _, v = sorted_eigh(_matrix(sigma_x, "Sigma_x"))
    return (u[:, :k] * v[:, :k]).sum(0).abs()


def covariance_from_f(eigenvectors: Tensor, f: Tensor) -> Tensor:
    """Sigma_w = sum_i f_i^2 v_i v_i^T, float64 ``[d, d]`` (SPEC 2.7 variant).

    Args:
        eigenvectors: ``[d, m]`` orthonormal columns v_i (m <= d), e.g. from
            ``sigma_x.eigh()[1]``.
        f: ``[m]`` non-negative standard deviations along each v_i.
    """
    if not isinstance(eigenvectors, Tensor) or eigenvectors.dim() != 2:
        got = tuple(eigenvectors.shape) if isinstance(eigenvectors, Tensor) else eigenvectors
        raise ValueError(f"eigenvectors must be a matrix [d, m]; got {got}")
    if not isinstance(f, Tensor) or f.shape != (eigenvectors.shape[1],):
        got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
        raise ValueError(
            f"f must have one entry per eigenvector column, shape [{eigenvectors.shape[1]}]; "
            f"got {got}"
        )
    v = eigenvectors.detach().to("cpu", torch.float64)
    f = f.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(f).all()) or bool((f < 0).any()):
        raise ValueError("f must be finite and non-negative")
    out = (v * f**2) @ v.T
    return (out + out.T) / 2
