"""Models at published or representative parameters, and the gradient check, shared by tests."""

from __future__ import annotations

import numpy as np
from scipy.optimize import check_grad

from custval import (
    BetaGeoCNBDModel,
    BetaGeoModel,
    GammaGompertzNBDModel,
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)

PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}  # FHL 2005, CDNOW weeks
# Every continuous-time transaction model, in weeks (BG/NBD: FHL 2005; MBG/NBD: Batislam et al.)
TRANSACTION_MODELS = {
    "BG/NBD": lambda: BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, freq="W"),
    "MBG/NBD": lambda: ModifiedBetaGeoModel.from_params(
        r=0.525, alpha=6.183, a=0.891, b=1.614, freq="W"
    ),
    "Pareto/NBD": lambda: ParetoNBDModel.from_params(**PARETO, freq="W"),
    "GGom/NBD": lambda: GammaGompertzNBDModel.from_params(
        r=0.8, alpha=5.0, b=0.05, s=1.5, beta=3.0, freq="W"
    ),
    "BG/CNBD-2": lambda: BetaGeoCNBDModel.from_params(
        k=2, r=1.0, alpha=2.0, a=0.5, b=2.0, freq="W"
    ),
    "MBG/CNBD-3": lambda: ModifiedBetaGeoCNBDModel.from_params(
        k=3, r=0.9, alpha=3.0, a=0.7, b=2.5, freq="W"
    ),
}


def assert_weighted_gradient(model, data, weights: np.ndarray) -> None:
    """check_grad of the weighted log-likelihood at the model's parameters; the per-row terms
    (``_loglik_grad``) sum with the weights to the weighted ones."""
    start = model.params_.to_numpy()

    def total(p):
        return model._weighted_loglik_grad(p, data, weights)[0]

    def gradient(p):
        return model._weighted_loglik_grad(p, data, weights)[1]

    assert check_grad(total, gradient, start, epsilon=1e-7) < 1e-4 * np.abs(gradient(start)).max()
    ll, grad = model._loglik_grad(start, data)
    np.testing.assert_allclose(weights @ ll, total(start), rtol=1e-12)
    np.testing.assert_allclose(weights @ grad, gradient(start), rtol=1e-9)
