"""Pure analysis functions of SPEC section 2: covariances, alignment, f, filter images.

    from randlabels.analysis import patch_covariance, weight_covariance, misalignment_report
    sigma_x = patch_covariance(images, 3)                 # Sigma_x of 3x3 patches, d = 27
    sigma_w = weight_covariance([w_seed0, w_seed1])       # Sigma_w pooled over seeds
    report = misalignment_report(sigma_w, sigma_x)        # report.ratio < 1: aligned

Tensors in, tensors or small dataclasses out; no file I/O, no global state.
"""

from .alignment import (
    MisalignmentResult,
    check_compatible,
    covariance_from_f,
    eigenvalue_function,
    eigenvector_overlap,
    haar_bases,
    misalignment,
    misalignment_report,
)
from .covariance import (
    Covariance,
    CovarianceAccumulator,
    layer_input_covariance,
    patch_covariance,
    weight_covariance,
)
from .filters import filter_images
from .model_alignment import LayerAlignment, align_models

__all__ = [
    "Covariance",
    "CovarianceAccumulator",
    "LayerAlignment",
    "MisalignmentResult",
    "align_models",
    "check_compatible",
    "covariance_from_f",
    "eigenvalue_function",
    "eigenvector_overlap",
    "filter_images",
    "haar_bases",
    "layer_input_covariance",
    "misalignment",
    "misalignment_report",
    "patch_covariance",
    "weight_covariance",
]
