"""The model simulators live in :mod:`custval.datasets` (public, documented); this module
re-exports them for the benchmarks and for branches written before they moved."""

from __future__ import annotations

from custval.datasets import (
    simulate_beta_geo,
    simulate_beta_geo_covariates,
    simulate_cnbd,
    simulate_gamma_gamma,
)

__all__ = [
    "simulate_beta_geo",
    "simulate_beta_geo_covariates",
    "simulate_cnbd",
    "simulate_gamma_gamma",
]
