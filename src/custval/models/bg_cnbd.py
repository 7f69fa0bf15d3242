"""BG/CNBD-k: the beta-geometric / condensed negative binomial model of regular buyers.

Reutterer, Platzer & Schröder (2021), "Leveraging purchase regularity for predicting customer
behavior the easy way", International Journal of Research in Marketing 38(1), 194-215 (RPS);
implemented in R's BTYDplus as ``bgcnbd.*`` / ``mbgcnbd.*`` (Platzer). Like the BG/NBD, except
that while alive a customer's inter-purchase times are Erlang-k (gamma with integer shape
``k``) with rate ``lambda ~ Gamma(r, alpha)``: ``k = 1`` is the BG/NBD, larger ``k`` buyers are
more regular (every ``k``-th event of a Poisson process of rate ``lambda`` is a purchase, so the
purchase rate is ``lambda / k``). After each repeat purchase the customer drops out with
probability ``p ~ Beta(a, b)``; the MBG/CNBD-k (:mod:`custval.models.mbg_cnbd`, shift ``m = 1``)
also lets them drop out right after their first purchase, as the MBG/NBD does.

Likelihood (RPS's (M)BG/CNBD-k likelihood, term by term BTYDplus ``xbgcnbd.LL``; the tests
also integrate the renewal process numerically), with ``n = r + k x`` and
``litt`` the sum of the logs of the ``x`` inter-purchase times::

    log L = (k-1) litt - x log((k-1)!) + log B(a, b+x+m) - log B(a, b)
            + log G(n) - log G(r) + r log(alpha) - n log(alpha+T)
            + log(S + delta * a/(b+x+m-1) * ((alpha+T)/(alpha+t_x))^n)
    S     = sum_{j<k} (n)_j / j! * u^j,   u = (T - t_x) / (alpha + T)

(``delta = 0`` for a BG customer without repeat purchases, else 1). The first line does not
depend on ``r, alpha, a, b``: it is added once after fitting, so fitting compresses on
``(frequency, recency, T)`` alone and ``litt`` matters only for comparing ``k``. The
``j``-th term of ``S`` is, up to the common factor, the posterior weight of the customer being
alive with ``j`` of the ``k`` Poisson events of the next purchase already behind them at ``T``
(the Erlang process is not memoryless; ``S`` is its survival function, integrated over
``lambda``).

Predictions are exact (not BTYDplus' approximations). Given the history and alive at ``T``,
the phase ``J`` has posterior ``P(J = j) = S_j / S``; given ``J = j``, ``lambda ~ Gamma(r+kx+j,
alpha+T)`` and ``p ~ Beta(a, b+x+m)`` independently, so with ``M ~ NBD`` the number of Poisson
events in ``(T, T+t]``, the ``n``-th future purchase happens iff ``M >= nk - j`` and is made iff
the customer survived the ``n - 1`` before it::

    E[X(T, T+t)] = P(alive) sum_j P(J=j) sum_{n>=1} E[(1-p)^(n-1)] P(M >= nk - j)

with ``P(M >= m) = I_z(m, r+kx+j)``, ``z = t/(alpha+T+t)`` (the regularized incomplete beta
function) and ``E[(1-p)^e] = B(a, b+x+m+e)/B(a, b+x+m)``; the series is summed until its terms
are below 1e-15. BTYDplus instead evaluates the BG/NBD formula with ``alpha`` scaled by ``k``
and rescales all customers by the ratio of the unconditional expectations (its
``ConditionalExpectedTransactions``). That approximation ignores the phase: with BTYDplus'
demo parameters (``k = 3, r = 0.85, alpha = 1.45, a = 0.79, b = 2.42``) a customer with 6
repeat purchases, the last at week 26 of 30, expects 3.72 purchases in the next 25 weeks
(posterior simulation agrees to 0.3%), the approximation 3.36 before its cohort-wide rescaling;
the tests check the series against simulation customer by customer and in aggregate. The same
series give P(alive at ``T + t``), the expected purchases of a new customer and
``P(X(t) = n)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.special import betainc, betaln, digamma, expit, gammaln, polygamma
from sklearn.utils.validation import check_is_fitted

from custval._rows import unique_rows as _unique_rows
from custval._validation import bad_values_message, refuse_rows, require_columns, require_numeric
from custval.errors import ConvergenceError, CustvalWarning, DataError
from custval.models._base import BaseModel, TransactionModel
from custval.models._special import digamma_rising, log_rising

__all__ = ["BetaGeoCNBDModel", "estimate_regularity"]

_SERIES_TOL = 35.0  # the series over future purchases stops where terms are below e^-35
_CHUNK = 1 << 21  # rows x terms evaluated at once
_LITT = "litt"


# ---------------------------------------------------------------------------------------------
# Likelihood (RPS; BTYDplus xbgcnbd.LL) and its analytic gradient
# ---------------------------------------------------------------------------------------------
def _phase_sums(n: np.ndarray, u: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``S = sum_{j<k} c_j``, ``sum_j c_j (psi(n+j) - psi(n))`` and ``sum_j j c_j`` with
    ``c_j = (n)_j u^j / j!`` (``c_0 = 1``), by the recursion ``c_j = c_{j-1} (n+j-1) u / j``;
    ``psi(n+j) - psi(n) = sum_{i<j} 1/(n+i)``."""
    c = np.ones_like(n)
    total, d_n, d_j = np.ones_like(n), np.zeros_like(n), np.zeros_like(n)
    harmonic = np.zeros_like(n)
    for j in range(1, k):
        harmonic = harmonic + 1.0 / (n + j - 1.0)
        c = c * (n + j - 1.0) * u / j
        total += c
        d_n += c * harmonic
        d_j += j * c
    return total, d_n, d_j


