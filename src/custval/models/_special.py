"""Differences of special functions, accurate when the parameters are large.

On a ridge of a likelihood (customers without heterogeneity: ``r, alpha -> inf`` with
``r / alpha`` fixed; ``a, b -> inf`` with ``a / (a + b)`` fixed) the model's parameters reach
1e8 and beyond. There ``gammaln(z + n) - gammaln(z)`` loses everything to cancellation
(``gammaln(1e10)`` is 2.2e11, so the difference carries an absolute error of ~1e-5 on every
row) and the optimiser then follows noise, differently on each CPU. These functions compute
the differences directly: the Stirling series of the difference for ``z >= _STIRLING``, the
plain difference below it (where it is exact to ~1e-14).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln, zeta

__all__ = ["digamma_rising", "log1p_ratio", "log_rising", "trigamma_rising"]

#: at and above this ``z`` the Stirling series with four correction terms is exact to < 1e-16
_STIRLING = 30.0


def _stirling_tail(z: np.ndarray) -> np.ndarray:
    """``log Gamma(z) - ((z - 1/2) log z - z + log(2 pi)/2)``, four terms (z >= 30)."""
    w = 1.0 / (z * z)
    return (1.0 / 12.0 + w * (-1.0 / 360.0 + w * (1.0 / 1260.0 - w / 1680.0))) / z


def _digamma_tail(z: np.ndarray) -> np.ndarray:
    """``digamma(z) - (log z - 1/(2 z))``, four terms (z >= 30)."""
    w = 1.0 / (z * z)
    return -w * (1.0 / 12.0 + w * (-1.0 / 120.0 + w * (1.0 / 252.0 - w / 240.0)))


def log_rising(z, n):
    """``log Gamma(z + n) - log Gamma(z)`` (the log of the rising factorial), for ``z > 0``,
    ``n >= 0``; broadcasts. Accurate to ~1e-15 relative to the result for any size of ``z``."""
    z, n = np.broadcast_arrays(np.asarray(z, dtype=float), np.asarray(n, dtype=float))
    out = np.empty(z.shape)
    small = z < _STIRLING
    if np.any(small):
        out[small] = gammaln(z[small] + n[small]) - gammaln(z[small])
    large = ~small
    if np.any(large):
        zl, nl = z[large], n[large]
        # (z + n - 1/2) log(z + n) - (z - 1/2) log z - n, without the cancellation
        out[large] = (
            (zl - 0.5) * np.log1p(nl / zl)
            + nl * (np.log(zl + nl) - 1.0)
            + (_stirling_tail(zl + nl) - _stirling_tail(zl))
        )
    return out if out.ndim else float(out)


def digamma_rising(z, n):
    """``digamma(z + n) - digamma(z)`` for ``z > 0``, ``n >= 0``; broadcasts; accurate for
    large ``z`` (where both digammas are ~log z and their difference ~n / z)."""
    z, n = np.broadcast_arrays(np.asarray(z, dtype=float), np.asarray(n, dtype=float))
    out = np.empty(z.shape)
    small = z < _STIRLING
    if np.any(small):
        out[small] = digamma(z[small] + n[small]) - digamma(z[small])
    large = ~small
    if np.any(large):
        zl, nl = z[large], n[large]
        out[large] = (
            np.log1p(nl / zl)
            + nl / (2.0 * zl * (zl + nl))
            + (_digamma_tail(zl + nl) - _digamma_tail(zl))
        )
    return out if out.ndim else float(out)


def _trigamma_tail(z: np.ndarray) -> np.ndarray:
    """``trigamma(z) - (1/z + 1/(2 z^2))``, four terms (z >= 30)."""
    w = 1.0 / (z * z)
    return w / z * (1.0 / 6.0 + w * (-1.0 / 30.0 + w * (1.0 / 42.0 - w / 30.0)))


def trigamma_rising(z, n):
    """``trigamma(z + n) - trigamma(z)`` for ``z > 0``, ``n >= 0``; broadcasts; accurate for
    large ``z`` (where both are ~1/z and their difference ~ -n / z^2).

    Examples
    --------
    >>> from scipy.special import polygamma
    >>> bool(abs(trigamma_rising(2.5, 3) - (polygamma(1, 5.5) - polygamma(1, 2.5))) < 1e-14)
    True
    """
    z, n = np.broadcast_arrays(np.asarray(z, dtype=float), np.asarray(n, dtype=float))
    out = np.empty(z.shape)
    small = z < _STIRLING
    if np.any(small):
        out[small] = zeta(2.0, z[small] + n[small]) - zeta(2.0, z[small])
    large = ~small
    if np.any(large):
        zl, nl = z[large], n[large]
        zn = zl + nl
        # 1/(z+n) - 1/z and 1/(2(z+n)^2) - 1/(2z^2), without the cancellation
        out[large] = (
            -nl / (zl * zn)
            - nl * (2.0 * zl + nl) / (2.0 * (zl * zn) ** 2)
            + (_trigamma_tail(zn) - _trigamma_tail(zl))
        )
    return out if out.ndim else float(out)


def log1p_ratio(alpha, t):
    """``log(alpha + t) - log(alpha) = log1p(t / alpha)``, exact for large ``alpha``."""
    return np.log1p(np.asarray(t, dtype=float) / alpha)
