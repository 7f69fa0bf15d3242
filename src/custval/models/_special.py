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

from typing import Any

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


def _by_size(z: Any, n: Any, exact: Any, asymptotic: Any) -> Any:
    """``exact(z, n)`` where ``z < _STIRLING``, ``asymptotic(z, n)`` (no cancellation for
    large ``z``) elsewhere; broadcasts; a float for scalars."""
    z, n = np.broadcast_arrays(np.asarray(z, dtype=float), np.asarray(n, dtype=float))
    out = np.empty(z.shape)
    small = z < _STIRLING
    if np.any(small):
        out[small] = exact(z[small], n[small])
    large = ~small
    if np.any(large):
        out[large] = asymptotic(z[large], n[large])
    return out if out.ndim else float(out)


def _log_rising_asymptotic(z: np.ndarray, n: np.ndarray) -> np.ndarray:
    # (z + n - 1/2) log(z + n) - (z - 1/2) log z - n, without the cancellation
    return (
        (z - 0.5) * np.log1p(n / z)
        + n * (np.log(z + n) - 1.0)
        + (_stirling_tail(z + n) - _stirling_tail(z))
    )


def _digamma_rising_asymptotic(z: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.log1p(n / z) + n / (2.0 * z * (z + n)) + (_digamma_tail(z + n) - _digamma_tail(z))


def log_rising(z, n):
    """``log Gamma(z + n) - log Gamma(z)`` (the log of the rising factorial), for ``z > 0``,
    ``n >= 0``; broadcasts. Accurate to ~1e-15 relative to the result for any size of ``z``."""
    return _by_size(z, n, lambda a, b: gammaln(a + b) - gammaln(a), _log_rising_asymptotic)


def digamma_rising(z, n):
    """``digamma(z + n) - digamma(z)`` for ``z > 0``, ``n >= 0``; broadcasts; accurate for
    large ``z`` (where both digammas are ~log z and their difference ~n / z)."""
    return _by_size(z, n, lambda a, b: digamma(a + b) - digamma(a), _digamma_rising_asymptotic)


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
    return _by_size(z, n, lambda a, b: zeta(2.0, a + b) - zeta(2.0, a), _trigamma_rising_asymptotic)


def _trigamma_rising_asymptotic(z: np.ndarray, n: np.ndarray) -> np.ndarray:
    zn = z + n
    # 1/(z+n) - 1/z and 1/(2(z+n)^2) - 1/(2z^2), without the cancellation
    return (
        -n / (z * zn)
        - n * (2.0 * z + n) / (2.0 * (z * zn) ** 2)
        + (_trigamma_tail(zn) - _trigamma_tail(z))
    )


def log1p_ratio(alpha, t):
    """``log(alpha + t) - log(alpha) = log1p(t / alpha)``, exact for large ``alpha``."""
    return np.log1p(np.asarray(t, dtype=float) / alpha)
