"""The value kernel of the BG/NBD family (BG/NBD and MBG/NBD) for
:func:`custval.customer_lifetime_value`, reached through ``_BetaGeoFamily._value_kernel``.

``E[X(t) | history] = P(alive) * E_alive(t | x, T)`` (Fader, Hardie & Lee 2005, "Counting
your customers", eq. 10; Batislam et al. 2007 for MBG/NBD); the quadrature of the discounted
``E_alive`` is :mod:`custval._quadrature`'s, made fast by interpolating ``E_alive`` in
``log v``, ``v = (alpha+T)/(alpha+T+t)`` (see :meth:`BetaGeoKernel._grid_draws`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from custval._quadrature import (
    CHEB_TOL,
    EXACT_TOL,
    GL_NODES,
    GL_NODES_DRAWS,
    AliveFactorKernel,
    SpendTables,
    Terms,
    barycentric_basis,
    chebyshev_points,
    chebyshev_size,
    chebyshev_tail,
    quadrature_rule,
    sample_converged,
)
from custval._rows import unique_index
from custval.models.beta_geo import _log_dropout_odds, _purchases_if_alive, _RowIndex

__all__ = ["BetaGeoKernel"]


class BetaGeoKernel(AliveFactorKernel):
    """BG/NBD and MBG/NBD (:mod:`custval.models.beta_geo`)."""

    dedupe_customers = False  # :meth:`values` indexes the customers itself (``_RowIndex``)

    def __init__(self, model: Any, terms: Terms) -> None:
        super().__init__(model, terms)
        self.modified = bool(getattr(model, "_modified", False))

    def scale(self, params: np.ndarray) -> float:
        return float(params[1])

    def if_alive(self, params: np.ndarray, x: Any, big_t: Any, t: Any) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        value = _purchases_if_alive(params, x, big_t, t, modified=self.modified)
        return np.where(t > 0, value, 0.0)

    def log_p_alive(self, params: np.ndarray, x: Any, t_x: Any, big_t: Any) -> np.ndarray:
        odds = _log_dropout_odds(params, x, t_x, big_t, modified=self.modified)
        return -np.logaddexp(0.0, odds)

    def values(self, params: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        """Per row: P(alive) (:class:`custval.models.beta_geo._RowIndex`, the model's own
        computation) times the exact discounted purchases given alive per ``(x, T)`` pair."""
        index = _RowIndex(rows["frequency"], rows["recency"], rows["T"])
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
        with ``h_x(y)`` interpolated to the rounding level of its formula (``EXACT_TOL``,
        checked on the interpolant's last coefficients). Directly where that saves nothing or
        does not converge within 64 points (``a`` near 1, very large ``a`` and ``b``)."""
        if len(x) == 0:
            return np.empty(0)
        t_rule, w_rule = quadrature_rule(self.terms, self.scale(params), GL_NODES)
        alpha = float(params[1])
        x_u, x_of_pair = unique_index(x)
        t_u, t_of_pair = unique_index(big_t)
        y = np.log(alpha + t_u)[:, None] - np.log(alpha + t_u[:, None] + t_rule[None, :])
        y_lo, y_hi = float(y.min()), float(y.max())
        half = (y_hi - y_lo) / 2.0
        k = chebyshev_size(half, EXACT_TOL) if half > 1e-12 else 64
        sample = None
        if len(x) * len(t_rule) > 2 * len(x_u) * k:  # else the quadrature itself is as cheap

            def h(at: np.ndarray) -> np.ndarray:
                return self._if_alive_at_log_v(params, x_u, at)

            sample = sample_converged(h, y_lo, half, k, EXACT_TOL)
        if sample is None:
            return self.discounted_if_alive(params, x, big_t)
        nodes, weights, values = sample
        basis = barycentric_basis((y.ravel() - y_lo) / half - 1.0, nodes, weights)
        to_nodes = np.einsum("tik,i->tk", basis.reshape(len(t_u), len(t_rule), -1), w_rule)
        return np.einsum("pk,pk->p", to_nodes[t_of_pair], values[x_of_pair])

    def prepare_draws(
        self, thetas: np.ndarray, rows: dict[str, np.ndarray], spend: SpendTables | None = None
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
           draws, as in :class:`ChebyshevOverT`) is ``sum_i w_i h_x(y_ij)``, a fixed linear map
           of those values (barycentric interpolation in ``y``);
        3. (:func:`_interpolate_pairs`) each pair is interpolated over ``T`` from the ``T_j``.

        Accuracy: ``CHEB_TOL`` per interpolation plus the ``GL_NODES_DRAWS`` quadrature, below
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
        k_t = chebyshev_size(half, CHEB_TOL)
        while True:  # more points over T if the grid is not resolved (e.g. very large a, b)
            nodes, weights = chebyshev_points(k_t)
            t_nodes = np.clip(np.exp(s_lo + (nodes + 1.0) * half) - c, t_lo, t_hi)
            grid = self._grid_at(thetas, x_u, t_nodes)
            resolved = chebyshev_tail(np.moveaxis(grid, 1, 2).reshape(-1, k_t)) <= CHEB_TOL
            if resolved or k_t >= 64:
                break
            k_t = min(64, 2 * k_t)
        basis_t = barycentric_basis((np.log(c + t_u) - s_lo) / half - 1.0, nodes, weights)
        return grid, basis_t

    def _grid_at(self, thetas: np.ndarray, x_u: np.ndarray, t_nodes: np.ndarray) -> np.ndarray:
        """Discounted purchases given alive at ``(x_u, t_nodes)`` for every draw, shape
        ``(len(x_u), len(t_nodes), n_draws)``: steps 1 and 2 of :meth:`_grid_draws`."""
        n_draws, n_x, k_t = len(thetas), len(x_u), len(t_nodes)
        alphas = thetas[:, 1]
        t_rule, w_rule = quadrature_rule(self.terms, float(alphas.min()), GL_NODES_DRAWS)
        # y = log v at every (draw, T node, time node); all < 0
        base = alphas[:, None, None] + t_nodes[None, :, None]
        y = np.log(base) - np.log(base + t_rule[None, None, :])
        y_lo, y_hi = y.min(axis=(1, 2)), y.max(axis=(1, 2))
        y_half = (y_hi - y_lo) / 2.0
        grid = np.empty((n_x, k_t, n_draws))
        for d, theta in enumerate(thetas):
            sample = None
            if y_half[d] > 1e-12:
                k_y = chebyshev_size(float(y_half[d]), CHEB_TOL)

                def h(at: np.ndarray, theta: np.ndarray = theta) -> np.ndarray:
                    return self._if_alive_at_log_v(theta, x_u, at)

                sample = sample_converged(h, float(y_lo[d]), float(y_half[d]), k_y, CHEB_TOL)
            if sample is None:  # one y only, or h_x not resolved: the quadrature itself
                at_nodes = self.discounted_if_alive(
                    theta, np.repeat(x_u, k_t), np.tile(t_nodes, n_x), GL_NODES_DRAWS
                )
                grid[:, :, d] = at_nodes.reshape(n_x, k_t)
                continue
            nodes, weights, values = sample
            points = (y[d].ravel() - y_lo[d]) / y_half[d] - 1.0
            basis_y = barycentric_basis(points, nodes, weights).reshape(k_t, -1, len(nodes))
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
