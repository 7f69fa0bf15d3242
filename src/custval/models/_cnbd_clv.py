"""The value kernel of BG/CNBD-k and MBG/CNBD-k for :func:`custval.customer_lifetime_value`,
reached through ``_CNBDFamily._value_kernel``.

The discounted purchases are the generic quadrature of ``E[X(T, T+t) | history]``
(:class:`custval._quadrature.ExpectedPurchasesKernel`), with the conditional expectation of
every quadrature time computed in one vectorized call of the exact series (Reutterer, Platzer
& Schröder 2021; :func:`custval.models.bg_cnbd._future_series`) instead of one public
``expected_purchases`` call per time.
"""

from __future__ import annotations

import numpy as np

from custval._quadrature import ExpectedPurchasesKernel
from custval.models.bg_cnbd import _future_series, _posterior_phases

__all__ = ["CNBDKernel"]


class CNBDKernel(ExpectedPurchasesKernel):
    """``E[X(T, T+t) | x, t_x, T]`` at all quadrature times at once (finite horizons)."""

    def expected_at(
        self, params: np.ndarray, rows: dict[str, np.ndarray], times: np.ndarray
    ) -> np.ndarray:
        """Shape ``(n_rows, len(times))``: ``P(alive) * sum_j P(J=j | alive) ...`` as in
        :func:`custval.models.bg_cnbd._conditional`, over every (row, time) pair."""
        r, alpha, a, b = (float(v) for v in params)
        k = int(self.model.k_)
        m = 1.0 if self.model._modified else 0.0
        x, t_x, big_t = rows["frequency"], rows["recency"], rows["T"]
        alive, phases = _posterior_phases(params, k, x, t_x, big_t, m)
        n_times = len(times)
        x_rep, t_rep = np.repeat(x, n_times), np.repeat(big_t, n_times)
        t_all = np.tile(np.asarray(times, dtype=float), len(x))
        z = np.where(t_all > 0, t_all / (alpha + t_rep + t_all), 0.0)
        expected, _ = _future_series(
            r + k * x_rep, z, k, a, b + x_rep + m, 0.0, np.repeat(phases, n_times, axis=0)
        )
        return (np.repeat(alive, n_times) * expected).reshape(len(x), n_times)
