"""Log-space Gauss-Legendre quadrature shared by the models (Pareto/NBD, sBG, GGom/NBD)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["GL256", "QUAD_DROP", "concave_log_quadrature", "gauss_legendre"]

QUAD_DROP = 44.0  # keep the part of a concave log-integrand within e^-44 of its maximum
NEWTON_STEPS = 12


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]."""
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


GL256 = gauss_legendre(256)  # long intervals with exponential tails (predictions only)


def concave_log_quadrature(
    log_f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    slope: Callable[[np.ndarray, np.ndarray], np.ndarray],
    lo: np.ndarray,
    hi: np.ndarray,
    peak: np.ndarray,
    nodes: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log integral_lo^hi exp(log_f(v)) dv`` for log-concave integrands, row-wise.

    ``log_f(v, rows)`` and ``slope(v, rows)`` evaluate the log-integrand and its derivative at
    ``v`` (shape ``(k,)`` or ``(k, n_nodes)``) for the rows ``rows``; ``peak`` is the maximiser
    on ``[lo, hi]``. The interval is first narrowed to where the integrand is within
    ``e^-QUAD_DROP`` of its maximum (Newton's method on a concave function from the outside
    converges monotonically without overshooting), then integrated by Gauss-Legendre.

    Returns the log-integral, the nodes ``(n_rows, n_nodes)`` and the normalized weights of the
    nodes in the integral (summing to one per row), for integrals of ``g exp(log_f)``.
    """
    rows = np.arange(lo.shape[0])
    top = log_f(peak, rows)
    target = top - QUAD_DROP
    left, right = lo.copy(), hi.copy()
    with np.errstate(all="ignore"):
        for end, step_sign in ((left, 1.0), (right, -1.0)):
            far = log_f(end, rows) < target
            if not np.any(far):
                continue
            v = end[far]
            sub = rows[far]
            for _ in range(NEWTON_STEPS):
                gap = target[far] - log_f(v, sub)
                d = slope(v, sub)
                step = np.where((gap > 0) & (step_sign * d > 0), gap / d, 0.0)
                v = v + step
            end[far] = np.where(np.isfinite(v), v, end[far])
        width = np.maximum(right - left, 0.0)
        x, w = nodes
        v = left[:, None] + width[:, None] * x[None, :]
        log_w = log_f(v, rows) - top[:, None]
        weights = w[None, :] * np.exp(log_w)
        total = weights.sum(axis=1)
        log_integral = top + np.log(width) + np.log(total)
        weights = weights / np.where(total > 0, total, 1.0)[:, None]
    log_integral = np.where(width > 0, log_integral, -np.inf)
    return log_integral, v, weights
