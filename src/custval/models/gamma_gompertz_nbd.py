"""GGom/NBD: the gamma-Gompertz/negative binomial distribution model.

Bemmaor & Glady (2012), "Modeling Purchasing Behavior with Sudden 'Death': A Flexible Customer
Lifetime Model", Management Science 58(5), 1012-1021 (BG12). While alive, a customer buys as a
Poisson process with rate ``lambda ~ Gamma(r, alpha)`` (as in the Pareto/NBD); their lifetime
is Gompertz with ``P(tau > t | eta) = exp(-eta (e^(b t) - 1))`` and ``eta ~ Gamma(s, beta)``
across customers, so that the lifetime of a random customer is gamma-Gompertz (BG12 eq. 2)::

    S(t) = P(tau > t) = (beta / (beta + e^(b t) - 1))^s,
    f(t) = b s beta^s e^(b t) / (beta + e^(b t) - 1)^(s+1).

``b`` is the shape of the hazard over a lifetime. As ``b -> 0`` with ``beta / b`` fixed the
lifetime becomes exponential-gamma (Lomax) with scale ``beta / b``: the model nests the
Pareto/NBD (BG12, section 2).

The likelihood of ``(x, t_x, T)`` (BG12 eq. 5; the same derivation as the Pareto/NBD's, with the
lifetime density above)::

    L = G(r+x) alpha^r / G(r) [ S(T) (alpha+T)^-(r+x)
                                + integral_{t_x}^{T} f(tau) (alpha+tau)^-(r+x) d tau ]

The integral has no closed form; it is evaluated by Gauss-Legendre quadrature in
``v = log(m + tau)``, where ``m`` is the distance from 0 to the nearer real singularity of the
integrand (``-alpha`` of ``(alpha + tau)^-(r+x)``, or ``log(1 - beta) / b`` of ``f`` when
``beta < 1``): in ``v`` that factor becomes a power of ``e^v`` and the other one's singularity
moves at least ``pi`` away from the real axis, so the rule converges geometrically (the Pareto/NBD
quadrature of :mod:`custval.models.pareto_nbd` uses the same change of variable). The interval
is first narrowed to where the integrand is within ``e^-44`` of its largest value on a grid, so
heavy buyers (``(alpha + tau)^-(r+x)`` falling by many orders of magnitude) stay exact. Where
``b`` is large against the interval, the lifetime density turns from growth into decay within
``~1/b`` of ``log(beta - 1) / b`` (complex singularities ``pi / b`` off the axis): the interval
is then cut into pieces graded geometrically away from that point (``_panels``). The factors
``alpha^r`` and ``beta^s`` are taken inside the terms (``(1 + tau/alpha)^-r``,
``(1 + expm1(b tau)/beta)^-s``), so that nothing cancels on the ridges ``r, alpha -> inf`` and
``s, beta -> inf``. The
gradient is the quadrature of the gradient of the log-integrand (differentiation under the
integral), so it is exact for the computed likelihood up to the quadrature error (~1e-14).

Predictions follow from the posterior given the data: alive at ``T`` with probability
``P(alive)``; ``lambda | alive ~ Gamma(r+x, alpha+T)`` and ``eta | alive ~ Gamma(s, beta*)``
with ``beta* = beta + e^(b T) - 1``, independent, so the residual lifetime has
``P(tau > T+u | alive at T) = (beta* / (beta* + e^(b T) (e^(b u) - 1)))^s``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import gammaln

from custval._rows import unique_index
from custval._rows import unique_rows as _unique_rows
from custval._units import annual_rate_to_period
from custval.errors import ConvergenceError, CustvalWarning, DataError
from custval.models._base import TransactionModel
from custval.models._covariates import PurchaseDropoutCovariates, column, per_row, row_params
from custval.models._log_quadrature import gauss_legendre as _gauss_legendre
from custval.models._special import digamma_rising, log_rising
from custval.models.pareto_nbd import ParetoNBDModel

__all__ = ["GammaGompertzNBDModel"]

_DROP = 44.0  # keep the part of an integrand within e^-44 of its largest value
_GRID = 25  # grid points that locate that part before the quadrature
_BISECT = 40  # bisection steps on a grid cell for the ends of that part
_EXPM1_SWITCH = 1.0  # b u above which log(g + e^(b u) - 1) is written around b u
_S_BOUND = 50.0  # bound on s in the fit that finds the start (see _initial_params)
_LOG_BOUND = 30.0  # log-parameters stay in [-30, 30], as in the base's optimiser
_EXPM1_LIMIT = 700.0  # b tau above which e^(b tau) would overflow


#: the likelihood's rule: 32 nodes reach ~1e-14 against high-precision quadrature (64: the same)
_GL32 = _gauss_legendre(32)
_GL128 = _gauss_legendre(128)
_GL16 = _gauss_legendre(16)  # per piece of a graded mesh (see _panels)


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------
def _log_base(b: float, beta: float, tau: Any) -> np.ndarray:
    """``log(beta + e^(b tau) - 1)`` for ``tau >= 0``, without cancellation or overflow."""
    z = b * np.asarray(tau, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.log(beta + np.expm1(np.minimum(z, _EXPM1_LIMIT)))
    if np.any(z > _EXPM1_LIMIT):
        far = np.maximum(z, _EXPM1_LIMIT)
        out = np.where(z > _EXPM1_LIMIT, far + np.log1p((beta - 1.0) * np.exp(-far)), out)
    return out


def _log_survival(b: float, s: float, beta: float, t: Any) -> np.ndarray:
    """``log S(t) = s (log beta - log(beta + e^(b t) - 1))`` (BG12 eq. 2)."""
    return s * (np.log(beta) - _log_base(b, beta, t))


def _singularity_shift(b: float, beta: Any) -> Any:
    """``-log(1 - beta) / b``: minus the real zero of ``beta + e^(b tau) - 1`` (``inf`` if
    ``beta >= 1``, where it has none); per row for an array ``beta``."""
    if np.ndim(beta):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(beta >= 1.0, np.inf, -np.log1p(-np.minimum(beta, 1.0)) / b)
    if beta >= 1.0:
        return np.inf
    return float(-np.log1p(-beta) / b)


def _gauss_legendre_pass(
    log_f: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
    left: np.ndarray,
    right: np.ndarray,
    rows: np.ndarray | None,
    nodes: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Legendre on ``[left, right]``: log-integral, nodes, normalized weights and the
    log-integrand at the nodes."""
    span = np.maximum(right - left, 0.0)
    x, w = nodes
    v = left[:, None] + span[:, None] * x[None, :]
    log_v = log_f(v, rows)
    log_v = np.where(np.isnan(log_v), -np.inf, log_v)
    peak = np.max(log_v, axis=1)
    safe_peak = np.where(np.isfinite(peak), peak, 0.0)
    weights = w[None, :] * np.exp(log_v - safe_peak[:, None])
    total = weights.sum(axis=1)
    log_integral = safe_peak + np.log(span) + np.log(total)
    weights = weights / np.where(total > 0, total, 1.0)[:, None]
    empty = ~(span > 0) | ~(total > 0)
    log_integral = np.where(empty, -np.inf, log_integral)
    weights[empty] = 0.0
    return log_integral, v, weights, log_v


