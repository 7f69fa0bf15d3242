"""Shared machinery of the value kernels: time quadrature of the discounted purchases,
Chebyshev interpolation, and the kernel protocol through which
:func:`custval.customer_lifetime_value` reaches a transaction model.

The model contract (README "Design notes")
------------------------------------------
``clv`` never imports a model module. It asks the transaction model for its kernel through one
hook, ``model._value_kernel(terms) -> Kernel | None`` (``terms``: :class:`Terms`, the unit,
horizon and discount rate); a model without the hook, or whose hook returns None, is valued by
:class:`ExpectedPurchasesKernel`, the exact quadrature of its public
``expected_purchases(summary, t)`` (finite horizons). A model that cannot value purchases
(subscriptions, discrete opportunities) raises :class:`custval.errors.DataError` from its hook
with the reason. Kernels derive from :class:`Kernel` (``values`` at given parameters, and the
per-draw tables for intervals); models with ``E[X(t) | history] = P(alive) E_alive(t)`` derive
from :class:`AliveFactorKernel` and define ``scale``, ``if_alive`` and ``log_p_alive`` only.

The CLV quadrature rule is written once, in :func:`quadrature_rule`: points ``t_i`` and weights
``w_i`` with ``sum_i w_i E(t_i) = integral_0^H exp(-delta t) dE(t)`` for any ``E`` with
``E(0) = 0`` (by parts, see :mod:`custval.clv`), or the grid sum of ``step=``, or the
undiscounted ``E(H)``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from custval._rows import compress_rows
from custval.errors import DataError

__all__ = [
    "AliveFactorKernel",
    "ChebyshevOverT",
    "CovariateKernel",
    "ExpectedPurchasesKernel",
    "Kernel",
    "ProfileKernel",
    "SpendTables",
    "TabulatedKernel",
    "Terms",
    "barycentric_basis",
    "chebyshev_points",
    "chebyshev_size",
    "chebyshev_tail",
    "discounted_integral",
    "model_name",
    "quadrature_rule",
    "sample_converged",
    "time_nodes",
    "unique_rows",
]

GL_NODES = 8  # Gauss-Legendre nodes per panel (finite horizons); error < 1e-12
GL_NODES_DRAWS = 5  # for parameter draws; error < 1e-6, far below the draws' own noise
LOG_STEP = 0.3  # trapezoid step in log t (infinite horizon)
CHEB_TOL = 1e-7  # accuracy of the Chebyshev interpolation over T (draws only; their noise ~1e-2)
EXACT_TOL = 1e-13  # interpolation of E_alive in log v for point values: at rounding level

#: the spend per purchase ``A(x) + B(x) * spend_key`` at every draw: ``(x_unique, A, B)``
SpendTables = tuple[np.ndarray, np.ndarray, np.ndarray]

GAUSS_LEGENDRE = {n: np.polynomial.legendre.leggauss(n) for n in (GL_NODES, GL_NODES_DRAWS)}


@dataclass(frozen=True)
class Terms:
    freq: str
    horizon: float  # in periods of freq; math.inf for an infinite horizon
    horizon_label: str
    annual_rate: float
    rate_per_period: float
    delta: float  # continuously compounded rate per period
    step: float | None  # grid step in periods, None for the exact integral
    step_label: str | None


def model_name(model: Any) -> str:
    name = getattr(model, "_display_name", "") or type(model).__name__
    return name


def time_nodes(
    scale: float, horizon: float, delta: float, nodes_per_panel: int = GL_NODES
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ``integral_0^horizon f(t) dt`` (finite) or of
    ``integral_0^inf f(t) dt`` (infinite; weights include the Jacobian of ``t = e^y``)."""
    if math.isinf(horizon):
        low = math.log(1e-6 * scale)
        high = math.log(50.0 / delta)
        y = np.arange(low, high + LOG_STEP, LOG_STEP)
        t = np.exp(y)
        return t, LOG_STEP * t
    edges = [0.0]
    edge = scale
    while edge < horizon:
        edges.append(edge)
        edge = min(4.0 * edge, edge + 2.0 / delta) if delta > 0 else 4.0 * edge
    edges.append(horizon)
    e = np.asarray(edges)
    lo, hi = e[:-1, None], e[1:, None]
    gl_x, gl_w = GAUSS_LEGENDRE[nodes_per_panel]
    t = (lo + (hi - lo) * (gl_x + 1.0) / 2.0).ravel()
    w = ((hi - lo) * gl_w / 2.0).ravel()
    return t, w


