"""Pareto/NBD: the Pareto/negative binomial distribution model.

Schmittlein, Morrison & Colombo (1987), "Counting Your Customers: Who Are They and What Will They
Do Next?", Management Science 33(1), 1-24 (SMC). While alive, a customer buys as a Poisson
process with rate ``lambda ~ Gamma(r, alpha)``; their lifetime is exponential with rate
``mu ~ Gamma(s, beta)``.

References for the formulas below:

* the likelihood: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer
  Base Analysis", Journal of Marketing Research 42(4), 415-430 (FHL-RFM), appendix,
  and Fader & Hardie's notes 008 and 009 ("A Note on Deriving the Pareto/NBD Model and Related
  Expressions", 2005, eq. 18-20);
* P(alive), conditional expectations and the new-customer mean: note 009, eq. (27), (36)-(41);
* P(X(t) = x) for a new customer: note 008 ("Deriving an Expression for P(X(t) = x) Under the
  Pareto/NBD Model", 2006), used here in its integral form;
* DERT: FHL-RFM eq. (2).

Numerics. With ``J = integral_{t_x}^{T} (alpha + tau)^-(r+x) (beta + tau)^-(s+1) d tau`` (the
death of the customer at ``tau`` between the last purchase and ``T``, averaged over lambda and
mu; see also Hardie's note 027 on the Pareto/NBD likelihood), the likelihood is::

    L = G(r+x) alpha^r beta^s / G(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s J ]     (FHL-RFM A1)

``s J`` is the ``s/(r+s+x) A_0`` of FHL-RFM, where ``A_0`` is a difference of two Gauss
hypergeometric functions ``2F1(r+s+x, s+1 or r+x; r+s+x+1; z)``. Here ``J = I(t_x) - I(T)`` with
``I(t) = integral_t^inf`` written after Euler's transformation as::

    I(t) = (M+t)^-e_M (m+t)^-(e_m-1) / (r+s+x) * sum_n (e_M)_n / (r+s+x+1)_n z^n,
    z = |alpha - beta| / (M + t),

where ``M = max(alpha, beta)`` carries the exponent ``e_M`` (``r+x`` if it is ``alpha``, else
``s+1``) and ``m`` the other. Every term of the series is positive and their ratio is below
``z``, so the series converges monotonically with no overflow whatever ``x`` and ``T`` are; the
parameter derivatives are running sums computed alongside (``d/d e_M log (e_M)_n`` is a sum of
reciprocals). Where ``z > 0.9`` at ``t_x`` (very different alpha and beta), ``J`` is instead
integrated directly by Gauss-Legendre quadrature in ``v = log(m + tau)``, where the log-integrand
is concave, on the interval that carries all but ``e^-44`` of its mass; its derivatives are
integrals of the derivatives of the integrand (differentiation under the integral).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import gammaln

from custval._rows import unique_rows as _unique_rows
from custval._units import annual_rate_to_period
from custval.errors import DataError
from custval.models._base import TransactionModel
from custval.models._covariates import PurchaseDropoutCovariates, column, per_row, row_params
from custval.models._log_quadrature import QUAD_DROP as _QUAD_DROP
from custval.models._log_quadrature import concave_log_quadrature as _concave_log_quadrature
from custval.models._log_quadrature import gauss_legendre as _gauss_legendre
from custval.models._special import digamma_rising, log_rising

__all__ = ["ParetoNBDModel"]

_SERIES_MAX_Z = 0.9  # above this z (at t_x) J is integrated by quadrature instead
_SERIES_RTOL = 1e-17  # stop when a term is below this fraction of the partial sum
_SERIES_MAX_TERMS = 520  # ratio < 0.9: 400 terms reach 1e-17 (with the tail); a safety net
_S_NEAR_ONE = 1e-7
_PAIR_KEYS = (
    "_pair_x",
    "_pair_t",
    "_pair_lo",
    "_pair_hi",
)  # |s - 1| below which the removable singularity at s = 1 is stepped around


_GL64 = _gauss_legendre(64)
_GL128 = _gauss_legendre(128)
_GL256 = _gauss_legendre(256)  # long intervals with exponential tails (predictions only)


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------
def _ratio_series(
    e_big: np.ndarray, c: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``log S`` and ``d log S / d(e_big, c, z)`` for ``S = sum_n (e_big)_n / (c)_n z^n``.

    Requires ``0 < e_big < c`` and ``0 <= z < 1``: every term is positive and the ratio of
    consecutive terms, ``z (e_big + n) / (c + n)``, is below ``z``. Rows leave the loop as soon
    as their latest term is below ``_SERIES_RTOL`` of their sum (the rest is below
    ``term z / (1 - z)``).
    """
    n_rows = z.shape[0]
    out = np.empty((4, n_rows))
    idx = np.arange(n_rows)
    # state rows: sum, d/de, d/dc, d/dz, harmonic sums for e and c, term / z
    total, d_e, d_c, d_z = np.ones(n_rows), np.zeros(n_rows), np.zeros(n_rows), np.zeros(n_rows)
    harm_e, harm_c, coef = np.zeros(n_rows), np.zeros(n_rows), np.ones(n_rows)
    e_act, c_act, z_act = e_big.copy(), c.copy(), z.copy()
    inv_e, inv_c, term = np.empty(n_rows), np.empty(n_rows), np.empty(n_rows)
    for n in range(1, _SERIES_MAX_TERMS + 1):
        # (e)_n/(c)_n z^(n-1) = previous * (e+n-1)/(c+n-1) * z  (no z for n = 1)
        np.divide(1.0, e_act, out=inv_e)
        np.divide(1.0, c_act, out=inv_c)
        coef *= inv_c
        coef *= e_act
        if n > 1:
            coef *= z_act
        harm_e += inv_e
        harm_c += inv_c
        np.multiply(coef, z_act, out=term)
        total += term
        d_e += term * harm_e
        d_c -= term * harm_c
        d_z += n * coef
        e_act += 1.0
        c_act += 1.0
        if n % 8 == 0 or n == _SERIES_MAX_TERMS:
            going = term > _SERIES_RTOL * total
            if n == _SERIES_MAX_TERMS:
                going[:] = False
            if not going.all():
                done = ~going
                rows = idx[done]
                out[0, rows], out[1, rows] = total[done], d_e[done]
                out[2, rows], out[3, rows] = d_c[done], d_z[done]
                if not going.any():
                    break
                idx, total, d_e, d_c, d_z = (a[going] for a in (idx, total, d_e, d_c, d_z))
                harm_e, harm_c, coef = harm_e[going], harm_c[going], coef[going]
                e_act, c_act, z_act = e_act[going], c_act[going], z_act[going]
                inv_e, inv_c, term = inv_e[going], inv_c[going], term[going]
    total = out[0]
    return np.log(total), out[1] / total, out[2] / total, out[3] / total