def _log_integral(
    log_f: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
    lo: np.ndarray,
    hi: np.ndarray,
    nodes: tuple[np.ndarray, np.ndarray] = _GL32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log integral_lo^hi exp(log_f(v)) dv`` row-wise, with the nodes and their weights.

    ``log_f(v, rows)`` maps ``v`` of shape ``(len(rows), k)`` to the log-integrand of the rows
    ``rows`` (an index array; ``None`` for all rows) at those points.

    Gauss-Legendre on the whole interval first. Rows whose integrand spans more than
    ``e^_DROP`` over the nodes (a heavy buyer's steep decay, a sharp peak) are integrated
    again on the part of the interval where it is within ``e^-_DROP`` of its largest value: a
    grid of ``_GRID`` points locates that part, its ends are refined by bisection on the grid
    cells where the integrand crosses that level, and the part is integrated by Gauss-Legendre.
    No concavity is assumed (several bumps are all kept between the first and the last grid
    point above the level).

    Returns the log-integral (``-inf`` on empty intervals), the nodes ``(n_rows, n_nodes)``
    and the normalized weights of the nodes in the integral (summing to one per row), so that
    ``integral g exp(log_f) / integral exp(log_f) ~ sum(weights * g(nodes))``.
    """
    with np.errstate(all="ignore"):
        log_integral, v, weights, log_v = _gauss_legendre_pass(log_f, lo, hi, None, nodes)
        finite = np.where(np.isfinite(log_v), log_v, np.inf)
        steep = np.flatnonzero(
            (log_v.max(axis=1) - finite.min(axis=1) > _DROP) & np.isfinite(log_integral)
        )
        if steep.size == 0:
            return log_integral, v, weights
        lo_s, hi_s = lo[steep], hi[steep]
        grid = lo_s[:, None] + (hi_s - lo_s)[:, None] * np.linspace(0.0, 1.0, _GRID)[None, :]
        values = log_f(grid, steep)
        values = np.where(np.isnan(values), -np.inf, values)
        level = values.max(axis=1) - _DROP
        above = values >= level[:, None]
        first = np.argmax(above, axis=1)
        last = _GRID - 1 - np.argmax(above[:, ::-1], axis=1)
        ends = []
        for index, step, end in ((first, -1, lo_s), (last, 1, hi_s)):
            # bisect the grid cell where the integrand crosses the level, on the rows with
            # such a cell (the others keep their end of the interval)
            cut = np.flatnonzero((index + step >= 0) & (index + step < _GRID))
            refined = end.copy()
            if cut.size:
                inside = grid[cut, index[cut]]
                outside = grid[cut, index[cut] + step]
                for _ in range(_BISECT):
                    mid = 0.5 * (inside + outside)
                    keep = log_f(mid[:, None], steep[cut])[:, 0] >= level[cut]
                    inside, outside = np.where(keep, mid, inside), np.where(keep, outside, mid)
                refined[cut] = outside
            ends.append(refined)
        narrowed = _gauss_legendre_pass(log_f, ends[0], ends[1], steep, nodes)
    log_integral[steep], v[steep], weights[steep] = narrowed[:3]
    return log_integral, v, weights


def _frequency_terms(r: float, data: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``lgamma(r+x) - lgamma(r)`` and ``digamma(r+x) - digamma(r)``, once per distinct x
    (taken directly, :mod:`custval.models._special`: exact at large ``r``)."""
    if "_x_unique" in data:
        x_u, inverse = data["_x_unique"], data["_x_inverse"]
    else:
        x_u, inverse = unique_index(np.asarray(data["frequency"], dtype=float))
    return log_rising(r, x_u)[inverse], digamma_rising(r, x_u)[inverse]


def _log1p_base(b: float, beta: float, tau: Any) -> np.ndarray:
    """``log((beta + e^(b tau) - 1) / beta) = log1p(expm1(b tau) / beta)``, without the
    cancellation of ``log(beta + e^(b tau) - 1) - log(beta)`` at large ``beta``."""
    z = b * np.asarray(tau, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        q = np.expm1(np.minimum(z, _EXPM1_LIMIT)) / beta
        out = np.log1p(q)
    far = ~np.isfinite(q) | (z > _EXPM1_LIMIT)
    if np.any(far):
        out = np.where(far, _log_base(b, beta, z / b) - np.log(beta), out)
    return out


def _panels(
    b: float, beta: float, t_lo: np.ndarray, t_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The pieces of ``[t_lo, t_hi]`` (per row) the death integral is summed over, as arrays
    ``(pieces, rows)`` of their ends, and the Gauss-Legendre rule of each piece.

    For ``beta > 1`` the Gompertz factor ``e^(b tau) (beta + e^(b tau) - 1)^-(s+1)`` has
    complex singularities at ``d +- i pi / b``, ``d = log(beta - 1) / b`` (where its growth
    turns into decay): when ``b`` is large against the interval (``b (t_hi - t_lo) > 2``), one
    rule on the whole interval converges slowly or not at all (a fast hazard after a delay
    ``d``: a fit's best point can lie there). The interval is then cut at ``d +- 2^j / b``,
    ``j = 0, 1, ...`` (a mesh graded geometrically away from ``d``), so that every piece is
    shorter than its distance to the singularities and 16 nodes per piece reach ~1e-20.
    Otherwise one piece with 32 nodes.
    """
    span = float(np.max(t_hi - t_lo, initial=0.0))
    if not (np.all(beta > 1.0) and b * span > 2.0):
        return t_lo[None, :], t_hi[None, :], _GL32
    # per-row beta (continuous covariates): each row cut around its own d
    d = np.log(beta - 1.0) / b if np.ndim(beta) else float(np.log(beta - 1.0) / b)
    reach = float(np.max(np.abs(t_hi - d), initial=0.0)) + float(np.max(np.abs(t_lo - d)))
    steps = 2.0 ** np.arange(int(np.ceil(np.log2(b * reach + 1.0))) + 1) / b
    if np.ndim(beta):
        cuts = np.concatenate([d[:, None] - steps[None, ::-1], d[:, None] + steps[None, :]], 1)
    else:
        cuts = np.concatenate([d - steps[::-1], d + steps])[None, :]
    edges = np.clip(cuts, t_lo[:, None], t_hi[:, None])
    edges = np.concatenate([t_lo[:, None], edges, t_hi[:, None]], axis=1)
    keep = np.flatnonzero(np.any(edges[:, 1:] > edges[:, :-1], axis=0))
    return edges[:, keep].T, edges[:, keep + 1].T, _GL16


def _log_death_integral(
    params: np.ndarray, x: np.ndarray, t_lo: np.ndarray, t_hi: np.ndarray, *, gradient: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """``log J`` with ``J = alpha^r beta^s integral_{t_lo}^{t_hi} e^(b tau)
    (beta + e^(b tau) - 1)^-(s+1) (alpha + tau)^-(r+x) d tau`` and, optionally,
    ``d log J / d(r, alpha, b, s, beta)`` (shape ``(5, n)``; zero where ``J = 0``).

    The factors ``alpha^r beta^s`` are taken inside, as ``(1 + tau/alpha)^-r`` and
    ``(1 + expm1(b tau)/beta)^-s``, so that nothing cancels where ``r, alpha`` or ``s, beta``
    grow together (the likelihood's ridges). The shift ``m`` of ``v = log(m + tau)`` is at
    most the end of the piece (:func:`_panels`) integrated: a singularity farther away than
    the piece is long leaves the rule converging as fast, while a large shift would cost
    precision in ``tau = e^v - m``.
    """
    r, alpha, b, s, beta = params
    n = x.shape[0]
    if per_row(params):  # per-row alpha, beta: rows with and without pieces apart
        cut = np.broadcast_to((beta > 1.0) & (b * (t_hi - t_lo) > 2.0), x.shape)
        if cut.any() and not cut.all():
            log_j, grad = np.empty(n), np.empty((5, n)) if gradient else None
            for rows in (cut, ~cut):
                log_j[rows], g = _log_death_integral(
                    row_params(params, rows), x[rows], t_lo[rows], t_hi[rows], gradient=gradient
                )
                if grad is not None:
                    grad[:, rows] = g
            return log_j, grad
    lo, hi, nodes = _panels(b, beta, t_lo, t_hi)
    pieces = lo.shape[0]
    lo, hi = lo.ravel(), hi.ravel()  # the pieces of all rows as rows of one quadrature
    # per-row alpha and beta repeat with the pieces, as x does
    alpha_p, beta_p = (np.tile(a, pieces) if np.ndim(a) else a for a in (alpha, beta))
    shift = np.minimum(alpha_p, _singularity_shift(b, beta_p))
    m = np.minimum(shift, np.where(hi > 0, hi, 1.0))
    m = m[:, None]
    xx = np.tile(x, pieces)[:, None]
    every = np.arange(lo.shape[0])

    def tau_of(v: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        return np.maximum(np.exp(v) - (m if rows is None else m[rows]), 0.0)

    def log_f(v: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        tau = tau_of(v, rows)
        x_r = xx if rows is None else xx[rows]
        which = every if rows is None else rows
        a_r, b_r = column(alpha_p, v, which), column(beta_p, v, which)
        return (
            v
            + b * tau
            - s * _log1p_base(b, b_r, tau)
            - _log_base(b, b_r, tau)
            - r * np.log1p(tau / a_r)
            - x_r * np.log(a_r + tau)
        )

    log_j, v, weights = _log_integral(log_f, np.log(m[:, 0] + lo), np.log(m[:, 0] + hi), nodes)
    if pieces > 1:  # the pieces' integrals add up; their nodes' weights scale by their shares
        logs = log_j.reshape(pieces, n)
        log_j = np.logaddexp.reduce(logs, axis=0)
    if not gradient:
        return log_j, None
    tau = tau_of(v, None)
    if pieces > 1:
        with np.errstate(invalid="ignore"):
            shares = np.nan_to_num(np.exp(logs - log_j), nan=0.0)
        k = v.shape[1]
        weights = (weights.reshape(pieces, n, k) * shares[:, :, None]).transpose(1, 0, 2)
        weights = weights.reshape(n, pieces * k)
        tau = tau.reshape(pieces, n, k).transpose(1, 0, 2).reshape(n, pieces * k)
    xx = x[:, None]
    alpha, beta = (a[:, None] if np.ndim(a) else a for a in (alpha, beta))
    log_base = _log_base(b, beta, tau)
    inv_base = np.exp(-log_base)
    ratio = np.exp(b * tau - log_base)  # e^(b tau) / (beta + e^(b tau) - 1)
    inv_at = 1.0 / (alpha + tau)
    grad = np.empty((5, x.shape[0]))
    grad[0] = -(weights * np.log1p(tau / alpha)).sum(axis=1)
    grad[1] = (weights * (r * tau / alpha - xx) * inv_at).sum(axis=1)
    grad[2] = (weights * tau * (1.0 - (s + 1.0) * ratio)).sum(axis=1)
    grad[3] = -(weights * _log1p_base(b, beta, tau)).sum(axis=1)
    grad[4] = (weights * (s * _expm1_share(b, beta, tau, inv_base) / beta - inv_base)).sum(axis=1)
    return log_j, grad


def _expm1_share(b: float, beta: float, tau: Any, inv_base: np.ndarray) -> np.ndarray:
    """``expm1(b tau) / (beta + expm1(b tau))`` given ``inv_base = 1 / (beta + expm1(b tau))``."""
    z = b * np.asarray(tau, dtype=float)
    direct = np.expm1(np.minimum(z, _EXPM1_LIMIT)) * inv_base  # exact while e^(b tau) is finite
    return np.where(z <= _EXPM1_LIMIT, direct, 1.0 - beta * inv_base)


def _log_alive_died(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, *, gradient: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The two terms of the likelihood over ``G(r+x)/G(r)``, in logs: alive at ``T``,
    ``-s log1p(expm1(b T)/beta) - r log1p(T/alpha) - x log(alpha+T)``, and died in
    ``(t_x, T]``, ``log(b s J)`` (``J`` of :func:`_log_death_integral`, with its gradient)."""
    r, alpha, b, s, beta = params
    alive = -s * _log1p_base(b, beta, big_t) - r * np.log1p(big_t / alpha)
    alive -= x * np.log(alpha + big_t)
    log_j, grad_j = _log_death_integral(params, x, t_x, big_t, gradient=gradient)
    return alive, np.log(b) + np.log(s) + log_j, grad_j


def _loglik_core(
    params: np.ndarray, data: Mapping[str, np.ndarray], *, gradient: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row log-likelihood (BG12 eq. 5) and, optionally, its gradient ``(5, n)``::

    log L = lgamma(r+x) - lgamma(r) + r log alpha
            + log[ S(T) (alpha+T)^-(r+x) + b s beta^s J ]

    with ``r log alpha`` and ``s log beta`` taken inside the terms (:func:`_log_alive_died`).
    """
    r, alpha, b, s, beta = params
    x, t_x, big_t = data["frequency"], data["recency"], data["T"]
    lgam, dgam = _frequency_terms(r, data)
    alive, died, grad_j = _log_alive_died(params, x, t_x, big_t, gradient=gradient)
    with np.errstate(invalid="ignore"):
        log_sum = np.logaddexp(alive, died)
    ll = lgam + log_sum
    if not gradient:
        return ll, None
    w_alive = np.exp(alive - log_sum)
    w_died = 1.0 - w_alive
    log_base_t = _log_base(b, beta, big_t)
    inv_base_t = np.exp(-log_base_t)
    ratio_t = np.exp(b * big_t - log_base_t)
    grad = grad_j * w_died
    grad[0] += dgam - w_alive * np.log1p(big_t / alpha)
    grad[1] += w_alive * (r * big_t / alpha - x) / (alpha + big_t)
    grad[2] += w_died / b - w_alive * s * big_t * ratio_t
    grad[3] += w_died / s - w_alive * _log1p_base(b, beta, big_t)
    grad[4] += w_alive * s * _expm1_share(b, beta, big_t, inv_base_t) / beta
    return ll, grad


# ---------------------------------------------------------------------------------------------
# Predictions: functions of (params, arrays), so that customer-value code can evaluate them at
# sampled parameter vectors; the model methods wrap them.
# ---------------------------------------------------------------------------------------------
def _as_flat(*values: Any) -> tuple[tuple[int, ...], list[np.ndarray]]:
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values))
    return arrays[0].shape, [a.ravel() for a in arrays]


def _log_still_alive(params: np.ndarray, big_t: np.ndarray, horizon: Any) -> Any:
    """``log P(tau > T+t | tau > T) = s (log(beta + e^(bT) - 1) - log(beta + e^(b(T+t)) -
    1))`` (0 for ``horizon=None``: alive at ``T``)."""
    if horizon is None:
        return 0.0
    _, _, b, s, beta = params[:5]
    return s * (_log_base(b, beta, big_t) - _log_base(b, beta, big_t + float(horizon)))


def _log_probability_alive(params: np.ndarray, frequency: Any, recency: Any, big_t: Any) -> Any:
    """``log P(alive at T | x, t_x, T)``: the first term of the likelihood over the sum."""
    shape, (x, t_x, t_big) = _as_flat(frequency, recency, big_t)
    alive, died, _ = _log_alive_died(params, x, t_x, t_big, gradient=False)
    return (alive - np.logaddexp(alive, died)).reshape(shape)


def _log_residual_lifetime(
    params: np.ndarray, big_t: Any, t: Any, delta: float = 0.0
) -> np.ndarray:
    """``log integral_0^t e^(-delta u) P(tau > T+u | alive at T) du``: the expected time alive
    in ``(T, T+t]`` of a customer alive at ``T`` (``delta = 0``), or its present value at the
    continuous rate ``delta``; ``-inf`` where ``t = 0``; ``t`` may be ``inf``::

        P(tau > T+u | alive at T) = (beta* / (beta* + e^(b T) (e^(b u) - 1)))^s,
        beta* = beta + e^(b T) - 1.

    In terms of ``g = beta* e^(-b T)`` this is ``(g / (g + e^(b u) - 1))^s``, the gamma-Gompertz
    survival with ``beta = g``; the integral is taken in ``v = log(m + u)`` with ``m`` as in the
    likelihood.
    """
    b, s, beta = params[2:]
    shape, (t_big, horizon) = _as_flat(big_t, t)
    log_g = _log_base(b, beta, t_big) - b * t_big  # log(beta*) - b T
    g = np.exp(log_g)
    # the real zero of g + e^(b u) - 1 is at u = log(1 - g) / b (none if g >= 1); a shift
    # beyond 1/b changes nothing for the rule but costs precision in u = e^v - m
    with np.errstate(divide="ignore", invalid="ignore"):
        zero = np.where(g < 1.0, -np.log1p(-np.minimum(g, 1.0)) / b, np.inf)
    shift = np.minimum(zero, 1.0 / b)
    gg, mm = g[:, None], shift[:, None]
    # an infinite horizon ends where the integrand is below e^-104 of its start: e^(-delta u)
    # there, or (g / (g + e^(b u) - 1))^s <= (2g)^s e^(-s b u) once e^(b u) >= 2
    with np.errstate(divide="ignore"):
        far = np.maximum(np.log(2.0) / b, (104.0 + s * np.maximum(np.log(2.0 * g), 0.0)) / (s * b))
        far = np.minimum(far, 104.0 / delta if delta > 0 else np.inf)
    horizon = np.where(np.isinf(horizon), far, horizon)

    def log_f(v: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        g_r, m_r = (gg, mm) if rows is None else (gg[rows], mm[rows])
        u = np.maximum(np.exp(v) - m_r, 0.0)
        z = b * u
        small = z < _EXPM1_SWITCH
        with np.errstate(over="ignore", invalid="ignore"):
            direct = np.log(g_r + np.expm1(np.minimum(z, _EXPM1_SWITCH)))
            around = z + np.log1p((g_r - 1.0) * np.exp(-np.maximum(z, _EXPM1_SWITCH)))
        return v + s * (np.log(g_r) - np.where(small, direct, around)) - delta * u

    log_int, _, _ = _log_integral(log_f, np.log(shift), np.log(shift + horizon), _GL128)
    return log_int.reshape(shape)


def _expected_purchases(
    params: np.ndarray,
    frequency: Any,
    recency: Any,
    big_t: Any,
    t: Any,
    log_alive: Any = None,
    delta: float = 0.0,
) -> np.ndarray:
    """``E[X(T, T+t) | x, t_x, T] = P(alive) (r+x)/(alpha+T) integral_0^t P(tau > T+u | alive
    at T) du`` (BG12 section 3; the posterior of ``eta`` given alive at ``T`` is
    ``Gamma(s, beta + e^(b T) - 1)``); with ``delta > 0`` the purchases are discounted
    continuously, ``integral_0^t e^(-delta u) dE[X(T, T+u)]`` (DERT; FHL-RFM eq. 2 for this
    model)."""
    r, alpha = params[0], params[1]
    x, t_x, t_big, horizon = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (frequency, recency, big_t, t))
    )
    if log_alive is None:
        log_alive = _log_probability_alive(params, x, t_x, t_big)
    log_time = _log_residual_lifetime(params, t_big, horizon, delta)
    with np.errstate(divide="ignore"):
        value = np.exp(log_alive + np.log(r + x) - np.log(alpha + t_big) + log_time)
    return np.where(horizon > 0, value, 0.0)


def _expected_purchases_new_customer(params: np.ndarray, t: Any) -> np.ndarray:
    """``E[X(t)] = r/alpha integral_0^t S(u) du`` for a new customer (BG12 eq. 8, in the
    form ``r/alpha E[min(tau, t)]``).

    >>> from custval import GammaGompertzNBDModel
    >>> model = GammaGompertzNBDModel.from_params(
    ...     r=0.553, alpha=10.578, b=0.0002, s=0.603, beta=0.0026
    ... )
    >>> round(model.expected_purchases_new_customer(39), 3)
    1.256
    """
    horizon = np.asarray(t, dtype=float)
    log_time = _log_residual_lifetime(params, np.zeros_like(horizon), horizon)
    with np.errstate(divide="ignore"):
        value = np.exp(np.log(params[0] / params[1]) + log_time)
    return np.where(horizon > 0, value, 0.0)


def _probability_of_purchases(params: np.ndarray, n: Any, t: float) -> np.ndarray:
    """``P(X(t) = n)`` for a new customer (:func:`_gompertz_nbd_pmf`).

    >>> from custval import GammaGompertzNBDModel
    >>> model = GammaGompertzNBDModel.from_params(
    ...     r=0.553, alpha=10.578, b=0.0002, s=0.603, beta=0.0026
    ... )
    >>> round(model.probability_of_purchases_new_customer(0, 39), 3)
    0.584
    """
    r, alpha, b, s, beta = params
    counts = np.asarray(n, dtype=float)
    k = counts.ravel()
    full = np.ones_like(k)
    pmf = _gompertz_nbd_pmf(r * full, alpha * full, b, s, beta * full, k, t)
    return pmf.reshape(counts.shape)


def _conditional_probability_of_purchases(
    params: np.ndarray, counts: np.ndarray, data: Mapping[str, np.ndarray], t: float
) -> np.ndarray:
    """``P(X(T, T+t) = n | x, t_x, T)``, shape ``(rows, len(counts))``.

    Given alive at ``T``, ``lambda ~ Gamma(r+x, alpha+T)`` and the residual lifetime is
    gamma-Gompertz with ``b, s`` and ``beta -> g = (beta + e^(bT) - 1) e^(-bT)`` (module
    docstring), so the next ``t`` periods are those of a new customer with these parameters;
    dead at ``T`` (``1 - P(alive)``) adds to ``n = 0``. Exact up to the quadrature of
    :func:`_gompertz_nbd_pmf` (~1e-14), once per distinct ``(x, T)``.

    >>> import pandas as pd
    >>> from custval import GammaGompertzNBDModel
    >>> model = GammaGompertzNBDModel.from_params(
    ...     r=0.553, alpha=10.578, b=0.0002, s=0.603, beta=0.0026
    ... )
    >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    >>> model.probability_of_purchases(customer, [0, 1, 2], 39).round(3).values.tolist()
    [[0.404, 0.22, 0.153]]
    """
    r, alpha, b, s, beta = params
    log_alive = _log_probability_alive(params, data["frequency"], data["recency"], data["T"])
    alive = np.exp(log_alive)[:, None]
    unique, inverse = _unique_rows({"x": data["frequency"], "T": data["T"]})
    x, big_t = unique["x"], unique["T"]
    g = np.exp(_log_base(b, beta, big_t) - b * big_t)
    k = np.broadcast_to(counts[None, :], (len(x), len(counts)))
    rows = np.ones(k.shape)

    def flat(values: np.ndarray) -> np.ndarray:
        return (values[:, None] * rows).ravel()

    given_alive = _gompertz_nbd_pmf(
        flat(r + x), flat(alpha + big_t), b, s, flat(g), k.ravel(), t
    ).reshape(k.shape)[inverse]
    return alive * given_alive + np.where(counts[None, :] == 0, 1.0 - alive, 0.0)


def _gompertz_nbd_pmf(
    r: np.ndarray,
    alpha: np.ndarray,
    b: float,
    s: float,
    beta: np.ndarray,
    k: np.ndarray,
    t: float,
) -> np.ndarray:
    """``P(X(t) = k)`` of a gamma(r, alpha)-Poisson buyer with a gamma-Gompertz(b, s, beta)
    lifetime, elementwise over the flat arrays ``r, alpha, beta, k``::

        P(X(t)=n) = NB(n; t) S(t) + integral_0^t NB(n; tau) f(tau) d tau,
        NB(n; tau) = G(r+n) / (G(r) n!) (alpha/(alpha+tau))^r (tau/(alpha+tau))^n,

    alive throughout ``(0, t]``, or dead at ``tau`` after ``n`` purchases in ``(0, tau]``
    (the count of a gamma-mixed Poisson process over ``tau``); the integral in ``log tau``.
    """
    if t <= 0:
        return np.where(k == 0, 1.0, 0.0)
    log_nb_const = gammaln(r + k) - gammaln(r) - gammaln(k + 1.0)
    log_t = np.log(t)
    alive = (
        log_nb_const
        + r * (np.log(alpha) - np.log(alpha + t))
        + k * (log_t - np.log(alpha + t))
        + _log_survival(b, s, beta, t)
    )
    columns = {
        "k": k[:, None],
        "r": r[:, None],
        "alpha": alpha[:, None],
        "beta": beta[:, None],
        "const": (log_nb_const + r * np.log(alpha) + np.log(b) + np.log(s) + s * np.log(beta))[
            :, None
        ],
    }

    def log_f(v: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        tau = np.exp(v)
        c = columns if rows is None else {name: col[rows] for name, col in columns.items()}
        return (
            c["const"]
            + (c["k"] + 1.0) * v
            - (c["r"] + c["k"]) * np.log(c["alpha"] + tau)
            + b * tau
            - (s + 1.0) * _log_base(b, c["beta"], tau)
        )

    lo = log_t - 80.0 - 80.0 / (1.0 + k)
    log_dead, _, _ = _log_integral(log_f, lo, np.full(k.shape, log_t), _GL128)
    return np.exp(np.logaddexp(alive, log_dead))


# ---------------------------------------------------------------------------------------------
# The model class
# ---------------------------------------------------------------------------------------------
def _rows_terms(params: np.ndarray, data: Mapping[str, np.ndarray]) -> tuple[Any, ...]:
    """Per-row log-likelihood and gradient ``(5, n)`` (for ``_profile_terms``)."""
    return _loglik_core(params, data, gradient=True)


def _weighted_terms(
    params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted log-likelihood and gradient ``(5,)`` (for ``_profile_terms``)."""
    ll, grad = _loglik_core(params, data, gradient=True)
    assert grad is not None
    return float(np.multiply(weights, ll).sum()), grad @ weights


def _prepare_plain(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The patterns with their distinct frequencies indexed once per fit."""
    uniques, inverse = unique_index(data["frequency"])
    return {**data, "_x_unique": np.asarray(uniques, dtype=float), "_x_inverse": inverse}


class GammaGompertzNBDModel(PurchaseDropoutCovariates, TransactionModel):
    """GGom/NBD model of repeat purchasing with gamma-Gompertz lifetimes (non-contractual).

    Bemmaor & Glady (2012): while alive a customer buys at Poisson rate
    ``lambda ~ Gamma(r, alpha)``; lifetimes are Gompertz with shape ``b`` and scale
    ``eta ~ Gamma(s, beta)``. ``b`` lets the dropout hazard change over a lifetime; as
    ``b -> 0`` with ``beta / b`` fixed the model becomes the Pareto/NBD with ``beta_PNBD =
    beta / b``. Fitted by maximum likelihood with its gradient on the distinct
    ``(frequency, recency, T)`` patterns; the likelihood's integral is taken by quadrature (see
    the module notes); standard errors from the Hessian.

    Parameters
    ----------
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Attributes
    ----------
    params_ : Series
        ``r``, ``alpha``, ``b``, ``s``, ``beta`` (``alpha`` in the summary's time unit, ``b``
        per period of it).
    log_likelihood_, n_customers_, n_patterns_, variance_matrix_, freq_
        See :class:`custval.models._base.BaseModel`; ``summary``, ``aic`` and ``bic`` too.

    Notes
    -----
    Where the data carry no sign of a changing hazard (CDNOW is such a case) the maximum lies
    on the Pareto/NBD edge, ``b`` and ``beta`` both tiny with ``beta / b`` finite: the fit then
    stops where the likelihood no longer changes (Bemmaor & Glady report ``b = 0.0002`` on
    CDNOW, CLVTools ``b = 1.1e-6``; both give log-likelihood -9594.98, the Pareto/NBD's), the
    Hessian is singular and the standard errors of ``b`` and ``beta`` are not available.
    A second edge, ``s`` and ``beta`` both very large with ``s / beta`` finite (Gompertz
    lifetimes without heterogeneity), can hold a local maximum: the fit starts away from both
    edges (see ``_initial_params``), but where ``s`` and ``beta`` come out huge, refitting
    with other ``initial_params`` and keeping the larger ``log_likelihood_`` is worthwhile.

    Time-invariant covariates (``fit(..., customers=..., purchase_covariates=[...],
    dropout_covariates=[...])``) scale ``alpha`` and ``beta`` per customer as CLVTools'
    ``ggomnbd`` static covariates: ``alpha_i = alpha exp(-x'beta_p)`` (``exp(beta_p)``
    multiplies the purchase rate ``r / alpha_i``) and ``beta_i = beta exp(-x'beta_d)``
    (``exp(beta_d)`` multiplies the mean Gompertz scale ``s / beta_i``, i.e. the dropout hazard
    at every age); ``b`` (the hazard's shape) and ``s`` are common to all customers. With at
    most 500 distinct covariate profiles (discrete covariates) the likelihood is evaluated
    once per profile with the quadrature of the model without covariates; with more
    (continuous covariates) the same quadrature runs vectorised over the customers, each at
    their own ``alpha_i``, ``beta_i``. The fit starts from the model without covariates
    (coefficients 0).

    The conditional expectation uses the residual lifetime of a customer alive at ``T``,
    ``P(tau > T+u | alive) = (beta* / (beta* + e^(b T) (e^(b u) - 1)))^s``. The reference
    expression in CLVTools' tests (from Bemmaor & Glady's Matlab code) has
    ``(beta* / (beta* + e^(b u) - 1))^s``, which agrees only while ``e^(b T) ~ 1`` (as on
    CDNOW); simulated customers confirm the form used here.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import GammaGompertzNBDModel
    >>> model = GammaGompertzNBDModel.from_params(
    ...     r=0.553, alpha=10.578, b=0.0002, s=0.603, beta=0.0026, freq="W"
    ... )
    >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    >>> model.probability_alive(customer).round(3).tolist()
    [0.873]
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "b", "s", "beta")
    _data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    _display_name: ClassVar[str] = "GGom/NBD model"
    _covariate_groups: ClassVar[tuple[str, ...]] = ("purchase", "dropout")
    _dropout_effect_words: ClassVar[str] = "rate"
    _per_customer: ClassVar[bool] = True
    #: covariates scale alpha (purchase) and beta (dropout), CLVTools' ggomnbd static covariates
    _profile_scaled: ClassVar[tuple[int, int]] = (1, 4)
    _covariate_links: ClassVar[dict[str, tuple[str, float]]] = {  # as _profile_scaled
        "alpha": ("purchase", -1.0),
        "beta": ("dropout", -1.0),
    }

    def _extra_state(self) -> dict[str, Any]:
        return self._with_covariate_state(super()._extra_state())

    def _set_extra_state(self, state: Mapping[str, Any]) -> None:
        super()._set_extra_state(state)
        self._restore_covariate_state(state)

    def _validate_data(self, data: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
        self._check_frequency_recency(data, frame)

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        """A start inside the parameter space, found by a first fit on a bounded ``s``.

        The likelihood has edges where it can rise to a local maximum: ``b -> 0`` (the
        Pareto/NBD) and ``s, beta -> inf`` with ``s / beta`` fixed (Gompertz lifetimes without
        heterogeneity, where the Pareto/NBD's own fit often lands). From the Pareto/NBD fitted
        to the same patterns (its ``r`` and ``alpha``; ``s = 1``; ``b = 0.5 / mean(T)``;
        ``beta`` giving its mean dropout rate at the start of a lifetime, ``s b / beta =
        s_PNBD / beta_PNBD``), the likelihood is maximized first with ``s <= _S_BOUND``, where
        the second edge is out of reach; the fit proper starts from there (and moves on to the
        edge where the maximum really lies on it). On simulated data, unbounded fits from the
        same start ended on that edge far below the maximum in about one case in three.
        """
        if len(self._param_names) > 5:  # covariates: the plain model's start, coefficients 0
            plain = type(self)(penalizer_coef=self.penalizer_coef)
            columns = _prepare_plain({c: data[c] for c in self._data_columns})
            start = plain._initial_params(columns, weights)
            return np.concatenate([start, np.zeros(len(self._param_names) - 5)])
        total_t = max(float(np.multiply(weights, data["T"]).sum()), 1e-9)
        rate = max(float(np.multiply(weights, data["frequency"]).sum()), 1.0) / total_t
        b = 0.5 * max(float(weights.sum()), 1e-9) / total_t
        start = np.array([1.0, 1.0 / rate, b, 1.0, b / rate])
        patterns = pd.DataFrame({c: data[c] for c in self._data_columns})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CustvalWarning)
                pareto = ParetoNBDModel().fit(patterns, weights=weights)
            r, alpha, s, beta = pareto.params_.to_numpy(dtype=float)
            start = np.array([r, alpha, b, 1.0, b * beta / s])
        except (ConvergenceError, DataError):
            pass
        bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 5
        bounds[3] = (-_LOG_BOUND, float(np.log(_S_BOUND)))
        with np.errstate(all="ignore"):
            result = optimize.minimize(
                self._objective,
                np.log(start),
                args=(data, weights, float(weights.sum())),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 200, "gtol": 1e-6},
            )
        if np.all(np.isfinite(result.x)) and np.isfinite(result.fun):
            return np.exp(result.x)
        return start

    def _starting_points(
        self, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> list[np.ndarray]:
        """The base's starts and, last, two towards the likelihood's other edges.

        Besides ``b -> 0`` and ``s, beta -> inf`` (see :meth:`_initial_params`), the
        likelihood can rise towards

        * ``b, beta -> inf``, ``s -> 0`` with ``log(beta) / b`` and ``s b`` fixed: nobody
          dies before a delay ``d = log(beta) / b``, then at the rate ``s b`` (as when
          customers only drop out after a repeat purchase);
        * ``beta, s -> 0`` with ``beta^s`` fixed: a share ``1 - beta^s`` drops out at once,
          the others at the rate ``s b``.

        Starts near the Pareto/NBD do not reach them (on simulated BG/NBD data the fit then
        stopped 2.3 below the best of 20 random restarts in log-likelihood, on heavily tied
        data 8); these starts have ``b = 10 / d`` with ``d`` a tenth of the mean ``T``, the
        data-based start's initial dropout rate ``s b / beta`` and ``beta = e^10`` (so that
        ``b d = 10``), respectively ``beta = e^-10``. Both run only when no earlier start
        reached a verified interior optimum.
        """
        starts = super()._starting_points(data, weights)
        start = starts[-5]  # the base's data-based start (_initial_params)
        r, alpha, b, s, beta = start[:5]
        delay = 0.1 * max(float(np.multiply(weights, data["T"]).sum() / weights.sum()), 1e-9)
        fast = 10.0 / delay
        rate = s * b / beta / fast
        coefficients = start[5:]
        starts.append(np.array([r, alpha, fast, rate, np.exp(10.0), *coefficients]))
        starts.append(np.array([r, alpha, fast, rate, np.exp(-10.0), *coefficients]))
        if "_profiles" in data:  # covariates: first from the fit without them
            return self._first_start_without_covariates(starts, data, weights)
        return starts

    _prepare_plain = staticmethod(_prepare_plain)  # the patterns without covariates
    #: the predictions' mathematics (TransactionModel's hooks call them at the fitted params)
    _conditional_pmf_of = staticmethod(_conditional_probability_of_purchases)
    _new_customer_pmf_of = staticmethod(_probability_of_purchases)
    _new_customer_mean_of = staticmethod(_expected_purchases_new_customer)

    def _loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        if "_profiles" in data:
            return self._profile_terms(params, data, None, _rows_terms, _weighted_terms)
        ll, grad = _loglik_core(params, data, gradient=True)
        assert grad is not None
        return ll, grad.T

    def _weighted_loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> tuple[float, np.ndarray]:
        if "_profiles" in data:
            return self._profile_terms(params, data, weights, _rows_terms, _weighted_terms)
        return _weighted_terms(params, data, weights)

    def _loglik(self, params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        if "_profiles" in data:
            return self._loglik_grad(params, data)[0]
        return _loglik_core(params, data, gradient=False)[0]

    # ------------------------------------------------------------------ predictions
    def _log_alive(self, data: dict[str, Any]) -> np.ndarray:
        """``log P(alive)`` of validated prediction data, remembered with the parameters."""
        params = self._params()
        cached = data.get("_log_alive")
        if cached is not None and np.array_equal(cached[0], params):
            return cached[1]
        value = _log_probability_alive(params, data["frequency"], data["recency"], data["T"])
        data["_log_alive"] = (params.copy(), value)
        return value

    def _expected(self, data: Mapping[str, Any], horizon: Any, delta: float) -> np.ndarray:
        """(Discounted) expected purchases in ``(T, T + horizon]`` of validated ``data``."""
        return _expected_purchases(
            self._params(),
            data["frequency"],
            data["recency"],
            data["T"],
            horizon,
            log_alive=self._log_alive(data),
            delta=delta,
        )

    def _probability_alive(
        self, data: Mapping[str, Any], horizon: float | None, summary: Any, customers: Any
    ) -> np.ndarray:
        """The share of the likelihood from lifetimes longer than ``T`` (BG12 section 3); ``t``
        periods later, alive at ``T`` times ``P(tau > T+t | tau > T) = ((beta + e^(bT) - 1) /
        (beta + e^(b(T+t)) - 1))^s``, the survival under the posterior ``Gamma(s, beta +
        e^(bT) - 1)`` of ``eta`` (BG12 section 3).

        >>> import pandas as pd
        >>> from custval import GammaGompertzNBDModel
        >>> model = GammaGompertzNBDModel.from_params(
        ...     r=0.553, alpha=10.578, b=0.0002, s=0.603, beta=0.0026
        ... )
        >>> customer = pd.DataFrame({"frequency": [0], "recency": [0], "T": [38.86]})
        >>> model.probability_alive(customer).round(3).tolist()
        [0.316]
        """
        if getattr(self, "covariates_", None) is not None:
            x, t_x, big_t = data["frequency"], data["recency"], data["T"]

            def alive(p: np.ndarray, rows: np.ndarray) -> np.ndarray:
                log_alive = _log_probability_alive(p, x[rows], t_x[rows], big_t[rows])
                return np.exp(log_alive + _log_still_alive(p, big_t[rows], horizon))

            return self._by_profile(summary, customers, alive)
        log_alive = self._log_alive(data) + _log_still_alive(self._params(), data["T"], horizon)
        return np.exp(log_alive)

    def _expected_purchases(
        self, data: Mapping[str, Any], horizon: Any, summary: Any, customers: Any
    ) -> np.ndarray:
        """``E[X(T, T+t) | frequency, recency, T] = P(alive) (r+x)/(alpha+T) E[time alive in
        (T, T+t] | alive at T]``, the last factor by quadrature.

        >>> import pandas as pd
        >>> from custval import GammaGompertzNBDModel
        >>> model = GammaGompertzNBDModel.from_params(
        ...     r=0.553, alpha=10.578, b=0.0002, s=0.603, beta=0.0026
        ... )
        >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> round(float(model.expected_purchases(customer, 39).iloc[0]), 3)
        1.466
        """
        if getattr(self, "covariates_", None) is not None:
            x, t_x, big_t = data["frequency"], data["recency"], data["T"]
            return self._by_profile(
                summary,
                customers,
                lambda p, i: _expected_purchases(p, x[i], t_x[i], big_t[i], horizon),
            )
        return self._expected(data, horizon, 0.0)

    def discounted_expected_residual_transactions(
        self,
        summary: pd.DataFrame,
        continuous_discount_rate: float | None = None,
        *,
        annual_discount_rate: float | None = None,
        t: float | str | None = None,
    ) -> pd.Series:
        """Discounted expected residual transactions (DERT) of each customer.

        ``integral_0^t e^(-delta u) dE[X(T, T+u)]`` (FHL 2005 "RFM and CLV", eq. 2, for this
        model): ``P(alive) (r+x)/(alpha+T) integral_0^t e^(-delta u) P(tau > T+u | alive at T)
        du`` by quadrature. Multiply by the expected margin per transaction for the residual
        value. The gamma-Gompertz lifetime keeps it finite even without discounting.

        Parameters
        ----------
        summary : DataFrame
            Customers with ``frequency``, ``recency`` and ``T`` in the unit of the fit.
        continuous_discount_rate : float, optional
            ``delta`` >= 0, the continuously compounded rate per period of the model's unit.
        annual_discount_rate : float, optional
            Instead of ``continuous_discount_rate``: an annual rate (0.15 for 15%), converted
            with the model's unit (``freq_``): ``delta = log(1 + rate per period)``.
        t : float or str, optional
            Horizon (a duration with unit or a number of periods); infinite by default.

        Returns
        -------
        Series
            ``dert``, aligned with ``summary.index``.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import GammaGompertzNBDModel
        >>> model = GammaGompertzNBDModel.from_params(r=0.8, alpha=5.0, b=0.05, s=1.5, beta=3.0)
        >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> dert = model.discounted_expected_residual_transactions(customer, 0.0027)
        >>> round(float(dert.iloc[0]), 3)
        0.522
        """
        if (continuous_discount_rate is None) == (annual_discount_rate is None):
            raise DataError(
                "give exactly one of continuous_discount_rate (per period of the model's unit) "
                "and annual_discount_rate"
            )
        if annual_discount_rate is None:
            delta = float(continuous_discount_rate)  # type: ignore[arg-type]
        elif getattr(self, "freq_", None) is None:
            raise DataError(
                f"annual_discount_rate needs the model's time unit, but this {self._name()} "
                "does not know it; give continuous_discount_rate per period instead, or refit on "
                "a summary from custval.rfm_summary (from_params takes freq=)"
            )
        else:
            delta = float(np.log1p(annual_rate_to_period(annual_discount_rate, self.freq_)))
        if not (np.isfinite(delta) and delta >= 0):
            raise DataError(f"the discount rate must be finite and >= 0, got {delta!r} per period")
        horizon = np.inf if t is None else self._duration(t)
        values = self._expected(self._prediction_data(summary), horizon, delta)
        return self._series(values, summary, "dert")

    # -- the value-kernel contract of custval.clv (README "Design notes") ----------------------
    def _value_kernel(self, terms: Any) -> Any:
        """The GGom/NBD's kernel for :func:`custval.customer_lifetime_value`: its DERT, for
        finite and infinite horizons (None, the generic path, for a ``step=`` grid)."""
        if terms.step is not None:
            return None
        from custval.models._gamma_gompertz_nbd_clv import GammaGompertzNBDKernel

        return GammaGompertzNBDKernel(self, terms)

    def survival(self, t: float | str | Any) -> float | pd.Series:
        """Share of newly acquired customers still alive after ``t`` periods (BG12 eq. 2).

        ``S(t) = (beta / (beta + e^(b t) - 1))^s``.

        Parameters
        ----------
        t : float, str or array-like of them
            Durations with unit or numbers of periods.

        Returns
        -------
        float or Series
            A float for a scalar ``t``; otherwise a Series indexed by ``t``.

        Examples
        --------
        >>> from custval import GammaGompertzNBDModel
        >>> model = GammaGompertzNBDModel.from_params(r=0.5, alpha=10.0, b=0.05, s=1.0, beta=2.0)
        >>> round(model.survival(10), 4)
        0.7551
        """
        _, _, b, s, beta = self._params()
        horizon = self._duration(t)
        values = np.exp(_log_survival(b, s, beta, horizon))
        return self._by_horizon(t, horizon, values, "survival")
