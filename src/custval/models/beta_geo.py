"""BG/NBD: the beta-geometric/negative binomial distribution model.

Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
Pareto/NBD Model", Marketing Science 24(2), 275-284. Equation numbers refer to that paper.

While alive, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``; after
each purchase they drop out with probability ``p ~ Beta(a, b)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, gammaln

from custval.models._base import BaseModel

__all__ = ["BetaGeoModel"]


class BetaGeoModel(BaseModel):
    """BG/NBD model of repeat purchasing in non-contractual settings.

    Parameters
    ----------
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Examples
    --------
    >>> import custval
    >>> summary = custval.rfm_summary(custval.load_sample().transactions, freq="W")
    >>> model = custval.BetaGeoModel().fit(summary)  # doctest: +SKIP
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    _data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    _display_name: ClassVar[str] = "BG/NBD model"

    def _validate_data(self, data: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
        self._check_frequency_recency(data, frame)

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        rate = max(np.dot(weights, data["frequency"]), 1.0) / max(np.dot(weights, data["T"]), 1e-9)
        return np.array([1.0, 1.0 / rate, 1.0, 1.0])

    def _loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        # Eq. (6): L = B(a,b+x)/B(a,b) G(r+x) a^r / (G(r) (alpha+T)^(r+x))
        #            + 1{x>0} B(a+1,b+x-1)/B(a,b) G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))
        r, alpha, a, b = params
        x, t_x, big_t = data["frequency"], data["recency"], data["T"]
        repeat = x > 0
        x1 = np.where(repeat, x, 1.0)  # keeps b + x - 1 > 0 where the term is unused
        log_alpha_t, log_alpha_tx = np.log(alpha + big_t), np.log(alpha + t_x)
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        term_t = betaln(a, b + x) - betaln(a, b) - (r + x) * log_alpha_t
        term_tx = np.where(
            repeat, betaln(a + 1, b + x1 - 1) - betaln(a, b) - (r + x) * log_alpha_tx, -np.inf
        )
        log_sum = np.logaddexp(term_t, term_tx)
        ll = common + log_sum
        w_t = np.exp(term_t - log_sum)  # share of each term in the sum
        w_tx = 1.0 - w_t
        psi_abx = digamma(a + b + x)
        grad = np.empty((len(x), 4))
        grad[:, 0] = (
            digamma(r + x) - digamma(r) + np.log(alpha) - w_t * log_alpha_t - w_tx * log_alpha_tx
        )
        grad[:, 1] = r / alpha - (r + x) * (w_t / (alpha + big_t) + w_tx / (alpha + t_x))
        d_betaln_ab_a, d_betaln_ab_b = digamma(a) - digamma(a + b), digamma(b) - digamma(a + b)
        grad[:, 2] = (
            w_t * (digamma(a) - psi_abx) + w_tx * (digamma(a + 1) - psi_abx) - d_betaln_ab_a
        )
        grad[:, 3] = (
            w_t * (digamma(b + x) - psi_abx)
            + w_tx * (digamma(b + x1 - 1) - psi_abx)
            - d_betaln_ab_b
        )
        return ll, grad

    def _loglik(self, params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        return self._loglik_grad(params, data)[0]
