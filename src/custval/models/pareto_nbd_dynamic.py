"""Pareto/NBD with time-varying (dynamic) covariates.

Bachmann, Meierer & Näf (2021), "The Role of Time-Varying Contextual Factors in Latent
Attrition Models for Customer Base Analysis", Marketing Science 40(4), 783-809 (BMN), the
model of CLVTools' ``pnbd(..., data = <dynamic covariates>)``. Covariates are piecewise constant
over calendar periods (one period = one unit of the model's time, e.g. a week): in period ``k``
customer ``i`` buys at rate ``lambda_i a_ik`` and drops out at hazard ``mu_i b_ik`` with
``a_ik = exp(x_ik'gamma_p)`` and ``b_ik = exp(x_ik'gamma_d)``; ``lambda ~ Gamma(r, alpha)``,
``mu ~ Gamma(s, beta)`` as in the Pareto/NBD.

Likelihood (BMN section 3; derived here directly). With the cumulative exposures
``A(t) = integral_0^t a`` and ``B(t) = integral_0^t b`` (customer time since the first
purchase; piecewise linear) and repeat purchases at ``t_1 .. t_x``, integrating ``lambda`` and
``mu`` out gives::

    L = G(r+x)/G(r) prod_j a(t_j) alpha^r beta^s [ (alpha + A(T))^-(r+x) (beta + B(T))^-s
        + s integral_{t_x}^T b(tau) (alpha + A(tau))^-(r+x) (beta + B(tau))^-(s+1) d tau ]

(``prod_j a(t_j)`` is CLVTools' ``A1``, the bracket's first term its ``F1 F3`` and the
integral, one hypergeometric difference per period, its ``F2``). Here the integral is taken
period by period: within a period ``a`` and ``b`` are constant, so the piece is the
Pareto/NBD's ``J`` with shifted parameters, integrated by Gauss-Legendre in ``v = log(m + u)``
where its log-integrand is concave (as :mod:`custval.models.pareto_nbd` does where its series
is slow) on the part that carries all but ``e^-44`` of its mass. Its gradient in every
parameter, the coefficients included, is the integral of the integrand's derivative, so the
fit uses the analytic gradient. With covariates that do not change over time the model *is*
the static-covariate Pareto/NBD (``alpha exp(-x'gamma_p)``, ``beta exp(-x'gamma_d)``), and with
all coefficients zero the plain Pareto/NBD.

Predictions given the covariate path over the horizon (posterior of ``lambda, mu`` given alive
at ``T``: ``Gamma(r+x, alpha+A(T))`` and ``Gamma(s, beta+B(T))``)::

    E[X(T, T+t)] = P(alive) (r+x)/(alpha+A(T)) integral_T^{T+t} a(u) ((beta+B(T))/(beta+B(u)))^s du,

in closed form period by period. The discounted value (CLV) puts ``e^(-delta (u - T))`` into
that integral (``delta``: the continuously compounded rate per period of
:mod:`custval.clv`); per period that is an upper incomplete gamma function of order ``1 - s``
(of negative order for ``s > 1``, outside scipy's ``gammaincc``), so it is integrated per period by
Gauss-Legendre quadrature in ``log(beta + B(u))`` (``_discounted_future``; rounding-level
agreement with adaptive quadrature in ``tests/test_clv_dynamic.py``). The valuation
functions reach the model through :meth:`ParetoNBDDynamicModel.bind`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import gammaln
from sklearn.utils.validation import check_is_fitted

from custval._quadrature import (
    GL_NODES,
    Kernel,
    TabulatedKernel,
    Terms,
    model_name,
    quadrature_rule,
)
from custval.errors import ConvergenceError, CustvalWarning, DataError
from custval.models._base import BaseModel
from custval.models._covariates import CovariateModelMixin, CovariateSpec, _plain
from custval.models._log_quadrature import concave_log_quadrature, gauss_legendre
from custval.models._special import digamma_rising
from custval.models.pareto_nbd import ParetoNBDModel, _log_one_minus_power

__all__ = ["ParetoNBDDynamicBound", "ParetoNBDDynamicModel"]

#: The dropout-time integral of a segment is cut into pieces at most this wide in
#: ``v = log(m + u)`` (one piece for most weekly periods, a few for a long run of constant
#: covariates), each integrated with 8 Gauss-Legendre nodes: equal to 48 nodes to ~1e-14.
_PIECE_V = 0.25
_GL8 = gauss_legendre(8)
_UNIT_DAYS = {"D": 1.0, "W": 7.0}
_DAY_NS = 86_400 * 10**9


# ---------------------------------------------------------------------------------------------
# Data layout: customers cut into (customer, period) segments
# ---------------------------------------------------------------------------------------------
def _days(values: Any, what: str) -> np.ndarray:
    """Whole days since 1970-01-01 of date-like values (time of day dropped)."""
    try:
        stamps = pd.to_datetime(pd.Series(values).reset_index(drop=True))
    except (TypeError, ValueError) as error:
        raise DataError(
            f"{what} must be dates (datetime64 or parseable strings): {error}"
        ) from None
    if stamps.isna().any():
        rows = list(np.flatnonzero(stamps.isna().to_numpy())[:3])
        raise DataError(f"{what} has {int(stamps.isna().sum())} missing dates (rows {rows})")
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_localize(None)
    return (stamps.dt.floor("D").astype("datetime64[ns]").astype(np.int64) // _DAY_NS).to_numpy()


def _day_text(day: float) -> str:
    return str(pd.Timestamp(int(np.floor(day)) * _DAY_NS).date())


class _Path:
    """Covariate design per calendar period (common to all customers or per customer).

    ``design`` has one row per row of the covariate table (the model's coefficient order for
    the purchase, ``zp``, and the dropout predictor, ``zd``); ``lookup(codes, k)`` gives the row
    of customer ``codes`` in period ``k`` (``-1`` where the table has none).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        spec: CovariateSpec,
        names: Sequence[str],
        *,
        customer_id: str,
        period: str,
        unit_days: float,
    ) -> None:
        if period not in table.columns:
            raise DataError(
                f"the covariate table has no column {period!r} (the start date of each period; "
                f"columns: {list(table.columns)}); pass period=<its name>"
            )
        start_days = _days(table[period], f"covariate column {period!r}")
        self.origin = int(start_days.min()) if len(start_days) else 0
        offset = (start_days - self.origin) / unit_days
        k = np.round(offset).astype(np.int64)
        off_grid = np.abs(offset - k) > 1e-9
        if np.any(off_grid):
            first = int(np.flatnonzero(off_grid)[0])
            raise DataError(
                f"covariate periods must start {unit_days:g} day(s) apart (one unit of "
                f"freq); the period starting {_day_text(start_days[first])} is not on the grid "
                f"that starts {_day_text(self.origin)}"
            )
        self.unit_days = unit_days
        self.per_customer = customer_id in table.columns
        matrix = spec.encoding.matrix(table, spec.covariates)
        self.zp = matrix @ spec.selection("purchase", names)
        self.zd = matrix @ spec.selection("dropout", names)
        self.n_k = int(k.max()) + 1 if len(k) else 0
        if self.per_customer:
            ids = table[customer_id].to_numpy()
            self.ids = pd.Index(pd.unique(ids))
            code = self.ids.get_indexer(ids)
            key = code.astype(np.int64) * self.n_k + k
        else:
            key = k
        self.keys = pd.Index(key)
        if not self.keys.is_unique:
            dup = int(np.flatnonzero(self.keys.duplicated())[0])
            who = (
                f"customer {_plain(table[customer_id].iloc[dup])!r}, " if self.per_customer else ""
            )
            raise DataError(
                f"the covariate table has more than one row for {who}period "
                f"{_day_text(start_days[dup])}; give one row per "
                f"{'customer and ' if self.per_customer else ''}period"
            )

    def rows(self, customer_ids: pd.Index, cust: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Table rows of (customer ``customer_ids[cust]``, period ``k``); -1 where absent."""
        inside = (k >= 0) & (k < self.n_k)
        if self.per_customer:
            known = self.ids.get_indexer(customer_ids)
            if len(customer_ids) and np.all(known < 0):
                raise DataError(
                    "none of the customers of the transactions is in the covariate table's "
                    f"customer id column (e.g. {_plain(customer_ids[0])!r} of type "
                    f"{type(_plain(customer_ids[0])).__name__}; the table has "
                    f"{_plain(self.ids[0])!r} of type {type(_plain(self.ids[0])).__name__}); "
                    "give both the same ids"
                )
            code = known[cust]
            inside &= code >= 0
            key = np.where(inside, code.astype(np.int64) * self.n_k + k, -1)
        else:
            key = np.where(inside, k, -1)
        found = self.keys.get_indexer(key)
        return np.where(inside, found, -1)


def _segments(
    path: _Path,
    customer_ids: pd.Index,
    start_day: np.ndarray,
    stop_day: np.ndarray,
    *,
    closed: bool,
    what: str,
) -> dict[str, np.ndarray]:
    """(customer, period) pieces of ``[start_day_i, stop_day_i]``, in customer order.

    ``closed``: include the period that contains ``stop_day`` even when ``stop_day`` is its
    start (a purchase on the last day needs that period's covariates). Times are in units since
    ``start_day`` of the *first* interval given (customer time when ``start_day`` is the first
    purchase); ``lo``/``hi`` are the piece's ends in those units.
    """
    u = path.unit_days
    k_first = np.floor((start_day - path.origin) / u).astype(np.int64)
    stop_pos = (stop_day - path.origin) / u
    k_last = np.floor(stop_pos) if closed else np.ceil(stop_pos) - 1
    k_last = np.maximum(k_last.astype(np.int64), k_first - (0 if closed else 1))
    counts = k_last - k_first + 1
    cust = np.repeat(np.arange(len(start_day)), counts)
    first_seg = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    k = k_first[cust] + (np.arange(cust.size) - first_seg[cust])
    rows = path.rows(customer_ids, cust, k)
    if np.any(rows < 0):
        bad = int(np.flatnonzero(rows < 0)[0])
        raise DataError(
            f"the covariate table has no row for customer {_plain(customer_ids[cust[bad]])!r} "
            f"in the period starting {_day_text(path.origin + k[bad] * u)}, which {what} needs; "
            "give every customer covariates for every period from the one of their first "
            "purchase to the end of observation (and over the prediction horizon)"
        )
    period_start = path.origin + k * u
    lo_day = np.maximum(period_start, start_day[cust])
    hi_day = np.minimum(period_start + u, stop_day[cust])
    return {
        "cust": cust,
        "k": k,
        "first_seg": first_seg,
        "counts": counts,
        "lo": (lo_day - start_day[cust]) / u,
        "hi": np.maximum(hi_day - start_day[cust], lo_day - start_day[cust]) / u,
        "zp": path.zp[rows],
        "zd": path.zd[rows],
    }


def _merge_runs(segs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Consecutive segments of a customer with the same covariates as one segment (``a`` and
    ``b`` are constant over the run, so the likelihood is unchanged and costs less)."""
    cust, zp, zd = segs["cust"], segs["zp"], segs["zd"]
    same = np.zeros(cust.size, dtype=bool)
    same[1:] = (
        (cust[1:] == cust[:-1])
        & np.all(zp[1:] == zp[:-1], axis=1)
        & np.all(zd[1:] == zd[:-1], axis=1)
    )
    if not same.any():
        return segs
    start = np.flatnonzero(~same)
    stop = np.append(start[1:], cust.size) - 1
    counts = np.bincount(cust[start], minlength=segs["counts"].size)
    return {
        "cust": cust[start],
        "first_seg": np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64),
        "counts": counts,
        "lo": segs["lo"][start],
        "hi": segs["hi"][stop],
        "zp": zp[start],
        "zd": zd[start],
    }


def _history(
    path: _Path,
    transactions: pd.DataFrame,
    *,
    customer_id: str,
    timestamp: str,
    end_day: int,
) -> dict[str, Any]:
    """Per-customer ``x, t_x, T``, the history's segments and the purchase-covariate sums."""
    for column in (customer_id, timestamp):
        if column not in transactions.columns:
            raise DataError(
                f"the transactions have no column {column!r} (columns: "
                f"{list(transactions.columns)}); pass customer_id= / timestamp= with their names"
            )
    if transactions[customer_id].isna().any():
        raise DataError(f"transaction column {customer_id!r} has missing customer ids")
    day = _days(transactions[timestamp], f"transaction column {timestamp!r}")
    ids = transactions[customer_id].to_numpy()
    keep = day <= end_day
    frame = pd.DataFrame({"id": ids[keep], "day": day[keep]}).drop_duplicates()
    if frame.empty:
        raise DataError(f"no transactions on or before the end of observation {_day_text(end_day)}")
    frame = frame.sort_values(["id", "day"], kind="stable")
    customer_ids = pd.Index(pd.unique(frame["id"].to_numpy()), name=customer_id)
    code = customer_ids.get_indexer(frame["id"].to_numpy())
    days = frame["day"].to_numpy().astype(float)
    n = len(customer_ids)
    first = np.full(n, np.inf)
    np.minimum.at(first, code, days)
    last = np.full(n, -np.inf)
    np.maximum.at(last, code, days)
    u = path.unit_days
    x = np.bincount(code, minlength=n).astype(float) - 1.0
    end = np.full(n, float(end_day))
    segs = _segments(path, customer_ids, first, end, closed=True, what="the history")
    # the purchase covariates at the repeat purchases: sum of z_p over them (CLVTools' A1)
    repeat = days > first[code]
    rc, rd = code[repeat], days[repeat]
    k = np.floor((rd - path.origin) / u).astype(np.int64)
    seg = segs["first_seg"][rc] + k - segs["k"][segs["first_seg"][rc]]
    n_coef = segs["zp"].shape[1]
    purchase_sum = np.zeros((n, n_coef))
    for j in range(n_coef):
        purchase_sum[:, j] = np.bincount(rc, weights=segs["zp"][seg, j], minlength=n)
    return {
        "ids": customer_ids,
        "x": x,
        "t_x": (last - first) / u,
        "T": (end - first) / u,
        "first_day": first,
        "end_day": end,
        "segments": _merge_runs(segs),
        "purchase_sum": purchase_sum,
    }


# ---------------------------------------------------------------------------------------------
# The likelihood
# ---------------------------------------------------------------------------------------------
def _exposures(
    coef: np.ndarray, segs: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per segment ``a, b``, the exposures ``A, B`` at its start and their derivatives in the
    coefficients ``(n_seg, k)`` (cumulative sums within each customer)."""
    a = np.exp(segs["zp"] @ coef)
    b = np.exp(segs["zd"] @ coef)
    length = segs["hi"] - segs["lo"]
    first = segs["first_seg"][segs["cust"]]

    def before(values: np.ndarray) -> np.ndarray:
        total = np.cumsum(values, axis=0)
        exclusive = total - values
        return exclusive - exclusive[first]

    da, db = a * length, b * length
    return (
        a,
        b,
        before(da),
        before(db),
        before(da[:, None] * segs["zp"]),
        before(db[:, None] * segs["zd"]),
    )


def _totals(per_seg: np.ndarray, start: np.ndarray, segs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The value at each customer's end: start of the last segment plus the last increment."""
    last = segs["first_seg"] + segs["counts"] - 1
    return start[last] + per_seg[last]


def _log_quadrature(
    p: np.ndarray,
    q: float,
    da: np.ndarray,
    db: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    peak: np.ndarray,
    nodes: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`concave_log_quadrature` of ``v - p log(e^v + da) - q log(e^v + db)`` on
    ``[lo, hi]`` (rows of these arrays)."""

    def log_f(v: np.ndarray, rows: np.ndarray) -> np.ndarray:
        e = np.exp(v)
        if v.ndim == 1:
            return v - p[rows] * np.log(e + da[rows]) - q * np.log(e + db[rows])
        return v - p[rows, None] * np.log(e + da[rows, None]) - q * np.log(e + db[rows, None])

    def slope(v: np.ndarray, rows: np.ndarray) -> np.ndarray:
        e = np.exp(v)
        return 1.0 - p[rows] * e / (e + da[rows]) - q * e / (e + db[rows])

    return concave_log_quadrature(log_f, slope, lo, hi, peak, nodes)


def _segment_integrals(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    p: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    a_lo: np.ndarray,
    b_lo: np.ndarray,
    width: np.ndarray,
    *,
    moments: bool = True,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``log integral_0^width b (alpha + A_lo + a u)^-p (beta + B_lo + b u)^-(s+1) du`` per
    segment and (with ``moments``; empty without) the expectations of the integrand's
    derivatives under it (normalized).

    In ``u`` the piece is ``a^-p b^-s integral (at + u)^-p (bt + u)^-(s+1)`` with
    ``at = (alpha + A_lo)/a``, ``bt = (beta + B_lo)/b``; in ``v = log(m + u)``, ``m = min(at, bt)``,
    the log-integrand ``v - p log(e^v + at - m) - (s+1) log(e^v + bt - m)`` is concave and
    analytic within ``pi`` of the real axis, so Gauss-Legendre converges geometrically on pieces
    of width ``_PIECE_V`` (a weekly period is usually one piece).
    """
    q = s + 1.0
    at, bt = (alpha + a_lo) / a, (beta + b_lo) / b
    m = np.minimum(at, bt)
    da, db = at - m, bt - m
    log_m = np.log(m)
    lo, hi = log_m, np.log(m + width)
    # the integrand rises first only where at <= bt and p < 1: its peak solves slope = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        v_star = np.log((1.0 - p) * db / (p + s))
    rising = (da == 0) & (p < 1.0) & (db > 0)
    peak = np.where(rising, np.clip(np.where(np.isfinite(v_star), v_star, lo), lo, hi), lo)
    n = p.shape[0]
    pieces = np.maximum(np.ceil((hi - lo) / _PIECE_V), 1.0).astype(np.int64)
    seg = np.repeat(np.arange(n), pieces)
    j = np.arange(seg.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    step = (hi - lo)[seg] / pieces[seg]
    p_lo = lo[seg] + j * step
    p_hi = np.where(j == pieces[seg] - 1, hi[seg], p_lo + step)
    p_peak = np.clip(peak[seg], p_lo, p_hi)  # concave: the maximum on a piece
    log_piece, v, w = _log_quadrature(p[seg], q, da[seg], db[seg], p_lo, p_hi, p_peak, _GL8)
    log_int = _group_logsumexp(log_piece, seg, n)
    if not moments:  # the likelihood only (predictions, parameter draws)
        return log_int - p * np.log(a) - s * np.log(b), {}
    with np.errstate(invalid="ignore"):
        share = np.where(np.isfinite(log_piece), np.exp(log_piece - log_int[seg]), 0.0)
    uu = m[seg, None] * np.expm1(v - log_m[seg, None])  # u at the nodes, exact near 0
    inv_a = 1.0 / (at[seg, None] + uu)
    inv_b = 1.0 / (bt[seg, None] + uu)
    w = w * share[:, None]
    moments = {
        "inv_a": np.bincount(seg, (w * inv_a).sum(axis=1), minlength=n),
        "u_inv_a": np.bincount(seg, (w * uu * inv_a).sum(axis=1), minlength=n),
        "log_a": -np.bincount(seg, (w * np.log(inv_a)).sum(axis=1), minlength=n),
        "inv_b": np.bincount(seg, (w * inv_b).sum(axis=1), minlength=n),
        "u_inv_b": np.bincount(seg, (w * uu * inv_b).sum(axis=1), minlength=n),
        "log_b": -np.bincount(seg, (w * np.log(inv_b)).sum(axis=1), minlength=n),
    }
    return log_int - p * np.log(a) - s * np.log(b), moments


def _group_logsumexp(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """``log sum exp`` of ``values`` per ``group`` (``-inf`` for empty groups)."""
    top = np.full(n, -np.inf)
    np.maximum.at(top, group, values)
    safe = np.where(np.isfinite(top), top, 0.0)
    total = np.bincount(group, weights=np.exp(values - safe[group]), minlength=n)
    with np.errstate(divide="ignore"):
        return np.where(total > 0, safe + np.log(total), -np.inf)


def _loglik_parts(
    params: np.ndarray, hist: Mapping[str, Any], *, gradient: bool
) -> dict[str, np.ndarray]:
    """Per-customer log-likelihood (module docstring) and, with ``gradient``, its gradient
    ``(n, 4 + k)`` in ``(r, alpha, s, beta, coefficients)``; ``log_alive`` and ``log_sum``
    (``log`` of the bracket times ``alpha^r beta^s``) and the exposures at ``T``."""
    r, alpha, s, beta = (float(v) for v in params[:4])
    coef = np.asarray(params[4:], dtype=float)
    segs = hist["segments"]
    x, t_x = hist["x"], hist["t_x"]
    n = x.shape[0]
    p = r + x
    a, b, a0, b0, da0, db0 = _exposures(coef, segs)
    length = segs["hi"] - segs["lo"]
    a_t = _totals(a * length, a0, segs)
    b_t = _totals(b * length, b0, segs)
    scale = r * np.log(alpha) + s * np.log(beta)
    log_alive = scale - p * np.log(alpha + a_t) - s * np.log(beta + b_t)
    # the dropout integral over (t_x, T]: the part of each segment after t_x
    cust = segs["cust"]
    lo = np.maximum(segs["lo"], t_x[cust])
    act = np.flatnonzero(segs["hi"] > lo)
    ca = cust[act]
    shift = lo[act] - segs["lo"][act]
    a_lo = a0[act] + a[act] * shift
    b_lo = b0[act] + b[act] * shift
    log_seg, mom = _segment_integrals(
        r,
        alpha,
        s,
        beta,
        p[ca],
        a[act],
        b[act],
        a_lo,
        b_lo,
        segs["hi"][act] - lo[act],
        moments=gradient,
    )
    log_died = np.log(s) + scale + _group_logsumexp(log_seg, ca, n)
    log_sum = np.logaddexp(log_alive, log_died)
    ll = gammaln(r + x) - gammaln(r) + hist["purchase_sum"] @ coef + log_sum
    out = {"ll": ll, "log_alive": log_alive, "log_sum": log_sum, "a_T": a_t, "b_T": b_t}
    if not gradient:
        return out
    k = coef.shape[0]
    w_alive = np.exp(log_alive - log_sum)
    w_died = 1.0 - w_alive
    # segment weights within the dropout integral, times the customer's weight of dying
    seg_w = np.exp(np.log(s) + scale + log_seg - log_died[ca]) * w_died[ca]
    pa, q = p[ca], s + 1.0
    inv_a = mom["inv_a"] / a[act]  # E[1 / (alpha + A(tau))]
    inv_b = mom["inv_b"] / b[act]
    d_a_lo = da0[act] + (a[act] * shift)[:, None] * segs["zp"][act]
    d_b_lo = db0[act] + (b[act] * shift)[:, None] * segs["zd"][act]
    seg_grad = np.empty((act.size, 4 + k))
    seg_grad[:, 0] = -(np.log(a[act]) + mom["log_a"])
    seg_grad[:, 1] = -pa * inv_a
    seg_grad[:, 2] = -(np.log(b[act]) + mom["log_b"])
    seg_grad[:, 3] = -q * inv_b
    seg_grad[:, 4:] = (
        segs["zd"][act]
        - pa[:, None] * (d_a_lo * inv_a[:, None] + segs["zp"][act] * mom["u_inv_a"][:, None])
        - q * (d_b_lo * inv_b[:, None] + segs["zd"][act] * mom["u_inv_b"][:, None])
    )
    grad = np.empty((n, 4 + k))
    for j in range(4 + k):
        grad[:, j] = np.bincount(ca, weights=seg_w * seg_grad[:, j], minlength=n)
    last = segs["first_seg"] + segs["counts"] - 1
    d_a_t = da0[last] + (a * length)[last, None] * segs["zp"][last]
    d_b_t = db0[last] + (b * length)[last, None] * segs["zd"][last]
    g_alive = np.empty((n, 4 + k))
    g_alive[:, 0] = np.log(alpha) - np.log(alpha + a_t)
    g_alive[:, 1] = r / alpha - p / (alpha + a_t)
    g_alive[:, 2] = np.log(beta) - np.log(beta + b_t)
    g_alive[:, 3] = s / beta - s / (beta + b_t)
    g_alive[:, 4:] = -(p / (alpha + a_t))[:, None] * d_a_t - (s / (beta + b_t))[:, None] * d_b_t
    grad += w_alive[:, None] * g_alive
    grad[:, 0] += w_died * np.log(alpha)
    grad[:, 1] += w_died * r / alpha
    grad[:, 2] += w_died * (1.0 / s + np.log(beta))
    grad[:, 3] += w_died * s / beta
    grad[:, 0] += digamma_rising(r, x)
    grad[:, 4:] += hist["purchase_sum"]
    out["grad"] = grad
    return out


def _expected_future(
    params: np.ndarray, hist: Mapping[str, Any], future: Mapping[str, np.ndarray]
) -> np.ndarray:
    """``integral_T^{T+t} a(u) ((beta+B(T))/(beta+B(u)))^s du`` per customer, summed over the
    horizon's periods in closed form (``_log_one_minus_power`` for ``(1 - ratio^(s-1))/(s-1)``)."""
    s, beta = float(params[2]), float(params[3])
    coef = np.asarray(params[4:], dtype=float)
    n = hist["x"].shape[0]
    if future["cust"].size == 0:
        return np.zeros(n)
    a, b, _a0, b0, _da, _db = _exposures(coef, future)
    cust = future["cust"]
    base = beta + hist["b_T"][cust]
    pieces = _future_pieces(s, a, b, base, base + b0, future["hi"] - future["lo"])
    return np.bincount(cust, weights=pieces, minlength=n)


def _future_pieces(
    s: float, a: np.ndarray, b: np.ndarray, base: Any, b_lo: np.ndarray, length: np.ndarray
) -> np.ndarray:
    """``integral a (base/(b_lo + b v))^s dv`` over ``v`` in ``[0, length]`` per piece (rates
    ``a, b`` constant on it, ``b_lo`` = beta + B at its start), in closed form; 0 where empty."""
    out = np.zeros(np.shape(length))
    positive = length > 0
    a, b, b_lo = a[positive], b[positive], b_lo[positive]
    base = np.broadcast_to(base, positive.shape)[positive]
    b_hi = b_lo + b * length[positive]
    log_piece = (
        np.log(a)
        - np.log(b)
        + s * np.log(base)
        + (1.0 - s) * np.log(b_lo)
        + _log_one_minus_power(np.log(b_lo) - np.log(b_hi), s - 1.0)
    )
    out[positive] = np.exp(log_piece)
    return out


def _new_customer_expectations(
    params: np.ndarray, hist: Mapping[str, Any], pos: np.ndarray, ages: np.ndarray
) -> np.ndarray:
    """``E[X_i(t)] = r/alpha integral_0^t a_i(u) (beta/(beta+B_i(u)))^s du`` of customers
    ``pos`` of ``hist`` as new customers, each from its first purchase along its own
    covariate path (a new customer is alive: ``lambda ~ Gamma(r, alpha)``, survival
    ``(beta/(beta+B(u)))^s``), at the ages ``ages`` (units, shape ``(m, len(pos))``).

    One pass over each customer's periods up to its largest age: the closed-form integral of
    every whole period, their running sums, and the part of the period holding each age."""
    r, alpha, s, beta = (float(v) for v in params[:4])
    coef = np.asarray(params[4:], dtype=float)
    path = hist["path"]
    u = path.unit_days
    first_day = hist["first_day"][pos]
    top = ages.max(axis=0, initial=0.0)
    segs = _segments(
        path, hist["ids"][pos], first_day, first_day + top * u, closed=False,
        what="the tracking periods",
    )  # fmt: skip
    out = np.zeros(ages.shape)
    if segs["cust"].size == 0:
        return out
    a, b, _a0, b0, _da, _db = _exposures(coef, segs)
    lo, hi = segs["lo"], segs["hi"]
    whole = _future_pieces(s, a, b, beta, beta + b0, hi - lo)
    start = segs["first_seg"][segs["cust"]]
    done = np.cumsum(whole) - whole  # the whole periods before each, within its customer
    done -= done[start]
    # the period holding each age (its calendar period, clipped to the customer's periods)
    counts, first_seg = segs["counts"], segs["first_seg"]
    some = np.broadcast_to(counts > 0, ages.shape)  # a customer without periods expects 0
    k_first = segs["k"][np.where(counts > 0, first_seg, 0)]
    k_age = np.floor((first_day + ages * u - path.origin) / u).astype(np.int64)
    j = first_seg + np.clip(k_age - k_first, 0, np.maximum(counts - 1, 0))
    j = np.where(some, j, 0)
    part = np.clip(ages - lo[j], 0.0, hi[j] - lo[j])
    partial = _future_pieces(s, a[j], b[j], beta, beta + b0[j], part)
    out[some] = (r / alpha * (done[j] + partial))[some]
    return out


def _purchase_rate_factor(
    params: np.ndarray, hist: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """``P(alive) (r+x)/(alpha+A(T))`` per customer (the expected purchase rate at ``T`` per
    unit of ``a``, given the history) and the dropout exposure ``B(T)``."""
    parts = _loglik_parts(params, hist, gradient=False)
    r, alpha = float(params[0]), float(params[1])
    log_alive = parts["log_alive"] - parts["log_sum"]
    factor = np.exp(log_alive + np.log(r + hist["x"]) - np.log(alpha + parts["a_T"]))
    return factor, parts["b_T"]


def _horizon_segments(hist: Mapping[str, Any], horizon: np.ndarray) -> dict[str, np.ndarray]:
    """The (customer, period) segments of each customer's horizon ``(T, T + horizon_i]``
    (``horizon`` in units, one per customer of ``hist``); a DataError names the first
    customer and period the covariate table lacks."""
    end = hist["end_day"]
    stop = end + horizon * hist["path"].unit_days
    return _merge_runs(
        _segments(hist["path"], hist["ids"], end, stop, closed=False, what="the prediction horizon")
    )


def _clip_future(future: Mapping[str, np.ndarray], stop: np.ndarray) -> dict[str, np.ndarray]:
    """The horizon's segments cut at ``stop`` (per customer, in units after ``T``): the
    segments after it get zero length (their exposures before are unchanged)."""
    hi = np.minimum(future["hi"], stop[future["cust"]])
    return {**future, "hi": np.maximum(hi, future["lo"])}


def _discounted_future(
    params: np.ndarray, b_t: np.ndarray, future: Mapping[str, np.ndarray], delta: float, n: int
) -> np.ndarray:
    """``integral_0^H e^(-delta u) a(u) ((beta+B(T))/(beta+B(T+u)))^s du`` per customer.

    For ``delta > 0`` each period's piece is an upper incomplete gamma function of order
    ``1 - s`` (negative for ``s > 1``, outside scipy's ``gammaincc``), so each period is
    integrated by
    Gauss-Legendre quadrature: with ``w = beta + B(T+u)`` (linear in ``u`` within a period,
    slope ``b``) and ``y = log(w / w_lo)`` the piece is::

        a/b (beta+B(T))^s w_lo^(1-s) e^(-delta u_lo)
            * integral_0^Y exp((1-s) y - delta (w_lo/b) expm1(y)) dy

    whose integrand is entire and log-concave in ``y``; 8 nodes per piece with every piece at
    most ``_PIECE_V`` wide, ``(1-s) y`` and the discount ``delta u`` changing by at most 1 over
    it, which puts the error at rounding level (``tests/test_clv_dynamic.py`` checks it
    against adaptive quadrature).
    """
    s, beta = float(params[2]), float(params[3])
    coef = np.asarray(params[4:], dtype=float)
    cust = future["cust"]
    length = future["hi"] - future["lo"]
    keep = np.flatnonzero(length > 0)
    if keep.size == 0:
        return np.zeros(n)
    a, b, _a0, b0, _da, _db = _exposures(coef, future)
    a, b, b0, length, cust = a[keep], b[keep], b0[keep], length[keep], cust[keep]
    u_lo = future["lo"][keep]
    base = beta + b_t[cust]
    w_lo = base + b0
    scale = w_lo / b
    big_y = np.log1p(length / scale)
    pieces = np.maximum.reduce(
        [
            np.ceil(big_y / _PIECE_V),
            np.ceil(abs(1.0 - s) * big_y),
            np.ceil(delta * length),
            np.ones_like(big_y),
        ]
    ).astype(np.int64)
    seg = np.repeat(np.arange(keep.size), pieces)
    j = np.arange(seg.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    step = big_y[seg] / pieces[seg]
    nodes, weights = _GL8  # on [0, 1]
    y = (j * step)[:, None] + step[:, None] * nodes[None, :]
    integrand = np.exp((1.0 - s) * y - delta * scale[seg, None] * np.expm1(y))
    piece = (integrand @ weights) * step
    integral = np.bincount(seg, weights=piece, minlength=keep.size)
    log_front = np.log(a) - np.log(b) + s * np.log(base) + (1.0 - s) * np.log(w_lo) - delta * u_lo
    return np.bincount(cust, weights=np.exp(log_front) * integral, minlength=n)


# ---------------------------------------------------------------------------------------------
# The model class
# ---------------------------------------------------------------------------------------------
class ParetoNBDDynamicModel(CovariateModelMixin, BaseModel):
    """Pareto/NBD with time-varying covariates (Bachmann, Meierer & Näf 2021; CLVTools' dyncov).

    A separate model rather than an option of :class:`custval.ParetoNBDModel`: its data is
    not a ``frequency, recency, T`` summary but the transaction log (when in a period each
    purchase fell matters) and a long covariate table over calendar periods, its likelihood is
    evaluated per customer (no pattern compression) and its predictions need the covariate
    path over the horizon. Per period ``k``: purchase rate ``lambda_i exp(x_ik'gamma_p)``,
    dropout hazard ``mu_i exp(x_ik'gamma_d)``; with constant covariates it equals the
    static-covariate Pareto/NBD, with all coefficients zero the plain one.

    Valuing customers: :meth:`bind` ties the fitted model to a transaction log and a
    covariate path that covers the horizon; the bound object goes where a summary model goes
    (:func:`custval.customer_lifetime_value`, :func:`custval.clv_interval`,
    :func:`custval.customer_value_table`, :func:`custval.evaluation.compare_models` and the
    holdout diagnostics on its ``summary_``).

    The bound object also predicts each customer as a new customer from their first purchase
    along their path (``expected_purchases_new_customer``), so
    :func:`custval.evaluation.tracking` draws the tracking plot of the bound split.

    Not (yet) here: weights, DuckDB/Spark inputs, ``horizon="inf"`` (it would need
    covariates for every future period) and DERT. Fit cost grows with the customers' runs of
    periods with equal covariates (about 1.5 us per run and evaluation, some 40 evaluations
    per fit).

    Parameters
    ----------
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Attributes
    ----------
    params_ : Series
        ``r, alpha, s, beta`` and the coefficients ``purchase:<column>``,
        ``dropout:<column>`` (``both:<column>`` with ``equal_effects``).
    observation_end_ : str
        The end of observation of the fit (ISO date); the default for predictions.
    freq_ : str
        The time unit, which is also the length of a covariate period ("D" or "W").
    log_likelihood_, n_customers_, variance_matrix_
        See :class:`custval.models._base.BaseModel`; ``summary``, ``aic``, ``bic`` too.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import ParetoNBDDynamicModel
    >>> model = ParetoNBDDynamicModel.from_params(
    ...     r=0.55, alpha=10.6, s=0.61, beta=11.7, freq="W", **{"purchase:promo": 0.7})
    >>> log = pd.DataFrame({"customer_id": [1, 1, 1], "timestamp": pd.to_datetime(
    ...     ["2024-01-01", "2024-01-09", "2024-01-20"])})
    >>> weeks = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=8, freq="7D"),
    ...                       "promo": [0, 1, 0, 0, 1, 1, 0, 0]})
    >>> model.probability_alive(log, weeks, observation_end="2024-02-05").round(3).tolist()
    [0.885]
    >>> model.expected_purchases(log, weeks, 3, observation_end="2024-02-05").round(3).tolist()
    [0.492]
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    _data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    _display_name: ClassVar[str] = "Pareto/NBD with time-varying covariates"
    _covariate_groups: ClassVar[tuple[str, ...]] = ("purchase", "dropout")
    _dropout_effect_words: ClassVar[str] = "rate"
    _ftol: ClassVar[float] = 1e-13

    def fit(  # type: ignore[override]
        self,
        transactions: pd.DataFrame,
        covariates: pd.DataFrame,
        *,
        purchase_covariates: Sequence[str] = (),
        dropout_covariates: Sequence[str] = (),
        equal_effects: Sequence[str] = (),
        customer_id: str = "customer_id",
        timestamp: str = "timestamp",
        period: str = "period",
        freq: str = "W",
        observation_end: Any = None,
        covariate_penalty: float = 0.0,
    ) -> ParetoNBDDynamicModel:
        """Fit by maximum likelihood with the analytic gradient.

        Parameters
        ----------
        transactions : DataFrame
            One row per transaction with ``customer_id`` and ``timestamp``; purchases on the
            same day count as one (``rfm_summary(freq="D")``), times are in days / unit.
        covariates : DataFrame
            Long table: ``period`` (the start date of each period, periods one ``freq`` apart),
            the covariate columns and, for customer-specific covariates, ``customer_id``
            (without it the path is the same for every customer, e.g. seasonality or a
            campaign calendar; to combine a calendar with customer-specific columns, merge
            them into one table on ``period``). Every customer needs a row for each period
            from the one of their first purchase to the one containing ``observation_end``.
        purchase_covariates, dropout_covariates : list of str
            Columns acting on the purchase rate and on the dropout hazard. Categorical
            columns are one-hot encoded (first level the baseline).
        equal_effects : list of str
            Covariates with one coefficient for both processes (``both:<column>``).
        customer_id, timestamp, period : str
            Column names.
        freq : {"W", "D"}, default "W"
            Time unit and length of a covariate period.
        observation_end : date-like, optional
            End of the calibration period (default: the last transaction); later
            transactions are ignored.
        covariate_penalty : float, default 0.0
            L2 penalty on the coefficients (as in :class:`custval.ParetoNBDModel`).

        Returns
        -------
        self
        """
        if freq not in _UNIT_DAYS:
            raise DataError(
                f"freq must be one of {sorted(_UNIT_DAYS)} (fixed-length periods), got {freq!r}"
            )
        groups = {"purchase": list(purchase_covariates), "dropout": list(dropout_covariates)}
        for name in ("_param_names", "covariates_", "covariate_penalty_"):
            self.__dict__.pop(name, None)
        if not any(groups.values()):
            raise DataError(
                "name the time-varying covariates: purchase_covariates=[...] and/or "
                "dropout_covariates=[...] (for none, fit custval.ParetoNBDModel)"
            )
        absent = [c for v in groups.values() for c in v if c not in covariates.columns]
        if absent:
            raise DataError(
                f"covariate column(s) {absent} are not in the covariate table (columns: "
                f"{list(covariates.columns)})"
            )
        penalty = float(covariate_penalty)
        if not np.isfinite(penalty) or penalty < 0:
            raise DataError(f"covariate_penalty must be >= 0 and finite, got {covariate_penalty!r}")
        names = list(dict.fromkeys(c for v in groups.values() for c in v))
        spec = CovariateSpec.build(covariates[names], groups, list(equal_effects))
        self.covariates_ = spec
        self.covariate_penalty_ = penalty
        self._param_names = type(self)._param_names + tuple(spec.coefficient_names)
        self.freq_ = freq
        self._columns = {"customer_id": customer_id, "timestamp": timestamp, "period": period}
        hist = self._history(transactions, covariates, observation_end)
        self.observation_end_ = _day_text(hist["end_day"][0])
        n = len(hist["x"])
        self._fit_history = hist
        try:
            data = {
                "frequency": hist["x"],
                "recency": hist["t_x"],
                "T": hist["T"],
                "customer": np.arange(n, dtype=float),
            }
            return self._fit_arrays(data, np.ones(n))
        finally:
            del self._fit_history

    # ------------------------------------------------------------------ data
    def _history(
        self, transactions: pd.DataFrame, covariates: pd.DataFrame, observation_end: Any
    ) -> dict[str, Any]:
        cols = getattr(self, "_columns", None) or {
            "customer_id": "customer_id",
            "timestamp": "timestamp",
            "period": "period",
        }
        if self.freq_ not in _UNIT_DAYS:
            raise DataError(
                f"this {self._name()} has time unit {self.freq_!r}; give freq='W' or 'D' "
                "(from_params(freq=...))"
            )
        unit = _UNIT_DAYS[self.freq_]
        path = _Path(
            covariates,
            self.covariates_,
            self._param_names[4:],
            customer_id=cols["customer_id"],
            period=cols["period"],
            unit_days=unit,
        )
        if observation_end is None:
            observation_end = getattr(self, "observation_end_", None)
        if observation_end is None:
            end_day = int(_days(transactions[cols["timestamp"]], "timestamps").max())
        else:
            end_day = int(_days([observation_end], "observation_end")[0])
        hist = _history(
            path,
            transactions,
            customer_id=cols["customer_id"],
            timestamp=cols["timestamp"],
            end_day=end_day,
        )
        hist["path"] = path
        return hist

    def _prepare_patterns(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**data, "_order": data["customer"].astype(np.int64), "_hist": self._fit_history}

    def _loglik_grad(
        self, params: np.ndarray, data: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        parts = _loglik_parts(params, data["_hist"], gradient=True)
        order = data["_order"]
        return parts["ll"][order], parts["grad"][order]

    def _loglik(self, params: np.ndarray, data: Mapping[str, Any]) -> np.ndarray:
        return _loglik_parts(params, data["_hist"], gradient=False)["ll"][data["_order"]]

    def _weighted_loglik_grad(
        self, params: np.ndarray, data: Mapping[str, Any], weights: np.ndarray
    ) -> tuple[float, np.ndarray]:
        parts = _loglik_parts(params, data["_hist"], gradient=True)
        w = np.empty_like(weights)
        w[data["_order"]] = weights
        return float(np.multiply(w, parts["ll"]).sum()), parts["grad"].T @ w

    def _initial_params(self, data: Mapping[str, Any], weights: np.ndarray) -> np.ndarray:
        """The plain Pareto/NBD's maximum on the same ``x, t_x, T`` (a fast fit on the
        patterns, the exact model at coefficients 0), with the coefficients at 0."""
        summary = pd.DataFrame({c: data[c] for c in ("frequency", "recency", "T")})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CustvalWarning)
                start = ParetoNBDModel().fit(summary, weights)._params()
        except ConvergenceError:
            rate = max(float(data["frequency"].sum()), 1.0) / max(float(data["T"].sum()), 1e-9)
            start = np.array([1.0, 1.0 / rate, 1.0, 1.0 / rate])
        start = np.clip(start, 1e-6, 1e6)
        return np.concatenate([start, np.zeros(len(self._param_names) - 4)])

    def _extra_state(self) -> dict[str, Any]:
        state = self._with_covariate_state(super()._extra_state())
        return {
            **state,
            "observation_end": getattr(self, "observation_end_", None),
            "columns": getattr(self, "_columns", None),
        }

    def _set_extra_state(self, state: Mapping[str, Any]) -> None:
        super()._set_extra_state(state)
        self._restore_covariate_state(state)
        if getattr(self, "covariates_", None) is None:
            self.covariates_ = CovariateSpec.from_names((), {})
            self.covariate_penalty_ = 0.0
        self.observation_end_ = state.get("observation_end")
        if state.get("columns"):
            self._columns = dict(state["columns"])

    def _params(self) -> np.ndarray:
        check_is_fitted(self, "params_")
        return self.params_[list(self._param_names)].to_numpy(dtype=float)

    # ------------------------------------------------------------------ predictions
    def log_likelihood(  # type: ignore[override]
        self, transactions: pd.DataFrame, covariates: pd.DataFrame, observation_end: Any = None
    ) -> pd.Series:
        """Each customer's log-likelihood at the fitted parameters.

        The likelihood :meth:`fit` maximises (module docstring); on the fitting data it sums
        to ``log_likelihood_``.

        Parameters
        ----------
        transactions, covariates
            As in :meth:`fit`.
        observation_end : date-like, optional
            Default: the fit's ``observation_end_`` (else the last transaction).

        Returns
        -------
        Series
            ``log_likelihood`` indexed by customer id.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import ParetoNBDDynamicModel
        >>> model = ParetoNBDDynamicModel.from_params(
        ...     r=0.55, alpha=10.6, s=0.61, beta=11.7, freq="W", **{"dropout:promo": 0.5})
        >>> log = pd.DataFrame({"customer_id": [1, 1],
        ...                     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-09"])})
        >>> weeks = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=4, freq="7D"),
        ...                       "promo": [0, 1, 1, 0]})
        >>> model.log_likelihood(log, weeks, "2024-01-22").round(4).tolist()
        [-3.3909]
        """
        hist = self._history(transactions, covariates, observation_end)
        ll = _loglik_parts(self._params(), hist, gradient=False)["ll"]
        return pd.Series(ll, index=hist["ids"], name="log_likelihood")

    def probability_alive(
        self, transactions: pd.DataFrame, covariates: pd.DataFrame, observation_end: Any = None
    ) -> pd.Series:
        """Probability that each customer is alive at the end of observation.

        ``P(alive) = alpha^r beta^s (alpha+A(T))^-(r+x) (beta+B(T))^-s / [...]``, the first
        term of the likelihood's bracket over the whole (module docstring).

        Parameters
        ----------
        transactions, covariates
            As in :meth:`fit` (the covariates over each customer's history).
        observation_end : date-like, optional
            Default: the fit's ``observation_end_`` (else the last transaction).

        Returns
        -------
        Series
            ``probability_alive`` indexed by customer id.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import ParetoNBDDynamicModel
        >>> model = ParetoNBDDynamicModel.from_params(
        ...     r=0.55, alpha=10.6, s=0.61, beta=11.7, freq="W", **{"dropout:promo": -0.5})
        >>> log = pd.DataFrame({"customer_id": [1, 1],
        ...                     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-09"])})
        >>> weeks = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=4, freq="7D"),
        ...                       "promo": [0, 1, 1, 0]})
        >>> model.probability_alive(log, weeks, "2024-01-22").round(3).tolist()
        [0.944]
        """
        hist = self._history(transactions, covariates, observation_end)
        parts = _loglik_parts(self._params(), hist, gradient=False)
        values = np.exp(parts["log_alive"] - parts["log_sum"])
        return pd.Series(values, index=hist["ids"], name="probability_alive")

    def expected_purchases(
        self,
        transactions: pd.DataFrame,
        covariates: pd.DataFrame,
        t: float | str,
        observation_end: Any = None,
    ) -> pd.Series:
        """Expected repeat purchases of each customer in the ``t`` periods after the end of
        observation, given their history and the covariate path over the horizon.

        ``P(alive) (r+x)/(alpha+A(T)) integral_T^{T+t} a(u) ((beta+B(T))/(beta+B(u)))^s du``
        (module docstring), in closed form per period.

        Parameters
        ----------
        transactions, covariates
            As in :meth:`fit`; ``covariates`` must also cover the horizon (the periods from
            ``observation_end`` to ``observation_end + t``), the "future covariates".
        t : float or str
            Horizon: a number of periods of the model's unit (weeks for ``freq="W"``) or a
            duration with unit (``"13W"``, ``"91D"``).
        observation_end : date-like, optional
            Default: the fit's ``observation_end_`` (else the last transaction).

        Returns
        -------
        Series
            ``expected_purchases`` indexed by customer id.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import ParetoNBDDynamicModel
        >>> model = ParetoNBDDynamicModel.from_params(
        ...     r=0.55, alpha=10.6, s=0.61, beta=11.7, freq="W", **{"purchase:promo": 0.7})
        >>> log = pd.DataFrame({"customer_id": [1, 1],
        ...                     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-09"])})
        >>> weeks = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=6, freq="7D"),
        ...                       "promo": [0, 1, 1, 0, 1, 1]})
        >>> model.expected_purchases(log, weeks, 2, "2024-01-22").round(3).tolist()
        [0.258]
        """
        horizon = self._duration(t)
        if np.ndim(horizon) != 0:
            raise DataError(f"t must be a single horizon here, got {t!r}")
        hist = self._history(transactions, covariates, observation_end)
        params = self._params()
        factor, b_t = _purchase_rate_factor(params, hist)
        future = _horizon_segments(hist, np.full(len(hist["x"]), float(horizon)))
        values = factor * _expected_future(params, {**hist, "b_T": b_t}, future)
        return pd.Series(values, index=hist["ids"], name="expected_purchases")

    # ------------------------------------------------------------------ valuation
    def bind(
        self,
        transactions: pd.DataFrame,
        covariates: pd.DataFrame,
        *,
        observation_end: Any = None,
        holdout_end: Any = None,
        amount: str | None = "amount",
    ) -> ParetoNBDDynamicBound:
        """This model bound to one transaction log and covariate path, for the value table,
        :func:`custval.customer_lifetime_value`, :func:`custval.clv_interval` and
        :func:`custval.compare_models`.

        Why a bound object: those functions take a summary (``frequency, recency, T,
        monetary_value``) and call ``expected_purchases(summary, t)`` and
        ``probability_alive(summary)``, but this model's predictions need when each purchase
        fell and the covariates of every period up to the end of the horizon, which a summary
        cannot carry. The bound object holds them (computed once) and speaks the summary
        vocabulary over its own summary ``summary_``; its value kernel integrates the
        discounted purchase rate period by period (exact Gauss-Legendre quadrature per
        period; module function ``_discounted_future``).

        Parameters
        ----------
        transactions, covariates
            As in :meth:`fit`; ``covariates`` must cover every horizon the bound object will
            be asked about (a missing period is a DataError naming the customer and period).
        observation_end : date-like, optional
            End of the history (default: the fit's ``observation_end_``, else the last
            transaction).
        holdout_end : date-like, optional
            With it, ``summary_`` is :func:`custval.calibration_holdout_split` up to this date
            (``frequency_holdout``, ``duration_holdout`` in the model's unit), for
            :func:`custval.compare_models` and the holdout diagnostics.
        amount : str or None, default "amount"
            Column of transaction values for ``summary_["monetary_value"]`` (left out when
            the column is absent or ``None``).

        Returns
        -------
        ParetoNBDDynamicBound

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import ParetoNBDDynamicModel, customer_lifetime_value
        >>> model = ParetoNBDDynamicModel.from_params(
        ...     r=0.55, alpha=10.6, s=0.61, beta=11.7, freq="W", **{"purchase:promo": 0.7})
        >>> log = pd.DataFrame({"customer_id": [1, 1, 1], "amount": [20.0, 30.0, 40.0],
        ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-09", "2024-01-20"])})
        >>> weeks = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=60, freq="7D"),
        ...                       "promo": [0, 1] * 30})
        >>> bound = model.bind(log, weeks, observation_end="2024-02-05")
        >>> bound.summary_[["frequency", "recency", "T", "monetary_value"]].round(3).to_dict("list")
        {'frequency': [2.0], 'recency': [2.714], 'T': [5.0], 'monetary_value': [35.0]}
        >>> bound.probability_alive(bound.summary_).round(3).tolist()
        [0.892]
        >>> bound.expected_purchases(bound.summary_, 3).round(3).tolist()
        [0.616]
        >>> clv = customer_lifetime_value(bound, 35.0, bound.summary_, horizon="52W")
        >>> clv.round(2).tolist()
        [206.61]
        """
        from custval.rfm import calibration_holdout_split, rfm_summary

        check_is_fitted(self, "params_")
        hist = self._history(transactions, covariates, observation_end)
        cols = getattr(self, "_columns", None) or {
            "customer_id": "customer_id",
            "timestamp": "timestamp",
        }
        unit = hist["path"].unit_days
        end_day = int(hist["end_day"][0])
        # the end of the last day: the history counts every purchase of that day
        end = pd.Timestamp(end_day * _DAY_NS) + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
        value = amount if amount is not None and amount in transactions.columns else None
        names = {"customer_id": cols["customer_id"], "timestamp": cols["timestamp"]}
        if holdout_end is None:
            summary = rfm_summary(
                transactions, amount=value, freq="D", observation_end=end, **names
            )
        else:
            summary = calibration_holdout_split(
                transactions,
                calibration_end=end,
                observation_end=holdout_end,
                amount=value,
                freq="D",
                **names,
            )
            summary["duration_holdout"] = summary["duration_holdout"] / unit
        summary[["recency", "T"]] = summary[["recency", "T"]] / unit
        summary.attrs["freq"] = self.freq_
        # the end of the history; a split keeps calibration_holdout_split's dates (the
        # holdout's end is its observation_end), which evaluation.tracking reads
        summary.attrs["calibration_end" if holdout_end is not None else "observation_end"] = (
            _day_text(end_day)
        )
        return ParetoNBDDynamicBound(self, hist, summary)


def _delegated(name: str) -> property:
    """A read-only attribute that is the bound model's ``name``."""
    return property(lambda self: getattr(self.model, name), doc=f"The model's ``{name}``.")


class ParetoNBDDynamicBound:
    """A fitted :class:`ParetoNBDDynamicModel` bound to a transaction log and covariate path
    (made by :meth:`ParetoNBDDynamicModel.bind`), with the summary-vocabulary methods the
    value table, :func:`custval.clv_interval` and :func:`custval.compare_models` call.

    Its customers are those of the log; a summary passed to its methods must hold their
    ``frequency, recency, T`` as the log gives them (``summary_`` does: purchases on one day
    count once, ages in days divided by the period length), else a DataError names the
    customer. ``clv_interval`` draws the parameters from the model's ``variance_matrix_``
    (coefficients normal, ``r, alpha, s, beta`` log-normal) and re-evaluates the history's
    likelihood parts per draw, so its cost is ``n_draws`` evaluations of the history.

    Attributes
    ----------
    model : ParetoNBDDynamicModel
    summary_ : DataFrame
        ``frequency, recency, T`` (and ``monetary_value``; with ``holdout_end`` the holdout
        columns) by customer_id, in the model's unit (``attrs["freq"]``).
    params_, variance_matrix_, freq_, observation_end_
        The model's.
    """

    #: predictions follow each customer's own covariate path (read by evaluation.tracking)
    _customer_paths: ClassVar[bool] = True

    def __init__(
        self, model: ParetoNBDDynamicModel, hist: dict[str, Any], summary: pd.DataFrame
    ) -> None:
        self.model = model
        self.summary_ = summary
        self._hist = hist
        self._display_name = model_name(model)

    # what the valuation and evaluation functions read of a fitted model: the model's own
    params_ = _delegated("params_")
    variance_matrix_ = _delegated("variance_matrix_")
    freq_ = _delegated("freq_")
    n_customers_ = _delegated("n_customers_")
    log_likelihood_ = _delegated("log_likelihood_")
    aic = _delegated("aic")
    bic = _delegated("bic")

    @property
    def observation_end_(self) -> str:
        return _day_text(self._hist["end_day"][0])

    def _positions(self, summary: pd.DataFrame) -> np.ndarray:
        """Each summary row's customer in the bound history; a DataError names the first
        customer absent from it or whose ``frequency, recency, T`` differ from it."""
        if not isinstance(summary, pd.DataFrame):
            raise DataError(
                f"summary must be a DataFrame indexed by customer_id (e.g. bound.summary_), "
                f"got {type(summary).__name__}"
            )
        hist = self._hist
        pos = hist["ids"].get_indexer(summary.index)
        if np.any(pos < 0):
            missing = list(summary.index[pos < 0][:3])
            raise DataError(
                f"{int((pos < 0).sum()):,} customers of the summary (e.g. "
                f"{[_plain(m) for m in missing]}) have no purchase in the bound transactions "
                f"up to {self.observation_end_}; value the customers of bound.summary_"
            )
        for column, own in (("frequency", hist["x"]), ("recency", hist["t_x"]), ("T", hist["T"])):
            if column not in summary.columns:
                continue
            given = summary[column].to_numpy(dtype=float)
            off = np.abs(given - own[pos]) > 1e-9 * np.maximum(1.0, np.abs(own[pos]))
            if np.any(off):
                i = int(np.flatnonzero(off)[0])
                raise DataError(
                    f"the summary's {column} of customer {_plain(summary.index[i])!r} is "
                    f"{given[i]:g} but the bound transactions give {own[pos[i]]:g} (purchases "
                    f"on one day count once, ages in {self.freq_} periods); value "
                    "bound.summary_, built from the same transactions"
                )
        return pos

    def _future(self, horizon: np.ndarray) -> dict[str, np.ndarray]:
        """The horizon segments of every bound customer (``horizon`` in units, scalar or one
        per customer of the history); cached for a scalar horizon."""
        key = float(horizon) if np.ndim(horizon) == 0 else None
        cache = self.__dict__.setdefault("_future_cache", {})
        if key is not None and key in cache:
            return cache[key]
        n = len(self._hist["x"])
        future = _horizon_segments(self._hist, np.broadcast_to(np.asarray(horizon, float), (n,)))
        if key is not None:
            cache[key] = future
        return future

    def probability_alive(self, summary: pd.DataFrame) -> pd.Series:
        """P(alive) at the end of observation of each customer of ``summary`` (as
        :meth:`ParetoNBDDynamicModel.probability_alive`, aligned with ``summary.index``).

        Examples
        --------
        See :meth:`ParetoNBDDynamicModel.bind`.
        """
        pos = self._positions(summary)
        parts = _loglik_parts(self.model._params(), self._hist, gradient=False)
        values = np.exp(parts["log_alive"] - parts["log_sum"])[pos]
        return pd.Series(values, index=summary.index, name="probability_alive")

    def expected_purchases(self, summary: pd.DataFrame, t: Any) -> pd.Series:
        """Expected repeat purchases in the ``t`` periods after the end of observation of each
        customer of ``summary``, along the bound covariate path (as
        :meth:`ParetoNBDDynamicModel.expected_purchases`).

        Parameters
        ----------
        summary : DataFrame
            Customers of the bound log (e.g. ``summary_``), indexed by customer_id.
        t : float, str or array
            Horizon in the model's unit or with its unit (``"13W"``); an array gives one per
            row of ``summary`` (e.g. ``duration_holdout``).

        Returns
        -------
        Series
            ``expected_purchases`` aligned with ``summary.index``.

        Examples
        --------
        See :meth:`ParetoNBDDynamicModel.bind`.
        """
        pos = self._positions(summary)
        horizon = self.model._duration(t)
        n = len(self._hist["x"])
        if np.ndim(horizon) == 0:
            per_customer: Any = float(horizon)
        else:
            horizon = np.asarray(horizon, dtype=float).ravel()
            if horizon.size != len(summary):
                raise DataError(
                    f"t has {horizon.size} horizons for a summary of {len(summary)} customers; "
                    "give one horizon or one per row"
                )
            per_customer = np.zeros(n)
            per_customer[pos] = horizon
        params = self.model._params()
        factor, b_t = _purchase_rate_factor(params, self._hist)
        future = self._future(per_customer)
        values = factor * _expected_future(params, {**self._hist, "b_T": b_t}, future)
        return pd.Series(values[pos], index=summary.index, name="expected_purchases")

    def expected_purchases_new_customer(
        self, t: Any, summary: pd.DataFrame | None = None
    ) -> pd.Series | np.ndarray:
        """Expected repeat purchases of each customer in the ``t`` periods after their first
        purchase, predicted as for a new customer along their own covariate path.

        ``E[X_i(t)] = r/alpha integral_0^t a_i(u) (beta/(beta+B_i(u)))^s du``: at the first
        purchase a customer is alive with ``lambda ~ Gamma(r, alpha)`` and survives to ``u``
        with probability ``(beta/(beta+B_i(u)))^s``; ``a_i, B_i`` are read from the bound
        covariate table from the customer's first purchase on (closed form per period). With
        constant covariates it is the static-covariate Pareto/NBD's
        ``expected_purchases_new_customer``. :func:`custval.evaluation.tracking` sums it over
        the cohort (the tracking plot along the covariate path).

        Parameters
        ----------
        t : float, str or array
            Ages in the model's unit (or one duration with its unit, ``"26W"``): one for
            every customer, one per row of ``summary`` (shape ``(n,)``), or several per row
            (shape ``(m, n)``). The covariate table must cover them.
        summary : DataFrame, optional
            Customers of the bound log (default ``summary_``).

        Returns
        -------
        Series or ndarray
            A Series aligned with ``summary.index`` for one age per customer; an array of
            shape ``(m, n)`` for ``(m, n)`` ages.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import ParetoNBDDynamicModel
        >>> model = ParetoNBDDynamicModel.from_params(
        ...     r=0.55, alpha=10.6, s=0.61, beta=11.7, freq="W", **{"purchase:promo": 0.7})
        >>> log = pd.DataFrame({"customer_id": [1, 2], "timestamp": pd.to_datetime(
        ...     ["2024-01-01", "2024-01-08"])})
        >>> weeks = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=8, freq="7D"),
        ...                       "promo": [1, 0, 0, 0, 0, 0, 0, 0]})
        >>> bound = model.bind(log, weeks, observation_end="2024-01-10")
        >>> bound.expected_purchases_new_customer(4).round(4).tolist()  # 1 had the promo
        [0.2405, 0.1892]
        """
        summary = self.summary_ if summary is None else summary
        pos = self._positions(summary)
        ages = np.asarray(self.model._duration(t), dtype=float)
        if ages.ndim > 2 or (ages.ndim > 0 and ages.shape[-1] != len(summary)):
            raise DataError(
                f"t has shape {ages.shape} for a summary of {len(summary)} customers; give one "
                "age, one per customer (n,) or several per customer (m, n)"
            )
        grid = np.broadcast_to(ages, (1, len(summary))) if ages.ndim < 2 else ages
        values = _new_customer_expectations(self.model._params(), self._hist, pos, grid)
        if ages.ndim == 2:
            return values
        return pd.Series(values[0], index=summary.index, name="expected_purchases")

    def _discounted(
        self, params: np.ndarray, future: Mapping[str, np.ndarray], terms: Terms
    ) -> np.ndarray:
        """Discounted expected purchases over ``terms``' horizon of every bound customer."""
        hist = self._hist
        factor, b_t = _purchase_rate_factor(params, hist)
        n = len(hist["x"])
        if terms.step is None and terms.delta > 0:
            return factor * _discounted_future(params, b_t, future, terms.delta, n)
        # undiscounted (E at H) or step= (a grid sum): the closed form at the rule's times
        times, weights = quadrature_rule(terms, 1.0, GL_NODES)
        with_b = {**hist, "b_T": b_t}
        total = np.zeros(n)
        for t, w in zip(times, weights, strict=True):
            total += w * _expected_future(params, with_b, _clip_future(future, np.full(n, t)))
        return factor * total

    def _value_kernel(self, terms: Terms) -> Kernel:
        return _DynamicKernel(self, terms)


class _DynamicKernel(TabulatedKernel):
    """The value kernel of a :class:`ParetoNBDDynamicBound` (``custval._quadrature``'s
    contract): the discounted purchases of each customer along their own covariate path, so
    rows are customers (``customer_rows``), not ``(frequency, recency, T)`` patterns."""

    dedupe_customers = False

    def __init__(self, bound: ParetoNBDDynamicBound, terms: Terms) -> None:
        if math.isinf(terms.horizon):
            raise DataError(
                f"horizon='inf' needs covariates for every future period, which the "
                f"{model_name(bound)} cannot have; give a finite horizon such as '36M' that "
                "the covariate table covers"
            )
        super().__init__(bound, terms)
        self.future = bound._future(terms.horizon)

    def customer_rows(self, summary: pd.DataFrame) -> np.ndarray:
        """Each summary row's customer position in the bound history (the rows' key)."""
        return self.model._positions(summary)

    def values(self, params: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        every = self.model._discounted(params, self.future, self.terms)
        return every[rows["customer"].astype(np.int64)]