def _loglik_grad(
    params: np.ndarray, data: Mapping[str, np.ndarray], k: int, *, modified: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood without the ``litt`` term (see the module docstring) and its
    gradient in ``(r, alpha, a, b)``; with ``k = 1`` this is the BG/NBD (MBG/NBD) likelihood.

    Written without cancellation at large parameters (on a ridge ``r, alpha`` or ``a, b`` reach
    1e8 and beyond), as the BG/NBD's (:class:`custval.models.beta_geo._Pieces`):
    ``log G(n) - log G(r)`` and the beta-function ratio as rising factorials
    (:mod:`custval.models._special`), ``r log(alpha) - n log(alpha+T)`` as ``-r log1p(T/alpha)
    - k x log(alpha+T)``, ``log((alpha+T)/(alpha+t_x))`` as ``log1p((T-t_x)/(alpha+t_x))`` and
    ``b + x + m - 1`` with ``b`` added last (exact for tiny ``b``).
    """
    r, alpha, a, b = (float(v) for v in params)
    m = 1.0 if modified else 0.0
    x, t_x, big_t = data["frequency"], data["recency"], data["T"]
    kx = k * x
    n = r + kx
    gap = big_t - t_x
    inv_at = 1.0 / (alpha + big_t)
    inv_atx = 1.0 / (alpha + t_x)
    log_at = np.log(alpha + big_t)
    log1p_t = np.log1p(big_t / alpha)
    log_ratio = np.log1p(gap * inv_atx)
    s, s_n, s_j = _phase_sums(n, gap * inv_at, k)
    log_s = np.log(s)
    shifted = (x + (m - 1.0)) + b  # b + x - 1 (BG), b + x (MBG); exact for tiny b
    second = np.ones_like(x, dtype=bool) if modified else x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(second, math.log(a) - np.log(shifted) + n * log_ratio, -np.inf)
        inv_shifted = np.where(second, 1.0 / shifted, 0.0)
    w = expit(d - log_s)  # posterior probability of having dropped out
    rising_ab = log_rising(a + b, x + m)
    ll = (
        log_rising(r, kx)
        + log_rising(b, x + m)
        - rising_ab
        - r * log1p_t
        - kx * log_at
        + np.logaddexp(log_s, d)
    )
    d_ab = digamma_rising(a + b, x + m)
    grad = np.empty((len(x), 4))
    grad[:, 0] = digamma_rising(r, kx) - log1p_t + (1.0 - w) * s_n / s + w * log_ratio
    # d/d alpha of r log(alpha) - n log(alpha+T) is r T/(alpha (alpha+T)) - k x/(alpha+T)
    grad[:, 1] = (
        r * big_t * inv_at / alpha
        - kx * inv_at
        - (1.0 - w) * s_j / s * inv_at
        - w * n * gap * inv_at * inv_atx
    )
    grad[:, 2] = w / a - d_ab
    grad[:, 3] = digamma_rising(b, x + m) - d_ab - w * inv_shifted
    return ll, grad


def _timing_loglik(x: np.ndarray, litt: np.ndarray, k: int) -> np.ndarray:
    """The Erlang-k timing term ``(k-1) litt - x log((k-1)!)`` (free of the parameters)."""
    return (k - 1) * litt - x * gammaln(k)


# ---------------------------------------------------------------------------------------------
# Predictions: exact series (see the module docstring)
# ---------------------------------------------------------------------------------------------
def _posterior_phases(
    params: np.ndarray, k: int, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, m: float
) -> tuple[np.ndarray, np.ndarray]:
    """P(alive at T | history) per row and the posterior phase weights ``P(J=j | alive)``,
    shape ``(rows, k)`` (BTYDplus ``xbgcnbd.PAlive`` for the first)."""
    r, alpha, a, b = (float(v) for v in params)
    n = r + k * x
    u = (big_t - t_x) / (alpha + big_t)
    terms = np.empty((len(x), k))
    terms[:, 0] = 1.0
    for j in range(1, k):
        terms[:, j] = terms[:, j - 1] * (n + j - 1.0) * u / j
    s = terms.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(a) - np.log(b + x + m - 1.0) + n * (np.log(alpha + big_t) - np.log(alpha + t_x))
    if m == 0.0:
        d = np.where(x > 0, d, -np.inf)
    alive = expit(np.log(s) - d)
    return alive, terms / s[:, None]


def _future_series(
    shape: np.ndarray,
    z: np.ndarray,
    k: int,
    a: float,
    b0: np.ndarray,
    shift: float,
    phases: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, ``sum_j phases[j] sum_{n>=1} w_n I_z(nk - j, shape + j)`` and the same with
    ``w_n - w_{n+1}`` in place of ``w_n``, where ``w_n = B(a, b0+n-1+shift)/B(a, b0)``.

    ``I_z(m, s) = P(M >= m)`` for the negative binomial count ``M`` of events in the horizon
    (``P(M = i) = G(s+i)/(G(s) i!) (1-z)^s z^i``). Its probabilities come from the recursion
    ``P(M = i+1) / P(M = i) = z (s+i)/(i+1)`` in log space, those of shape ``s + 1`` from those
    of shape ``s`` by the factor ``(1-z) (s+i)/s``, and the tails from a reverse cumulative sum
    (relative accuracy in the tail); the weights from ``w_{n+1} / w_n = (b0+n-1+shift) /
    (a+b0+n-1+shift)``: no special function per term. The number of terms covers the count's
    mean plus the larger of 12 standard deviations and its geometric tail to ``e^-35``, so the
    truncation error is far below 1e-12 (the tests compare with the closed forms at ``k = 1``
    to 1e-9, and with posterior simulation for ``k > 1``).
    """
    expected = np.zeros(len(shape))
    survival = np.zeros(len(shape))
    positive = z > 0
    if not np.any(positive):
        return expected, survival
    n_phases = phases.shape[1]
    rows = np.flatnonzero(positive)
    zz = z[rows]
    mean = (shape[rows] + n_phases - 1.0) * zz / (1.0 - zz)
    spread = np.sqrt(mean / (1.0 - zz))
    with np.errstate(divide="ignore"):
        tail = _SERIES_TOL / -np.log(zz)
    events = mean + np.maximum(12.0 * spread, tail) + 10.0
    n_terms = np.ceil((events + n_phases - 1.0) / k).astype(np.int64) + 1
    order = rows[np.argsort(n_terms)]
    sorted_terms = np.sort(n_terms)
    start = 0
    while start < len(order):
        width = int(sorted_terms[start])
        stop = start + max(1, _CHUNK // max(width * k, 1))
        # the block's widest row sets its width: halve the block while that wastes most of it
        while stop - start > 1 and sorted_terms[min(stop, len(order)) - 1] > 2 * width:
            stop = start + (stop - start) // 2
        width = int(sorted_terms[min(stop, len(order)) - 1])
        block = order[start:stop]
        size = width * k + 1  # event counts i = 0 .. width k
        shapes, zb = shape[block][:, None], z[block][:, None]
        steps = np.arange(size, dtype=float)[None, :]
        pmf = np.empty((len(block), size))
        pmf[:, 0] = shape[block] * np.log1p(-z[block])
        pmf[:, 1:] = np.log(zb * (shapes + steps[:, :-1]) / (steps[:, :-1] + 1.0))
        np.cumsum(pmf, axis=1, out=pmf)
        np.exp(pmf, out=pmf)
        base = b0[block] + shift
        weight = np.empty((len(block), width + 1))
        weight[:, 0] = np.exp(betaln(a, base) - betaln(a, b0[block]))
        counts = np.arange(width, dtype=float)[None, :]
        weight[:, 1:] = (base[:, None] + counts) / (a + base[:, None] + counts)
        np.cumprod(weight, axis=1, out=weight)
        drop = weight[:, :-1] - weight[:, 1:]
        purchases = np.arange(1, width + 1)[None, :] * k
        for j in range(n_phases):
            if j:  # shape + j from shape + j - 1
                pmf *= (1.0 - zb) * (shapes + (j - 1.0) + steps) / (shapes + (j - 1.0))
            tails = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]  # P(M >= i)
            tails = tails[:, purchases[0] - j]
            share = phases[block, j]
            expected[block] += share * np.sum(weight[:, :-1] * tails, axis=1)
            survival[block] += share * np.sum(drop * tails, axis=1)
        start = stop
    return expected, survival


def _conditional(
    params: np.ndarray,
    k: int,
    x: np.ndarray,
    t_x: np.ndarray,
    big_t: np.ndarray,
    t: float,
    *,
    modified: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(alive at T), E[purchases in (T, T+t]] and P(alive at T+t), per row (exact series)."""
    r, alpha, a, b = (float(v) for v in params)
    m = 1.0 if modified else 0.0
    alive, phases = _posterior_phases(params, k, x, t_x, big_t, m)
    if t <= 0:
        return alive, np.zeros(len(x)), alive
    z = np.full(len(x), t) / (alpha + big_t + t)
    expected, survival = _future_series(r + k * x, z, k, a, b + x + m, 0.0, phases)
    return alive, alive * expected, alive * (1.0 - survival)


def _conditional_tails(
    params: np.ndarray,
    k: int,
    x: np.ndarray,
    t_x: np.ndarray,
    big_t: np.ndarray,
    t: float,
    counts: np.ndarray,
    *,
    modified: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """P(alive at T) per row and ``G(n) = P(X(T, T+t) >= n | alive at T, history)`` at the
    flat ``counts``, shape ``(rows, len(counts))`` (module docstring)::

        G(n) = B(a, b+x+m+n-1)/B(a, b+x+m) sum_j P(J=j) I_z(nk - j, r+kx+j),  G(0) = 1,

    ``z = t/(alpha+T+t)``: the ``n``-th future purchase needs ``nk - j`` more Poisson events
    and survival of the ``n - 1`` drop-outs before it.
    """
    r, alpha, a, b = (float(v) for v in params)
    m = 1.0 if modified else 0.0
    alive, phases = _posterior_phases(params, k, x, t_x, big_t, m)
    nn = counts[None, :]
    if t <= 0:
        return alive, np.where(nn > 0, 0.0, np.ones((len(x), 1)))
    b0 = (b + x + m)[:, None]
    shape, z = (r + k * x)[:, None], (t / (alpha + big_t + t))[:, None]
    positive = nn > 0
    with np.errstate(invalid="ignore"):
        weight = np.exp(betaln(a, b0 + np.maximum(nn, 1.0) - 1.0) - betaln(a, b0))
        reach = np.zeros((len(x), len(counts)))
        for j in range(k):
            reach += phases[:, j : j + 1] * betainc(np.maximum(nn, 1.0) * k - j, shape + j, z)
    return alive, np.where(positive, weight * reach, 1.0)


def _conditional_probability_of_purchases(
    params: np.ndarray,
    k: int,
    counts: np.ndarray,
    data: Mapping[str, np.ndarray],
    t: float,
    *,
    modified: bool,
) -> np.ndarray:
    """``P(X(T, T+t) = n | x, t_x, T) = P(alive) (G(n) - G(n+1)) + [n = 0] (1 - P(alive))``
    with ``G`` of :func:`_conditional_tails`, once per distinct ``(x, t_x, T)``; shape
    ``(rows, len(counts))``. Exact (the same series as :meth:`expected_purchases`, whose
    ``sum_{n>=1} G(n)`` is this pmf's mean)."""

    def compute(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> tuple:
        both = np.concatenate([counts, counts + 1.0])
        alive, tails = _conditional_tails(params, k, x, t_x, big_t, t, both, modified=modified)
        given_alive = np.clip(tails[:, : len(counts)] - tails[:, len(counts) :], 0.0, 1.0)
        zero = np.where(counts[None, :] == 0, 1.0 - alive[:, None], 0.0)
        return (alive[:, None] * given_alive + zero,)

    return _on_distinct(compute, data["frequency"], data["recency"], data["T"])[0]


def _on_distinct(
    function: Any, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> tuple[np.ndarray, ...]:
    """``function(x, t_x, T)`` evaluated once per distinct row, expanded back."""
    unique, inverse = _unique_rows({"x": x, "t_x": t_x, "T": big_t})
    results = function(unique["x"], unique["t_x"], unique["T"])
    return tuple(values[inverse] for values in results)


def _new_customer_tails(
    params: np.ndarray, k: int, t: np.ndarray, *, modified: bool, counts: np.ndarray | None = None
) -> np.ndarray:
    """``G(n) = P(X(t) >= n)`` of a new customer at counts ``n`` (rows of ``t``), or, with
    ``counts=None``, ``E[X(t)] = sum_{n>=1} G(n)``.

    ``G(n) = E[(1-p)^(n-1+m)] I_{t/(alpha+t)}(nk, r)`` for ``n >= 1`` (the ``n``-th repeat
    purchase happens by ``t`` and the customer was alive to make it), ``G(0) = 1``.
    """
    r, alpha, a, b = (float(v) for v in params)
    m = 1.0 if modified else 0.0
    t = np.asarray(t, dtype=float)
    z = t / (alpha + t)
    if counts is None:
        expected, _ = _future_series(
            np.full(len(t), r), z, k, a, np.full(len(t), b), m, np.ones((len(t), 1))
        )
        return expected
    with np.errstate(invalid="ignore"):
        g = np.exp(betaln(a, b + counts - 1.0 + m) - betaln(a, b)) * betainc(
            np.maximum(counts, 1.0) * k, r, z
        )
    return np.where(counts > 0, g, 1.0)


def _check_litt(summary: pd.DataFrame, data: Mapping[str, np.ndarray], litt: np.ndarray) -> None:
    """``litt`` is 0 without repeat purchases and at most ``x log(recency / x)`` (the mean of
    the logs of the gaps is at most the log of their mean): larger values mean ``litt`` is in
    a finer unit than ``recency`` (e.g. days against weeks)."""
    x, t_x = data["frequency"], data["recency"]
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(x > 0, x * np.log(t_x / x), 0.0)
    bad = (litt > bound + 1e-9 * np.maximum(1.0, np.abs(bound))) | ((x == 0) & (litt != 0))
    if np.any(bad):
        raise DataError(
            bad_values_message(
                summary,
                bad,
                _LITT,
                "values impossible for the frequency and recency (0 without repeat purchases, "
                "at most frequency * log(recency / frequency))",
                "compute litt in the unit of recency and T, e.g. with "
                "custval.rfm_summary(..., include_litt=True)",
            )
        )


# ---------------------------------------------------------------------------------------------
# The model class
# ---------------------------------------------------------------------------------------------
class _CNBDFamily(TransactionModel):
    """Fitting and predictions shared by BG/CNBD-k and MBG/CNBD-k (not used directly)."""

    _param_names: ClassVar[tuple[str, ...]] = ()
    _data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    _modified: ClassVar[bool] = False
    _ftol: ClassVar[float] = 1e-12
    #: the fitted attributes of one fit (kept for the best k when k is chosen)
    _FIT_STATE = (
        "params_",
        "log_likelihood_",
        "n_customers_",
        "n_patterns_",
        "n_iter_",
        "converged_",
        "variance_matrix_",
    )

    def __init__(
        self,
        *,
        k: int | str = "auto",
        k_max: int = 12,
        penalizer_coef: float = 0.0,
        initial_params: Mapping[str, float] | None = None,
        tol: float = 1e-10,
        max_iter: int = 2000,
    ) -> None:
        super().__init__(
            penalizer_coef=penalizer_coef,
            initial_params=initial_params,
            tol=tol,
            max_iter=max_iter,
        )
        self.k = k
        self.k_max = k_max

    # ------------------------------------------------------------------ fitting
    def _candidate_ks(self) -> list[int]:
        if isinstance(self.k, str):
            if self.k != "auto":
                raise DataError(f"k must be a whole number >= 1 or 'auto', got {self.k!r}")
            if not (isinstance(self.k_max, int | np.integer) and 1 <= self.k_max <= 50):
                raise DataError(f"k_max must be a whole number from 1 to 50, got {self.k_max!r}")
            return list(range(1, int(self.k_max) + 1))
        if (
            isinstance(self.k, bool)
            or not isinstance(self.k, int | np.integer | float)
            or self.k != round(self.k)
            or not 1 <= self.k <= 50
        ):
            raise DataError(f"k must be a whole number from 1 to 50 or 'auto', got {self.k!r}")
        return [int(self.k)]

    def _prepare_fit(
        self, summary: pd.DataFrame, weights: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        ks = self._candidate_ks()
        data = self._extract(summary)
        w = self._weights(weights, len(summary))
        litt = np.zeros(len(summary))
        if max(ks) > 1:
            require_columns(
                summary,
                (_LITT,),
                what="summary",
                hint=(
                    f"{self._name()} with k={self.k!r} needs 'litt', the sum of the logs of the "
                    "inter-purchase times: build the summary with custval.rfm_summary(..., "
                    "include_litt=True) (or calibration_holdout_split(..., include_litt=True)), "
                    "or fix k=1"
                ),
            )
            require_numeric(summary, (_LITT,), what="summary")
            litt = summary[_LITT].to_numpy(dtype=float)
            _check_litt(summary, data, litt)
        self._fit_timing = (data["frequency"], litt, w)
        return data, w

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        warm = self.__dict__.get("_warm_start")
        if warm is not None:
            return warm.copy()
        rate = max(np.dot(weights, data["frequency"]), 1.0) / max(np.dot(weights, data["T"]), 1e-9)
        return np.array([1.0, 1.0 / (rate * self._k_fit), 1.0, 1.0])

    def _fit_arrays(self, data: dict[str, np.ndarray], weights: np.ndarray) -> Self:
        x, litt, w = self._fit_timing
        del self._fit_timing
        ks = self._candidate_ks()
        by_k: dict[int, float] = {}
        best: dict[str, Any] | None = None
        self._warm_start = None
        try:
            for k in ks:
                self._k_fit = k
                try:
                    BaseModel._fit_arrays(self, data, weights)
                except ConvergenceError:
                    if best is None:
                        raise
                    warnings.warn(
                        f"{self._name()}: the fit with k={k} did not converge, so the search "
                        f"for k stopped there; the best of k=1..{k - 1} is kept (pass k= to "
                        "fit a given k)",
                        CustvalWarning,
                        stacklevel=4,
                    )
                    break  # as BTYDplus, which stops where a k cannot be estimated
                self.log_likelihood_ += float(np.dot(w, _timing_loglik(x, litt, k)))
                by_k[k] = self.log_likelihood_
                if best is None or self.log_likelihood_ > best["log_likelihood_"]:
                    best = {name: getattr(self, name) for name in self._FIT_STATE} | {"k_": k}
                lls = list(by_k.values())
                if len(lls) >= 3 and lls[-1] < lls[-2] < lls[-3]:
                    break  # the likelihood fell twice in a row (BTYDplus' stopping rule)
                warm = self.params_.to_numpy(dtype=float).copy()
                warm[1] *= k / (k + 1.0)  # the purchase rate is lambda / k
                self._warm_start = warm
        finally:
            self.__dict__.pop("_warm_start", None)
            self.__dict__.pop("_k_fit", None)
        for name, value in best.items():
            setattr(self, name, value)
        self.k_selected_ = len(ks) > 1
        self.k_log_likelihoods_ = pd.Series(by_k, name="log_likelihood", dtype=float).rename_axis(
            "k"
        )
        return self

    def _loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        return _loglik_grad(params, data, self._k_fit, modified=self._modified)

    def _loglik(self, params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        return self._loglik_grad(params, data)[0]

    def _validate_data(self, data: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
        self._check_frequency_recency(data, frame)

    # ------------------------------------------------------------------ fitted views
    @property
    def aic(self) -> float:
        """Akaike information criterion, ``2 n_params - 2 log L``; ``k`` counts as a parameter
        when it was chosen by likelihood (``k="auto"``)."""
        check_is_fitted(self, "params_")
        return 2 * self._n_estimated() - 2 * self.log_likelihood_

    @property
    def bic(self) -> float:
        """Bayesian information criterion, ``n_params ln(n_customers) - 2 log L`` (``k``
        counted as for :attr:`aic`)."""
        check_is_fitted(self, "params_")
        return self._n_estimated() * math.log(self.n_customers_) - 2 * self.log_likelihood_

    def _n_estimated(self) -> int:
        return len(self._param_names) + int(bool(getattr(self, "k_selected_", False)))

    @classmethod
    def from_params(cls, *, k: int = 1, freq: str | None = None, **params: float) -> Self:
        """A model with given ``k`` and parameters (e.g. published ones), ready to predict.

        Examples
        --------
        >>> from custval import ModifiedBetaGeoCNBDModel
        >>> model = ModifiedBetaGeoCNBDModel.from_params(k=2, r=1.0, alpha=2.0, a=0.5, b=2.0)
        >>> model.k_, float(model.params_["alpha"])
        (2, 2.0)
        """
        model = super().from_params(freq=freq, **params)
        model.k = k
        if isinstance(k, str) or len(model._candidate_ks()) != 1:  # validates k
            raise DataError(f"from_params needs a whole number k >= 1, got {k!r}")
        model._set_extra_state({"k": int(k)})
        return model

    def _extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"k": int(self.k_), "k_selected": bool(self.k_selected_)}
        lls = getattr(self, "k_log_likelihoods_", None)
        if lls is not None and len(lls):
            state["k_log_likelihoods"] = {str(int(i)): float(v) for i, v in lls.items()}
        return state

    def _set_extra_state(self, state: Mapping[str, Any]) -> None:
        self.k_ = int(state.get("k", self.k if not isinstance(self.k, str) else 1))
        self.k_selected_ = bool(state.get("k_selected", False))
        lls = state.get("k_log_likelihoods", {})
        self.k_log_likelihoods_ = pd.Series(
            {int(i): float(v) for i, v in lls.items()}, name="log_likelihood", dtype=float
        ).rename_axis("k")

    # ------------------------------------------------------------------ predictions
    def _predict_conditional(self, data: Mapping[str, Any], horizon: Any) -> tuple[np.ndarray, ...]:
        """P(alive at T), E[purchases in (T, T+horizon]], P(alive at T+horizon) per row."""
        if np.ndim(horizon) != 0:
            raise DataError(f"t must be one horizon (a number or a duration), got {horizon!r}")
        horizon = 0.0 if horizon is None else horizon
        params, k, modified = self._params(), self.k_, self._modified

        def compute(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> tuple:
            return _conditional(params, k, x, t_x, big_t, float(horizon), modified=modified)

        return _on_distinct(compute, data["frequency"], data["recency"], data["T"])

    def _expected_purchases(
        self, data: Mapping[str, Any], horizon: Any, summary: Any, customers: Any
    ) -> np.ndarray:
        """The exact conditional expectation ``E[X(T, T+t) | frequency, recency, T]`` (module
        docstring), which accounts for how far each customer is into their next Erlang-k
        inter-purchase time; BTYDplus approximates it with the BG/NBD formula and a bias
        correction (``litt`` is not needed to predict).

        >>> import pandas as pd
        >>> from custval import BetaGeoCNBDModel
        >>> model = BetaGeoCNBDModel.from_params(k=2, r=1.0, alpha=2.0, a=0.5, b=2.0)
        >>> customers = pd.DataFrame({"frequency": [4, 4], "recency": [50.0, 20.0],
        ...                           "T": [52.0, 52.0]})
        >>> model.expected_purchases(customers, 52).round(2).tolist()
        [3.4, 0.08]
        """
        return self._predict_conditional(data, horizon)[1]

    def _probability_alive(
        self, data: Mapping[str, Any], horizon: float | None, summary: Any, customers: Any
    ) -> np.ndarray:
        """``P(alive at T | history)`` is RPS's (BTYDplus ``PAlive``). With ``t > 0`` it is the
        probability of being alive at ``T + t`` whatever the customer does in between (each
        future purchase carries its risk of dropping out), as for
        :meth:`custval.BetaGeoModel.probability_alive`.

        >>> import pandas as pd
        >>> from custval import BetaGeoCNBDModel
        >>> model = BetaGeoCNBDModel.from_params(k=3, r=1.0, alpha=1.0, a=0.5, b=2.0)
        >>> regular = pd.DataFrame({"frequency": [10], "recency": [48.0], "T": [52.0]})
        >>> model.probability_alive(regular).round(3).tolist()
        [0.923]
        """
        alive, _, later = self._predict_conditional(data, horizon)
        return alive if horizon is None else later

    def _conditional_pmf(
        self, counts: np.ndarray, data: Mapping[str, Any], horizon: float
    ) -> np.ndarray:
        """Exact, from the posterior phase of the Erlang-k process and the posterior drop-out
        probability (module docstring; ``_conditional_probability_of_purchases`` of this
        module): ``P(alive) (G(n) - G(n+1))`` plus ``1 - P(alive)`` at ``n = 0``, with ``G(n)
        = E[(1-p)^(n-1)] sum_j P(J=j) I_z(nk-j, r+kx+j)``. BTYDplus has no conditional pmf for
        these models.

        >>> import pandas as pd
        >>> from custval import BetaGeoCNBDModel
        >>> model = BetaGeoCNBDModel.from_params(k=2, r=1.0, alpha=2.0, a=0.5, b=2.0)
        >>> customer = pd.DataFrame({"frequency": [4], "recency": [50.0], "T": [52.0]})
        >>> model.probability_of_purchases(customer, [0, 1, 2], 52).round(3).values.tolist()
        [[0.104, 0.117, 0.155]]
        """
        return _conditional_probability_of_purchases(
            self._params(), self.k_, counts, data, horizon, modified=self._modified
        )

    def _new_customer_pmf(self, params: np.ndarray, counts: np.ndarray, horizon: float) -> Any:
        """``P(X(t) >= n) - P(X(t) >= n+1)`` with ``P(X(t) >= n) = E[(1-p)^(n-1+m)]
        I_{t/(alpha+t)}(nk, r)`` (BTYDplus ``pmf``).

        >>> from custval import BetaGeoCNBDModel
        >>> model = BetaGeoCNBDModel.from_params(k=2, r=1.0, alpha=2.0, a=0.5, b=2.0)
        >>> round(model.probability_of_purchases_new_customer(0, 52), 4)
        0.0727
        """
        flat = np.ravel(counts).astype(float)
        t_rows = np.full(len(flat), horizon)
        tails = [
            _new_customer_tails(params, self.k_, t_rows, modified=self._modified, counts=c)
            for c in (flat, flat + 1.0)
        ]
        return np.clip(tails[0] - tails[1], 0.0, 1.0).reshape(counts.shape)

    def _new_customer_mean(self, params: np.ndarray, horizon: Any) -> Any:
        """Expected repeat purchases of a newly acquired customer in their first ``t`` periods.

        ``sum_{n>=1} P(X(t) >= n)`` (BTYDplus ``Expectation``).

        >>> from custval import BetaGeoCNBDModel
        >>> model = BetaGeoCNBDModel.from_params(k=2, r=1.0, alpha=2.0, a=0.5, b=2.0)
        >>> round(model.expected_purchases_new_customer(52), 3)
        5.997
        """
        return _new_customer_tails(
            params, self.k_, np.atleast_1d(horizon).ravel(), modified=self._modified
        )

    def log_likelihood(self, summary: pd.DataFrame) -> pd.Series:
        """Each customer's log-likelihood at the fitted parameters and ``k_``.

        The likelihood ``fit`` maximises (module docstring), including the Erlang-k timing term
        of ``litt`` (needed for ``k_ > 1``); it sums to ``log_likelihood_`` on the fitting
        summary.

        Parameters
        ----------
        summary : DataFrame
            Customers with ``frequency``, ``recency``, ``T`` (and ``litt`` for ``k_ > 1``).

        Returns
        -------
        Series
            ``log_likelihood``, aligned with ``summary.index``.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import BetaGeoCNBDModel
        >>> model = BetaGeoCNBDModel.from_params(k=1, r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> customers = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 30.4], "T": 38.9})
        >>> model.log_likelihood(customers).round(3).tolist()
        [-0.555, -9.46]
        """
        data = self._prediction_data(summary)
        k = int(self.k_)
        litt = np.zeros(len(summary))
        if k > 1:
            require_columns(
                summary,
                (_LITT,),
                what="summary",
                hint=f"the likelihood of k={k} needs 'litt' (custval.rfm_summary(..., "
                "include_litt=True))",
            )
            require_numeric(summary, (_LITT,), what="summary")
            litt = summary[_LITT].to_numpy(dtype=float)
        values = _loglik_grad(self._params(), data, k, modified=self._modified)[0]
        values = values + _timing_loglik(data["frequency"], litt, k)
        return self._series(values, summary, "log_likelihood")

    # -- the value-kernel contract of custval.clv (README "Design notes") ----------------------
    def _value_kernel(self, terms: Any) -> Any:
        """The CNBD-k kernel for :func:`custval.customer_lifetime_value`: the generic
        quadrature with every time's expected purchases in one vectorized call."""
        from custval.models._cnbd_clv import CNBDKernel

        return CNBDKernel(self, terms)


class BetaGeoCNBDModel(_CNBDFamily):
    """BG/CNBD-k model of regular repeat purchasing (Reutterer, Platzer & Schröder 2021).

    While alive a customer's inter-purchase times are Erlang-k with rate
    ``lambda ~ Gamma(r, alpha)`` (mean inter-purchase time ``k / lambda``); after each repeat
    purchase they drop out with probability ``p ~ Beta(a, b)``. ``k = 1`` is the BG/NBD
    (:class:`custval.BetaGeoModel`, to 1e-8); ``k = "auto"`` fits ``k = 1, 2, ...`` and keeps
    the ``k`` of highest likelihood (BTYDplus' search, stopping when the likelihood falls twice
    in a row). Fitted by maximum likelihood with the analytic gradient on the distinct
    ``(frequency, recency, T)`` patterns.

    Parameters
    ----------
    k : int or "auto", default "auto"
        Regularity (Erlang shape). Fitting with ``k > 1`` or ``"auto"`` needs the summary's
        ``litt`` column (``custval.rfm_summary(..., include_litt=True)``).
    k_max : int, default 12
        Largest ``k`` tried by ``k="auto"``.
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Attributes
    ----------
    params_ : Series
        ``r``, ``alpha`` (in the summary's time unit), ``a``, ``b``.
    k_ : int
        The regularity used (fixed or chosen).
    k_log_likelihoods_ : Series
        Log-likelihood (with the ``litt`` term) of each ``k`` fitted, indexed by ``k``.
    log_likelihood_, n_customers_, n_patterns_, variance_matrix_, freq_
        See :class:`custval.models._base.BaseModel` (``variance_matrix_`` is given ``k``);
        ``summary``, ``aic`` and ``bic`` too (``k`` counts as a parameter when chosen).

    Examples
    --------
    >>> import custval
    >>> summary = custval.rfm_summary(log, freq="D", include_litt=True)  # doctest: +SKIP
    >>> model = custval.BetaGeoCNBDModel().fit(summary)  # doctest: +SKIP
    >>> model.k_, model.k_log_likelihoods_  # doctest: +SKIP

    >>> import pandas as pd
    >>> model = custval.BetaGeoCNBDModel.from_params(k=3, r=0.85, alpha=1.45, a=0.79, b=2.42)
    >>> round(model.expected_purchases_new_customer(32), 2)
    2.97
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    _display_name: ClassVar[str] = "BG/CNBD-k model"
    _modified: ClassVar[bool] = False


# ---------------------------------------------------------------------------------------------
# The regularity diagnostic (BTYDplus estimateRegularity)
# ---------------------------------------------------------------------------------------------
_REGULARITY_METHODS = ("wheat", "mle", "mle-minka", "mle-thom", "cv")


def _purchase_times(
    transactions: pd.DataFrame, customer_id: str, timestamp: str
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct purchase times (days for datetimes) sorted by customer and time, with the
    customer code of each."""
    require_columns(
        transactions,
        (customer_id, timestamp),
        what="transactions",
        hint="pass customer_id= and timestamp= to name your columns",
    )
    column = transactions[timestamp]
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = pd.to_datetime(column)
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_localize(None)
        missing = stamps.isna().to_numpy()
        times = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 86_400e9
    else:
        require_numeric(transactions, (timestamp,), what="transactions", finite=False)
        times = column.to_numpy(dtype=float)
        missing = ~np.isfinite(times)
    refuse_rows(
        transactions,
        missing,
        timestamp,
        "missing times",
        "drop those rows or fill in their purchase times",
    )
    codes, _ = pd.factorize(transactions[customer_id], use_na_sentinel=False)
    order = np.lexsort((times, codes))
    codes, times = codes[order], times[order]
    new = np.ones(len(codes), dtype=bool)
    new[1:] = (codes[1:] != codes[:-1]) | (times[1:] != times[:-1])
    return codes[new], times[new]


def _gamma_shape_mle(s: np.ndarray) -> np.ndarray:
    """Solve ``log k - digamma(k) = s`` (the gamma shape's maximum-likelihood equation) by
    Newton's method from Minka's approximation, within BTYDplus' search range [0.1, 50] (50
    for a customer whose inter-purchase times are all equal, ``s = 0``)."""
    s = np.maximum(s, 1e-12)
    k = np.clip((3.0 - s + np.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s), 0.1, 50.0)
    for _ in range(50):
        f = np.log(k) - digamma(k) - s
        step = f / (1.0 / k - polygamma(1, k))
        k = np.clip(k - step, 0.1, 50.0)
        if np.all(np.abs(step) < 1e-12 * k):
            break
    return k


def estimate_regularity(
    transactions: pd.DataFrame,
    *,
    customer_id: str = "customer_id",
    timestamp: str = "timestamp",
    method: str = "wheat",
    min_intervals: int | None = None,
) -> float:
    """How regular customers' inter-purchase times are, as the shape ``k`` of a gamma (Erlang)
    distribution: about 1 for Poisson-like buying, larger for regular buyers.

    The diagnostic BTYDplus offers (``estimateRegularity``) before fitting the regularity models
    (:class:`BetaGeoCNBDModel`, :class:`ModifiedBetaGeoCNBDModel`; round it to choose ``k``).

    - ``"wheat"`` (Wheat & Morrison 1990, "Estimating purchase regularity with two interpurchase
      times", Journal of Marketing Research 27(1), 87-93): with the last two inter-purchase
      times of each customer, ``M = ITT_1 / (ITT_1 + ITT_2)`` is ``Beta(k, k)`` whatever the
      customer's rate, so ``k = (1 - 4 Var(M)) / (8 Var(M))``. Needs 3 purchases per customer.
      BTYDplus takes one of the two orders at random; custval pools both orders (``M`` and
      ``1 - M``, the same distribution), which is deterministic and no less precise.
    - ``"mle"``, ``"mle-minka"``, ``"mle-thom"``, ``"cv"``: a gamma shape per customer (maximum
      likelihood; Minka's approximation to it; Thom's approximation, Dunn, Reader & Wrigley
      1983; ``1 / CV^2``, Wu & Chen 2000) and their median. Need 11 purchases per customer.

    Parameters
    ----------
    transactions : DataFrame
        One row per purchase; repeated times of a customer count once. Not modified.
    customer_id, timestamp : str, default "customer_id", "timestamp"
        Column names. Times are datetimes or numbers (any unit: ``k`` has none).
    method : {"wheat", "mle", "mle-minka", "mle-thom", "cv"}, default "wheat"
        The estimator.
    min_intervals : int, optional
        Customers need more than this many purchases to count (BTYDplus' ``min``): default 2
        for ``"wheat"`` and 10 otherwise.

    Returns
    -------
    float
        The estimated regularity ``k``.

    Raises
    ------
    DataError
        Missing columns or times, an unknown method, or no customer with enough purchases.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from custval import estimate_regularity
    >>> rng = np.random.default_rng(0)
    >>> gaps = rng.gamma(3.0, 1.0, size=(2000, 3)) / rng.gamma(2.0, 1.0, size=(2000, 1))
    >>> log = pd.DataFrame({"customer_id": np.repeat(np.arange(2000), 4),
    ...                     "timestamp": np.hstack([np.zeros((2000, 1)),
    ...                                             gaps.cumsum(axis=1)]).ravel()})
    >>> round(estimate_regularity(log), 1)
    3.0
    """
    if method not in _REGULARITY_METHODS:
        raise DataError(f"method must be one of {list(_REGULARITY_METHODS)}, got {method!r}")
    minimum = (2 if method == "wheat" else 10) if min_intervals is None else min_intervals
    if isinstance(minimum, bool) or not isinstance(minimum, int | np.integer) or minimum < 2:
        raise DataError(f"min_intervals must be a whole number >= 2, got {min_intervals!r}")
    codes, times = _purchase_times(transactions, customer_id, timestamp)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    sizes = np.diff(np.r_[starts, len(codes)])
    kept = sizes > minimum
    if not kept.any():
        raise DataError(
            f"estimate_regularity(method={method!r}) needs customers with more than {minimum} "
            f"distinct purchase times; the most any customer has is "
            f"{int(sizes.max()) if len(sizes) else 0}: pass a longer log (or, for the per-"
            "customer methods, method='wheat', which needs 3)"
        )
    if method == "wheat":
        ends = (starts + sizes - 1)[kept]
        last, before = times[ends] - times[ends - 1], times[ends - 1] - times[ends - 2]
        share = last / (last + before)
        deviations = np.concatenate([share - 0.5, 0.5 - share])  # M and 1 - M: mean 1/2
        variance = float(np.sum(deviations**2) / (len(deviations) - 1))
        if variance <= 0:
            raise DataError(
                "every customer's last two inter-purchase times are equal, so regularity "
                "cannot be estimated (Var(M) = 0); check the timestamps"
            )
        return (1.0 - 4.0 * variance) / (8.0 * variance)
    # customer codes are 0 .. n-1 and sorted, so ``kept`` (one entry per customer) is indexed
    # by code; the inter-purchase times of the customers kept:
    within = codes[1:] == codes[:-1]
    gaps, owners = np.diff(times)[within], codes[1:][within]
    chosen = kept[owners]
    gaps, owners = gaps[chosen], owners[chosen]
    n = np.bincount(owners, minlength=len(kept))[kept].astype(float)
    mean = np.bincount(owners, weights=gaps, minlength=len(kept))[kept] / n
    mean_log = np.bincount(owners, weights=np.log(gaps), minlength=len(kept))[kept] / n
    s = np.maximum(np.log(mean) - mean_log, 0.0)  # >= 0 (AM-GM); 0 for equal times
    with np.errstate(divide="ignore", invalid="ignore"):  # equal times: k = inf
        if method == "mle":
            ks = _gamma_shape_mle(s)
        elif method == "mle-minka":
            ks = (3.0 - s + np.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
        elif method == "mle-thom":
            ks = (1.0 + np.sqrt(1.0 + 4.0 * s / 3.0)) / (4.0 * s)
        else:
            squares = np.bincount(owners, weights=gaps**2, minlength=len(kept))[kept]
            variance = np.maximum(squares - n * mean**2, 0.0) / (n - 1.0)
            ks = mean**2 / variance
    return float(np.median(ks))
