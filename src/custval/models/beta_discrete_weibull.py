"""BdW: the beta-discrete-Weibull model of retention with duration dependence.

Fader, Hardie, Liu, Davin & Steenburgh (2018), "'How to Project Customer Retention' Revisited:
The Role of Duration Dependence", Journal of Interactive Marketing 43, 1-16 (FHLDS18).

The sBG (:mod:`custval.models.shifted_beta_geo`) lets each customer churn with a constant
probability ``theta`` per period. The BdW replaces the geometric lifetime by a discrete Weibull
(Nakagawa & Osaki 1975): a customer with ``theta`` is still active after ``t`` periods with
probability ``(1 - theta)^(t^c)``, so their churn probability rises over time where ``c > 1`` and
falls where ``c < 1``; ``theta ~ Beta(alpha, beta)`` across customers as in the sBG. Then
(FHLDS18, eq. 4-6)::

    S(t) = P(T > t) = B(alpha, beta + t^c) / B(alpha, beta)
    P(T = t) = S(t-1) - S(t)  (t >= 1)
    r(t) = S(t) / S(t-1)  (retention rate)

and ``c = 1`` is the sBG. A cohort is observed as the number of customers active at the start of
each period, as for the sBG: the customers lost in period ``t`` contribute ``log P(T = t)``, those
still active at the end ``log S(t)`` (right-censored).

The gradient follows from ``d log S(t) = (psi(alpha+beta) - psi(alpha+beta+u),
psi(beta+u) - psi(alpha+beta+u) - psi(beta) + psi(alpha+beta), [psi(beta+u) - psi(alpha+beta+u)]
u log t)`` with ``u = t^c``, and ``log P(T = t) = log S(t-1) + log(1 - rho)`` with
``rho = S(t) / S(t-1)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from custval.errors import DataError
from custval.models._special import digamma_rising, log_rising
from custval.models.shifted_beta_geo import ShiftedBetaGeoModel

__all__ = ["BetaDiscreteWeibullModel"]

_MAX_TERMS = 5_000_000  # DERL sums at most this many periods (discount rates above ~1e-5)


def _log_survival_grad(params: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log S(t)`` (FHLDS18 eq. 5) and its gradient in (alpha, beta, c), ``(n,)``, ``(3, n)``.

    ``log B(alpha, beta+u) - log B(alpha, beta) = log (beta)_u - log (alpha+beta)_u`` (rising
    factorials, :mod:`custval.models._special`), so that nothing cancels where ``alpha, beta``
    grow together (customers without heterogeneity); ``S <= 1`` holds exactly.
    """
    alpha, beta, c = params
    t = np.asarray(t, dtype=float)
    positive = t > 0
    log_t = np.log(np.where(positive, t, 1.0))
    u = np.where(positive, np.exp(c * log_t), 0.0)
    d_ab = digamma_rising(alpha + beta, u)
    d_b = digamma_rising(beta, u)
    log_s = np.minimum(log_rising(beta, u) - log_rising(alpha + beta, u), 0.0)
    grad = np.empty((3, t.shape[0]))
    grad[0] = -d_ab
    grad[1] = d_b - d_ab
    # psi(beta+u) - psi(alpha+beta+u) = -(psi(beta+u+alpha) - psi(beta+u))
    grad[2] = -digamma_rising(beta + u, alpha) * u * log_t
    return log_s, grad


