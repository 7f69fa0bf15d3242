"""BG/NBD: the beta-geometric/negative binomial distribution model.

Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
Pareto/NBD Model", Marketing Science 24(2), 275-284 (FHL). Equation numbers refer to that paper;
P(alive) follows Hardie's note 021 ("Computing P(alive) Using the BG/NBD Model", 2008).

While alive, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``; after
each purchase they drop out with probability ``p ~ Beta(a, b)``.

This module also holds the mathematics shared with the MBG/NBD (Batislam, Denizel & Filiztekin
2007, :mod:`custval.models.modified_beta_geo`), which differs only in that a customer may also
drop out right after their *first* purchase (time 0). Written with a shift ``m`` (0 for BG/NBD,
1 for MBG/NBD) the two models share every formula: ``b + x - 1 -> b + x - 1 + m`` in the odds of
having dropped out and ``B(a, b + x) -> B(a, b + x + m)`` in the likelihood.

The prediction functions are private module-level functions of ``(params, arrays)`` so that the
customer-value code can evaluate them at sampled parameter vectors; the model methods wrap them.
They work in log space and evaluate the Gauss hypergeometric function only after Euler's and
Pfaff's transformations, where its arguments stay moderate (no overflow for frequency and T in
the tens of thousands, where the untransformed form used by lifetimes overflows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1, xlogy, zeta
from sklearn.utils.validation import check_is_fitted

from custval._rows import unique_index
from custval._rows import unique_rows as _unique_rows
from custval.errors import DataError
from custval.models._base import TransactionModel
from custval.models._covariates import PurchaseDropoutCovariates
from custval.models._special import digamma_rising, log_rising, trigamma_rising

__all__ = ["BetaGeoModel"]

_A_NEAR_ONE = 1e-7  # |a - 1| below which the removable singularity at a = 1 is stepped around
_A_STEP = 1e-6  # ... by averaging the values at a = 1 -/+ _A_STEP
_SOFTPLUS_LINEAR = 30.0  # log(1 + e^d) = d + log1p(e^-d) = d within 1e-13 above this
_PLAIN_SPECIAL_MAX = 30.0  # below this, gammaln/digamma differences are exact (_special)
#: the covariate Hessian precomputes the design's column-pair products up to this many values
_PAIR_PRODUCTS_MAX = 40_000_000
#: purchase counts up to this enter log B(a, b+n) - log B(a, b) and its derivatives as sums
#: over j < n of log((b+j)/(a+b+j)), 1/(b+j), ... (most customers buy a few times: far
#: cheaper than gammaln/digamma/trigamma per row); the excess of larger counts by special
#: functions
_RISING_LOOP = 24
_LEGENDRE = np.polynomial.legendre.leggauss(256)  # quadrature fallback (_beta_expectation)


# ---------------------------------------------------------------------------------------------
# Shared mathematics (BG/NBD: modified=False, MBG/NBD: modified=True)
# ---------------------------------------------------------------------------------------------
def _on_unique(data: Mapping[str, np.ndarray], column: str, function: Any) -> np.ndarray:
    """``function(data[column])``, evaluated once per distinct value when the patterns were
    indexed by ``_prepare_patterns`` (keys ``_<column>_unique`` / ``_<column>_inverse``)."""
    key = f"_{column}_unique"
    if key in data:
        return function(data[key])[data[f"_{column}_inverse"]]
    return function(data[column])


def _index_columns(data: Mapping[str, np.ndarray], columns: tuple[str, ...]) -> dict:
    """Add the distinct values and inverse index of ``columns`` (see :func:`_on_unique`)."""
    indexed = dict(data)
    for column in columns:
        indexed[f"_{column}_unique"], indexed[f"_{column}_inverse"] = unique_index(data[column])
    return indexed


class _Pieces:
    """The parts of the BG/NBD (``m = 0``) / MBG/NBD (``m = 1``) log-likelihood, FHL eq. (6)
    and Batislam et al. (2007; lifetimes' ModifiedBetaGeoFitter)::

        L = B(a, b+x+m)/B(a, b) G(r+x) alpha^r / (G(r) (alpha+T)^(r+x)) * (1 + exp(d))
        d = log(a / (b+x+m-1)) + (r+x) log((alpha+T)/(alpha+t_x))

    since ``B(a+1, b+x+m-1) / B(a, b+x+m) = a / (b+x+m-1)``; for BG/NBD the second term is
    absent when ``x = 0`` (``d = -inf``). ``exp(d)`` is the posterior odds of having dropped
    out, so ``w = expit(d) = 1 - P(alive)`` weighs the gradient of the second term.

    Functions of the frequency (``*_u``, indexed by ``x_inverse``) are evaluated once per
    distinct frequency; logs of ``alpha + T`` and ``alpha + t_x`` once per distinct value.
    """

    def __init__(self, params: np.ndarray, data: Mapping[str, np.ndarray], modified: bool):
        r, alpha, a, b = (float(v) for v in params)
        m = 1.0 if modified else 0.0
        self.params = (r, alpha, a, b)
        if "_frequency_unique" in data:
            x_u, self.x_inverse = data["_frequency_unique"], data["_frequency_inverse"]
        else:
            x_u, self.x_inverse = unique_index(data["frequency"])
        self.x = data["frequency"]
        # functions of the frequency, on its distinct values
        k_u = (x_u + (m - 1.0)) + b  # b + x - 1 (BG/NBD), b + x (MBG/NBD); exact for tiny b
        has_second = np.ones(len(x_u), dtype=bool) if modified else x_u > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            self.log_odds_u = np.where(has_second, np.log(a) - np.log(k_u), -np.inf)
            self.inv_k_u = np.where(has_second, 1.0 / k_u, 0.0)
        # Differences of gammaln/digamma are taken directly (custval.models._special): on a
        # ridge (r, alpha or a, b growing together) the plain differences cancel to noise.
        rising_ab = log_rising(a + b, x_u + m)
        self.base_u = log_rising(r, x_u) + log_rising(b, x_u + m) - rising_ab
        self.d_r_u = digamma_rising(r, x_u)
        self.d_a_u = -digamma_rising(a + b, x_u + m)
        self.d_b_u = digamma_rising(b, x_u + m) + self.d_a_u
        # per row: log((alpha + T) / alpha), log(alpha + T), 1 / (alpha + T)
        self.log1p_t = _on_unique(data, "T", lambda v: np.log1p(v / alpha))
        self.log_alpha_t = _on_unique(data, "T", lambda v: np.log(alpha + v))
        self.inv_t = _on_unique(data, "T", lambda v: 1.0 / (alpha + v))
        inv_tx = _on_unique(data, "recency", lambda v: 1.0 / (alpha + v))
        gap = data["T"] - data["recency"]
        # log((alpha + T) / (alpha + t_x)), and 1/(alpha + T) - 1/(alpha + t_x), as differences
        self.log_ratio = np.log1p(gap * inv_tx)
        self.r_x = r + self.x
        d = self.r_x * self.log_ratio
        d += self.log_odds_u[self.x_inverse]
        # w = expit(d) and softplus(d) = log(1 + e^d) from one exponential; above d = 30 the
        # softplus is d + log1p(e^-d) = d to 1e-13, and d = -inf (no second term) gives 0, 0
        e_d = np.exp(np.minimum(d, _SOFTPLUS_LINEAR))
        self.softplus = np.log1p(e_d)
        self.softplus += np.maximum(d - _SOFTPLUS_LINEAR, 0.0)
        e_d /= 1.0 + e_d
        self.w = e_d
        self.d_alpha_second = -self.r_x * gap * self.inv_t * inv_tx
        # d/d alpha of r log(alpha) - (r+x) log(alpha+T) is r T/(alpha (alpha+T)) - x/(alpha+T)
        self.t_over = data["T"] * self.inv_t / alpha


def _loglik_grad(
    params: np.ndarray, data: Mapping[str, np.ndarray], *, modified: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood and gradient of BG/NBD or MBG/NBD (see :class:`_Pieces`)."""
    q = _Pieces(params, data, modified)
    r, _, a, _ = q.params
    inverse, w = q.x_inverse, q.w
    ll = q.base_u[inverse] - r * q.log1p_t - q.x * q.log_alpha_t + q.softplus
    grad = np.empty((len(q.x), 4))
    grad[:, 0] = q.d_r_u[inverse] - q.log1p_t + w * q.log_ratio
    grad[:, 1] = r * q.t_over - q.x * q.inv_t + w * q.d_alpha_second
    grad[:, 2] = q.d_a_u[inverse] + w / a
    grad[:, 3] = q.d_b_u[inverse] - w * q.inv_k_u[inverse]
    return ll, grad


def _weighted_loglik_grad(
    params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray, *, modified: bool
) -> tuple[float, np.ndarray]:
    """``weights @ loglik`` and ``weights @ gradient`` of :func:`_loglik_grad`, with the terms
    in the frequency summed once per distinct frequency (what the optimiser evaluates)."""
    q = _Pieces(params, data, modified)
    r, _, a, _ = q.params
    per_x = np.bincount(q.x_inverse, weights=weights, minlength=len(q.base_u))
    weighted_w = weights * q.w
    sum_w = float(weighted_w.sum())
    ll = per_x @ q.base_u - r * (weights @ q.log1p_t) - weights @ (q.x * q.log_alpha_t)
    ll += weights @ q.softplus
    grad = np.array(
        [
            per_x @ q.d_r_u - weights @ q.log1p_t + weighted_w @ q.log_ratio,
            r * (weights @ q.t_over) - weights @ (q.x * q.inv_t) + weighted_w @ q.d_alpha_second,
            per_x @ q.d_a_u + sum_w / a,
            per_x @ q.d_b_u
            - np.bincount(q.x_inverse, weights=weighted_w, minlength=len(q.inv_k_u)) @ q.inv_k_u,
        ]
    )
    return float(ll), grad


def _log_dropout_odds(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, *, modified: bool
) -> np.ndarray:
    """Log posterior odds of having dropped out by ``T`` (Hardie note 021; MBG/NBD: Batislam
    et al. 2007): ``log(a/(b+x+m-1)) + (r+x) log((alpha+T)/(alpha+t_x))``; ``-inf`` for a
    BG/NBD customer without repeat purchases (they cannot have dropped out)."""
    r, alpha, a, b = (float(v) for v in params)
    with np.errstate(divide="ignore", invalid="ignore"):
        # b + x - 1 <= 0 (BG/NBD, x = 0) gives nan here and -inf below
        log_odds = np.log(a / ((x + ((1.0 if modified else 0.0) - 1.0)) + b))
        ratio = alpha + big_t
        ratio /= alpha + t_x
        log_odds = log_odds + (r + x) * np.log(ratio)
    if modified:
        return log_odds
    return np.where(x > 0, log_odds, -np.inf)


def _expit_negative(log_odds: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(log_odds))`` (P(alive) from the log-odds of having dropped out), in place."""
    log_odds = np.asarray(log_odds, dtype=float)
    with np.errstate(over="ignore"):  # exp overflows to inf where P(alive) is 0
        np.exp(log_odds, out=log_odds)
    log_odds += 1.0
    return np.reciprocal(log_odds, out=log_odds)  # equals scipy's expit(-log_odds) bit for bit


class _RowIndex:
    """The customers of one summary, indexed for the predictions.

    Per customer, only ``(r+x) log((alpha+T)/(alpha+t_x))`` is computed; the functions of the
    frequency alone are evaluated once per distinct frequency, and the hypergeometric terms
    once per distinct ``(frequency, T)`` pair, then gathered. The model keeps the index of the
    last summary it predicted for (:meth:`_BetaGeoFamily._row_index`), so that
    ``expected_purchases`` (at any horizon) and ``probability_alive`` on that summary share the
    index and P(alive) at ``T``.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> None:
        self.x, self.t_x, self.big_t = x, t_x, big_t
        self._frequencies: tuple[np.ndarray, np.ndarray] | None = None
        self._pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._alive: tuple[bytes, np.ndarray] | None = None

    def frequencies(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct frequencies and each row's position among them."""
        if self._frequencies is None:
            self._frequencies = unique_index(self.x)
        return self._frequencies

    def on_pairs(self, function: Any) -> np.ndarray:
        """``function(frequency, T)`` per row, evaluated once per distinct pair."""
        if self._pairs is None:
            x_u, x_of_row = self.frequencies()
            t_u, t_of_row = unique_index(self.big_t)
            pair_key, pair_of_row = unique_index(x_of_row * len(t_u) + t_of_row)
            x_code, t_code = np.divmod(pair_key, len(t_u))
            self._pairs = (x_u[x_code], t_u[t_code], pair_of_row)
        x, big_t, pair_of_row = self._pairs
        return function(x, big_t)[pair_of_row]

    def alive_now(self, params: np.ndarray, *, modified: bool) -> np.ndarray:
        """P(alive at T) per row (read-only; remembered for the last parameters).

        :func:`_log_dropout_odds` with its frequency terms on the distinct frequencies:
        ``1 / (1 + exp(d))``, ``d = log(a/(b+x+m-1)) + (r+x) log((alpha+T)/(alpha+t_x))``.
        """
        key = np.asarray(params, dtype=float).tobytes() + bytes([modified])
        if self._alive is not None and self._alive[0] == key:
            return self._alive[1]
        r, alpha, a, b = (float(v) for v in params)
        x_u, x_of_row = self.frequencies()
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = np.log(a / ((x_u + ((1.0 if modified else 0.0) - 1.0)) + b))
        if not modified:  # without repeat purchases a BG/NBD customer cannot have dropped out
            log_odds = np.where(x_u > 0, log_odds, -np.inf)
        d = self.big_t + alpha
        d /= self.t_x + alpha
        np.log(d, out=d)
        d *= (r + x_u)[x_of_row]
        d += log_odds[x_of_row]
        alive = _expit_negative(d)
        alive.flags.writeable = False
        self._alive = (key, alive)
        return alive


def _on_unique_rows(
    function: Any, params: np.ndarray, columns: dict[str, np.ndarray], *, modified: bool
) -> np.ndarray:
    """Evaluate ``function(params, **columns)`` once per distinct row of the broadcast columns.

    Scalar columns are passed through as scalars; the others are compressed together
    (:func:`custval.models._base._unique_rows`) and the result is expanded back.
    """
    shape = np.broadcast_shapes(*(np.shape(v) for v in columns.values()))
    varying = {k: v for k, v in columns.items() if np.size(v) > 1}
    if not varying:
        return np.broadcast_to(function(params, **columns, modified=modified), shape).copy()
    flat = {k: np.broadcast_to(v, shape).ravel() for k, v in varying.items()}
    unique, inverse = _unique_rows(flat)
    arguments = {
        k: (unique[k] if k in unique else float(np.ravel(v)[0])) for k, v in columns.items()
    }
    return function(params, **arguments, modified=modified)[inverse].reshape(shape)


def _beta_expectation(
    function: Any, shape_a: np.ndarray, shape_b: np.ndarray, *columns: np.ndarray
) -> np.ndarray:
    """``E[function(p, *columns)]`` for ``p ~ Beta(shape_a, shape_b)``, row by row, by
    Gauss-Legendre quadrature in ``y = logit(p)``.

    The density of ``logit(p)``, ``exp(A y) / (1 + e^y)^(A+B) / B(A, B)``, is smooth and
    log-concave for every ``A, B > 0``; the window is its mode +/- the larger of 12 standard
    deviations (``sqrt(1/A + 1/B)``) and ``36 / min(A, B)`` (the slower exponential tail), and
    the weights are normalised numerically. This is the fallback for parameters where the
    hypergeometric forms overflow (``a`` and ``b`` in the hundreds or more, where the Beta
    distribution is concentrated and the quadrature is accurate to ~1e-10).
    """
    nodes, weights = _LEGENDRE
    shape_a, shape_b = np.asarray(shape_a, dtype=float), np.asarray(shape_b, dtype=float)
    mode = np.log(shape_a / shape_b)
    half_width = np.maximum(
        12.0 * np.sqrt(1.0 / shape_a + 1.0 / shape_b), 36.0 / np.minimum(shape_a, shape_b)
    )
    y = mode[:, None] + half_width[:, None] * nodes[None, :]
    log_density = shape_a[:, None] * y - (shape_a + shape_b)[:, None] * np.logaddexp(0.0, y)
    log_density -= log_density.max(axis=1, keepdims=True)
    w = np.exp(log_density) * weights[None, :]
    values = function(expit(y), *(np.asarray(c, dtype=float)[:, None] for c in columns))
    return (w * values).sum(axis=1) / w.sum(axis=1)


def _purchases_given_p(p: np.ndarray, shape: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Expected purchases over ``t`` of a customer alive now with drop-out probability ``p``,
    averaged over ``lambda ~ Gamma(shape, rate)``: ``(1 - (1 + p u)^-shape) / p``, ``u = t/rate``.
    """
    return -np.expm1(-shape * np.log1p(p * u)) / p


def _survival_given_p(p: np.ndarray, shape: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``E[exp(-lambda p t)] = (1 + p u)^-shape`` for ``lambda ~ Gamma(shape, rate)``."""
    return np.exp(-shape * np.log1p(p * u))


def _purchases_if_alive(
    params: np.ndarray, x: Any, big_t: Any, t: Any, *, modified: bool
) -> np.ndarray:
    """Expected purchases in ``(T, T+t]`` given alive at ``T`` (eq. 10 without ``P(alive)``).

    The numerator of FHL eq. (10) (MBG/NBD: Batislam et al. 2007, appendix), with ``c0 = a+b-1+m``:

        (c0+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+m; c0+x; z)],
        z = t / (alpha+T+t),

    which is ``E_p[(1 - (1 + p t/(alpha+T))^-(r+x)) / p]`` over the posterior
    ``p ~ Beta(a, b+x+m)`` of a customer alive at ``T``. Euler's transformation
    ``2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)`` turns the bracket into
    ``1 - (1-z)^(a-1) 2F1(a-1, c0-r; c0+x; z)``, whose hypergeometric factor is bounded for
    large ``x`` (the untransformed one grows like ``(1-z)^-(r+x)``). At ``a = 1`` the
    expression has a removable singularity; within 1e-7 of it, it is evaluated at
    ``a = 1 -/+ 1e-6`` and averaged (error ~1e-10 relative). Where the hypergeometric function
    overflows (large ``a`` and ``b``), the expectation is computed by quadrature
    (:func:`_beta_expectation`).
    """
    a = float(params[2])
    if abs(a - 1.0) < _A_NEAR_ONE:
        low, high = np.array(params, dtype=float), np.array(params, dtype=float)
        low[2], high[2] = 1.0 - _A_STEP, 1.0 + _A_STEP
        return 0.5 * (
            _purchases_if_alive(low, x, big_t, t, modified=modified)
            + _purchases_if_alive(high, x, big_t, t, modified=modified)
        )
    r, alpha, _, b = (float(v) for v in params)
    m = 1.0 if modified else 0.0
    c0 = a + b - 1.0 + m
    log_1mz = np.log(alpha + big_t) - np.log(alpha + big_t + t)
    z = -np.expm1(log_1mz)
    with np.errstate(all="ignore"):
        hyp = hyp2f1(a - 1.0, c0 - r, c0 + x, z)
        values = np.asarray((c0 + x) / (a - 1.0) * (1.0 - np.exp((a - 1.0) * log_1mz) * hyp))
    return _fill_by_quadrature(values, _purchases_given_p, a, b + m + x, r + x, t / (alpha + big_t))


def _fill_by_quadrature(
    values: np.ndarray, function: Any, a: float, shape_b: Any, shape: Any, u: Any
) -> np.ndarray:
    """Replace the non-finite entries of ``values`` by ``E[function(p, shape, u)]``,
    ``p ~ Beta(a, shape_b)`` (:func:`_beta_expectation`)."""
    bad = ~np.isfinite(values)
    if not np.any(bad):
        return values
    values = np.array(values, dtype=float)
    columns = [
        np.broadcast_to(np.asarray(c, dtype=float), values.shape)[bad] for c in (shape_b, shape, u)
    ]
    with np.errstate(all="ignore"):
        values[bad] = _beta_expectation(
            function, np.full(columns[0].shape, a), columns[0], columns[1], columns[2]
        )
    return values


def _survival_if_alive(
    params: np.ndarray, x: Any, big_t: Any, t: Any, *, modified: bool
) -> np.ndarray:
    """P(still alive at ``T+t`` | alive at ``T``, history), whatever happens in ``(T, T+t]``.

    Given alive at ``T`` after ``x`` repeat purchases, the posterior of ``lambda`` is
    ``Gamma(r+x, alpha+T)`` and that of ``p`` is ``Beta(a, b+x+m)``, independent (the
    likelihood of a surviving customer is ``(1-p)^(x+m) lambda^x e^(-lambda T)``). While alive,
    purchases arrive at rate ``lambda`` and each is survived with probability ``1-p``, so
    survival over ``t`` is ``E[(1-p)^N(t)] = exp(-lambda p t)``. Integrating over the posterior::

        E_p[((alpha+T)/(alpha+T+p t))^(r+x)] = 2F1(r+x, a; a+b+x+m; -t/(alpha+T))
                                             = (1-z)^a 2F1(a, a+b+m-r; a+b+x+m; z)

    (Euler's integral, then Pfaff's transformation), ``z = t/(alpha+T+t)`` in ``[0, 1)``;
    by quadrature where the hypergeometric function overflows (large ``a`` and ``b``).
    """
    r, alpha, a, b = (float(v) for v in params)
    m = 1.0 if modified else 0.0
    log_1mz = np.log(alpha + big_t) - np.log(alpha + big_t + t)
    z = -np.expm1(log_1mz)
    with np.errstate(all="ignore"):
        values = np.asarray(np.exp(a * log_1mz) * hyp2f1(a, a + b + m - r, a + b + m + x, z))
    return _fill_by_quadrature(values, _survival_given_p, a, b + m + x, r + x, t / (alpha + big_t))


def _probability_alive(
    params: np.ndarray,
    frequency: Any,
    recency: Any,
    big_t: Any,
    t: Any = 0.0,
    *,
    modified: bool = False,
    index: _RowIndex | None = None,
) -> np.ndarray:
    """P(alive at ``T + t`` | frequency, recency, T) for BG/NBD or MBG/NBD.

    At ``t = 0`` this is Hardie's note 021 (BG/NBD) / Batislam et al. (2007, appendix),
    ``1 / (1 + exp(d))`` with the log-odds of :func:`_log_dropout_odds`. For ``t > 0`` it is
    multiplied by :func:`_survival_if_alive`, evaluated once per distinct ``(x, T, t)``.
    ``index``: as in :func:`_expected_purchases`.
    """
    rows = (frequency, recency, big_t, t)
    return _alive_times(params, *rows, _survival_if_alive, modified, index, one_at_zero=True)


def _alive_times(
    params: np.ndarray,
    frequency: Any,
    recency: Any,
    big_t: Any,
    t: Any,
    if_alive: Any,
    modified: bool,
    index: _RowIndex | None,
    *,
    one_at_zero: bool,
) -> np.ndarray:
    """``P(alive at T | history) * if_alive(params, x, T, t)``, the form of both conditional
    predictions; the closed-form first factor per row (:func:`_log_dropout_odds`), the second
    (which depends on ``(x, T, t)`` only) once per distinct combination, through ``index``
    when there is one horizon. ``one_at_zero``: the second factor is 1 where ``t = 0``
    (survival), so it is not evaluated when no ``t`` is positive."""
    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (frequency, recency, big_t))
    t = np.asarray(t, dtype=float)
    skip = one_at_zero and not np.any(t > 0)
    if _indexable(x, t_x, big_t, t):
        index = _RowIndex(x, t_x, big_t) if index is None else index
        alive = index.alive_now(params, modified=modified)
        if skip:
            return alive.copy()
        return alive * index.on_pairs(lambda xx, tt: if_alive(params, xx, tt, t, modified=modified))
    alive = _expit_negative(_log_dropout_odds(params, x, t_x, big_t, modified=modified))
    if skip:
        shape = np.broadcast_shapes(alive.shape, t.shape)
        return alive if alive.shape == shape else np.broadcast_to(alive, shape).copy()
    factor = _on_unique_rows(if_alive, params, {"x": x, "big_t": big_t, "t": t}, modified=modified)
    return alive * factor


def _indexable(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, t: np.ndarray) -> bool:
    """One horizon for a 1-d array of customers: the :class:`_RowIndex` path."""
    return t.ndim == 0 and x.ndim == 1 and x.shape == t_x.shape == big_t.shape


def _expected_purchases(
    params: np.ndarray,
    frequency: Any,
    recency: Any,
    big_t: Any,
    t: Any,
    *,
    modified: bool = False,
    index: _RowIndex | None = None,
) -> np.ndarray:
    """Expected purchases in ``(T, T+t]`` given the history: FHL eq. (10) (BG/NBD),
    Batislam et al. (2007, appendix; Wagner & Hoppe 2008) for MBG/NBD.

    ``P(alive at T) * E[purchases in (T, T+t] | alive at T]``; the second factor
    (:func:`_purchases_if_alive`) depends on ``(x, T, t)`` only and is evaluated once per
    distinct combination, the first in closed form per row. ``index`` (a :class:`_RowIndex`
    of these customers) shares that work between calls.
    """
    rows = (frequency, recency, big_t, t)
    return _alive_times(params, *rows, _purchases_if_alive, modified, index, one_at_zero=False)


def _expected_purchases_new_customer(
    params: np.ndarray, t: Any, *, modified: bool = False
) -> np.ndarray:
    """Expected repeat purchases in ``(0, t]`` of a new customer: FHL eq. (9) for BG/NBD,
    ``b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]`` for MBG/NBD.

    Both are eq. (10) at ``x = t_x = T = 0``, so the same transformed evaluation is used.
    """
    t = np.asarray(t, dtype=float)
    zero = np.zeros_like(t)
    return _expected_purchases(params, zero, zero, zero, t, modified=modified)


def _probability_of_purchases(
    params: np.ndarray, n: Any, t: Any, *, modified: bool = False
) -> np.ndarray:
    """P(X(t) = n) for a new customer: FHL eq. (8) (BG/NBD); for MBG/NBD the same with
    ``b -> b+1`` in the first beta function and ``B(a+1, b+n)`` (including ``n = 0``) in the
    second term (Batislam et al. 2007).

    The finite sum of eq. (8) is a negative binomial distribution function, so
    ``1 - (alpha/(alpha+t))^r sum_{j<n} ...`` is the regularized incomplete beta function
    ``I_{t/(alpha+t)}(n, r)`` (``scipy.special.betainc``), stable for large ``n``.
    """
    r, alpha, a, b = (float(v) for v in params)
    m = 1.0 if modified else 0.0
    n, t = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(t, dtype=float))
    log_alpha_t = np.log(alpha + t)
    log_first = (
        betaln(a, b + n + m)
        - betaln(a, b)
        + gammaln(r + n)
        - gammaln(r)
        - gammaln(n + 1.0)
        + r * (np.log(alpha) - log_alpha_t)
        + xlogy(n, t)
        - n * log_alpha_t
    )
    z = t / (alpha + t)
    positive = n > 0
    tail = np.where(positive, betainc(np.where(positive, n, 1.0), r, z), 1.0 if modified else 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_second = betaln(a + 1.0, np.where(positive | modified, b + n + m - 1.0, b)) - betaln(
            a, b
        )
    second = np.where(positive | modified, np.exp(log_second) * tail, 0.0)
    return np.exp(log_first) + second


def _conditional_probability_of_purchases(
    params: np.ndarray, n: np.ndarray, data: Mapping[str, np.ndarray], t: float, *, modified: bool
) -> np.ndarray:
    """P(X(T, T+t) = n | x, t_x, T), shape ``(rows, len(n))``.

    Given alive at ``T`` the posterior is ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a,
    b')``, independent, ``b' = b+x`` (BG/NBD; ``b+x+1`` for MBG/NBD, whose customers also
    survived the flip at time 0). The future count is ``min(N, J)`` for ``N ~ Poisson(lambda
    t)`` purchases and the purchase ``J`` after which the customer drops out, so (the
    conditional counterpart of FHL 2005, eq. 8; Fader, Hardie & Lee 2007, note "BG/NBD
    conditional PMF")::

        P(X = n | alive) = B(a, b'+n)/B(a, b') NB(n; r+x, z)
                           + [n >= 1] B(a+1, b'+n-1)/B(a, b') I_z(n, r+x)

    with ``z = t/(alpha+T+t)``, ``NB`` the negative binomial pmf of the mixed Poisson count
    and ``I_z`` its tail ``P(N >= n)`` (``scipy.special.betainc``). The customer is dead at
    ``T`` with probability ``1 - P(alive)``, which adds to ``n = 0``.
    """
    r, alpha, a, b = (float(v) for v in params)
    m = 1.0 if modified else 0.0
    x, big_t = data["frequency"][:, None], data["T"][:, None]
    nn = np.asarray(n, dtype=float).ravel()[None, :]
    alive = _probability_alive(
        params, data["frequency"], data["recency"], data["T"], modified=modified
    )[:, None]
    shape, b_post = r + x, b + x + m
    log_at, log_all = np.log(alpha + big_t), np.log(alpha + big_t + t)
    log_nb = (
        gammaln(shape + nn)
        - gammaln(shape)
        - gammaln(nn + 1.0)
        + shape * (log_at - log_all)
        + xlogy(nn, t)
        - nn * log_all
    )
    stays = np.exp(betaln(a, b_post + nn) - betaln(a, b_post) + log_nb)
    positive = nn > 0
    z = t / (alpha + big_t + t)
    with np.errstate(invalid="ignore", divide="ignore"):
        tail = betainc(np.where(positive, nn, 1.0), shape, z)
        drops = np.exp(betaln(a + 1.0, b_post + nn - 1.0) - betaln(a, b_post)) * tail
    given_alive = stays + np.where(positive, drops, 0.0)
    return alive * given_alive + np.where(positive, 0.0, 1.0 - alive)


# ---------------------------------------------------------------------------------------------
# Time-invariant covariates (CLVTools' static covariates for BG/NBD)
# ---------------------------------------------------------------------------------------------
def _covariate_rows(
    params: np.ndarray, zp: np.ndarray, zd: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Per-customer ``r, alpha_i, a_i, b_i`` with static covariates (CLVTools'
    ``bgnbd_staticcov``; Fader & Hardie's note on covariates in BG/NBD and Pareto/NBD):
    ``alpha_i = alpha exp(-x_p' beta)`` (a larger ``x_p' beta`` means a higher purchase rate)
    and ``a_i = a exp(x_d' gamma)``, ``b_i = b exp(x_d' gamma)`` (one dropout coefficient
    vector scales both shapes). ``zp``/``zd`` map the coefficients to the linear predictors."""
    r, alpha, a, b = (float(v) for v in params[:4])
    coefficients = np.asarray(params[4:], dtype=float)
    scale_d = np.exp(zd @ coefficients)
    return r, alpha * np.exp(-(zp @ coefficients)), a * scale_d, b * scale_d


def _fit_design(
    matrix: np.ndarray, selection_p: np.ndarray, selection_d: np.ndarray
) -> dict[str, np.ndarray]:
    """The covariate arrays a fit's likelihood reads: ``_X1`` (a column of ones, then the
    design, ``(n, 1 + q)``) and the selections ``_Sp``, ``_Sd`` (``(q, k)``) with
    ``eta_p = design @ _Sp @ coefficients`` (likewise dropout). Keeping the design once, not
    ``design @ S`` per process (mostly zero columns), halves the matrix products."""
    n = matrix.shape[0]
    design = np.empty((n, 1 + matrix.shape[1]), order="F")  # columns contiguous
    design[:, 0] = 1.0
    design[:, 1:] = matrix
    out = {"_X1": design, "_Sp": selection_p, "_Sd": selection_d}
    first, second = np.triu_indices(design.shape[1])
    if n * len(first) <= _PAIR_PRODUCTS_MAX:
        # the products of the design's column pairs: the Hessian's ten X1' diag(c) X1 then
        # are one (10, n) @ (n, pairs) product per evaluation
        pairs = np.empty((n, len(first)), order="F")
        for k, (i, j) in enumerate(zip(first, second, strict=True)):
            np.multiply(design[:, i], design[:, j], out=pairs[:, k])
        out["_X1pairs"] = pairs
    return out


def _beta_rising_terms(
    a: np.ndarray, b: np.ndarray, n: np.ndarray, *, second: bool = False
) -> tuple[np.ndarray, ...]:
    """Per row ``log B(a, b+n) - log B(a, b)`` and its derivatives in ``a`` and ``b``, i.e.
    ``log_rising(b, n) - log_rising(a+b, n)``, ``-digamma_rising(a+b, n)`` and
    ``digamma_rising(b, n) - digamma_rising(a+b, n)``; with ``second``, also
    ``-trigamma_rising(a+b, n)`` (the second derivative in ``a``; the cross one too) and
    ``trigamma_rising(b, n)`` (add the former for the second derivative in ``b``). Zero where
    ``n = 0`` (customers without repeat purchases, half of most bases), evaluated only on the
    other rows."""
    counted = np.flatnonzero(n > 0)
    all_counted = counted.size == n.size
    if all_counted:
        ac, bc, nc = a, b, n
    else:
        ac, bc, nc = a[counted], b[counted], n[counted]
    abc = ac + bc
    terms: list[np.ndarray]
    if abc.size and float(abc.max()) < _PLAIN_SPECIAL_MAX:
        # small shapes: the plain differences are exact (what log_rising does below 30)
        d_ab = digamma(abc) - digamma(abc + nc)
        log_beta = gammaln(bc + nc) - gammaln(bc) - gammaln(abc + nc) + gammaln(abc)
        d_b = digamma(bc + nc) - digamma(bc) + d_ab
        terms = [log_beta, d_ab, d_b]
        if second:
            terms += [zeta(2.0, abc) - zeta(2.0, abc + nc), zeta(2.0, bc + nc) - zeta(2.0, bc)]
    else:
        d_ab = -digamma_rising(abc, nc)
        log_beta = log_rising(bc, nc) - log_rising(abc, nc)
        d_b = digamma_rising(bc, nc) + d_ab
        terms = [log_beta, d_ab, d_b]
        if second:
            terms += [-trigamma_rising(abc, nc), trigamma_rising(bc, nc)]
    if all_counted:
        return tuple(terms)
    out = np.zeros((len(terms), n.size))
    for i, term in enumerate(terms):
        out[i, counted] = term
    return tuple(out)


def _rising_index(n: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """For :func:`_beta_rising_sums`: the rows with ``n > 0`` by decreasing ``n`` and, for
    ``j < min(max n, _RISING_LOOP)``, how many of them have ``n > j`` (a prefix); ``None``
    when the counts are not whole numbers."""
    counted = np.flatnonzero(n > 0)
    if not np.array_equal(n, np.floor(n)):
        return None
    order = counted[np.argsort(-n[counted], kind="stable")]
    descending = -n[order]
    loop = int(min(-descending[0], _RISING_LOOP)) if order.size else 0
    counts = np.searchsorted(descending, -np.arange(loop + 1, dtype=float), side="left")
    return order, counts


def _beta_rising_sums(
    a: np.ndarray, b: np.ndarray, n: np.ndarray, index: tuple[np.ndarray, np.ndarray], second: bool
) -> tuple[np.ndarray, ...]:
    """:func:`_beta_rising_terms` by finite sums over ``j < n`` (whole ``n``), e.g.
    ``log B(a, b+n) - log B(a, b) = sum_j log((b+j) / (a+b+j))`` and ``trigamma(a+b) -
    trigamma(a+b+n) = sum_j (a+b+j)^-2``; rows with ``n > _RISING_LOOP`` add the rest with
    the special functions at ``a+b+_RISING_LOOP``, ``b+_RISING_LOOP``."""
    order, counts = index
    shape_ab, shape_b = (a + b)[order], b[order]
    terms = np.zeros((5 if second else 3, order.size))
    log_beta, d_ab, d_b = terms[0], terms[1], terms[2]
    for j in range(len(counts) - 1):
        c = counts[j]
        inv_ab = 1.0 / (shape_ab[:c] + j)
        inv_b = 1.0 / (shape_b[:c] + j)
        log_beta[:c] += np.log((shape_b[:c] + j) * inv_ab)
        d_ab[:c] -= inv_ab
        d_b[:c] += inv_b - inv_ab
        if second:
            terms[3, :c] += inv_ab * inv_ab
            terms[4, :c] -= inv_b * inv_b
    loop, c = len(counts) - 1, counts[-1]
    if c:  # n > _RISING_LOOP: the rest from j = loop on
        zab, zb, rest = shape_ab[:c] + loop, shape_b[:c] + loop, n[order[:c]] - loop
        log_beta[:c] += log_rising(zb, rest) - log_rising(zab, rest)
        d_ab[:c] -= digamma_rising(zab, rest)
        d_b[:c] += digamma_rising(zb, rest) - digamma_rising(zab, rest)
        if second:
            terms[3, :c] -= trigamma_rising(zab, rest)
            terms[4, :c] += trigamma_rising(zb, rest)
    out = np.zeros((len(terms), n.size))
    out[:, order] = terms
    return tuple(out)


def _covariate_row_terms(
    params: np.ndarray, data: Mapping[str, np.ndarray], *, modified: bool, second: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-row log-likelihood of the covariate BG/NBD (FHL eq. 6 / Batislam et al. 2007 with
    per-customer ``alpha_i, a_i, b_i``, see :func:`_covariate_rows`) and its derivatives in
    the row's own log-shapes ``phi = (r, u, v, w)`` with ``u = log alpha_i``, ``v = log a_i``,
    ``w = log b_i``: the gradient ``(4, n)`` and, with ``second``, the ten distinct second
    derivatives ``(10, n)`` in the order rr, ru, rv, rw, uu, uv, uw, vv, vw, ww.

    Writing ``p_T = alpha_i / (alpha_i + T)``, ``p_x = alpha_i / (alpha_i + t_x)``,
    ``k = x + m - 1 + b_i`` and ``s = expit(d)`` for the dropout log-odds ``d = (r+x) log((alpha_i
    + T) / (alpha_i + t_x)) + v - log k``, the log-likelihood is ``log_rising(r, x) + log
    B(a_i, b_i+x+m)/B(a_i, b_i) + r u - (r+x) log(alpha_i + T) + softplus(d)``, and every
    derivative below follows from ``d(softplus)/dd = s``, ``d^2/dd^2 = s(1-s)``,
    ``dd/du = (r+x)(p_T - p_x)``, ``d^2d/du^2 = dd/du (1 - p_T - p_x)``, ``dd/dw = -b_i/k``.
    """
    x1 = data["_X1"]
    design = x1[:, 1:]
    coefficients = np.asarray(params[4:], dtype=float)
    r = float(params[0])
    alpha = params[1] * np.exp(-(design @ (data["_Sp"] @ coefficients)))
    scale_d = np.exp(design @ (data["_Sd"] @ coefficients))
    a, b = params[2] * scale_d, params[3] * scale_d
    m = 1.0 if modified else 0.0
    x, t_x, big_t = data["frequency"], data["recency"], data["T"]
    k = (x + (m - 1.0)) + b
    has_second = np.ones(x.shape, dtype=bool) if modified else x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = np.where(has_second, np.log(a) - np.log(k), -np.inf)
        q_b = np.where(has_second, b / k, 0.0)
    index = data["_rising_index"] if "_rising_index" in data else _rising_index(x + m)
    if index is None:
        rising = _beta_rising_terms(a, b, x + m, second=second)
    else:
        rising = _beta_rising_sums(a, b, x + m, index, second)
    log_beta, d_a, d_b = rising[:3]
    base = _on_unique(data, "frequency", lambda v: log_rising(r, v)) + log_beta
    inv_t = 1.0 / (alpha + big_t)
    inv_tx = 1.0 / (alpha + t_x)
    p_t = alpha * inv_t
    log1p_t = np.log1p(big_t / alpha)
    gap = big_t - t_x
    log_ratio = np.log1p(gap * inv_tx)
    r_x = r + x
    d = r_x * log_ratio + log_odds
    e_d = np.exp(np.minimum(d, _SOFTPLUS_LINEAR))
    softplus = np.log1p(e_d) + np.maximum(d - _SOFTPLUS_LINEAR, 0.0)
    s = e_d / (1.0 + e_d)
    ll = base - r * log1p_t - x * np.log(alpha + big_t) + softplus
    dd_u = -r_x * alpha * gap * inv_t * inv_tx  # (r+x)(p_T - p_x), without the cancellation
    grad = np.empty((4, x.size))
    grad[0] = _on_unique(data, "frequency", lambda v: digamma_rising(r, v)) - log1p_t
    grad[0] += s * log_ratio
    grad[1] = r - r_x * p_t + s * dd_u
    grad[2] = a * d_a + s
    grad[3] = b * d_b - s * q_b
    if not second:
        return ll, grad, None
    t_ab, t_b = rising[3], rising[4]
    s2 = s / (1.0 + e_d)  # s (1 - s)
    p_x = alpha * inv_tx
    q_t = big_t * inv_t  # 1 - p_T
    hess = np.empty((10, x.size))
    hess[0] = _on_unique(data, "frequency", lambda v: trigamma_rising(r, v))
    hess[0] += s2 * log_ratio**2
    hess[1] = q_t + s2 * log_ratio * dd_u + s * (p_t - p_x)
    hess[2] = s2 * log_ratio
    hess[3] = -hess[2] * q_b
    hess[4] = -r_x * p_t * q_t + s2 * dd_u**2 + s * dd_u * (q_t - p_x)
    hess[5] = s2 * dd_u
    hess[6] = -hess[5] * q_b
    hess[7] = a * d_a + a * a * t_ab + s2
    hess[8] = a * b * t_ab - s2 * q_b
    hess[9] = b * d_b + b * b * (t_b + t_ab) + s2 * q_b**2 - s * q_b * (1.0 - q_b)
    return ll, grad, hess


def _phi_maps(params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
    """``A_p`` with ``d phi_p / d params = [1, design] @ A_p`` per row, for ``phi = (r, u, v,
    w)`` (see :func:`_covariate_row_terms`), shapes ``(1 + q, len(params))``."""
    sp, sd = data["_Sp"], data["_Sd"]
    maps = np.zeros((4, 1 + sp.shape[0], len(params)))
    maps[0, 0, 0] = 1.0
    maps[1, 0, 1], maps[1, 1:, 4:] = 1.0 / params[1], -sp
    maps[2, 0, 2], maps[2, 1:, 4:] = 1.0 / params[2], sd
    maps[3, 0, 3], maps[3, 1:, 4:] = 1.0 / params[3], sd
    return maps


def _loglik_grad_covariates(
    params: np.ndarray,
    data: Mapping[str, np.ndarray],
    *,
    modified: bool,
    weights: np.ndarray | None = None,
) -> tuple[Any, np.ndarray]:
    """Log-likelihood of the covariate BG/NBD / MBG/NBD (:func:`_covariate_row_terms`) and
    its gradient in ``(r, alpha, a, b, coefficients)``, by the chain rule through ``phi``:
    ``d u/d alpha = 1/alpha``, ``d u / d beta = -x_p``, ``d v / d gamma = d w / d gamma = x_d``.
    Without ``weights``: per-row values and gradient ``(n, k)``; with them: their weighted sums.
    """
    ll, grad, _ = _covariate_row_terms(params, data, modified=modified, second=False)
    maps = _phi_maps(params, data)
    x1 = data["_X1"]
    if weights is None:
        return ll, sum(grad[p][:, None] * (x1 @ maps[p]) for p in range(4))
    total = np.zeros(len(params))
    for p in range(4):
        total += (x1.T @ (weights * grad[p])) @ maps[p]
    return float(weights @ ll), total


#: the (p, q) pairs of phi = (r, u, v, w) in the order of _covariate_row_terms' second terms
_PHI_PAIRS = ((0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3))


def _loglik_hessian_covariates(
    params: np.ndarray, data: Mapping[str, np.ndarray], *, modified: bool, weights: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted log-likelihood, gradient and exact Hessian in ``(r, alpha, a, b,
    coefficients)``: ``sum_i J_i' H_i J_i`` over the rows' ``4 x 4`` Hessians in ``phi`` with
    ``J_i = [1, x_i] @ A`` (:func:`_phi_maps`), accumulated as ``A_p' (X1' diag(w h_pq) X1)
    A_q`` (ten ``(1+q) x (1+q)`` products, not ``k x k`` per row), plus the curvature of
    ``u = log alpha - ...`` in ``alpha`` (likewise ``a``, ``b``): ``-g_u / alpha^2``."""
    ll, grad, hess = _covariate_row_terms(params, data, modified=modified, second=True)
    maps = _phi_maps(params, data)
    x1 = data["_X1"]
    total = np.zeros(len(params))
    sums = np.empty(4)
    for p in range(4):
        weighted = x1.T @ (weights * grad[p])
        sums[p] = weighted[0]
        total += weighted @ maps[p]
    hess *= weights
    if "_X1pairs" in data:
        upper = np.triu_indices(x1.shape[1])
        sums_pairs = hess @ data["_X1pairs"]
        gram = np.empty((len(_PHI_PAIRS), x1.shape[1], x1.shape[1]))
        gram[:, upper[0], upper[1]] = sums_pairs
        gram[:, upper[1], upper[0]] = sums_pairs
    else:
        gram = np.stack([x1.T @ (x1 * h[:, None]) for h in hess])
    hessian = np.zeros((len(params), len(params)))
    for j, (p, q) in enumerate(_PHI_PAIRS):
        block = maps[p].T @ gram[j] @ maps[q]
        hessian += block if p == q else block + block.T
    hessian[[1, 2, 3], [1, 2, 3]] -= sums[1:] / params[1:4] ** 2
    return float(weights @ ll), total, hessian


def _alive_rows(r, alpha, a, b, x, t_x, big_t, m: float) -> np.ndarray:
    """P(alive at T) per customer with per-customer shapes (Hardie's note 021)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = np.log(a / ((x + (m - 1.0)) + b)) + (r + x) * np.log(
            (alpha + big_t) / (alpha + t_x)
        )
    if m == 0.0:
        log_odds = np.where(x > 0, log_odds, -np.inf)
    return _expit_negative(log_odds)


def _if_alive_rows(kind: str, r, alpha, a, b, x, big_t, t, m: float) -> np.ndarray:
    """:func:`_purchases_if_alive` (``kind="purchases"``) or :func:`_survival_if_alive`
    (``"survival"``) with per-customer ``alpha, a, b`` (same transformed hypergeometric forms,
    the removable singularity at ``a = 1`` stepped around, quadrature where they overflow)."""
    n = np.broadcast_shapes(np.shape(alpha), np.shape(x), np.shape(big_t), np.shape(t))
    alpha, a, b, x, big_t, t = (
        np.broadcast_to(v, n).astype(float) for v in (alpha, a, b, x, big_t, t)
    )
    near = np.abs(a - 1.0) < _A_NEAR_ONE
    if kind == "purchases" and np.any(near):
        low, high = np.where(near, 1.0 - _A_STEP, a), np.where(near, 1.0 + _A_STEP, a)
        return 0.5 * (
            _if_alive_rows(kind, r, alpha, low, b, x, big_t, t, m)
            + _if_alive_rows(kind, r, alpha, high, b, x, big_t, t, m)
        )
    log_1mz = np.log(alpha + big_t) - np.log(alpha + big_t + t)
    z = -np.expm1(log_1mz)
    with np.errstate(all="ignore"):
        if kind == "purchases":
            c0 = a + b - 1.0 + m
            hyp = hyp2f1(a - 1.0, c0 - r, c0 + x, z)
            values = (c0 + x) / (a - 1.0) * (1.0 - np.exp((a - 1.0) * log_1mz) * hyp)
            function = _purchases_given_p
        else:
            values = np.exp(a * log_1mz) * hyp2f1(a, a + b + m - r, a + b + m + x, z)
            function = _survival_given_p
    bad = ~np.isfinite(values)
    if np.any(bad):
        u = t / (alpha + big_t)
        with np.errstate(all="ignore"):
            values[bad] = _beta_expectation(
                function, a[bad], (b + m + x)[bad], (r + x)[bad], u[bad]
            )
    return values


# ---------------------------------------------------------------------------------------------
# The model classes
# ---------------------------------------------------------------------------------------------
class _BetaGeoFamily(PurchaseDropoutCovariates, TransactionModel):
    """Fitting and predictions shared by BG/NBD and MBG/NBD (not used directly)."""

    _covariate_predictions: ClassVar[str] = (
        "expected_purchases, probability_alive or expected_purchases_new_customer"
    )

    #: how covariate_effects words a dropout multiplier (CLVTools: it scales a and b alike)
    _covariate_groups: ClassVar[tuple[str, ...]] = ("purchase", "dropout")
    _covariate_links: ClassVar[dict[str, tuple[str, float]]] = {  # see _covariate_rows
        "alpha": ("purchase", -1.0),
        "a": ("dropout", 1.0),
        "b": ("dropout", 1.0),
    }
    _dropout_effect_words: ClassVar[str] = (
        "shape parameters a and b (same mean dropout probability)"
    )

    _data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    #: False for BG/NBD, True for MBG/NBD (drop-out also possible right after the first purchase)
    _modified: ClassVar[bool] = False
    _ftol: ClassVar[float] = 1e-12

    def _validate_data(self, data: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
        self._check_frequency_recency(data, frame)

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        rate = max(np.dot(weights, data["frequency"]), 1.0) / max(np.dot(weights, data["T"]), 1e-9)
        start = np.array([1.0, 1.0 / rate, 1.0, 1.0])
        if len(self._param_names) > 4:  # covariate coefficients start at 0 (no effect)
            return np.concatenate([start, np.zeros(len(self._param_names) - 4)])
        return start

    def _starting_points(
        self, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> list[np.ndarray]:
        starts = super()._starting_points(data, weights)
        if "_X1" in data:  # covariates: first from the fit without them, coefficients at 0
            return self._first_start_without_covariates(starts, data, weights)
        return starts

    def _prepare_patterns(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if getattr(self, "covariates_", None) is None:
            return _index_columns(data, ("frequency", "recency", "T"))
        prepared = _index_columns({c: data[c] for c in self._data_columns}, ("frequency",))
        columns = sorted((k for k in data if k.startswith("cov:")), key=lambda k: int(k[4:]))
        matrix = np.empty((len(data["T"]), len(columns)), order="F")
        for j, column in enumerate(columns):
            matrix[:, j] = data[column]
        prepared.update(self._fit_design(matrix, len(data["T"])))
        prepared["_rising_index"] = _rising_index(data["frequency"] + float(self._modified))
        return prepared

    def _fit_design(self, matrix: np.ndarray | None, n: int) -> dict[str, np.ndarray]:
        """The covariate arrays of the likelihood for the design ``matrix`` of ``n`` rows (see
        :func:`_fit_design`)."""
        names = list(self._param_names[self._n_base() :])
        spec = self.covariates_
        if matrix is None:
            matrix = np.zeros((n, 0))
        selections = (spec.selection("purchase", names), spec.selection("dropout", names))
        return _fit_design(matrix, *selections)

    def _loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        if "_X1" in data:
            return _loglik_grad_covariates(params, data, modified=self._modified)
        return _loglik_grad(params, data, modified=self._modified)

    def _weighted_loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> tuple[float, np.ndarray]:
        if "_X1" in data:
            return _loglik_grad_covariates(params, data, modified=self._modified, weights=weights)
        return _weighted_loglik_grad(params, data, weights, modified=self._modified)

    def _weighted_loglik_hessian(
        self, params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray] | None:
        if "_X1" in data:  # the exact Hessian of the covariate likelihood (Newton fits)
            modified = self._modified
            return _loglik_hessian_covariates(params, data, modified=modified, weights=weights)
        return None

    def _loglik(self, params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        if "_X1" in data:
            return _covariate_row_terms(params, data, modified=self._modified, second=False)[0]
        return self._loglik_grad(params, data)[0]

    # ------------------------------------------------------------------ covariates

    def _covariate_design(self, matrix: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(Z_purchase, Z_dropout)``: the design mapped to the coefficients (``n, k``)."""
        return self._group_design(matrix, n, "purchase"), self._group_design(matrix, n, "dropout")

    def _customer_params(
        self, summary: pd.DataFrame, customers: pd.DataFrame | None
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """``r, alpha_i, a_i, b_i`` of the customers of ``summary`` with their covariates."""
        zp, zd = self._covariate_design(self._customer_matrix(summary, customers), len(summary))
        return _covariate_rows(self.params_.to_numpy(dtype=float), zp, zd)

    def _extra_state(self) -> dict[str, Any]:
        return self._with_covariate_state(super()._extra_state())

    def _set_extra_state(self, state: Mapping[str, Any]) -> None:
        super()._set_extra_state(state)
        self._restore_covariate_state(state)

    # ------------------------------------------------------------------ predictions
    @staticmethod
    def _row_index(data: dict[str, Any]) -> _RowIndex:
        """The :class:`_RowIndex` of validated prediction data, kept with the data (the model
        remembers the last summary's, see :meth:`BaseModel._prediction_data`)."""
        if "_row_index" not in data:
            data["_row_index"] = _RowIndex(data["frequency"], data["recency"], data["T"])
        return data["_row_index"]

    def _expected_purchases(
        self, data: Mapping[str, Any], horizon: Any, summary: Any, customers: Any
    ) -> np.ndarray:
        """``E[Y(t) | frequency, recency, T]`` (FHL 2005, eq. 10 for BG/NBD; Batislam et al.
        2007, appendix, for MBG/NBD), evaluated in a numerically stable form (see
        :func:`custval.models.beta_geo._purchases_if_alive`)."""
        if getattr(self, "covariates_", None) is not None:
            return self._covariate_prediction("purchases", data, horizon, summary, customers)
        return self._at_fitted(_expected_purchases, data, horizon)

    def _probability_alive(
        self, data: Mapping[str, Any], horizon: float | None, summary: Any, customers: Any
    ) -> np.ndarray:
        """With ``t=None`` (or 0) ``P(alive at T | frequency, recency, T)`` (Hardie's note 021
        for BG/NBD; Batislam et al. 2007, appendix, for MBG/NBD). With ``t > 0`` the
        probability of being alive at ``T + t`` given the history up to ``T``, *whatever the
        customer does in between*: purchases in ``(T, T+t]`` each carry a risk of dropping
        out, so this is ``P(alive at T) * E[exp(-lambda p t) | alive at T, history]``, which
        has a closed form in the Gauss hypergeometric function (derivation in
        :func:`custval.models.beta_geo._survival_if_alive`). It is *not* lifetimes' trick of
        evaluating the current formula at ``T + t`` (which assumes no purchases until then).

        >>> import pandas as pd
        >>> from custval import BetaGeoModel
        >>> model = BetaGeoModel.from_params(r=0.2426, alpha=4.4135, a=0.7929, b=2.4258, freq="W")
        >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> model.probability_alive(customer, "39W").round(3).tolist()
        [0.567]
        """
        horizon = 0.0 if horizon is None else horizon
        if getattr(self, "covariates_", None) is not None:
            return self._covariate_prediction("survival", data, horizon, summary, customers)
        return self._at_fitted(_probability_alive, data, horizon)

    def _at_fitted(self, predict: Any, data: Mapping[str, Any], horizon: Any) -> np.ndarray:
        """``predict`` (:func:`_expected_purchases` or :func:`_probability_alive`) of the rows
        of ``data`` at the fitted parameters, sharing the rows' index between calls."""
        x, t_x, big_t = data["frequency"], data["recency"], data["T"]
        index = self._row_index(data)
        return predict(self._params(), x, t_x, big_t, horizon, modified=self._modified, index=index)

    def _covariate_prediction(
        self, kind: str, data: Mapping[str, Any], horizon: float, summary: Any, customers: Any
    ) -> np.ndarray:
        """``P(alive at T)`` times the ``kind`` factor if alive (``"purchases"`` in ``(T,
        T+t]`` or ``"survival"`` to ``T+t``; 1 at ``t = 0``) of each customer at their own
        covariate-scaled parameters."""
        r, alpha, a, b = self._customer_params(summary, customers)
        m = 1.0 if self._modified else 0.0
        x, t_x, big_t = data["frequency"], data["recency"], data["T"]
        values = _alive_rows(r, alpha, a, b, x, t_x, big_t, m)
        if kind == "purchases" or np.any(np.asarray(horizon) > 0):
            values = values * _if_alive_rows(kind, r, alpha, a, b, x, big_t, horizon, m)
        return values

    def _conditional_pmf(
        self, counts: np.ndarray, data: Mapping[str, Any], horizon: float
    ) -> np.ndarray:
        """``P(X(T, T+t) = n | frequency, recency, T)``: the conditional counterpart of FHL
        2005, eq. (8) (``_conditional_probability_of_purchases`` of this module gives the
        derivation)."""
        return _conditional_probability_of_purchases(
            self._params(), counts, data, horizon, modified=self._modified
        )

    def _new_customer_pmf(self, params: np.ndarray, counts: np.ndarray, horizon: float) -> Any:
        """FHL 2005, eq. (8) for BG/NBD (and its MBG/NBD counterpart), with the finite sum
        written as a regularized incomplete beta function."""
        return _probability_of_purchases(params, counts, horizon, modified=self._modified)

    def expected_purchases_new_customer(
        self, t: float | str | Any, customers: pd.DataFrame | None = None
    ) -> float | pd.Series:
        """Expected repeat purchases of a newly acquired customer in their first ``t`` periods.

        FHL 2005, eq. (9) for BG/NBD; ``b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b;
        t/(alpha+t))]`` for MBG/NBD; evaluated after Euler's transformation.

        Parameters
        ----------
        t : float, str or array-like of them
            Horizon(s): durations with unit or numbers of periods.
        customers : DataFrame, optional
            For a model with covariates (required there): covariate profiles, one row each
            (e.g. ``pd.DataFrame({"channel": ["direct", "referral"]})``); ``t`` is then one
            horizon and the result a Series aligned with ``customers.index``.

        Returns
        -------
        float or Series
            A float for a scalar ``t``; otherwise a Series indexed by ``t``.

        Examples
        --------
        >>> from custval import BetaGeoModel
        >>> model = BetaGeoModel.from_params(r=0.2426, alpha=4.4135, a=0.7929, b=2.4258, freq="W")
        >>> round(model.expected_purchases_new_customer("78W"), 4)
        1.858
        """
        if getattr(self, "covariates_", None) is not None:
            check_is_fitted(self, "params_")
            if customers is None:
                raise DataError(
                    f"this {self._name()} has covariates: give the profiles of the new "
                    "customers, e.g. customers=pd.DataFrame({'channel': ['referral']})"
                )
            horizon = self._duration(t)
            if np.ndim(horizon) != 0:
                raise DataError("with covariate profiles, t must be one horizon")
            r, alpha, a, b = self._customer_params(customers, None)
            m = 1.0 if self._modified else 0.0
            zero = np.zeros(len(customers))
            values = _if_alive_rows("purchases", r, alpha, a, b, zero, zero, horizon, m)
            values *= _alive_rows(r, alpha, a, b, zero, zero, zero, m)
            return self._series(values, customers, "expected_purchases")
        return super().expected_purchases_new_customer(t)

    def _new_customer_mean(self, params: np.ndarray, horizon: Any) -> Any:
        """FHL 2005, eq. (9) for BG/NBD; ``b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b;
        t/(alpha+t))]`` for MBG/NBD; evaluated after Euler's transformation."""
        return _expected_purchases_new_customer(params, horizon, modified=self._modified)

    # -- the value-kernel contract of custval.clv (README "Design notes") ----------------------
    def _value_kernel(self, terms: Any) -> Any:
        """The BG/NBD family's kernel for :func:`custval.customer_lifetime_value` (None, the
        generic quadrature of :meth:`expected_purchases`, for other parameters)."""
        if tuple(self.params_.index) != ("r", "alpha", "a", "b"):
            return None
        from custval.models._beta_geo_clv import BetaGeoKernel

        return BetaGeoKernel(self, terms)


class BetaGeoModel(_BetaGeoFamily):
    """BG/NBD model of repeat purchasing in non-contractual settings.

    Fader, Hardie & Lee (2005): while alive a customer buys at Poisson rate
    ``lambda ~ Gamma(r, alpha)``; after each repeat purchase they drop out with probability
    ``p ~ Beta(a, b)``. Fitted by maximum likelihood (eq. 6) with its analytic gradient, on the
    distinct ``(frequency, recency, T)`` patterns.

    Time-invariant covariates (``fit(..., customers=..., purchase_covariates=[...],
    dropout_covariates=[...])``, as CLVTools' static covariates) act on the purchase scale,
    ``alpha_i = alpha exp(-x'beta)`` (``exp(beta)`` multiplies the expected rate ``r /
    alpha_i``), and on dropout, ``a_i = a exp(x'gamma)``, ``b_i = b exp(x'gamma)`` (the same
    mean dropout probability, :func:`custval.covariate_effects` words it so); MBG/NBD alike.

    Parameters
    ----------
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Attributes
    ----------
    params_ : Series
        ``r``, ``alpha`` (in the summary's time unit), ``a``, ``b``.
    log_likelihood_, n_customers_, n_patterns_, variance_matrix_, freq_
        See :class:`custval.models._base.BaseModel`; ``summary``, ``aic`` and ``bic`` too.

    Examples
    --------
    >>> import custval
    >>> summary = custval.rfm_summary(transactions, freq="W")  # doctest: +SKIP
    >>> model = custval.BetaGeoModel().fit(summary)  # doctest: +SKIP
    >>> model.summary  # doctest: +SKIP

    With the published CDNOW estimates (FHL 2005):

    >>> import pandas as pd
    >>> model = custval.BetaGeoModel.from_params(
    ...     r=0.2426, alpha=4.4135, a=0.7929, b=2.4258, freq="W")
    >>> customers = pd.DataFrame(
    ...     {"frequency": [0, 2], "recency": [0.0, 30.43], "T": [38.86, 38.86]}, index=["a", "b"])
    >>> model.expected_purchases(customers, "39W").round(3).to_dict()
    {'a': 0.195, 'b': 1.226}
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    _display_name: ClassVar[str] = "BG/NBD model"
    _modified: ClassVar[bool] = False
