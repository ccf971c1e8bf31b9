"""Transfer after random-label pre-training: weight rescaling and covariance initialization.

from randlabels.transfer import rescale_to_init_norm_, covariance_init_
rescale_to_init_norm_(model, init_state)           # SPEC 2.6, every layer back to its initial norm
covariance_init_(model.conv, sigma_w, mean=mu_w)    # SPEC 2.7, filters ~ N(mu_w, Sigma_w)
"""

from .init import covariance_init_, data_covariance_init_, rescale_to_init_norm_

__all__ = ["covariance_init_", "data_covariance_init_", "rescale_to_init_norm_"]
