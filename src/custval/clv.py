"""Customer lifetime value: the discounted value of each customer's future purchases.

``CLV_i = margin_i * E[spend per purchase]_i * integral_0^H exp(-delta t) dE[X_i(t) | history]``

* ``E[X_i(t) | history]`` is the transaction model's conditional expected number of repeat
  purchases in the next ``t`` periods (BG/NBD, MBG/NBD, Pareto/NBD, ...), in the summary's unit;
* the spend model (Gamma-Gamma) gives the expected value of each future purchase;
* ``delta = log(1 + annual rate converted to one period)`` is the continuously compounded rate
  per period, so ``exp(-delta t)`` equals ``(1 + annual rate) ** -(t in years)`` exactly;
* ``margin`` turns revenue into contribution (a fraction, or one per customer).

Units are never guessed: the summary records its unit in ``attrs["freq"]``, the transaction model
records the unit it was fitted on in ``freq_`` and both must agree; the horizon is a duration with
its unit ("12M", "52W", "365D") and the discount rate is annual.

How the discounted integral is computed
---------------------------------------
For the BG/NBD family and the Pareto/NBD, ``E[X(t) | history] = P(alive) * E_alive(t)``, where
``E_alive(t)`` (expected purchases given alive at ``T``) depends on the history only through
``(frequency, T)``. Integrating by parts,

``integral_0^H exp(-delta t) dE_alive(t) = exp(-delta H) E_alive(H)
+ delta * integral_0^H exp(-delta t) E_alive(t) dt``,

and the last integral is taken by Gauss-Legendre quadrature (8 nodes per panel) on panels
``[0, c], [c, 4c], [4c, 16c], ...`` (each at most ``2 / delta`` wide), where ``c`` is the model's
time scale (``alpha`` for BG/NBD, ``min(alpha, beta)`` for Pareto/NBD). ``E_alive`` is analytic
for ``t > -c``, so every panel converges geometrically: the result agrees with adaptive
quadrature of the purchase *rate* to ~1e-13 (``tests/test_clv.py``). For an infinite horizon
(``horizon="inf"``) the integral over ``[0, inf)`` is a trapezoid rule in ``log t`` (step 0.3,
from ``1e-6 c`` to ``50 / delta``), which converges exponentially for this analytic,
doubly-exponentially decaying integrand (~1e-12). This is a numerically exact value, not a
month-by-month approximation; for Pareto/NBD it reproduces the closed-form DERT of Fader, Hardie
& Lee (2005, "RFM and CLV", eq. 2). With ``step="1M"`` (or any duration) the value is instead a
sum over a grid, each step's expected purchases discounted at the step's end as lifetimes does;
it converges to the exact value as the step shrinks. Other transaction models use the same
quadrature on their public ``expected_purchases`` (finite horizons only).

Uncertainty
-----------
Intervals reflect the sampling uncertainty of the fitted parameters: parameter vectors are
drawn from the asymptotic normal distribution of the log-parameters (mean ``log(params_)``,
covariance ``variance_matrix_ / outer(params_, params_)``, the delta method) for the transaction
and the spend model independently, CLV is evaluated for every draw, and the per-customer
percentiles of the draws are reported. Draws of the Gamma-Gamma ``q <= 1`` (infinite mean spend)
are redrawn. Customers with identical inputs are evaluated once; the distinct rows are processed
in blocks (memory is bounded by ``chunk_size * n_draws``), vectorized over draws in float32
(the percentiles need a few significant digits, float32 carries seven).

For the BG/NBD family every number a row needs is looked up in small per-draw tables: P(alive)
from tables over the distinct frequencies, ``T`` and recencies; the discounted purchases given
alive times the Gamma-Gamma coefficients from tables over the distinct ``(frequency, T)``
pairs. Those pair tables use few hypergeometric evaluations: ``E_alive`` depends on ``T`` and
``t`` only through ``log((alpha+T)/(alpha+T+t))``, so per frequency and draw it is one
analytic function of one variable, interpolated at Chebyshev points (with a convergence check
on the interpolant's last coefficients, and the direct quadrature where it fails); the point
values use the same device at rounding-level accuracy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from custval import _engines
from custval._units import annual_rate_to_period, normalize_freq, parse_duration, summary_freq
from custval._validation import bad_values_message, require_columns, require_numeric
from custval.errors import DataError
from custval.models._base import compress_rows, unique_index

__all__ = ["clv_interval", "customer_lifetime_value", "customer_value_table"]

_SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
_TABLE_COLUMNS = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "clv_lower",
    "clv_median",
    "clv_upper",
    "value_rank",
    "value_decile",
    "segment",
)
_GL_NODES = 8  # Gauss-Legendre nodes per panel (finite horizons); error < 1e-12
_GL_NODES_DRAWS = 5  # for parameter draws; error < 1e-6, far below the draws' own noise
_LOG_STEP = 0.3  # trapezoid step in log t (infinite horizon)
_CHEB_TOL = 1e-7  # accuracy of the Chebyshev interpolation over T (draws only; their noise ~1e-2)
_EXACT_TOL = 1e-13  # interpolation of E_alive in log v for point values: at rounding level
_MAX_REDRAW = 20

_GAUSS_LEGENDRE = {n: np.polynomial.legendre.leggauss(n) for n in (_GL_NODES, _GL_NODES_DRAWS)}


# ---------------------------------------------------------------------------------------------
# Terms: unit, horizon, discount rate, margin
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Terms:
    freq: str
    horizon: float  # in periods of freq; math.inf for an infinite horizon
    horizon_label: str
    annual_rate: float
    rate_per_period: float
    delta: float  # continuously compounded rate per period
    step: float | None  # grid step in periods, None for the exact integral
    step_label: str | None


def _model_name(model: Any) -> str:
    name = getattr(model, "_display_name", "") or type(model).__name__
    return name


def _check_fitted(model: Any) -> None:
    """scikit-learn's check for estimators; a fitted ``params_`` for other model objects."""
    if hasattr(model, "fit"):
        check_is_fitted(model, "params_")
    elif not isinstance(getattr(model, "params_", None), pd.Series):
        raise DataError(
            f"{_model_name(model)} has no fitted params_ (a Series of parameters); fit it first"
        )


def _resolve_terms(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    horizon: Any,
    annual_discount_rate: float,
    step: Any,
) -> _Terms:
    freq = summary_freq(summary)
    model_freq = getattr(transaction_model, "freq_", None)
    if model_freq is None:
        raise DataError(
            f"the {_model_name(transaction_model)} does not record the time unit it was fitted "
            "in (freq_ is None), so its rates cannot be matched to the summary's unit "
            f"{freq!r}; fit it on a summary from custval.rfm_summary (which sets "
            "attrs['freq']), or create it with from_params(..., freq=...)"
        )
    if normalize_freq(model_freq) != freq:
        raise DataError(
            f"the {_model_name(transaction_model)} was fitted in unit {model_freq!r} but the "
            f"summary is in unit {freq!r}; its parameters (e.g. alpha) are rates per "
            f"{model_freq!r} period, so rebuild the summary with freq={model_freq!r} or refit "
            "the model on this summary"
        )
    spend_freq = getattr(spend_model, "freq_", None)
    if spend_freq is not None and normalize_freq(spend_freq) != freq:
        raise DataError(
            f"the {_model_name(spend_model)} was fitted on a summary in unit {spend_freq!r} but "
            f"the summary is in unit {freq!r}; frequency and monetary_value depend on the "
            "period length, so fit both models on summaries in the same unit"
        )
    if horizon is None:
        raise DataError("horizon is required, with its unit, e.g. '12M', '52W', '365D' or 'inf'")
    h = parse_duration(horizon, to=freq)
    if not h > 0:
        raise DataError(f"horizon must be positive, got {horizon!r}")
    if isinstance(annual_discount_rate, bool) or not isinstance(
        annual_discount_rate, int | float | np.number
    ):
        raise DataError(
            f"annual_discount_rate must be a number (0.10 for 10% a year), got "
            f"{annual_discount_rate!r}"
        )
    annual = float(annual_discount_rate)
    if annual < 0 or not math.isfinite(annual):
        raise DataError(
            f"annual_discount_rate must be a finite rate >= 0 (0.10 for 10% a year), got {annual!r}"
        )
    if annual >= 1.0:
        raise DataError(
            f"annual_discount_rate={annual!r} means {annual:.0%} a year; write rates as fractions "
            "(0.10 for 10%)"
        )
    per_period = annual_rate_to_period(annual, freq)
    delta = math.log1p(per_period)
    if math.isinf(h) and delta <= 0:
        raise DataError(
            "an infinite horizon needs a positive annual_discount_rate (the undiscounted number "
            "of future purchases can be infinite); give e.g. annual_discount_rate=0.10 or a "
            "finite horizon such as '36M'"
        )
    step_periods = None
    step_label = None
    if step is not None:
        if math.isinf(h):
            raise DataError(
                "step= sums over a time grid and needs a finite horizon; use step=None (the "
                "exact integral) with horizon='inf'"
            )
        step_periods = parse_duration(step, to=freq)
        if not (step_periods > 0 and math.isfinite(step_periods)):
            raise DataError(f"step must be a positive duration such as '1M' or '1W', got {step!r}")
        step_label = str(step)
    label = "inf" if math.isinf(h) else str(horizon)
    return _Terms(freq, h, label, annual, per_period, delta, step_periods, step_label)