def _loglik_grad(
    params: np.ndarray, data: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood and gradient in (alpha, beta, c), ``(n,)`` and ``(n, 3)``.

    Rows are ``(period t, censored)``: ``log P(T = t) = log(S(t-1) - S(t))`` for churn in
    period ``t``, ``log S(t)`` for customers still active after period ``t`` (FHLDS18 eq. 7).
    ``log rho = log S(t) - log S(t-1) = log (beta+v)_du - log (alpha+beta+v)_du`` with
    ``v = (t-1)^c``, ``du = t^c - (t-1)^c`` is taken directly (no difference of two logs).
    """
    t, censored = data["period"], data["censored"] > 0
    alpha, beta, c = params
    log_s, grad_s = _log_survival_grad(params, t)
    log_prev, grad_prev = _log_survival_grad(params, t - 1.0)
    # log(S(t-1) - S(t)) = log S(t-1) + log(1 - rho), rho = S(t)/S(t-1) < 1
    prev = t - 1.0
    v = np.where(prev > 0, np.exp(c * np.log(np.where(prev > 0, prev, 1.0))), 0.0)
    du = np.maximum(np.exp(c * np.log(np.maximum(t, 1.0))) - v, 0.0)
    log_rho = np.minimum(log_rising(beta + v, du) - log_rising(alpha + beta + v, du), 0.0)
    with np.errstate(divide="ignore"):
        churn = log_prev + np.log(-np.expm1(log_rho))
    rho = np.exp(log_rho)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad_churn = (grad_prev - rho * grad_s) / (-np.expm1(log_rho))
    ll = np.where(censored, log_s, churn)
    grad = np.where(censored, grad_s, grad_churn)
    return ll, grad.T


def _survival(params: np.ndarray, t: Any) -> np.ndarray:
    """``S(t) = B(alpha, beta + t^c) / B(alpha, beta)`` (FHLDS18 eq. 5)."""
    t = np.asarray(t, dtype=float)
    return np.exp(_log_survival_grad(params, t.ravel())[0]).reshape(t.shape)


def _retention_rate(params: np.ndarray, t: Any) -> np.ndarray:
    """``r(t) = S(t)/S(t-1)`` (FHLDS18 eq. 6). With ``c > 1`` it may first fall and then rise
    (a U-shaped retention curve); it rises for ``c <= 1``.

    >>> from custval import BetaDiscreteWeibullModel
    >>> model = BetaDiscreteWeibullModel.from_params(alpha=0.7, beta=1.2, c=1.3)
    >>> model.survival([0, 1, 7]).round(3).tolist()
    [1.0, 0.632, 0.169]
    >>> model.retention_rate([1, 2, 12]).round(3).tolist()
    [0.632, 0.688, 0.927]
    """
    return _survival(params, t) / _survival(params, t - 1.0)


def _churn_probability(params: np.ndarray, t: Any) -> np.ndarray:
    """``P(T = t) = S(t-1) - S(t)``.

    >>> from custval import BetaDiscreteWeibullModel
    >>> model = BetaDiscreteWeibullModel.from_params(alpha=0.7, beta=1.2, c=1.3)
    >>> model.churn_probability([1, 2]).round(3).tolist()
    [0.368, 0.197]
    """
    return _survival(params, t - 1.0) - _survival(params, t)


def _discounted_expected_residual_lifetime(
    params: np.ndarray, discount_rate: float, renewals: np.ndarray
) -> np.ndarray:
    """``DERL = sum_k S(n+k)/S(n-1) (1+d)^-k`` after ``n - 1`` renewals (the sBG's definition,
    FH10), summed until ``(1+d)^-k`` is below 1e-17 of the first term (``S`` is at most 1)."""
    n = np.asarray(renewals, dtype=float).ravel() + 1.0
    n_terms = math.ceil(39.2 / math.log1p(discount_rate)) + 1
    if n_terms > _MAX_TERMS:
        raise DataError(
            f"discount_rate {discount_rate!r} per period is too small for the BdW's DERL, which "
            f"is summed period by period ({n_terms:,} periods would be needed); give a rate of "
            "at least 1e-5 per period"
        )
    k = np.arange(n_terms, dtype=float)
    discount = -k * math.log1p(discount_rate)
    out = np.empty(n.shape[0])
    for i, first in enumerate(n):
        log_terms = _log_survival_grad(params, first + k)[0] + discount
        log_terms -= _log_survival_grad(params, np.array([first - 1.0]))[0][0]
        top = log_terms.max()
        out[i] = math.exp(top) * float(np.exp(log_terms - top).sum())
    return out


class BetaDiscreteWeibullModel(ShiftedBetaGeoModel):
    """BdW model of customer retention with duration dependence (contractual settings).

    Fader, Hardie, Liu, Davin & Steenburgh (2018): the sBG with a discrete-Weibull lifetime, so
    that each customer's churn probability may rise (``c > 1``) or fall (``c < 1``) with
    tenure; ``c = 1`` is the sBG. Fitted by maximum likelihood with its analytic gradient on one
    or several cohorts of active customers, exactly like :class:`ShiftedBetaGeoModel` (same
    input, same fit signature, including cohort-level covariates on ``alpha`` and ``beta`` with
    ``c`` shared, and :meth:`for_cohort`).

    Parameters
    ----------
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Attributes
    ----------
    params_ : Series
        ``alpha``, ``beta`` of the beta distribution of ``theta`` and the Weibull shape ``c``.
    log_likelihood_, n_customers_, n_patterns_, variance_matrix_, n_cohorts_
        As for :class:`ShiftedBetaGeoModel`; ``summary``, ``aic`` and ``bic`` too.

    Examples
    --------
    >>> from custval import BetaDiscreteWeibullModel
    >>> regular = [1000, 631, 468, 382, 326, 289, 262, 241]
    >>> model = BetaDiscreteWeibullModel().fit(regular)
    >>> model.params_.round(2).tolist()
    [0.46, 0.78, 1.28]
    >>> bdw = BetaDiscreteWeibullModel.from_params(alpha=0.7, beta=1.2, c=1.3)
    >>> round(bdw.discounted_expected_lifetime(0.1), 3)
    3.159
    >>> round(bdw.discounted_expected_residual_lifetime(0.1, renewals_so_far=4), 2)
    4.84
    """

    _param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "c")
    _display_name: ClassVar[str] = "BdW model"
    #: no closed form for ``c != 1``: the DERL summed period by period
    _derl = staticmethod(_discounted_expected_residual_lifetime)

    def _row_loglik_grad(
        self, params: Any, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        return _loglik_grad(params, data)

    # ------------------------------------------------------------------ predictions
    #: S(t) of FHLDS18 eq. 5; the retention rate (eq. 6) and churn probability follow from it
    _survival_of = staticmethod(_survival)
    _retention_of = staticmethod(_retention_rate)
    _churn_of = staticmethod(_churn_probability)

    def expected_lifetime(self, renewals_so_far: Any = None) -> float | pd.Series:
        """Not available for the BdW: its mean lifetime has no closed form (and is infinite
        where ``c alpha <= 1``); use :meth:`discounted_expected_lifetime` or :meth:`survival`.

        Raises
        ------
        DataError
            Always.

        Examples
        --------
        >>> from custval import BetaDiscreteWeibullModel
        >>> model = BetaDiscreteWeibullModel.from_params(alpha=0.7, beta=1.2, c=1.3)
        >>> model.expected_lifetime()  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        custval.errors.DataError: the BdW model's mean lifetime has no closed form
        """
        raise DataError(
            "the BdW model's mean lifetime has no closed form (it is infinite where "
            "c * alpha <= 1); use discounted_expected_lifetime(rate) with a small rate, or "
            "survival(t), or ShiftedBetaGeoModel.expected_lifetime for the sBG"
        )