def quadrature_rule(
    terms: Terms, scale: float, nodes_per_panel: int
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``t_i`` and weights ``w_i`` with ``sum_i w_i E(t_i)`` equal to what
    :func:`discounted_integral` computes for a function ``E`` with ``E(0) = 0``: the quadrature
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
    t, w = time_nodes(scale, horizon, delta, nodes_per_panel)
    weights = delta * w * np.exp(-delta * t)
    if math.isfinite(horizon):
        t = np.append(t, horizon)
        weights = np.append(weights, math.exp(-delta * horizon))
    return t, weights


def discounted_integral(
    if_alive: Callable[[np.ndarray, np.ndarray, Any], np.ndarray],
    x: np.ndarray,
    big_t: np.ndarray,
    terms: Terms,
    scale: float,
    nodes_per_panel: int = GL_NODES,
) -> np.ndarray:
    """``integral_0^H exp(-delta t) dE_alive(t)`` for each (x, T), by parts (module docstring).

    ``if_alive(x, T, t)`` broadcasts; with ``terms.step`` set, the grid sum instead.
    """
    t, weights = quadrature_rule(terms, scale, nodes_per_panel)
    out = np.empty(len(x))
    block = max(1, 2_000_000 // len(t))  # bound memory: block x n_nodes values at a time
    for start in range(0, len(x), block):
        sl = slice(start, start + block)
        out[sl] = np.einsum("ij,j->i", if_alive(x[sl, None], big_t[sl, None], t[None, :]), weights)
    return out


def chebyshev_size(half_width: float, tol: float, most: int = 64) -> int:
    """Chebyshev points giving ``tol`` for a function analytic in the strip ``|Im s| < pi``
    around an interval of ``half_width`` (Bernstein ellipse ``rho = pi/h + sqrt((pi/h)^2 + 1)``
    after mapping the interval to ``[-1, 1]``), with two points to spare; 8 to ``most``."""
    ratio = math.pi / half_width
    rho = ratio + math.sqrt(ratio * ratio + 1.0)
    return int(min(most, max(8, math.ceil(-math.log(tol) / math.log(rho)) + 2)))


def chebyshev_points(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev points of the first kind on ``[-1, 1]`` and their barycentric weights."""
    j = np.arange(k)
    angle = (2 * j + 1) * math.pi / (2 * k)
    return np.cos(angle), (-1.0) ** j * np.sin(angle)


def barycentric_basis(s: np.ndarray, nodes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Matrix ``B`` with ``f(s) = B @ f(nodes)`` for the interpolating polynomial (rows: ``s``)."""
    diff = s[:, None] - nodes[None, :]
    hit = np.abs(diff) < 1e-14
    diff[hit] = 1.0
    basis = weights[None, :] / diff
    basis /= basis.sum(axis=1, keepdims=True)
    rows = hit.any(axis=1)
    basis[rows] = hit[rows]  # s exactly at a node: that node's value
    return basis


def chebyshev_tail(values: np.ndarray) -> float:
    """Size of the last three Chebyshev coefficients of the interpolants through ``values``
    (rows) at :func:`chebyshev_points`, relative to each row's largest value: near rounding
    level once the interpolation has converged, large for functions it cannot follow."""
    k = values.shape[-1]
    angle = (2 * np.arange(k) + 1) * math.pi / (2 * k)
    last = np.cos(np.outer(np.arange(max(k - 3, 0), k), angle)) * (2.0 / k)
    with np.errstate(all="ignore"):
        tail = np.abs(np.einsum("xk,jk->xj", values, last)).max(axis=1)
        ratio = tail / np.abs(values).max(axis=1)
    ratio = np.where(tail == 0.0, 0.0, ratio)
    return float(ratio.max()) if np.all(np.isfinite(ratio)) else math.inf


def sample_converged(
    function: Callable[[np.ndarray], np.ndarray], lo: float, half: float, k: int, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``function`` (rows of values at given points) at ``k`` Chebyshev points of
    ``[lo, lo + 2 half]``, doubling ``k`` (at most 64) until :func:`chebyshev_tail` is below
    ``tol``: the points mapped to ``[-1, 1]``, their barycentric weights and the values; None
    if it does not converge."""
    while True:
        nodes, weights = chebyshev_points(k)
        values = function(lo + (nodes + 1.0) * half)
        if chebyshev_tail(values) <= tol:
            return nodes, weights, values
        if k >= 64:
            return None
        k = min(64, 2 * k)


class ChebyshevOverT:
    """Values of ``function(x, T)`` at many (x, T) pairs by Chebyshev interpolation in
    ``s = log(scale + T)``, for each frequency separately.

    The discounted purchases given alive are analytic in ``s`` within ``|Im s| < pi`` (their
    singularities sit at negative ``scale + T``), so interpolation at Chebyshev points of the
    first kind converges geometrically; the number of points ``k`` is chosen from that strip for
    ``CHEB_TOL`` accuracy at the smallest ``scale`` given. Used for the parameter draws, where
    exact quadrature at every distinct (x, T) would dominate the run time. Frequencies with at
    most ``k`` distinct ``T`` are evaluated exactly instead.
    """

    def __init__(self, x: np.ndarray, big_t: np.ndarray, min_scale: float) -> None:
        self.x, self.big_t = x, big_t
        self.t_lo, self.t_hi = float(big_t.min()), float(big_t.max())
        self.k = 0
        if self.t_hi - self.t_lo > 1e-9 * (min_scale + self.t_hi):
            half = math.log((min_scale + self.t_hi) / (min_scale + self.t_lo)) / 2.0
            self.k = chebyshev_size(half, CHEB_TOL)
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
            self.nodes, self.weights = chebyshev_points(k)
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
        basis = barycentric_basis(s, self.nodes, self.weights)
        # row-wise dot products (einsum: no BLAS call, whose threads stall on a busy machine)
        values[self.by_grid] = np.einsum("ij,ij->i", basis[self.t_index], grid[self.grid_row])
        return values


class Kernel:
    """Discounted expected purchases of a transaction model at given parameters.

    ``values(params, rows)`` returns ``integral exp(-delta t) dE[X(t) | history]`` per row
    (``rows`` holds arrays ``frequency``, ``recency``, ``T``). For parameter draws,
    ``prepare_draws(thetas, rows)`` is called once with every row, then
    ``values_draws(thetas, rows_slice)`` per chunk returns shape ``(n_rows_in_slice, n_draws)``.

    A kernel whose value depends on more than a row's ``(frequency, recency, T)`` (e.g. a
    covariate path per customer) defines ``customer_rows(summary) -> array``, a key per summary
    row; the rows it gets then carry that key as ``customer`` and are distinct by it.
    """

    #: whether :meth:`values` should get the distinct customer patterns rather than every
    #: customer (False where the per-customer work is as cheap as finding the patterns)
    dedupe_customers: bool = True

    def __init__(self, model: Any, terms: Terms) -> None:
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


class AliveFactorKernel(Kernel):
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
        nodes_per_panel: int = GL_NODES,
    ) -> np.ndarray:
        def if_alive(xx: Any, tt: Any, t: Any) -> np.ndarray:
            return self.if_alive(params, xx, tt, t)

        return discounted_integral(
            if_alive, x, big_t, self.terms, self.scale(params), nodes_per_panel
        )

    def values(self, params: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        pairs, inverse = unique_rows({"frequency": rows["frequency"], "T": rows["T"]})
        discounted = self.discounted_if_alive(params, pairs["frequency"], pairs["T"])[inverse]
        log_alive = self.log_p_alive(params, rows["frequency"], rows["recency"], rows["T"])
        return np.exp(log_alive) * discounted

    def prepare_draws(
        self, thetas: np.ndarray, rows: dict[str, np.ndarray], spend: SpendTables | None = None
    ) -> None:
        """Tables for :meth:`values_draws` and :meth:`value_draws`.

        ``spend``: ``(x_unique, A, B)``, the spend per purchase ``A(x) + B(x) * spend_key`` at
        every draw (``A``, ``B`` of shape ``(len(x_unique), n_draws)``), folded into the pair
        table (``DE * A`` and ``DE * B``); None for a fixed spend, ``spend_key`` itself.
        """
        self._rows = rows
        pairs, self._pair_of_row = unique_rows({"frequency": rows["frequency"], "T": rows["T"]})
        x, big_t = pairs["frequency"], pairs["T"]
        table = np.empty((len(x), len(thetas)))
        scales = [self.scale(theta) for theta in thetas]
        interpolate = ChebyshevOverT(x, big_t, min(scales))
        for d, theta in enumerate(thetas):

            def function(xx: np.ndarray, tt: np.ndarray, theta: np.ndarray = theta) -> np.ndarray:
                return self.discounted_if_alive(theta, xx, tt, GL_NODES_DRAWS)

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


class TabulatedKernel(Kernel):
    """A kernel whose draws are :meth:`values` at every draw over all rows, evaluated once
    (for models without a per-draw table of their own); memory grows with ``n_rows * n_draws``
    float32 values."""

    def prepare_draws(self, thetas: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        self._table = np.empty((len(rows["frequency"]), len(thetas)), dtype=np.float32)
        for d, theta in enumerate(thetas):
            self._table[:, d] = self.values(theta, rows)

    def values_draws(self, thetas: np.ndarray, sl: slice) -> np.ndarray:
        return self._table[sl].copy()


class ExpectedPurchasesKernel(TabulatedKernel):
    """Any other model: quadrature of its public ``expected_purchases`` (finite horizons)."""

    def __init__(self, model: Any, terms: Terms) -> None:
        super().__init__(model, terms)
        if math.isinf(terms.horizon):
            raise DataError(
                f"horizon='inf' needs a closed form for the discounted future purchases, which "
                f"the {model_name(model)} does not provide through a value kernel (BG/NBD, "
                "MBG/NBD, Pareto/NBD and GGom/NBD do); give a finite horizon such as '36M'"
            )
        if not hasattr(model, "expected_purchases"):
            raise DataError(
                f"{model_name(model)} has no expected_purchases(summary, t) method, so it "
                "cannot value customers; use a transaction model such as BetaGeoModel, "
                "ModifiedBetaGeoModel or ParetoNBDModel"
            )

    def expected_at(
        self, params: np.ndarray, rows: dict[str, np.ndarray], times: np.ndarray
    ) -> np.ndarray:
        """``E[X(t) | history]`` of every row at every time of ``times``, shape
        ``(n_rows, len(times))``: one call of the public ``expected_purchases`` per time (a
        model's kernel may override this with one vectorized call)."""
        model = copy.copy(self.model)
        model.params_ = pd.Series(params, index=self.names, name="estimate")
        frame = pd.DataFrame(
            {"frequency": rows["frequency"], "recency": rows["recency"], "T": rows["T"]}
        )
        frame.attrs["freq"] = self.terms.freq
        out = np.empty((len(frame), len(times)))
        for j, t in enumerate(times):
            out[:, j] = model.expected_purchases(frame, float(t)).to_numpy(dtype=float)
        return out

    def scale(self, params: np.ndarray) -> float:
        """Time scale of the first quadrature panel: ``H / 256`` (nothing is known of the
        model's own scale; a model's kernel may give it)."""
        return self.terms.horizon / 256.0

    def values(self, params: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        """:func:`quadrature_rule` applied to :meth:`expected_at`."""
        t, weights = quadrature_rule(self.terms, self.scale(params), GL_NODES)
        return np.einsum("ij,j->i", self.expected_at(params, rows, t), weights)


class ProfileKernel(TabulatedKernel):
    """A model with discrete covariates: within a covariate profile the customers follow the
    model without covariates at the profile's parameters (``model._profile_params``), so each
    profile is valued by that plain model's own kernel (closed forms, any horizon).

    For parameter draws, every draw is mapped to each profile's parameters and each profile's
    kernel tabulates its rows; the table is ``n_rows * n_draws`` float32 values.
    """

    #: the most profiles valued this way (one plain kernel each); more go to
    #: :class:`CovariateKernel`
    MAX_PROFILES = 64

    def __init__(self, model: Any, terms: Terms, profiles: pd.DataFrame) -> None:
        super().__init__(model, terms)
        self.profiles = profiles.reset_index(drop=True)
        self.base_names = [n for n in self.names if ":" not in n]

    @classmethod
    def applies(cls, model: Any, profiles: pd.DataFrame) -> bool:
        """Whether ``model`` maps profiles to plain parameters (and there are few profiles)."""
        hook = getattr(model, "_profile_params", None)
        return (
            callable(hook)
            and len(profiles) <= cls.MAX_PROFILES
            and hook(model.params_.to_numpy(dtype=float), profiles.iloc[:1]) is not None
        )

    def _plain_kernel(self, params: np.ndarray) -> Kernel:
        """The kernel of the model without covariates at ``params`` (its own, or the generic
        quadrature of its ``expected_purchases``)."""
        plain = type(self.model).from_params(
            **dict(zip(self.base_names, (float(v) for v in params), strict=True)),
            freq=self.terms.freq,
        )
        hook = getattr(plain, "_value_kernel", None)
        kernel = hook(self.terms) if callable(hook) else None
        return kernel if kernel is not None else ExpectedPurchasesKernel(plain, self.terms)

    def _groups(self, rows: dict[str, np.ndarray]) -> list[tuple[int, np.ndarray]]:
        profile = rows["profile"].astype(np.int64)
        return [(int(g), np.flatnonzero(profile == g)) for g in np.unique(profile)]

    def values(self, params: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        by_profile = self.model._profile_params(params, self.profiles)
        out = np.empty(len(rows["frequency"]))
        for g, where in self._groups(rows):
            kernel = self._plain_kernel(by_profile[g])
            out[where] = kernel.values(by_profile[g], {k: v[where] for k, v in rows.items()})
        return out

    def prepare_draws(self, thetas: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        by_profile = np.stack([self.model._profile_params(t, self.profiles) for t in thetas])
        self._table = np.empty((len(rows["frequency"]), len(thetas)), dtype=np.float32)
        for g, where in self._groups(rows):
            thetas_g = by_profile[:, g, :]
            kernel = self._plain_kernel(thetas_g[0])
            kernel.prepare_draws(thetas_g, {k: v[where] for k, v in rows.items()})
            self._table[where] = kernel.values_draws(thetas_g, slice(0, len(where)))


class CovariateKernel(ExpectedPurchasesKernel):
    """A model with covariates: quadrature of its public ``expected_purchases(summary, t,
    customers=...)``, each row with its covariate profile.

    ``profiles`` holds one row per distinct covariate profile (the model's covariate columns,
    as the customer table gives them); the kernel's rows carry ``profile``, the position of
    each row's profile. The covariates enter only through the model's own predictions, so a
    model with all coefficients zero is valued as the model without covariates. An infinite
    horizon is taken by the trapezoid rule in ``log t`` of :func:`time_nodes` on ``[1e-8 /
    delta, 50 / delta]``: the discounted purchases of the first ``1e-8 / delta`` periods are
    below ``1e-8`` of the total for any model with a finite purchase rate.
    """

    def __init__(self, model: Any, terms: Terms, profiles: pd.DataFrame) -> None:
        if not hasattr(model, "expected_purchases"):
            raise DataError(
                f"{model_name(model)} has no expected_purchases(summary, t, customers=...) "
                "method, so it cannot value customers"
            )
        Kernel.__init__(self, model, terms)
        self.profiles = profiles.reset_index(drop=True)

    def scale(self, params: np.ndarray) -> float:
        if math.isinf(self.terms.horizon):
            return 1e-2 / self.terms.delta
        return super().scale(params)

    def _frames(self, rows: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The summary and covariate frames of ``rows`` (cached: every draw and quadrature
        time reads the same rows)."""
        key = id(rows["frequency"])
        if getattr(self, "_frames_key", None) != key:
            frame = pd.DataFrame(
                {"frequency": rows["frequency"], "recency": rows["recency"], "T": rows["T"]}
            )
            frame.attrs["freq"] = self.terms.freq
            positions = rows["profile"].astype(np.int64)
            customers = self.profiles.iloc[positions].set_axis(frame.index)
            self._frames_key, self._frames_value = key, (frame, customers)
        return self._frames_value

    def expected_at(
        self, params: np.ndarray, rows: dict[str, np.ndarray], times: np.ndarray
    ) -> np.ndarray:
        model = copy.copy(self.model)
        model.params_ = pd.Series(params, index=self.names, name="estimate")
        frame, customers = self._frames(rows)
        out = np.empty((len(frame), len(times)))
        for j, t in enumerate(times):
            values = model.expected_purchases(frame, float(t), customers=customers)
            out[:, j] = values.to_numpy(dtype=float)
        return out

    def prepare_draws(self, thetas: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        """Every draw's values over all rows, with :data:`GL_NODES_DRAWS` nodes per panel
        (error below 1e-6, far below the draws' own spread)."""
        self._table = np.empty((len(rows["frequency"]), len(thetas)), dtype=np.float32)
        t, weights = quadrature_rule(self.terms, self.scale(thetas[0]), GL_NODES_DRAWS)
        for d, theta in enumerate(thetas):
            self._table[:, d] = np.einsum("ij,j->i", self.expected_at(theta, rows, t), weights)


def unique_rows(columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Distinct rows of equal-length columns and the index rebuilding them (hash-based, O(n))."""
    n = len(next(iter(columns.values())))
    rows, _, inverse = compress_rows(columns, np.ones(n))
    return {k: np.asarray(v, dtype=float) for k, v in rows.items()}, inverse