def _resolve_margin(margin: Any, summary: pd.DataFrame) -> tuple[np.ndarray | float, Any, str]:
    """Margin per customer (array) or one fraction; its description; the value basis."""
    if isinstance(margin, str):
        require_columns(
            summary,
            [margin],
            what="summary",
            hint=f"margin={margin!r} names a column of per-customer margins",
        )
        require_numeric(summary, [margin], what="summary")
        values = summary[margin].to_numpy(dtype=float)
        described: Any = f"column {margin!r}"
        frame = summary
        column = margin
    elif isinstance(margin, pd.Series):
        missing = ~summary.index.isin(margin.index)
        if missing.any():
            raise DataError(
                f"margin Series has no value for {int(missing.sum()):,} customers of the summary "
                f"(first: {list(summary.index[missing][:5])}); index it by customer_id and "
                "cover every customer"
            )
        if not margin.index.is_unique:
            raise DataError("margin Series has duplicate customer ids in its index")
        aligned = pd.to_numeric(margin.reindex(summary.index), errors="coerce")
        values = aligned.to_numpy(dtype=float)
        frame = aligned.to_frame("margin")
        column = "margin"
        described = "per-customer Series"
        if not np.all(np.isfinite(values)):
            raise DataError(
                bad_values_message(
                    frame,
                    ~np.isfinite(values),
                    column,
                    "missing or non-numeric values",
                    "give every customer a margin between 0 and 1",
                )
            )
    elif isinstance(margin, int | float | np.number) and not isinstance(margin, bool):
        value = float(margin)
        if not (0.0 <= value <= 1.0):
            raise DataError(
                f"margin must be a fraction of revenue between 0 and 1 (0.3 for a 30% "
                f"contribution margin), got {margin!r}"
            )
        return value, value, "revenue" if value == 1.0 else "contribution"
    else:
        raise DataError(
            "margin must be a fraction between 0 and 1, a column name of the summary, or a "
            f"Series indexed by customer_id; got {type(margin).__name__}"
        )
    bad = (values < 0) | (values > 1)
    if bad.any():
        raise DataError(
            bad_values_message(
                frame,
                bad,
                column,
                "margins outside [0, 1]",
                "a margin is the fraction of revenue kept as contribution, between 0 and 1",
            )
        )
    return values, described, "contribution"


def _check_summary(summary: pd.DataFrame, *, monetary: bool = True) -> dict[str, np.ndarray]:
    columns = _SUMMARY_COLUMNS if monetary else _SUMMARY_COLUMNS[:3]
    require_columns(
        summary,
        columns,
        what="summary",
        hint="Build it with custval.rfm_summary(transactions) (with an amount column)",
    )
    require_numeric(summary, list(columns), what="summary", nonnegative=True)
    return {c: summary[c].to_numpy(dtype=float) for c in columns}