def _log_j_series(
    params: np.ndarray, x: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``log I(t) + r log alpha + s log beta`` and its gradient in (r, alpha, s, beta),
    ``I(t) = integral_t^inf ...``.

    The scale ``alpha^r beta^s`` of the likelihood is taken inside, as ``r log1p(t/alpha)``
    and ``r t / (alpha (alpha + t))`` rather than ``r log alpha - r log(alpha + t)``: on a
    ridge (``r, alpha`` or ``s, beta`` growing together) the plain forms cancel to noise.
    """
    r, alpha, s, beta = params
    if np.ndim(alpha) or np.ndim(beta):  # per-row alpha, beta: each branch on its rows
        big = np.broadcast_to(np.asarray(alpha >= beta), t.shape)
        if big.any() and not big.all():
            log_i, grad = np.empty(t.shape[0]), np.empty((4, t.shape[0]))
            for rows in (big, ~big):
                log_i[rows], grad[:, rows] = _log_j_series(
                    row_params(params, rows), x[rows], t[rows]
                )
            return log_i, grad
    alpha_big = bool(np.all(alpha >= beta))
    a = r + s + x
    log_at, log_bt = np.log(alpha + t), np.log(beta + t)
    l1p_a, l1p_b = np.log1p(t / alpha), np.log1p(t / beta)
    # d/d alpha of r log alpha - (r + k) log(alpha + t), and the same in beta
    da_r = r * t / (alpha * (alpha + t))
    db_s = s * t / (beta * (beta + t))
    grad = np.empty((4, t.shape[0]))
    if alpha_big:  # M = alpha with exponent r + x; m = beta with exponent s + 1
        z = (alpha - beta) / (alpha + t)
        log_s, d_e, d_c, d_z = _ratio_series(r + x, a + 1.0, z)
        log_i = -r * l1p_a - x * log_at - s * l1p_b + log_s - np.log(a)
        grad[0] = -l1p_a + d_e + d_c - 1.0 / a
        grad[1] = da_r - x / (alpha + t) + d_z * (beta + t) / (alpha + t) ** 2
        grad[2] = -l1p_b + d_c - 1.0 / a
        grad[3] = db_s - d_z / (alpha + t)
    else:  # M = beta with exponent s + 1; m = alpha with exponent r + x
        z = (beta - alpha) / (beta + t)
        log_s, d_e, d_c, d_z = _ratio_series(np.full_like(t, s + 1.0), a + 1.0, z)
        log_i = -s * l1p_b - log_bt - r * l1p_a - (x - 1.0) * log_at + log_s - np.log(a)
        grad[0] = -l1p_a + d_c - 1.0 / a
        grad[1] = da_r - (x - 1.0) / (alpha + t) - d_z / (beta + t)
        grad[2] = -l1p_b + d_e + d_c - 1.0 / a
        grad[3] = db_s - 1.0 / (beta + t) + d_z * (alpha + t) / (beta + t) ** 2
    return log_i, grad


def _log_j_quadrature(
    params: np.ndarray, x: np.ndarray, t_lo: np.ndarray, t_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``log J + r log alpha + s log beta`` and its gradient by quadrature in
    ``v = log(min(alpha, beta) + tau)`` (the scale taken inside, as in :func:`_log_j_series`)."""
    r, alpha, s, beta = params
    m = np.minimum(alpha, beta)
    da, db = alpha - m, beta - m  # one of them is 0 (per row, for per-row alpha and beta)
    p = r + x
    log_m = np.log(m)

    # log of the integrand in v (with the Jacobian m + tau = e^v), times alpha^r beta^s;
    # concave in v. tau = m expm1(v - log m) keeps log1p(tau / alpha) exact for large alpha.
    def log_f(v: np.ndarray, rows: np.ndarray) -> np.ndarray:
        u = np.exp(v)
        tau = column(m, v, rows) * np.expm1(v - column(log_m, v, rows))
        xx = x[rows] if v.ndim == 1 else x[rows, None]
        return (
            v
            - r * np.log1p(tau / column(alpha, v, rows))
            - xx * np.log(u + column(da, v, rows))
            - s * np.log1p(tau / column(beta, v, rows))
            - np.log(u + column(db, v, rows))
        )

    def slope(v: np.ndarray, rows: np.ndarray) -> np.ndarray:
        u = np.exp(v)
        return (
            1.0
            - p[rows] * u / (u + column(da, v, rows))
            - (s + 1.0) * u / (u + column(db, v, rows))
        )

    lo, hi = np.log(m + t_lo), np.log(m + t_hi)
    peak = lo.copy()
    if np.any(alpha < beta):  # the integrand may rise first where r + x < 1
        sigma = (1.0 - p) / (s + 1.0)
        rising = (sigma > 0) & (sigma < 1) & (alpha < beta)
        with np.errstate(divide="ignore", invalid="ignore"):
            v_star = np.log(sigma * (beta - alpha) / (1.0 - sigma))
        peak = np.where(rising, np.clip(v_star, lo, hi), lo)
    log_j, v, weights = _concave_log_quadrature(log_f, slope, lo, hi, peak, _GL64)
    every = np.arange(t_lo.shape[0])
    alpha, beta, m, log_m, da, db = (column(a, v, every) for a in (alpha, beta, m, log_m, da, db))
    u = np.exp(v)
    tau = m * np.expm1(v - log_m)
    grad = np.empty((t_lo.shape[0], 4))
    grad[:, 0] = -(weights * np.log1p(tau / alpha)).sum(axis=1)
    grad[:, 1] = (weights * (r * tau / (alpha * (u + da)) - x[:, None] / (u + da))).sum(axis=1)
    grad[:, 2] = -(weights * np.log1p(tau / beta)).sum(axis=1)
    grad[:, 3] = (weights * (s * tau / (beta * (u + db)) - 1.0 / (u + db))).sum(axis=1)
    return log_j, grad


def _endpoint_pairs(
    x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(x, t)`` pairs among ``(x, t_x)`` and ``(x, T)``, with the index of each row's
    two pairs: ``I(t)`` is evaluated once per pair (in daily data, ~4x fewer than rows)."""
    n = x.shape[0]
    codes_x, uniq_x = pd.factorize(np.concatenate([x, x]), sort=False)
    codes_t, uniq_t = pd.factorize(np.concatenate([t_x, big_t]), sort=False)
    code, uniq = pd.factorize(codes_x.astype(np.int64) * len(uniq_t) + codes_t, sort=False)
    uniq = np.asarray(uniq)
    pair_x = np.asarray(uniq_x, dtype=float)[uniq // len(uniq_t)]
    pair_t = np.asarray(uniq_t, dtype=float)[uniq % len(uniq_t)]
    return pair_x, pair_t, code[:n], code[n:]


def _log_j_parts(
    params: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    big_t: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """``log J`` per row with the pieces of its gradient.

    ``J = I(t_x) - I(T)`` from the series on the distinct ``(x, t)`` pairs (``log_i``,
    ``grad_i`` of shape ``(4, n_pairs)``): ``d log J = (g_lo - rho g_hi) / (1 - rho)`` with
    ``rho = I(T) / I(t_x)``; rows in ``quad`` (large z) come from quadrature (``grad_quad``).
    """
    own_params = params  # the rows' own (for the quadrature rows)
    if per_row(params):  # per-row alpha, beta: one "pair" per row and endpoint
        n = x.shape[0]
        r, alpha, s, beta = params[:4]
        params = (r, np.broadcast_to(alpha, (n,)), s, np.broadcast_to(beta, (n,)))
        every = np.arange(n)
        pairs = (np.concatenate([x, x]), np.concatenate([t_x, big_t]), every, n + every)
        own_params, params = params, row_params(params, np.concatenate([every, every]))
    alpha, beta = params[1], params[3]
    pair_x, pair_t, lo, hi = _endpoint_pairs(x, t_x, big_t) if pairs is None else pairs
    z_pair = abs(alpha - beta) / (np.maximum(alpha, beta) + pair_t)
    use_series = z_pair <= _SERIES_MAX_Z  # z decreases in t: if (x, t_x) qualifies, so does T
    all_series = bool(use_series.all())
    if all_series:
        log_i, grad_i = _log_j_series(params, pair_x, pair_t)
        quad = None
    else:
        log_i = np.zeros(pair_t.shape[0])
        grad_i = np.zeros((4, pair_t.shape[0]))
        if use_series.any():
            log_i[use_series], grad_i[:, use_series] = _log_j_series(
                row_params(params, use_series), pair_x[use_series], pair_t[use_series]
            )
        quad = ~use_series[lo]
    # J = I(t_x) - I(T) = I(t_x) (1 - rho); exactly zero where t_x = T
    with np.errstate(divide="ignore", invalid="ignore"):
        one_minus = -np.expm1(np.minimum(log_i[hi] - log_i[lo], 0.0))
        log_j = log_i[lo] + np.log(one_minus)
        inv = np.where(one_minus > 0, 1.0 / one_minus, 0.0)
    grad_quad = None
    if quad is not None:
        inv[quad] = 0.0
        if quad.any():
            lj, g = _log_j_quadrature(row_params(own_params, quad), x[quad], t_x[quad], big_t[quad])
            log_j[quad] = lj
            grad_quad = np.where(np.isfinite(lj), g.T, 0.0)
    return {
        "log_j": log_j,
        "log_i": log_i,
        "grad_i": grad_i,
        "lo": lo,
        "hi": hi,
        "inv": inv,
        "rho_inv": (1.0 - one_minus) * inv,
        "quad": quad if quad is not None and quad.any() else None,
        "grad_quad": grad_quad,
    }


def _log_j(
    params: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    big_t: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``log J`` (``-inf`` where ``t_x == T``) and ``d log J / d params``, shape ``(4, n)``."""
    parts = _log_j_parts(params, x, t_x, big_t, pairs)
    grad_i, lo, hi = parts["grad_i"], parts["lo"], parts["hi"]
    grad = grad_i[:, lo] * parts["inv"] - grad_i[:, hi] * parts["rho_inv"]
    if parts["quad"] is not None:
        grad[:, parts["quad"]] = parts["grad_quad"]
    return parts["log_j"], grad


def _frequency_terms(params: np.ndarray, data: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
    """``lgamma(r+x) - lgamma(r)`` and ``digamma(r+x) - digamma(r)``, once per distinct x."""
    r = params[0]
    if "_x_unique" in data:
        x_u, inverse = data["_x_unique"], data["_x_inverse"]
        return log_rising(r, x_u)[inverse], digamma_rising(r, x_u)[inverse]
    x = data["frequency"]
    return log_rising(r, x), digamma_rising(r, x)


def _loglik_core(params: np.ndarray, data: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Per-row log-likelihood (FHL-RFM appendix; note 009 eq. 18) and the pieces of its gradient::

    log L = lgamma(r+x) - lgamma(r) + r log alpha + s log beta
            + log[ (alpha+T)^-(r+x) (beta+T)^-s + s J ]
    """
    _r, _alpha, s, _beta = params
    x, t_x, big_t = data["frequency"], data["recency"], data["T"]
    lgam, dgam = _frequency_terms(params, data)
    alive, d_alive = _log_alive_scaled(params, x, big_t)  # alive at T
    pairs = tuple(data[k] for k in _PAIR_KEYS) if _PAIR_KEYS[0] in data else None
    parts = _log_j_parts(params, x, t_x, big_t, pairs)
    died = np.log(s) + parts["log_j"]  # died in (t_x, T]
    log_sum = np.logaddexp(alive, died)
    w_alive = np.exp(alive - log_sum)
    parts.update(
        ll=lgam + log_sum, w_alive=w_alive, w_died=1.0 - w_alive, dgam=dgam, d_alive=d_alive
    )
    return parts


def _log_alive_scaled(
    params: np.ndarray, x: np.ndarray, big_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``log[alpha^r beta^s (alpha+T)^-(r+x) (beta+T)^-s]`` and its gradient ``(4, n)``,
    written without the cancellation of ``r log alpha - r log(alpha + T)``."""
    r, alpha, s, beta = params
    l1p_a, l1p_b = np.log1p(big_t / alpha), np.log1p(big_t / beta)
    inv_at = 1.0 / (alpha + big_t)
    grad = np.empty((4, x.shape[0]))
    grad[0] = -l1p_a
    grad[1] = r * big_t * inv_at / alpha - x * inv_at
    grad[2] = -l1p_b
    grad[3] = s * big_t / (beta * (beta + big_t))
    return -r * l1p_a - x * np.log(alpha + big_t) - s * l1p_b, grad


def _loglik_grad(
    params: np.ndarray, data: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood and its gradient in (r, alpha, s, beta), ``(n,)`` and ``(n, 4)``."""
    _r, _alpha, s, _beta = params
    _x, _big_t = data["frequency"], data["T"]
    c = _loglik_core(params, data)
    grad_i, lo, hi, w_alive, w_died = c["grad_i"], c["lo"], c["hi"], c["w_alive"], c["w_died"]
    grad = grad_i[:, lo] * (w_died * c["inv"]) - grad_i[:, hi] * (w_died * c["rho_inv"])
    if c["quad"] is not None:
        grad[:, c["quad"]] = c["grad_quad"] * w_died[c["quad"]]
    grad += w_alive * c["d_alive"]
    grad[0] += c["dgam"]
    grad[2] += w_died / s
    return c["ll"], grad.T


def _wsum(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` without BLAS: ``np.dot`` on long vectors may hand the work to
    OpenBLAS threads, which is many times slower on a busy machine."""
    return float(np.multiply(a, b).sum())


def _weighted_loglik_grad(
    params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """``sum_i w_i log L_i`` and its gradient without forming per-row gradients: the series
    gradients are combined once per ``(x, t)`` pair with ``bincount``-summed coefficients."""
    _r, _alpha, s, _beta = params
    _x, _big_t = data["frequency"], data["T"]
    c = _loglik_core(params, data)
    grad_i, lo, hi = c["grad_i"], c["lo"], c["hi"]
    wa = weights * c["w_alive"]
    wd = weights * c["w_died"]
    n_pairs = grad_i.shape[1]
    pair_coef = np.bincount(lo, wd * c["inv"], minlength=n_pairs) - np.bincount(
        hi, wd * c["rho_inv"], minlength=n_pairs
    )
    grad = (grad_i * pair_coef).sum(axis=1)
    if c["quad"] is not None:
        grad = grad + (c["grad_quad"] * wd[c["quad"]]).sum(axis=1)
    grad = grad + np.array([_wsum(wa, row) for row in c["d_alive"]])
    grad[0] += _wsum(weights, c["dgam"])
    grad[2] += wd.sum() / s
    return _wsum(weights, c["ll"]), grad


# ---------------------------------------------------------------------------------------------
# Predictions: functions of (params, arrays) so that customer-value code can evaluate them at
# sampled parameter vectors; the model methods wrap them.
# ---------------------------------------------------------------------------------------------
def _as_arrays(*values: Any) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(v, dtype=float) for v in values)


def _log_probability_alive(
    params: np.ndarray, frequency: Any, recency: Any, big_t: Any
) -> np.ndarray:
    """``log P(alive at T | x, t_x, T)`` (note 009, eq. 36-37)."""
    _r, _alpha, s, _beta = params
    x, t_x, t_big = np.broadcast_arrays(*_as_arrays(frequency, recency, big_t))
    shape = x.shape
    x, t_x, t_big = x.ravel(), t_x.ravel(), t_big.ravel()
    alive = _log_alive_scaled(params, x, t_big)[0]
    log_j = _log_j_parts(params, x, t_x, t_big)["log_j"]
    died = np.log(s) + log_j
    return (alive - np.logaddexp(alive, died)).reshape(shape)


def _probability_alive(params: np.ndarray, frequency: Any, recency: Any, big_t: Any) -> np.ndarray:
    """``P(alive at T | x, t_x, T)`` (note 009, eq. 36-37)."""
    return np.exp(_log_probability_alive(params, frequency, recency, big_t))


def _probability_alive_later(
    params: np.ndarray, frequency: Any, recency: Any, big_t: Any, t: float
) -> np.ndarray:
    """``P(alive at T + t | x, t_x, T) = P(alive at T) ((beta+T)/(beta+T+t))^s``: given alive
    at ``T``, ``mu ~ Gamma(s, beta+T)`` and the lifetime is memoryless (note 009's posterior;
    lifetimes' ``conditional_probability_alive(m_periods_in_future)``)."""
    s, beta = params[2], params[3]
    big_t = np.asarray(big_t, dtype=float)
    log_alive = _log_probability_alive(params, frequency, recency, big_t)
    return np.exp(log_alive + s * (np.log(beta + big_t) - np.log(beta + big_t + t)))


def _log_one_minus_power(base_log: np.ndarray, exponent: float) -> np.ndarray:
    """``log([1 - exp(exponent * base_log)] / exponent)`` for ``base_log <= 0``; the limit
    ``log(-base_log)`` at ``exponent = 0``."""
    base_log = np.asarray(base_log, dtype=float)
    if abs(exponent) < _S_NEAR_ONE:
        with np.errstate(divide="ignore"):
            return np.log(-base_log)
    with np.errstate(divide="ignore"):
        return np.log(-np.expm1(exponent * base_log) / exponent)


def _expected_purchases(
    params: np.ndarray, frequency: Any, recency: Any, big_t: Any, t: Any
) -> np.ndarray:
    """``E[X(T, T+t) | x, t_x, T]`` (note 009, eq. 41)::

    P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]

    with the bracket over ``s - 1`` evaluated by ``expm1`` (its limit at ``s = 1`` is
    ``log((beta+T+t)/(beta+T))``).
    """
    r, alpha, s, beta = params
    x, t_x, t_big, horizon = np.broadcast_arrays(*_as_arrays(frequency, recency, big_t, t))
    log_alive = _log_probability_alive(params, x, t_x, t_big)
    base_log = np.log(beta + t_big) - np.log(beta + t_big + horizon)
    log_value = (
        log_alive
        + np.log(r + x)
        + np.log(beta + t_big)
        - np.log(alpha + t_big)
        + _log_one_minus_power(base_log, s - 1.0)
    )
    return np.where(horizon > 0, np.exp(log_value), 0.0)


def _expected_purchases_new_customer(params: np.ndarray, t: Any) -> np.ndarray:
    """``E[X(t)]`` for a new customer (note 009, eq. 27)::

    r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]

    >>> from custval import ParetoNBDModel
    >>> model = ParetoNBDModel.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
    >>> round(model.expected_purchases_new_customer(39), 4)
    1.213
    """
    r, alpha, s, beta = params
    horizon = np.asarray(t, dtype=float)
    base_log = np.log(beta) - np.log(beta + horizon)
    value = np.exp(np.log(r * beta / alpha) + _log_one_minus_power(base_log, s - 1.0))
    return np.where(horizon > 0, value, 0.0)


def _probability_of_purchases(params: np.ndarray, n: Any, t: float) -> np.ndarray:
    """``P(X(t) = n)`` for a new customer (note 008, in its integral form, see
    :func:`_lomax_nbd_pmf`).

    >>> from custval import ParetoNBDModel
    >>> model = ParetoNBDModel.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
    >>> round(model.probability_of_purchases_new_customer(0, 39), 4)
    0.5936
    """
    r, alpha, s, beta = params
    counts = np.asarray(n, dtype=float)
    k = counts.ravel()
    full = np.ones_like(k)
    return _lomax_nbd_pmf(r * full, alpha * full, s, beta * full, k, t).reshape(counts.shape)


def _conditional_probability_of_purchases(
    params: np.ndarray, counts: np.ndarray, data: Mapping[str, np.ndarray], t: float
) -> np.ndarray:
    """``P(X(T, T+t) = n | x, t_x, T)``, shape ``(rows, len(counts))``.

    Given alive at ``T`` the likelihood ``lambda^x e^(-lambda T) e^(-mu T)`` factorizes, so
    ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~ Gamma(s, beta+T)`` independently, and by the
    memorylessness of the exponential lifetime the future is that of a new customer with
    these parameters (note 008 with ``r+x, alpha+T, beta+T``; the same quantity as BTYD's
    ``pnbd.ConditionalPMF``, here by quadrature of positive terms). Dead at ``T`` (probability
    ``1 - P(alive)``, note 009 eq. 36-37) adds to ``n = 0``. The pmf given alive depends on
    ``(x, T)`` only and is evaluated once per distinct pair.

    >>> import pandas as pd
    >>> from custval import ParetoNBDModel
    >>> model = ParetoNBDModel.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
    >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    >>> model.probability_of_purchases(customer, [0, 1, 2], 39).round(3).values.tolist()
    [[0.408, 0.219, 0.152]]
    """
    r, alpha, s, beta = params
    alive = _probability_alive(params, data["frequency"], data["recency"], data["T"])[:, None]
    unique, inverse = _unique_rows({"x": data["frequency"], "T": data["T"]})
    x, big_t = unique["x"], unique["T"]
    k = np.broadcast_to(counts[None, :], (len(x), len(counts)))
    rows = np.ones(k.shape)
    given_alive = _lomax_nbd_pmf(
        ((r + x)[:, None] * rows).ravel(),
        ((alpha + big_t)[:, None] * rows).ravel(),
        s,
        ((beta + big_t)[:, None] * rows).ravel(),
        k.ravel(),
        t,
    ).reshape(k.shape)[inverse]
    return alive * given_alive + np.where(counts[None, :] == 0, 1.0 - alive, 0.0)


def _lomax_nbd_pmf(
    r: np.ndarray, alpha: np.ndarray, s: float, beta: np.ndarray, k: np.ndarray, t: float
) -> np.ndarray:
    """``P(X(t) = k)`` of a gamma(r, alpha)-Poisson buyer with an exponential-gamma(s, beta)
    lifetime, elementwise over the flat arrays ``r, alpha, beta, k`` (note 008).

    Alive throughout ``(0, t]`` (probability ``(beta/(beta+t))^s``) the count is negative
    binomial; dead at ``tau < t`` (Lomax density ``s beta^s / (beta+tau)^(s+1)``) it is negative
    binomial with exposure ``tau``::

        P(X(t)=n) = NB(n; t) (beta/(beta+t))^s + integral_0^t NB(n; tau) s beta^s
                    (beta+tau)^-(s+1) d tau,
        NB(n; tau) = G(r+n) / (G(r) n!) (alpha/(alpha+tau))^r (tau/(alpha+tau))^n.

    The integral is taken in ``l = log tau``, where its log-integrand is concave, by
    Gauss-Legendre on the region within ``e^-44`` of its maximum: every term is positive (the
    closed form of note 008 subtracts nearly equal hypergeometric terms for large ``n``).
    """
    if t <= 0:
        return np.where(k == 0, 1.0, 0.0)
    log_alpha, log_beta = np.log(alpha), np.log(beta)
    log_nb_const = gammaln(r + k) - gammaln(r) - gammaln(k + 1.0)
    log_t = np.log(t)
    log_nb_t = log_nb_const + r * (log_alpha - np.log(alpha + t)) + k * (log_t - np.log(alpha + t))
    alive = log_nb_t + s * (log_beta - np.log(beta + t))
    const = log_nb_const + r * log_alpha + np.log(s) + s * log_beta

    def log_f(v: np.ndarray, rows: np.ndarray) -> np.ndarray:
        kk, rr = column(k, v, rows), column(r, v, rows)
        return (
            column(const, v, rows)
            + (kk + 1.0) * v
            - (rr + kk) * np.logaddexp(column(log_alpha, v, rows), v)
            - (s + 1.0) * np.logaddexp(column(log_beta, v, rows), v)
        )

    def slope(v: np.ndarray, rows: np.ndarray) -> np.ndarray:
        tau = np.exp(v)
        kk, rr = column(k, v, rows), column(r, v, rows)
        return (
            (kk + 1.0)
            - (rr + kk) * tau / (column(alpha, v, rows) + tau)
            - (s + 1.0) * tau / (column(beta, v, rows) + tau)
        )

    # the maximiser: slope is decreasing from k+1 > 0 to -(r+s) < 0; bisection on a bracket
    low = np.minimum(np.minimum(log_alpha, log_beta), log_t) - 60.0
    lo = low.copy()
    hi = np.maximum(np.maximum(log_alpha, log_beta), log_t) + 60.0 + np.log1p(k)
    rows = np.arange(k.shape[0])
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        up = slope(mid, rows) > 0
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    peak = np.minimum(0.5 * (lo + hi), log_t)
    left = low - _QUAD_DROP
    log_dead, _, _ = _concave_log_quadrature(
        log_f, slope, np.minimum(left, peak), np.full(k.shape, log_t), peak, _GL256
    )
    return np.exp(np.logaddexp(alive, log_dead))


def _log_h_dert(s: float, z: np.ndarray) -> np.ndarray:
    """``log(z^s U(s, s, z))``, ``U`` the confluent hypergeometric function of the 2nd kind.

    ``z^s U(s, s, z) = z e^z E_s(z) = z integral_0^inf exp(-z (e^w - 1) - (s-1) w) dw`` (with
    ``1 + t = e^w`` in ``U``'s integral); the log-integrand is concave and entire in ``w``, so
    the concave Gauss-Legendre rule converges fast, with no overflow for any ``z > 0`` (scipy's
    ``hyperu`` returns nan for e.g. ``s = 10, z < 0.1``).
    """
    z = np.asarray(z, dtype=float)
    shape = z.shape
    zz = z.ravel()

    def log_f(w: np.ndarray, rows: np.ndarray) -> np.ndarray:
        zr = zz[rows] if w.ndim == 1 else zz[rows, None]
        return -zr * np.expm1(w) - (s - 1.0) * w

    def slope(w: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return -zz[rows] * np.exp(w) - (s - 1.0)

    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.where(s < 1.0, np.maximum(np.log((1.0 - s) / zz), 0.0), 0.0)
    # beyond w_hi = log(1 + (44 + |s-1| w) / z) the integrand is below e^-44 of its maximum
    hi = peak + np.log1p((_QUAD_DROP + 1.0) / zz) + 1.0
    hi = hi + np.log1p(abs(s - 1.0) * hi / zz)
    log_int, _, _ = _concave_log_quadrature(log_f, slope, np.zeros_like(zz), hi, peak, _GL128)
    return (np.log(zz) + log_int).reshape(shape)


def _discounted_expected_residual_transactions(
    params: np.ndarray, frequency: Any, recency: Any, big_t: Any, delta: float
) -> np.ndarray:
    """DERT (FHL-RFM eq. 2) at continuous discount rate ``delta`` per period::

    DERT = alpha^r beta^s delta^(s-1) G(r+x+1) U(s, s; delta(beta+T))
           / (G(r) (alpha+T)^(r+x+1) L)
         = P(alive) (r+x)/(alpha+T) * [delta(beta+T)]^s U(s, s; delta(beta+T)) / delta.
    """
    r, alpha, s, beta = params
    x, t_x, t_big = np.broadcast_arrays(*_as_arrays(frequency, recency, big_t))
    log_alive = _log_probability_alive(params, x, t_x, t_big)
    z = delta * (beta + t_big)
    z_u, inverse = np.unique(z.ravel(), return_inverse=True)
    log_h = _log_h_dert(s, z_u)[inverse].reshape(z.shape)
    return np.exp(log_alive + np.log(r + x) - np.log(alpha + t_big) + log_h - np.log(delta))


# ---------------------------------------------------------------------------------------------
# The model class
# ---------------------------------------------------------------------------------------------
def _prepare_plain(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The patterns indexed once per fit: distinct frequencies and ``(x, t)`` endpoint pairs."""
    inverse, uniques = pd.factorize(data["frequency"], sort=False)
    pairs = _endpoint_pairs(data["frequency"], data["recency"], data["T"])
    return {
        **data,
        "_x_unique": np.asarray(uniques, dtype=float),
        "_x_inverse": inverse,
        **dict(zip(_PAIR_KEYS, pairs, strict=True)),
    }


def _rows_terms(params: np.ndarray, data: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Per-row log-likelihood and gradient ``(4, n)`` (for ``_profile_terms``)."""
    ll, grad = _loglik_grad(params, data)
    return ll, grad.T


class ParetoNBDModel(PurchaseDropoutCovariates, TransactionModel):
    """Pareto/NBD model of repeat purchasing in non-contractual settings.

    Schmittlein, Morrison & Colombo (1987): while alive a customer buys at Poisson rate
    ``lambda ~ Gamma(r, alpha)``; lifetimes are exponential with rate ``mu ~ Gamma(s, beta)``.
    Fitted by maximum likelihood (FHL 2005 "RFM and CLV", appendix) with its analytic gradient on
    the distinct ``(frequency, recency, T)`` patterns; standard errors from the Hessian. The
    likelihood stays finite for heavy buyers (frequency and T in the tens of thousands).

    Time-invariant covariates (``fit(..., customers=..., purchase_covariates=[...],
    dropout_covariates=[...])``) follow CLVTools' Pareto/NBD parametrisation: ``alpha_i = alpha
    exp(-x'beta_p)`` (``exp(beta_p)`` multiplies the purchase rate) and ``beta_i = beta
    exp(-x'beta_d)`` (``exp(beta_d)`` multiplies the dropout rate). With at most 500 distinct
    covariate profiles (discrete covariates) the likelihood is evaluated once per profile with
    the exact series and quadrature of the model without covariates; with more (continuous
    covariates) the same series and quadrature run vectorised over the customers, each at their
    own ``alpha_i``, ``beta_i``.

    Parameters
    ----------
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Attributes
    ----------
    params_ : Series
        ``r``, ``alpha``, ``s``, ``beta`` (``alpha`` and ``beta`` in the summary's time unit).
    log_likelihood_, n_customers_, n_patterns_, variance_matrix_, freq_
        See :class:`custval.models._base.BaseModel`; ``summary``, ``aic`` and ``bic`` too.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import ParetoNBDModel
    >>> model = ParetoNBDModel.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669, freq="W")
    >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    >>> model.probability_alive(customer).round(3).tolist()
    [0.869]
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    _data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    _display_name: ClassVar[str] = "Pareto/NBD model"
    _covariate_groups: ClassVar[tuple[str, ...]] = ("purchase", "dropout")
    _covariate_links: ClassVar[dict[str, tuple[str, float]]] = {  # _profile_params
        "alpha": ("purchase", -1.0),
        "beta": ("dropout", -1.0),
    }
    _dropout_effect_words: ClassVar[str] = "rate"
    _per_customer: ClassVar[bool] = True

    def _covariate_terms(
        self, params: np.ndarray, data: Mapping[str, Any], weights: np.ndarray | None
    ) -> tuple[Any, np.ndarray]:
        """The likelihood per covariate profile (see ``_profile_terms``)."""
        return self._profile_terms(
            params,
            data,
            weights,
            _rows_terms,
            _weighted_loglik_grad,
        )

    def _validate_data(self, data: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
        self._check_frequency_recency(data, frame)

    def _initial_base(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        total_t = max(_wsum(weights, data["T"]), 1e-9)
        rate = max(_wsum(weights, data["frequency"]), 1.0) / total_t
        # beta = alpha: the series for J then converges fastest (z = 0) at the start
        return np.array([1.0, 1.0 / rate, 1.0, 1.0 / rate])

    _prepare_plain = staticmethod(_prepare_plain)  # the patterns without covariates
    #: the predictions' mathematics (TransactionModel's hooks call them at the fitted params)
    _conditional_pmf_of = staticmethod(_conditional_probability_of_purchases)
    _new_customer_pmf_of = staticmethod(_probability_of_purchases)
    _new_customer_mean_of = staticmethod(_expected_purchases_new_customer)

    def _loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        if "_profiles" in data:
            return self._covariate_terms(params, data, None)
        return _loglik_grad(params, data)

    def _weighted_loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> tuple[float, np.ndarray]:
        if "_profiles" in data:
            return self._covariate_terms(params, data, weights)
        return _weighted_loglik_grad(params, data, weights)

    def _loglik(self, params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        if "_profiles" in data:
            return self._covariate_terms(params, data, None)[0]
        return _loglik_core(params, data)["ll"]

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        start = self._initial_base(data, weights)
        if len(self._param_names) > 4:  # covariate coefficients start at 0 (no effect)
            return np.concatenate([start, np.zeros(len(self._param_names) - 4)])
        return start

    def _extra_state(self) -> dict[str, Any]:
        return self._with_covariate_state(super()._extra_state())

    def _set_extra_state(self, state: Mapping[str, Any]) -> None:
        super()._set_extra_state(state)
        self._restore_covariate_state(state)

    # ------------------------------------------------------------------ predictions
    def _expected_purchases(
        self, data: Mapping[str, Any], horizon: Any, summary: Any, customers: Any
    ) -> np.ndarray:
        """``E[X(T, T+t) | frequency, recency, T]`` (Hardie's note 009, eq. 41), evaluated in
        log space (finite for heavy buyers, where lifetimes overflows).

        >>> import pandas as pd
        >>> from custval import ParetoNBDModel
        >>> model = ParetoNBDModel.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
        >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> round(float(model.expected_purchases(customer, 39).iloc[0]), 3)
        1.455
        """
        return self._per_profile(_expected_purchases, data, horizon, summary, customers)

    def _probability_alive(
        self, data: Mapping[str, Any], horizon: float | None, summary: Any, customers: Any
    ) -> np.ndarray:
        """``P(alive at T | frequency, recency, T)`` (Hardie's note 009, eq. 36-37); with
        ``t`` times ``((beta+T)/(beta+T+t))^s``, the survival under the posterior ``Gamma(s,
        beta+T)`` of the drop-out rate (the Pareto/NBD's lifetime is memoryless, so purchases
        in between carry no risk, unlike the BG/NBD's).

        >>> import pandas as pd
        >>> from custval import ParetoNBDModel
        >>> model = ParetoNBDModel.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
        >>> customer = pd.DataFrame({"frequency": [0], "recency": [0], "T": [38.86]})
        >>> model.probability_alive(customer).round(3).tolist()
        [0.295]
        >>> model.probability_alive(customer, 39).round(3).tolist()
        [0.209]
        """
        horizon = 0.0 if horizon is None else horizon
        return self._per_profile(_probability_alive_later, data, horizon, summary, customers)

    def _per_profile(
        self, predict: Any, data: Mapping[str, Any], horizon: Any, summary: Any, customers: Any
    ) -> np.ndarray:
        """``predict(params, x, t_x, T, horizon)`` of every row: at the fitted parameters, or
        per covariate profile at its own."""
        x, t_x, big_t = data["frequency"], data["recency"], data["T"]
        if getattr(self, "covariates_", None) is not None:
            return self._by_profile(
                summary, customers, lambda p, i: predict(p, x[i], t_x[i], big_t[i], horizon)
            )
        return predict(self._params(), x, t_x, big_t, horizon)

    def discounted_expected_residual_transactions(
        self,
        summary: pd.DataFrame,
        continuous_discount_rate: float | None = None,
        *,
        annual_discount_rate: float | None = None,
    ) -> pd.Series:
        """Discounted expected residual transactions (DERT) of each customer.

        The present value of all future transactions, ``integral_T^inf E[dX(t)] e^-delta(t-T)``,
        FHL 2005 "RFM and CLV", eq. (2); multiply by the expected margin per transaction for
        the residual value. ``U(s, s; z)`` is evaluated by quadrature in log space.

        Parameters
        ----------
        summary : DataFrame
            Customers with ``frequency``, ``recency`` and ``T`` in the unit of the fit.
        continuous_discount_rate : float, optional
            ``delta``, the continuously compounded rate per period of the model's unit (FHL
            use 0.0027 per week for 15% a year).
        annual_discount_rate : float, optional
            Instead of ``continuous_discount_rate``: an annual rate (0.15 for 15%), converted
            with the model's unit (``freq_``): ``delta = log(1 + rate per period)``.

        Returns
        -------
        Series
            ``dert``, aligned with ``summary.index``.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import ParetoNBDModel
        >>> model = ParetoNBDModel.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
        >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> dert = model.discounted_expected_residual_transactions(customer, 0.0027)
        >>> round(float(dert.iloc[0]), 2)
        6.48
        """
        data = self._prediction_data(summary)
        if (continuous_discount_rate is None) == (annual_discount_rate is None):
            raise DataError(
                "give exactly one of continuous_discount_rate (per period of the model's unit) "
                "and annual_discount_rate"
            )
        if annual_discount_rate is not None:
            if getattr(self, "freq_", None) is None:
                raise DataError(
                    "annual_discount_rate needs the model's time unit, but this "
                    f"{self._name()} does not know it (fitted on a summary without "
                    "attrs['freq']); give continuous_discount_rate per period instead, or "
                    "refit on a summary from custval.rfm_summary (from_params takes freq=)"
                )
            delta = float(np.log1p(annual_rate_to_period(annual_discount_rate, self.freq_)))
        else:
            delta = float(continuous_discount_rate)
        if not (np.isfinite(delta) and delta > 0):
            raise DataError(
                f"the discount rate must be finite and > 0 (DERT is infinite without "
                f"discounting when s <= 1), got {delta!r} per period"
            )
        values = _discounted_expected_residual_transactions(
            self._params(), data["frequency"], data["recency"], data["T"], delta
        )
        return self._series(values, summary, "dert")

    # -- the value-kernel contract of custval.clv (README "Design notes") ----------------------
    def _value_kernel(self, terms: Any) -> Any:
        """The Pareto/NBD's kernel for :func:`custval.customer_lifetime_value` (None, the
        generic quadrature of :meth:`expected_purchases`, for other parameters)."""
        if tuple(self.params_.index) != ("r", "alpha", "s", "beta"):
            return None
        from custval.models._pareto_nbd_clv import ParetoNBDKernel

        return ParetoNBDKernel(self, terms)