# ---------------------------------------------------------------------------------------------
# Time quadrature
# ---------------------------------------------------------------------------------------------
def _time_nodes(
    scale: float, horizon: float, delta: float, nodes_per_panel: int = _GL_NODES
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ``integral_0^horizon f(t) dt`` (finite) or of
    ``integral_0^inf f(t) dt`` (infinite; weights include the Jacobian of ``t = e^y``)."""
    if math.isinf(horizon):
        low = math.log(1e-6 * scale)
        high = math.log(50.0 / delta)
        y = np.arange(low, high + _LOG_STEP, _LOG_STEP)
        t = np.exp(y)
        return t, _LOG_STEP * t
    edges = [0.0]
    edge = scale
    while edge < horizon:
        edges.append(edge)
        edge = min(4.0 * edge, edge + 2.0 / delta) if delta > 0 else 4.0 * edge
    edges.append(horizon)
    e = np.asarray(edges)
    lo, hi = e[:-1, None], e[1:, None]
    gl_x, gl_w = _GAUSS_LEGENDRE[nodes_per_panel]
    t = (lo + (hi - lo) * (gl_x + 1.0) / 2.0).ravel()
    w = ((hi - lo) * gl_w / 2.0).ravel()
    return t, w


def _quadrature_rule(
    terms: _Terms, scale: float, nodes_per_panel: int
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``t_i`` and weights ``w_i`` with ``sum_i w_i E(t_i)`` equal to what
    :func:`_discounted_integral` computes for a function ``E`` with ``E(0) = 0``: the quadrature
    of the integral by parts (boundary term included), the undiscounted ``E(H)``, or the grid
    sum ``sum_k (E(s_k) - E(s_k-1)) exp(-delta s_k) = sum_k E(s_k) (e_k - e_k+1)``."""
    horizon, delta = terms.horizon, terms.delta
    if terms.step is not None:
        steps = np.arange(1, math.ceil(horizon / terms.step - 1e-9) + 1) * terms.step
        steps = np.minimum(steps, horizon)
        discount = np.exp(-delta * steps)
        return steps, discount - np.append(discount[1:], 0.0)
    if delta == 0.0:
        return np.array([horizon]), np.array([1.0])
    t, w = _time_nodes(scale, horizon, delta, nodes_per_panel)
    weights = delta * w * np.exp(-delta * t)
    if math.isfinite(horizon):
        t = np.append(t, horizon)
        weights = np.append(weights, math.exp(-delta * horizon))
    return t, weights


def _discounted_integral(
    if_alive: Callable[[np.ndarray, np.ndarray, Any], np.ndarray],
    x: np.ndarray,
    big_t: np.ndarray,
    terms: _Terms,
    scale: float,
    nodes_per_panel: int = _GL_NODES,
) -> np.ndarray:
    """``integral_0^H exp(-delta t) dE_alive(t)`` for each (x, T), by parts (module docstring).

    ``if_alive(x, T, t)`` broadcasts; with ``terms.step`` set, the grid sum instead.
    """
    horizon, delta = terms.horizon, terms.delta
    if terms.step is not None:
        steps = np.arange(1, math.ceil(horizon / terms.step - 1e-9) + 1) * terms.step
        steps = np.minimum(steps, horizon)
        cumulative = if_alive(x[:, None], big_t[:, None], steps[None, :])
        increments = np.diff(cumulative, axis=1, prepend=0.0)
        return np.einsum("ij,j->i", increments, np.exp(-delta * steps))
    if delta == 0.0:
        return if_alive(x, big_t, horizon)
    t, w = _time_nodes(scale, horizon, delta, nodes_per_panel)
    weights = delta * w * np.exp(-delta * t)
    if math.isfinite(horizon):  # the boundary term exp(-delta H) E_alive(H), as one more node
        t = np.append(t, horizon)
        weights = np.append(weights, math.exp(-delta * horizon))
    out = np.empty(len(x))
    block = max(1, 2_000_000 // len(t))  # bound memory: block x n_nodes values at a time
    for start in range(0, len(x), block):
        sl = slice(start, start + block)
        out[sl] = np.einsum("ij,j->i", if_alive(x[sl, None], big_t[sl, None], t[None, :]), weights)
    return out


def _chebyshev_size(half_width: float, tol: float, most: int = 64) -> int:
    """Chebyshev points giving ``tol`` for a function analytic in the strip ``|Im s| < pi``
    around an interval of ``half_width`` (Bernstein ellipse ``rho = pi/h + sqrt((pi/h)^2 + 1)``
    after mapping the interval to ``[-1, 1]``), with two points to spare; 8 to ``most``."""
    ratio = math.pi / half_width
    rho = ratio + math.sqrt(ratio * ratio + 1.0)
    return int(min(most, max(8, math.ceil(-math.log(tol) / math.log(rho)) + 2)))


def _chebyshev_points(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev points of the first kind on ``[-1, 1]`` and their barycentric weights."""
    j = np.arange(k)
    angle = (2 * j + 1) * math.pi / (2 * k)
    return np.cos(angle), (-1.0) ** j * np.sin(angle)


def _barycentric_basis(s: np.ndarray, nodes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Matrix ``B`` with ``f(s) = B @ f(nodes)`` for the interpolating polynomial (rows: ``s``)."""
    diff = s[:, None] - nodes[None, :]
    hit = np.abs(diff) < 1e-14
    diff[hit] = 1.0
    basis = weights[None, :] / diff
    basis /= basis.sum(axis=1, keepdims=True)
    rows = hit.any(axis=1)
    basis[rows] = hit[rows]  # s exactly at a node: that node's value
    return basis


def _chebyshev_tail(values: np.ndarray) -> float:
    """Size of the last three Chebyshev coefficients of the interpolants through ``values``
    (rows) at :func:`_chebyshev_points`, relative to each row's largest value: near rounding
    level once the interpolation has converged, large for functions it cannot follow."""
    k = values.shape[-1]
    angle = (2 * np.arange(k) + 1) * math.pi / (2 * k)
    last = np.cos(np.outer(np.arange(max(k - 3, 0), k), angle)) * (2.0 / k)
    with np.errstate(all="ignore"):
        tail = np.abs(np.einsum("xk,jk->xj", values, last)).max(axis=1)
        ratio = tail / np.abs(values).max(axis=1)
    ratio = np.where(tail == 0.0, 0.0, ratio)
    return float(ratio.max()) if np.all(np.isfinite(ratio)) else math.inf


def _sample_converged(
    function: Callable[[np.ndarray], np.ndarray], lo: float, half: float, k: int, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``function`` (rows of values at given points) at ``k`` Chebyshev points of
    ``[lo, lo + 2 half]``, doubling ``k`` (at most 64) until :func:`_chebyshev_tail` is below
    ``tol``: the points mapped to ``[-1, 1]``, their barycentric weights and the values; None
    if it does not converge."""
    while True:
        nodes, weights = _chebyshev_points(k)
        values = function(lo + (nodes + 1.0) * half)
        if _chebyshev_tail(values) <= tol:
            return nodes, weights, values
        if k >= 64:
            return None
        k = min(64, 2 * k)


class _ChebyshevOverT:
    """Values of ``function(x, T)`` at many (x, T) pairs by Chebyshev interpolation in
    ``s = log(scale + T)``, for each frequency separately.

    The discounted purchases given alive are analytic in ``s`` within ``|Im s| < pi`` (their
    singularities sit at negative ``scale + T``), so interpolation at Chebyshev points of the
    first kind converges geometrically; the number of points ``k`` is chosen from that strip for
    ``_CHEB_TOL`` accuracy at the smallest ``scale`` given. Used for the parameter draws, where
    exact quadrature at every distinct (x, T) would dominate the run time. Frequencies with at
    most ``k`` distinct ``T`` are evaluated exactly instead.
    """

    def __init__(self, x: np.ndarray, big_t: np.ndarray, min_scale: float) -> None:
        self.x, self.big_t = x, big_t
        self.t_lo, self.t_hi = float(big_t.min()), float(big_t.max())
        self.k = 0
        if self.t_hi - self.t_lo > 1e-9 * (min_scale + self.t_hi):
            half = math.log((min_scale + self.t_hi) / (min_scale + self.t_lo)) / 2.0
            self.k = _chebyshev_size(half, _CHEB_TOL)
        x_unique, x_index, counts = np.unique(x, return_inverse=True, return_counts=True)
        interpolated = counts > self.k if self.k else np.zeros(len(x_unique), dtype=bool)
        self.by_grid = interpolated[x_index]  # pairs whose value is interpolated
        self.direct = ~self.by_grid
        if self.by_grid.any():
            k = self.k
            grid_x = x_unique[interpolated]
            position = np.cumsum(interpolated) - 1
            self.grid_row = position[x_index[self.by_grid]]
            # barycentric weights depend on T only: computed per distinct T of these pairs
            self.t_unique, self.t_index = np.unique(big_t[self.by_grid], return_inverse=True)
            self.nodes, self.weights = _chebyshev_points(k)
            self.grid_x = np.repeat(grid_x, k)
            self.n_grid = len(grid_x)

    def __call__(
        self, function: Callable[[np.ndarray, np.ndarray], np.ndarray], scale: float
    ) -> np.ndarray:
        values = np.empty(len(self.x))
        if self.direct.any():
            values[self.direct] = function(self.x[self.direct], self.big_t[self.direct])
        if not self.by_grid.any():
            return values
        s_lo, s_hi = math.log(scale + self.t_lo), math.log(scale + self.t_hi)
        half = (s_hi - s_lo) / 2.0
        t_nodes = np.clip(np.exp(s_lo + (self.nodes + 1.0) * half) - scale, self.t_lo, self.t_hi)
        grid = function(self.grid_x, np.tile(t_nodes, self.n_grid)).reshape(-1, self.k)
        s = (np.log(scale + self.t_unique) - s_lo) / half - 1.0
        basis = _barycentric_basis(s, self.nodes, self.weights)
        # row-wise dot products (einsum: no BLAS call, whose threads stall on a busy machine)
        values[self.by_grid] = np.einsum("ij,ij->i", basis[self.t_index], grid[self.grid_row])
        return values


# ---------------------------------------------------------------------------------------------
# Transaction models
# ---------------------------------------------------------------------------------------------
class _Kernel:
    """Discounted expected purchases of a transaction model at given parameters.

    ``values(params, rows)`` returns ``integral exp(-delta t) dE[X(t) | history]`` per row
    (``rows`` holds arrays ``frequency``, ``recency``, ``T``). For parameter draws,
    ``prepare_draws(thetas, rows)`` is called once with every row, then
    ``values_draws(thetas, rows_slice)`` per chunk returns shape ``(n_rows_in_slice, n_draws)``.
    """

    #: whether :meth:`values` should get the distinct customer patterns rather than every
    #: customer (False where the per-customer work is as cheap as finding the patterns)
    dedupe_customers: bool = True

    def __init__(self, model: Any, terms: _Terms) -> None:
        self.model = model
        self.terms = terms
        self.names = list(model.params_.index)
        self.theta = model.params_.to_numpy(dtype=float)

    def values(self, params: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def prepare_draws(self, thetas: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        self._rows = rows

    def _slice(self, sl: slice) -> dict[str, np.ndarray]:
        return {k: v[sl] for k, v in self._rows.items()}

    def values_draws(self, thetas: np.ndarray, sl: slice) -> np.ndarray:
        rows = self._slice(sl)
        return np.stack([self.values(theta, rows) for theta in thetas], axis=1).astype(np.float32)


class _AliveFactorKernel(_Kernel):
    """Models with ``E[X(t) | history] = P(alive | x, t_x, T) * E_alive(t | x, T)``.

    The discounted ``E_alive`` is computed once per distinct ``(x, T)`` pair (for draws: per
    draw, by Chebyshev interpolation over ``T`` when there are many pairs).
    """

    def scale(self, params: np.ndarray) -> float:
        raise NotImplementedError

    def if_alive(self, params: np.ndarray, x: Any, big_t: Any, t: Any) -> np.ndarray:
        raise NotImplementedError

    def log_p_alive(self, params: np.ndarray, x: Any, t_x: Any, big_t: Any) -> np.ndarray:
        raise NotImplementedError

    def discounted_if_alive(
        self,
        params: np.ndarray,
        x: np.ndarray,
        big_t: np.ndarray,
        nodes_per_panel: int = _GL_NODES,
    ) -> np.ndarray:
        def if_alive(xx: Any, tt: Any, t: Any) -> np.ndarray:
            return self.if_alive(params, xx, tt, t)

        return _discounted_integral(
            if_alive, x, big_t, self.terms, self.scale(params), nodes_per_panel
        )

    def values(self, params: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        pairs, inverse = _unique_rows({"frequency": rows["frequency"], "T": rows["T"]})
        discounted = self.discounted_if_alive(params, pairs["frequency"], pairs["T"])[inverse]
        log_alive = self.log_p_alive(params, rows["frequency"], rows["recency"], rows["T"])
        return np.exp(log_alive) * discounted

    def prepare_draws(
        self,
        thetas: np.ndarray,
        rows: dict[str, np.ndarray],
        spend: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Tables for :meth:`values_draws` and :meth:`value_draws`.

        ``spend``: ``(x_unique, A, B)``, the spend per purchase ``A(x) + B(x) * spend_key`` at
        every draw (``A``, ``B`` of shape ``(len(x_unique), n_draws)``), folded into the pair
        table (``DE * A`` and ``DE * B``); None for a fixed spend, ``spend_key`` itself.
        """
        self._rows = rows
        pairs, self._pair_of_row = _unique_rows({"frequency": rows["frequency"], "T": rows["T"]})
        x, big_t = pairs["frequency"], pairs["T"]
        table = np.empty((len(x), len(thetas)))
        scales = [self.scale(theta) for theta in thetas]
        interpolate = _ChebyshevOverT(x, big_t, min(scales))
        for d, theta in enumerate(thetas):

            def function(xx: np.ndarray, tt: np.ndarray, theta: np.ndarray = theta) -> np.ndarray:
                return self.discounted_if_alive(theta, xx, tt, _GL_NODES_DRAWS)

            table[:, d] = interpolate(function, scales[d])
        self._pair_table = table.astype(np.float32)
        self._spend_a, self._spend_b = None, self._pair_table
        if spend is not None:
            x_unique, coef_a, coef_b = spend
            code = np.searchsorted(x_unique, x)
            self._spend_a = (table * coef_a[code]).astype(np.float32)
            self._spend_b = (table * coef_b[code]).astype(np.float32)

    def _spend_of_pairs(self, sl: slice) -> np.ndarray:
        """``DE * (A + B * spend_key)`` of the rows in ``sl``, float32 ``(rows, n_draws)``."""
        pair = self._pair_of_row[sl]
        value = np.take(self._spend_b, pair, axis=0)
        value *= self._rows["spend_key"][sl].astype(np.float32)[:, None]
        if self._spend_a is not None:
            value += np.take(self._spend_a, pair, axis=0)
        return value

    def value_draws(self, thetas: np.ndarray, sl: slice) -> np.ndarray:
        """CLV per unit of margin of the rows in ``sl`` for every draw, float32
        ``(rows, n_draws)``: ``P(alive) * DE * (A + B * spend_key)``."""
        value = self._spend_of_pairs(sl)
        value *= self.p_alive_draws(thetas, sl)
        return value

    def p_alive_draws(self, thetas: np.ndarray, sl: slice) -> np.ndarray:
        rows = self._slice(sl)
        return np.stack(
            [
                np.exp(self.log_p_alive(theta, rows["frequency"], rows["recency"], rows["T"]))
                for theta in thetas
            ],
            axis=1,
        ).astype(np.float32)

    def values_draws(self, thetas: np.ndarray, sl: slice) -> np.ndarray:
        out = self.p_alive_draws(thetas, sl)
        out *= self._pair_table[self._pair_of_row[sl]]
        return out


class _BetaGeoKernel(_AliveFactorKernel):
    """BG/NBD and MBG/NBD (:mod:`custval.models.beta_geo`)."""

    dedupe_customers = False  # :meth:`values` indexes the customers itself (``_RowIndex``)

    def __init__(self, model: Any, terms: _Terms) -> None:
        super().__init__(model, terms)
        from custval.models import beta_geo

        self._bg = beta_geo
        self.modified = bool(getattr(model, "_modified", False))

    def scale(self, params: np.ndarray) -> float:
        return float(params[1])

    def if_alive(self, params: np.ndarray, x: Any, big_t: Any, t: Any) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        value = self._bg._purchases_if_alive(params, x, big_t, t, modified=self.modified)
        return np.where(t > 0, value, 0.0)

    def log_p_alive(self, params: np.ndarray, x: Any, t_x: Any, big_t: Any) -> np.ndarray:
        odds = self._bg._log_dropout_odds(params, x, t_x, big_t, modified=self.modified)
        return -np.logaddexp(0.0, odds)

    def values(self, params: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        """Per row: P(alive) (:class:`custval.models.beta_geo._RowIndex`, the model's own
        computation) times the exact discounted purchases given alive per ``(x, T)`` pair."""
        index = self._bg._RowIndex(rows["frequency"], rows["recency"], rows["T"])
        value = index.on_pairs(lambda x, big_t: self._discounted_pairs(params, x, big_t))
        value *= index.alive_now(params, modified=self.modified)
        return value

    def _if_alive_at_log_v(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``h_x(y)``: expected purchases given alive as a function of ``y = log v``, ``v =
        (alpha+T)/(alpha+T+t)`` (:meth:`_grid_draws`), shape ``(len(x), len(y))``; evaluated at
        ``T = 0`` and ``t = alpha (1/v - 1)``, which give that ``v``."""
        return self.if_alive(params, x[:, None], 0.0, float(params[1]) * np.expm1(-y)[None, :])

    def _discounted_pairs(self, params: np.ndarray, x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
        """:meth:`discounted_if_alive` at distinct ``(x, T)`` pairs, with ``2F1`` evaluated at
        Chebyshev points of ``y = log v`` only (see :meth:`_grid_draws`): the same quadrature,
        with ``h_x(y)`` interpolated to the rounding level of its formula (``_EXACT_TOL``,
        checked on the interpolant's last coefficients). Directly where that saves nothing or
        does not converge within 64 points (``a`` near 1, very large ``a`` and ``b``)."""
        if len(x) == 0:
            return np.empty(0)
        t_rule, w_rule = _quadrature_rule(self.terms, self.scale(params), _GL_NODES)
        alpha = float(params[1])
        x_u, x_of_pair = unique_index(x)
        t_u, t_of_pair = unique_index(big_t)
        y = np.log(alpha + t_u)[:, None] - np.log(alpha + t_u[:, None] + t_rule[None, :])
        y_lo, y_hi = float(y.min()), float(y.max())
        half = (y_hi - y_lo) / 2.0
        k = _chebyshev_size(half, _EXACT_TOL) if half > 1e-12 else 64
        sample = None
        if len(x) * len(t_rule) > 2 * len(x_u) * k:  # else the quadrature itself is as cheap

            def h(at: np.ndarray) -> np.ndarray:
                return self._if_alive_at_log_v(params, x_u, at)

            sample = _sample_converged(h, y_lo, half, k, _EXACT_TOL)
        if sample is None:
            return self.discounted_if_alive(params, x, big_t)
        nodes, weights, values = sample
        basis = _barycentric_basis((y.ravel() - y_lo) / half - 1.0, nodes, weights)
        to_nodes = np.einsum("tik,i->tk", basis.reshape(len(t_u), len(t_rule), -1), w_rule)
        return np.einsum("pk,pk->p", to_nodes[t_of_pair], values[x_of_pair])

    def prepare_draws(
        self,
        thetas: np.ndarray,
        rows: dict[str, np.ndarray],
        spend: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Pair tables of discounted purchases given alive (times the spend coefficients, see
        the base class), plus per-draw lookup tables for P(alive).

        P(alive) is the formula of :func:`custval.models.beta_geo._log_dropout_odds` (Hardie's
        note 021; Batislam et al. 2007, eq. 8), vectorized over parameter vectors (tested equal
        to it): ``1 / (1 + exp(d))``, ``d = log(a / (b+x+m-1)) + (r+x) (log(alpha+T) -
        log(alpha+t_x))``. Every term depends on one column only, so it is tabulated on that
        column's distinct values (float64, stored as float32) and looked up per customer. The
        pair tables come from :meth:`_grid_draws`.
        """
        self._rows = rows
        x_u, self._x_code = unique_index(rows["frequency"])
        t_u, self._t_code = unique_index(rows["T"])
        tx_u, self._tx_code = unique_index(rows["recency"])
        pair_key, self._pair_of_row = unique_index(self._x_code * len(t_u) + self._t_code)
        pair_x, pair_t = np.divmod(pair_key, len(t_u))
        grid, basis_t = self._grid_draws(thetas, x_u, t_u)
        if spend is None:
            self._pair_table = _interpolate_pairs(grid, basis_t, pair_x, pair_t)
            self._spend_a, self._spend_b = None, self._pair_table
        else:  # the spend coefficients depend on x only: folded into the grid
            x_spend, coef_a, coef_b = spend
            code = np.searchsorted(x_spend, x_u)
            self._pair_table = None
            self._spend_a = _interpolate_pairs(
                grid * coef_a[code][:, None, :], basis_t, pair_x, pair_t
            )
            self._spend_b = _interpolate_pairs(
                grid * coef_b[code][:, None, :], basis_t, pair_x, pair_t
            )
        r, alpha, a, b = (thetas[:, i][None, :] for i in range(4))
        m = 1.0 if self.modified else 0.0
        xx = x_u[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = np.log(a) - np.log(b + xx + (m - 1.0))
        if not self.modified:
            odds = np.where(xx > 0, odds, -np.inf)
        self._odds_table = odds.astype(np.float32)
        self._rx_table = (r + xx).astype(np.float32)
        self._log_t_table = np.log(alpha + t_u[:, None]).astype(np.float32)
        self._log_tx_table = np.log(alpha + tx_u[:, None]).astype(np.float32)

    def _grid_draws(
        self, thetas: np.ndarray, x_u: np.ndarray, t_u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Discounted purchases given alive at every frequency ``x_u``, Chebyshev point of
        ``T`` and draw, shape ``(len(x_u), k_t, n_draws)``, and the basis interpolating it at
        ``t_u``, ``(len(t_u), k_t)`` (:func:`_interpolate_pairs`); few hypergeometric
        evaluations.

        ``E_alive(t | x, T)`` depends on ``T`` and ``t`` only through ``v = (alpha+T) /
        (alpha+T+t)`` (:func:`custval.models.beta_geo._purchases_if_alive`): per frequency and
        draw it is one function ``h_x(log v)``, analytic for ``|Im log v| < pi`` (branch cut of
        ``2F1`` and ``v^(a-1)`` at ``v <= 0``). So, per draw:

        1. ``h_x`` is evaluated at Chebyshev points of ``y = log v`` covering every ``y`` the
           quadrature needs (the only ``2F1`` evaluations: ``n_x * k_y``);
        2. the discounted integral at Chebyshev points ``T_j`` of ``log(c + T)`` (``c``: the
           smallest ``alpha`` of the draws, so the ``T_j`` and the time nodes are shared by all
           draws, as in :class:`_ChebyshevOverT`) is ``sum_i w_i h_x(y_ij)``, a fixed linear map
           of those values (barycentric interpolation in ``y``);
        3. (:func:`_interpolate_pairs`) each pair is interpolated over ``T`` from the ``T_j``.

        Accuracy: ``_CHEB_TOL`` per interpolation plus the ``_GL_NODES_DRAWS`` quadrature, below
        1e-6 relative (``tests/test_clv.py``), far below the spread of the draws.
        """
        alphas = thetas[:, 1]
        c = float(alphas.min())
        t_lo, t_hi = float(t_u.min()), float(t_u.max())
        if t_hi - t_lo <= 1e-9 * (c + t_hi):  # one T: no interpolation over T
            t_nodes = np.array([t_lo])
            return self._grid_at(thetas, x_u, t_nodes), np.ones((len(t_u), 1))
        s_lo, s_hi = math.log(c + t_lo), math.log(c + t_hi)
        half = (s_hi - s_lo) / 2.0
        k_t = _chebyshev_size(half, _CHEB_TOL)
        while True:  # more points over T if the grid is not resolved (e.g. very large a, b)
            nodes, weights = _chebyshev_points(k_t)
            t_nodes = np.clip(np.exp(s_lo + (nodes + 1.0) * half) - c, t_lo, t_hi)
            grid = self._grid_at(thetas, x_u, t_nodes)
            resolved = _chebyshev_tail(np.moveaxis(grid, 1, 2).reshape(-1, k_t)) <= _CHEB_TOL
            if resolved or k_t >= 64:
                break
            k_t = min(64, 2 * k_t)
        basis_t = _barycentric_basis((np.log(c + t_u) - s_lo) / half - 1.0, nodes, weights)
        return grid, basis_t

    def _grid_at(self, thetas: np.ndarray, x_u: np.ndarray, t_nodes: np.ndarray) -> np.ndarray:
        """Discounted purchases given alive at ``(x_u, t_nodes)`` for every draw, shape
        ``(len(x_u), len(t_nodes), n_draws)``: steps 1 and 2 of :meth:`_grid_draws`."""
        n_draws, n_x, k_t = len(thetas), len(x_u), len(t_nodes)
        alphas = thetas[:, 1]
        t_rule, w_rule = _quadrature_rule(self.terms, float(alphas.min()), _GL_NODES_DRAWS)
        # y = log v at every (draw, T node, time node); all < 0
        base = alphas[:, None, None] + t_nodes[None, :, None]
        y = np.log(base) - np.log(base + t_rule[None, None, :])
        y_lo, y_hi = y.min(axis=(1, 2)), y.max(axis=(1, 2))
        y_half = (y_hi - y_lo) / 2.0
        grid = np.empty((n_x, k_t, n_draws))
        for d, theta in enumerate(thetas):
            sample = None
            if y_half[d] > 1e-12:
                k_y = _chebyshev_size(float(y_half[d]), _CHEB_TOL)

                def h(at: np.ndarray, theta: np.ndarray = theta) -> np.ndarray:
                    return self._if_alive_at_log_v(theta, x_u, at)

                sample = _sample_converged(h, float(y_lo[d]), float(y_half[d]), k_y, _CHEB_TOL)
            if sample is None:  # one y only, or h_x not resolved: the quadrature itself
                at_nodes = self.discounted_if_alive(
                    theta, np.repeat(x_u, k_t), np.tile(t_nodes, n_x), _GL_NODES_DRAWS
                )
                grid[:, :, d] = at_nodes.reshape(n_x, k_t)
                continue
            nodes, weights, values = sample
            points = (y[d].ravel() - y_lo[d]) / y_half[d] - 1.0
            basis_y = _barycentric_basis(points, nodes, weights).reshape(k_t, -1, len(nodes))
            to_t_nodes = np.einsum("jik,i->jk", basis_y, w_rule)  # (k_t, k_y)
            grid[:, :, d] = np.einsum("xk,jk->xj", values, to_t_nodes)
        return grid

    def p_alive_draws(self, thetas: np.ndarray, sl: slice) -> np.ndarray:
        d = self._one_over_p_alive_draws(sl)
        np.reciprocal(d, out=d)
        return d

    def _one_over_p_alive_draws(self, sl: slice) -> np.ndarray:
        """``1 + exp(d) = 1 / P(alive)`` of the rows in ``sl`` for every draw (float32)."""
        xc = self._x_code[sl]
        d = np.take(self._log_t_table, self._t_code[sl], axis=0)
        d -= np.take(self._log_tx_table, self._tx_code[sl], axis=0)
        d *= np.take(self._rx_table, xc, axis=0)
        d += np.take(self._odds_table, xc, axis=0)
        with np.errstate(over="ignore", invalid="ignore"):
            np.exp(d, out=d)
        d += 1.0
        return d

    def value_draws(self, thetas: np.ndarray, sl: slice) -> np.ndarray:
        value = self._spend_of_pairs(sl)
        value /= self._one_over_p_alive_draws(sl)  # one pass less than multiplying by P(alive)
        return value


def _interpolate_pairs(
    grid: np.ndarray, basis_t: np.ndarray, pair_x: np.ndarray, pair_t: np.ndarray
) -> np.ndarray:
    """``grid[x, :, d]`` interpolated over ``T`` at each pair ``(pair_x, pair_t)``: float32
    ``(n_pairs, n_draws)``, one ``(pairs, k_t) @ (k_t, draws)`` product per frequency."""
    table = np.empty((len(pair_x), grid.shape[2]), dtype=np.float32)
    order = np.argsort(pair_x, kind="stable")
    bounds = np.searchsorted(pair_x[order], np.arange(grid.shape[0] + 1))
    for code in range(grid.shape[0]):
        rows = order[bounds[code] : bounds[code + 1]]
        if len(rows):
            table[rows] = np.einsum("pj,jd->pd", basis_t[pair_t[rows]], grid[code])
    return table


class _ParetoKernel(_AliveFactorKernel):
    """Pareto/NBD (:mod:`custval.models.pareto_nbd`).

    Given alive at ``T``, ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~ Gamma(s, beta+T)`` are
    independent, so the purchase rate ``t`` later is ``E[lambda] E[exp(-mu t)]`` and
    ``E_alive(t) = (r+x)/(alpha+T) * (beta+T)/(s-1) [1 - ((beta+T)/(beta+T+t))^(s-1)]``
    (Hardie's note 009, eq. 41 without its P(alive) factor).
    """

    def __init__(self, model: Any, terms: _Terms) -> None:
        super().__init__(model, terms)
        from custval.models import pareto_nbd

        self._pnbd = pareto_nbd

    def scale(self, params: np.ndarray) -> float:
        return float(min(params[1], params[3]))

    def if_alive(self, params: np.ndarray, x: Any, big_t: Any, t: Any) -> np.ndarray:
        r, alpha, s, beta = (float(v) for v in params)
        x, big_t, t = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, big_t, t)))
        base_log = np.log(beta + big_t) - np.log(beta + big_t + t)
        log_value = (
            np.log(r + x)
            + np.log(beta + big_t)
            - np.log(alpha + big_t)
            + self._pnbd._log_one_minus_power(base_log, s - 1.0)
        )
        with np.errstate(over="ignore"):
            return np.where(t > 0, np.exp(log_value), 0.0)

    def log_p_alive(self, params: np.ndarray, x: Any, t_x: Any, big_t: Any) -> np.ndarray:
        return self._pnbd._log_probability_alive(params, x, t_x, big_t)


class _PublicMethodKernel(_Kernel):
    """Any other model: quadrature of its public ``expected_purchases`` (finite horizons)."""

    def __init__(self, model: Any, terms: _Terms) -> None:
        super().__init__(model, terms)
        if math.isinf(terms.horizon):
            raise DataError(
                f"horizon='inf' needs a closed form for the discounted future purchases, which "
                f"custval has for BG/NBD, MBG/NBD and Pareto/NBD but not for "
                f"{_model_name(model)}; give a finite horizon such as '36M'"
            )
        if not hasattr(model, "expected_purchases"):
            raise DataError(
                f"{_model_name(model)} has no expected_purchases(summary, t) method, so it "
                "cannot value customers; use BetaGeoModel, ModifiedBetaGeoModel or ParetoNBDModel"
            )

    def prepare_draws(self, thetas: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        """Evaluate every draw over all rows once (the public methods are called per draw);
        memory grows with ``n_rows * n_draws`` float32 values."""
        self._table = np.empty((len(rows["frequency"]), len(thetas)), dtype=np.float32)
        for d, theta in enumerate(thetas):
            self._table[:, d] = self.values(theta, rows)

    def values_draws(self, thetas: np.ndarray, sl: slice) -> np.ndarray:
        return self._table[sl].copy()

    def values(self, params: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        model = copy.copy(self.model)
        model.params_ = pd.Series(params, index=self.names, name="estimate")
        frame = pd.DataFrame(
            {"frequency": rows["frequency"], "recency": rows["recency"], "T": rows["T"]}
        )
        frame.attrs["freq"] = self.terms.freq

        def expected(t: float) -> np.ndarray:
            return model.expected_purchases(frame, float(t)).to_numpy(dtype=float)

        horizon, delta = self.terms.horizon, self.terms.delta
        if self.terms.step is not None:
            steps = np.arange(1, math.ceil(horizon / self.terms.step - 1e-9) + 1) * self.terms.step
            steps = np.minimum(steps, horizon)
            out = np.zeros(len(frame))
            previous = np.zeros(len(frame))
            for t in steps:
                current = expected(t)
                out += (current - previous) * math.exp(-delta * t)
                previous = current
            return out
        if delta == 0.0:
            return expected(horizon)
        t_nodes, w = _time_nodes(horizon / 256.0, horizon, delta)
        out = math.exp(-delta * horizon) * expected(horizon)
        for t, weight in zip(t_nodes, w, strict=True):
            out = out + delta * weight * math.exp(-delta * t) * expected(t)
        return out


def _transaction_kernel(model: Any, terms: _Terms) -> _Kernel:
    _check_fitted(model)
    names = tuple(model.params_.index)
    module = type(model).__module__
    if module in ("custval.models.beta_geo", "custval.models.modified_beta_geo") and names == (
        "r",
        "alpha",
        "a",
        "b",
    ):
        return _BetaGeoKernel(model, terms)
    if module == "custval.models.pareto_nbd" and names == ("r", "alpha", "s", "beta"):
        return _ParetoKernel(model, terms)
    if "ShiftedBetaGeo" in type(model).__name__ or "BetaGeoBetaBinom" in type(model).__name__:
        raise DataError(
            f"{_model_name(model)} is a model of discrete opportunities or subscriptions, not of "
            "purchases in continuous time; customer_lifetime_value needs BetaGeoModel, "
            "ModifiedBetaGeoModel or ParetoNBDModel"
        )
    return _PublicMethodKernel(model, terms)


# ---------------------------------------------------------------------------------------------
# Spend models
# ---------------------------------------------------------------------------------------------
class _Spend:
    """Expected spend per future purchase: ``A(x) + B(x) * monetary_value`` (Gamma-Gamma is
    affine in the observed mean, note 025 eq. 5), or a fixed value per customer."""

    def __init__(self, spend_model: Any, summary: pd.DataFrame, data: dict[str, np.ndarray]):
        self.model = spend_model
        self.affine = False
        self.gamma_gamma = None
        if isinstance(spend_model, int | float | np.number) and not isinstance(spend_model, bool):
            value = float(spend_model)
            if not (value >= 0 and math.isfinite(value)):
                raise DataError(
                    f"a fixed spend per purchase must be a finite amount >= 0, got {spend_model!r}"
                )
            self.point = np.full(len(summary), value)
            self.description = f"fixed {value:g} per purchase"
            return
        if isinstance(spend_model, pd.Series):
            missing = ~summary.index.isin(spend_model.index)
            if missing.any():
                raise DataError(
                    f"spend Series has no value for {int(missing.sum()):,} customers "
                    f"(first: {list(summary.index[missing][:5])}); index it by customer_id"
                )
            values = pd.to_numeric(spend_model.reindex(summary.index), errors="coerce")
            values = values.to_numpy(dtype=float)
            if not np.all(np.isfinite(values) & (values >= 0)):
                raise DataError(
                    "spend Series must hold finite amounts >= 0 for every customer; fill or "
                    "fix the missing or negative values"
                )
            self.point = values
            self.description = "per-customer Series"
            return
        if not hasattr(spend_model, "expected_spend"):
            raise DataError(
                "spend_model must be a fitted spend model with expected_spend(summary) (e.g. "
                "custval.GammaGammaModel), a fixed amount per purchase, or a Series of expected "
                f"spend per customer; got {type(spend_model).__name__}"
            )
        _check_fitted(spend_model)
        self.description = _model_name(spend_model)
        self.point = spend_model.expected_spend(summary).to_numpy(dtype=float)
        if np.any(~np.isfinite(self.point)):
            raise DataError(
                f"the {_model_name(spend_model)} gives an infinite expected spend (q <= 1); "
                "refit it with a small penalizer_coef or on more repeat buyers"
            )
        module = type(spend_model).__module__
        if module == "custval.models.gamma_gamma" and tuple(spend_model.params_.index) == (
            "p",
            "q",
            "gamma",
        ):
            from custval.models import gamma_gamma

            self.gamma_gamma = gamma_gamma
            self.affine = True

    @property
    def has_draws(self) -> bool:
        return self.affine

    def coefficients(self, params: np.ndarray, x_unique: np.ndarray) -> tuple[Any, Any]:
        """``A(x), B(x)`` of the affine spend at ``params`` for the distinct frequencies."""
        n = len(x_unique)
        both = self.gamma_gamma._expected_spend(  # at m = 0 and m = 1, in one call
            params, np.concatenate([x_unique, x_unique]), np.repeat([0.0, 1.0], n)
        )
        return both[:n], both[n:] - both[:n]


# ---------------------------------------------------------------------------------------------
# Parameter draws
# ---------------------------------------------------------------------------------------------
def _log_normal_draws(model: Any, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Parameter vectors from the asymptotic normal of the log-parameters (delta method)."""
    theta = model.params_.to_numpy(dtype=float)
    variance = getattr(model, "variance_matrix_", None)
    if variance is None or not np.all(np.isfinite(np.asarray(variance, dtype=float))):
        raise DataError(
            f"the {_model_name(model)} has no variance matrix (variance_matrix_ is missing or "
            "not finite: a model from from_params, a fit on a ridge or boundary of the "
            "likelihood (convergence_ 'ridge' or 'boundary', named in the fit's warning), or a "
            "fit whose Hessian was singular), so its parameter uncertainty is unknown; fit it "
            "with a small penalizer_coef, or pass n_draws=0 for no intervals"
        )
    cov = np.asarray(variance, dtype=float) / np.outer(theta, theta)
    cov = 0.5 * (cov + cov.T)
    eigval, eigvec = np.linalg.eigh(cov)
    root = eigvec * np.sqrt(np.clip(eigval, 0.0, None))
    z = rng.standard_normal((n_draws, len(theta)))
    return theta * np.exp(z @ root.T)


def _spend_draws(spend: _Spend, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    draws = _log_normal_draws(spend.model, n_draws, rng)
    for _ in range(_MAX_REDRAW):
        bad = draws[:, 1] <= 1.0  # q <= 1: infinite mean spend
        if not bad.any():
            break
        draws[bad] = _log_normal_draws(spend.model, int(bad.sum()), rng)
    else:
        raise DataError(
            f"the {_model_name(spend.model)}'s q is too uncertain (draws keep falling below 1, "
            "where the mean spend is infinite); fit it on more repeat buyers"
        )
    return draws


# ---------------------------------------------------------------------------------------------
# The computation shared by the public functions
# ---------------------------------------------------------------------------------------------
@dataclass
class _Valuation:
    terms: _Terms
    margin: np.ndarray | float
    margin_described: Any
    basis: str
    kernel: _Kernel
    spend: _Spend
    data: dict[str, np.ndarray]
    summary: pd.DataFrame
    _patterns: tuple[dict[str, np.ndarray], np.ndarray] | None = None

    def patterns(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Distinct ``(frequency, recency, T)`` rows and each customer's row (cached)."""
        if self._patterns is None:
            self._patterns = _unique_rows({k: self.data[k] for k in ("frequency", "recency", "T")})
        return self._patterns

    def discounted_purchases(self) -> np.ndarray:
        """Discounted expected purchases per customer at the fitted parameters."""
        if not self.kernel.dedupe_customers:
            return self.kernel.values(self.kernel.theta, self.data)
        rows, inverse = self.patterns()
        return self.kernel.values(self.kernel.theta, rows)[inverse]

    def point(self) -> np.ndarray:
        return self.margin * self.spend.point * self.discounted_purchases()

    def quantiles(
        self,
        probabilities: tuple[float, ...],
        n_draws: int,
        random_state: Any,
        chunk_size: int,
        progress: bool,
    ) -> np.ndarray:
        """Per-customer percentiles of CLV over parameter draws, shape ``(n, len(probs))``.

        Customers with the same ``(frequency, recency, T)`` and the same spend inputs have the
        same distribution of value per unit of margin, so each such group is evaluated once
        (for instance every customer without repeat purchases and the same ``T``); the margin
        scales the percentiles afterwards (it is non-negative). The distinct rows are sorted by
        ``(frequency, T, recency)``, so that neighbouring rows read the same table rows. The
        draws of a block of rows are held as float32 ``(rows, n_draws)`` and sorted along the
        draws; for transaction models with ``P(alive)`` the spend coefficients are folded into
        the kernel's pair tables (:meth:`_AliveFactorKernel.prepare_draws`).
        """
        if len(self.summary) == 0:
            return np.empty((0, len(probabilities)))
        rng = np.random.default_rng(random_state)
        thetas = _log_normal_draws(self.kernel.model, n_draws, rng)
        x_all = self.data["frequency"]
        spend = None  # (distinct frequencies, A, B): spend per purchase A(x) + B(x) * spend_key
        if self.spend.has_draws:
            spend_thetas = _spend_draws(self.spend, n_draws, rng)
            x_unique, x_code = _sorted_codes(x_all)
            coef_a = np.empty((len(x_unique), n_draws))
            coef_b = np.empty((len(x_unique), n_draws))
            for d, theta in enumerate(spend_thetas):
                coef_a[:, d], coef_b[:, d] = self.spend.coefficients(theta, x_unique)
            uses_m = np.any(coef_b != 0.0, axis=1)  # False where x = 0: spend ignores m
            spend_key = np.where(uses_m[x_code], self.data["monetary_value"], 0.0)
            spend = (x_unique, coef_a, coef_b)
        else:
            spend_key = self.spend.point
        # distinct inputs, ordered by (frequency, T): neighbouring rows share table lookups
        rows, inverse = _distinct_rows(
            {
                "frequency": x_all,
                "T": self.data["T"],
                "recency": self.data["recency"],
                "spend_key": spend_key,
            }
        )
        folded = isinstance(self.kernel, _AliveFactorKernel)
        if folded:  # spend coefficients multiply the pair tables once, not every row
            self.kernel.prepare_draws(thetas, rows, spend=spend)
        else:
            self.kernel.prepare_draws(thetas, rows)
            if spend is not None:
                coef_a, coef_b = coef_a.astype(np.float32), coef_b.astype(np.float32)
        n_rows = len(rows["frequency"])
        # percentiles of float32 draws are float32 numbers: stored as such, one row per percentile
        out = np.empty((len(probabilities), n_rows), dtype=np.float32)
        positions = [p * (n_draws - 1) for p in probabilities]
        # blocks of ~1M values keep the temporaries in cache; chunk_size caps memory
        block = max(1, min(chunk_size, 1_000_000 // n_draws))
        for start in _progress(range(0, n_rows, block), progress, "customer value draws"):
            sl = slice(start, start + block)
            if folded:
                values = self.kernel.value_draws(thetas, sl)
            else:
                values = self.kernel.values_draws(thetas, sl)
                key = rows["spend_key"][sl].astype(np.float32)[:, None]
                if spend is not None:
                    code = np.searchsorted(x_unique, rows["frequency"][sl])
                    per_purchase = coef_b[code]
                    per_purchase *= key
                    per_purchase += coef_a[code]
                    values *= per_purchase
                else:
                    values *= key
            values.sort(axis=1)
            for j, position in enumerate(positions):
                low = math.floor(position)
                high = min(low + 1, n_draws - 1)
                frac = position - low
                out[j, sl] = values[:, low] * (1.0 - frac) + values[:, high] * frac
        result = np.empty((len(probabilities), len(inverse)))
        for j in range(len(probabilities)):
            result[j] = out[j].take(inverse)
        result *= self.margin if np.ndim(self.margin) == 0 else np.asarray(self.margin)[None, :]
        return result.T  # (customers, percentiles), column-major like a DataFrame's block


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of a 1-d array and each entry's position among them (O(n):
    :func:`custval.models._base.unique_index`, then only the distinct values are sorted)."""
    distinct, codes = unique_index(np.asarray(values, dtype=float))
    if np.all(distinct[1:] > distinct[:-1]):
        return distinct, codes
    order = np.argsort(distinct)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[codes]


def _distinct_rows(
    columns: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Distinct rows of equal-length columns, sorted by the columns in order, and the index
    rebuilding them: the columns' codes combined into one integer key, factorized once (the
    pairwise :func:`_unique_rows` when that key could overflow)."""
    names = list(columns)
    coded = [_sorted_codes(columns[name]) for name in names]
    if math.prod(len(distinct) for distinct, _ in coded) >= 2**62:
        return _unique_rows(columns)
    key = np.zeros(len(coded[0][1]), dtype=np.int64)
    for distinct, codes in coded:
        key *= len(distinct)
        key += codes
    inverse, key = pd.factorize(key, sort=True)
    rows = {}
    for name, (distinct, _) in zip(reversed(names), reversed(coded), strict=True):
        key, code = np.divmod(key, len(distinct))
        rows[name] = distinct[code]
    return {name: rows[name] for name in names}, inverse


def _unique_rows(columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Distinct rows of equal-length columns and the index rebuilding them (hash-based, O(n))."""
    n = len(next(iter(columns.values())))
    rows, _, inverse = compress_rows(columns, np.ones(n))
    return {k: np.asarray(v, dtype=float) for k, v in rows.items()}, inverse


def _progress(iterable: Any, enabled: bool, description: str) -> Iterator[Any]:
    items = list(iterable)
    if not enabled or len(items) < 2:
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=description, unit="chunk")


def _valuation(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    horizon: Any,
    annual_discount_rate: float,
    margin: Any,
    step: Any,
) -> _Valuation:
    if not isinstance(summary, pd.DataFrame):
        raise DataError(
            f"summary must be a pandas DataFrame (from custval.rfm_summary), got "
            f"{type(summary).__name__}"
        )
    _check_fitted(transaction_model)
    terms = _resolve_terms(
        transaction_model, spend_model, summary, horizon, annual_discount_rate, step
    )
    data = _check_summary(summary)
    margin_values, described, basis = _resolve_margin(margin, summary)
    kernel = _transaction_kernel(transaction_model, terms)
    spend = _Spend(spend_model, summary, data)
    return _Valuation(terms, margin_values, described, basis, kernel, spend, data, summary)


def _attrs(valuation: _Valuation) -> dict[str, Any]:
    terms = valuation.terms
    method = (
        f"grid of {terms.step_label} steps, discounted at each step's end"
        if terms.step is not None
        else "exact discounted integral of the expected purchase rate"
    )
    return {
        "freq": terms.freq,
        "horizon": terms.horizon_label,
        "horizon_periods": terms.horizon,
        "annual_discount_rate": terms.annual_rate,
        "discount_rate_per_period": terms.rate_per_period,
        "continuous_discount_rate": terms.delta,
        "margin": valuation.margin_described,
        "value_basis": valuation.basis,
        "method": method,
        "transaction_model": _model_name(valuation.kernel.model),
        "spend_model": valuation.spend.description,
        "observation_end": valuation.summary.attrs.get("observation_end"),
    }


def _check_interval(interval: float) -> tuple[float, float, float]:
    if isinstance(interval, bool) or not isinstance(interval, int | float | np.number):
        raise DataError(f"interval must be a probability such as 0.8, got {interval!r}")
    if not 0.0 < float(interval) < 1.0:
        raise DataError(
            f"interval must be between 0 and 1 (0.8 for the 10th to 90th percentiles), got "
            f"{interval!r}"
        )
    tail = (1.0 - float(interval)) / 2.0
    return tail, 0.5, 1.0 - tail


def _check_draw_settings(n_draws: Any, chunk_size: Any) -> None:
    if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or n_draws < 0:
        raise DataError(f"n_draws must be a whole number >= 0, got {n_draws!r}")
    if 0 < n_draws < 20:
        raise DataError(
            f"n_draws={n_draws} is too few to estimate percentiles; use at least 20 (200 is "
            "the default), or 0 for no intervals"
        )
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
        raise DataError(f"chunk_size must be a positive whole number, got {chunk_size!r}")
    if chunk_size < 1:
        raise DataError(f"chunk_size must be a positive whole number, got {chunk_size!r}")


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
def customer_lifetime_value(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    *,
    horizon: str = "12M",
    annual_discount_rate: float = 0.10,
    margin: float | str | pd.Series = 1.0,
    step: str | None = None,
) -> pd.Series:
    """Discounted value of each customer's expected future purchases.

    ``margin * E[spend] * integral_0^H exp(-delta t) dE[X(t) | history]``: the exact continuous
    discounting of the transaction model's expected purchase rate (see the module docstring for
    the method), times the spend model's expected value per purchase, times the margin.

    Parameters
    ----------
    transaction_model : fitted model
        ``BetaGeoModel``, ``ModifiedBetaGeoModel`` or ``ParetoNBDModel`` (closed forms); any
        other fitted model with ``expected_purchases(summary, t)`` works for finite horizons.
        Its ``freq_`` must equal the summary's unit.
    spend_model : fitted model, float or Series
        ``GammaGammaModel`` (expected spend per purchase from each customer's history), a fixed
        amount per purchase, or a Series of expected spend per purchase by customer_id.
    summary : DataFrame
        From :func:`custval.rfm_summary`: ``frequency, recency, T, monetary_value``, with its
        unit in ``attrs["freq"]``. Not modified.
    horizon : str, default "12M"
        How far ahead to value, with its unit: ``"12M"``, ``"52W"``, ``"365D"``; ``"inf"`` for
        the whole future (BG/NBD, MBG/NBD, Pareto/NBD; needs a positive discount rate). A bare
        number is refused: its unit would be a guess.
    annual_discount_rate : float, default 0.10
        Annual rate (0.10 for 10% a year), converted to the summary's unit exactly:
        ``(1 + rate) ** (period in years) - 1`` per period, continuously compounded within it.
    margin : float, str or Series, default 1.0
        Fraction of revenue kept as contribution: one number in ``[0, 1]``, the name of a column
        of ``summary``, or a Series by customer_id. With the default 1.0 the value is revenue;
        anything else makes it contribution (recorded in ``attrs["value_basis"]``).
    step : str, optional
        Instead of the exact integral, sum over a grid of this step (e.g. ``"1M"``), each step's
        expected purchases discounted at the step's end (lifetimes' convention); converges to
        the exact value as the step shrinks.

    Returns
    -------
    Series
        ``clv`` by customer, aligned with ``summary.index``. ``attrs`` record ``freq``,
        ``horizon``, ``horizon_periods``, ``annual_discount_rate``,
        ``discount_rate_per_period``, ``continuous_discount_rate``, ``margin``,
        ``value_basis`` ("revenue" or "contribution"), ``method`` and the models.

    Raises
    ------
    DataError
        Units missing or inconsistent (summary vs model), a horizon without unit, a margin
        outside ``[0, 1]``, missing columns, or an infinite horizon without discounting.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import BetaGeoModel, customer_lifetime_value
    >>> bgnbd = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, freq="W")
    >>> summary = pd.DataFrame({"frequency": [0, 2, 7], "recency": [0.0, 30.4, 38.0],
    ...                         "T": [38.9, 38.9, 38.9], "monetary_value": [0.0, 30.0, 45.0]})
    >>> summary.attrs["freq"] = "W"
    >>> clv = customer_lifetime_value(bgnbd, 35.0, summary, horizon="52W",
    ...                               annual_discount_rate=0.10, margin=0.3)
    >>> clv.round(2).tolist()
    [2.53, 15.64, 59.27]
    >>> clv.attrs["value_basis"]
    'contribution'
    """
    valuation = _valuation(
        transaction_model, spend_model, summary, horizon, annual_discount_rate, margin, step
    )
    result = pd.Series(valuation.point(), index=summary.index, name="clv")
    result.attrs.update(_attrs(valuation))
    return result


def clv_interval(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    *,
    horizon: str = "12M",
    annual_discount_rate: float = 0.10,
    margin: float | str | pd.Series = 1.0,
    interval: float = 0.8,
    n_draws: int = 200,
    random_state: int | np.random.Generator | None = 0,
    step: str | None = None,
    chunk_size: int = 20_000,
    progress: bool = True,
) -> pd.DataFrame:
    """Per-customer CLV percentiles from the sampling distribution of the fitted parameters.

    ``n_draws`` parameter vectors are drawn from the asymptotic normal distribution of each
    model's log-parameters (``variance_matrix_``; transaction and spend model independently),
    CLV is computed for each, and the ``(1 - interval)/2``, 0.5 and ``(1 + interval)/2``
    percentiles are reported per customer. The intervals express parameter uncertainty: the
    range of *expected* value, not of what one customer will actually spend.

    Parameters
    ----------
    transaction_model, spend_model, summary, horizon, annual_discount_rate, margin, step
        As in :func:`customer_lifetime_value`. Both models need ``variance_matrix_`` (a fitted
        model); a fixed spend or spend Series adds no uncertainty.
    interval : float, default 0.8
        Central probability of the interval (0.8: 10th to 90th percentile).
    n_draws : int, default 200
        Parameter draws (at least 20).
    random_state : int, Generator or None, default 0
        Seed of the draws; the same seed gives the same intervals.
    chunk_size : int, default 20_000
        Customers per chunk; memory grows with ``chunk_size * n_draws``.
    progress : bool, default True
        Show a progress bar over chunks (when there is more than one).

    Returns
    -------
    DataFrame
        ``clv_lower``, ``clv_median``, ``clv_upper`` by customer, aligned with
        ``summary.index``; ``attrs`` as :func:`customer_lifetime_value` plus ``interval``,
        ``n_draws`` and ``random_state``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from custval import BetaGeoModel, clv_interval
    >>> rng = np.random.default_rng(0)  # BG/NBD purchasing at CDNOW's parameters, in weeks
    >>> lam, p = rng.gamma(0.243, 1 / 4.414, 3000), rng.beta(0.793, 2.426, 3000)
    >>> T = 39.0 - rng.integers(0, 84, 3000) / 7
    >>> arrivals = rng.poisson(lam * T)
    >>> x = np.minimum(arrivals, rng.geometric(p)).astype(float)
    >>> recency = np.where(x > 0, T * rng.beta(np.maximum(x, 1), arrivals - x + 1), 0.0)
    >>> summary = pd.DataFrame({"frequency": x, "recency": recency, "T": T,
    ...                         "monetary_value": np.where(x > 0, 20.0, 0.0)})
    >>> summary.attrs["freq"] = "W"
    >>> model = BetaGeoModel().fit(summary)
    >>> bands = clv_interval(model, 20.0, summary, horizon="52W", n_draws=100)
    >>> bool((bands["clv_lower"] <= bands["clv_upper"]).all())
    True
    """
    probabilities = _check_interval(interval)
    _check_draw_settings(n_draws, chunk_size)
    valuation = _valuation(
        transaction_model, spend_model, summary, horizon, annual_discount_rate, margin, step
    )
    columns = ["clv_lower", "clv_median", "clv_upper"]
    if n_draws == 0:
        values = np.full((len(summary), 3), np.nan)
    else:
        values = valuation.quantiles(
            probabilities, int(n_draws), random_state, int(chunk_size), progress
        )
    result = pd.DataFrame(values, index=summary.index, columns=columns, copy=False)
    result.attrs.update(_attrs(valuation))
    result.attrs.update({"interval": float(interval), "n_draws": int(n_draws)})
    result.attrs["random_state"] = random_state if isinstance(random_state, int) else None
    return result


def customer_value_table(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    *,
    horizon: str = "12M",
    annual_discount_rate: float = 0.10,
    margin: float | str | pd.Series = 1.0,
    interval: float = 0.8,
    n_draws: int = 200,
    random_state: int | np.random.Generator | None = 0,
    segments: bool = True,
    step: str | None = None,
    chunk_size: int = 20_000,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per customer: history, P(alive), expected purchases and spend, CLV with interval,
    rank, decile and RFM segment.

    Parameters
    ----------
    transaction_model, spend_model, summary, horizon, annual_discount_rate, margin, step
        As in :func:`customer_lifetime_value`.
    interval, n_draws, random_state, chunk_size, progress
        As in :func:`clv_interval`; ``n_draws=0`` leaves the interval columns empty (NaN).
    segments : bool, default True
        Add each customer's RFM segment (:func:`custval.rfm_segments`); with False the
        ``segment`` column is empty.

    Returns
    -------
    DataFrame
        Indexed like ``summary`` (customer_id), with exactly the columns ``frequency, recency, T,
        monetary_value, p_alive, expected_purchases, expected_spend, clv, clv_lower,
        clv_median, clv_upper, value_rank, value_decile, segment``:

        - ``p_alive``: probability the customer is still active at the end of observation;
        - ``expected_purchases``: expected repeat purchases over the horizon (undiscounted; for
          ``horizon="inf"`` the *discounted* expected purchases, as the undiscounted number can
          be infinite: ``attrs["expected_purchases"]`` says which);
        - ``expected_spend``: expected value of each future purchase;
        - ``clv``: as :func:`customer_lifetime_value`; ``clv_lower``/``clv_median``/
          ``clv_upper`` as :func:`clv_interval`;
        - ``value_rank``: 1 for the highest ``clv`` (ties in order of the summary);
        - ``value_decile``: 1 for the top 10% by ``clv`` ... 10 for the bottom 10%;
        - ``segment``: RFM segment name.

        For an :class:`custval.EngineSummary` (DuckDB or Spark) the table is computed in the
        engine and returned as an ``EngineSummary`` with these columns; its ``to_pandas()``
        equals the table of the collected summary (``random_state`` must be an integer).

        ``attrs``: ``freq``, ``horizon``, ``annual_discount_rate``, ``margin``, ``interval``,
        ``value_basis`` ("contribution" or "revenue") and the other terms of
        :func:`clv_interval`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from custval import BetaGeoModel, customer_value_table
    >>> rng = np.random.default_rng(0)  # BG/NBD purchasing at CDNOW's parameters, in weeks
    >>> lam, p = rng.gamma(0.243, 1 / 4.414, 3000), rng.beta(0.793, 2.426, 3000)
    >>> T = 39.0 - rng.integers(0, 84, 3000) / 7
    >>> arrivals = rng.poisson(lam * T)
    >>> x = np.minimum(arrivals, rng.geometric(p)).astype(float)
    >>> recency = np.where(x > 0, T * rng.beta(np.maximum(x, 1), arrivals - x + 1), 0.0)
    >>> summary = pd.DataFrame({"frequency": x, "recency": recency, "T": T,
    ...                         "monetary_value": np.where(x > 0, 20.0, 0.0)})
    >>> summary.attrs["freq"] = "W"
    >>> model = BetaGeoModel().fit(summary)
    >>> table = customer_value_table(model, 20.0, summary, margin=0.3, n_draws=50)
    >>> table.attrs["value_basis"], int(table["value_rank"].min())
    ('contribution', 1)
    """
    if _engines.is_engine_summary(summary):  # DuckDB/Spark: scored in the engine, in chunks
        return _engines.customer_value_table(
            transaction_model,
            spend_model,
            summary,
            segments=segments,
            horizon=horizon,
            annual_discount_rate=annual_discount_rate,
            margin=margin,
            interval=interval,
            n_draws=n_draws,
            random_state=random_state,
            step=step,
        )
    probabilities = _check_interval(interval)
    _check_draw_settings(n_draws, chunk_size)
    valuation = _valuation(
        transaction_model, spend_model, summary, horizon, annual_discount_rate, margin, step
    )
    terms = valuation.terms
    model = valuation.kernel.model
    table = pd.DataFrame(
        {c: summary[c].to_numpy(dtype=float) for c in _SUMMARY_COLUMNS}, index=summary.index
    )
    table["p_alive"] = (
        model.probability_alive(summary).to_numpy(dtype=float)
        if hasattr(model, "probability_alive")
        else np.nan
    )
    discounted = valuation.discounted_purchases()
    if math.isinf(terms.horizon):
        table["expected_purchases"] = discounted
        purchases_note = "discounted expected purchases (the horizon is infinite)"
    else:
        table["expected_purchases"] = model.expected_purchases(summary, terms.horizon).to_numpy(
            dtype=float
        )
        purchases_note = f"expected repeat purchases in the next {terms.horizon_label}"
    table["expected_spend"] = valuation.spend.point
    clv = valuation.margin * valuation.spend.point * discounted
    table["clv"] = clv
    if n_draws == 0:
        bands = np.full((len(summary), 3), np.nan)
    else:
        bands = valuation.quantiles(
            probabilities, int(n_draws), random_state, int(chunk_size), progress
        )
    table["clv_lower"] = bands[:, 0]
    table["clv_median"] = bands[:, 1]
    table["clv_upper"] = bands[:, 2]
    n = len(table)
    order = np.argsort(-clv, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    table["value_rank"] = rank
    table["value_decile"] = ((rank - 1) * 10 // max(n, 1) + 1).astype(np.int64)
    if segments:
        from custval.rfm import rfm_segments

        segment = rfm_segments(table[list(_SUMMARY_COLUMNS)])["segment"]
        # the names as strings: looked up from the categories (converting 1M objects is slow)
        names = pd.array(segment.cat.categories, dtype="str")
        table["segment"] = names.take(segment.cat.codes.to_numpy())
    else:
        table["segment"] = pd.Series(pd.NA, index=table.index, dtype="object")
    table = table[list(_TABLE_COLUMNS)]
    table.attrs.update(_attrs(valuation))
    table.attrs.update(
        {
            "interval": float(interval),
            "n_draws": int(n_draws),
            "random_state": random_state if isinstance(random_state, int) else None,
            "expected_purchases": purchases_note,
        }
    )
    return table
