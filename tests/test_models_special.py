"""The cancellation-free differences of special functions against 50-digit arithmetic."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from custval.models._special import digamma_rising, log_rising

mpmath.mp.dps = 50
Z = [1e-13, 0.01, 0.5, 3.0, 29.999, 30.0, 31.0, 100.0, 1e3, 1e6, 1e10, 1e13]
N = [0.0, 1.0, 2.0, 5.0, 30.0, 100.0, 1e4, 1e7]


@pytest.mark.parametrize("z", Z)
def test_log_rising_and_digamma_rising_are_exact(z: float) -> None:
    z_mp = mpmath.mpf(z)
    exact_log = [float(mpmath.loggamma(z_mp + n) - mpmath.loggamma(z_mp)) for n in N]
    exact_psi = [float(mpmath.digamma(z_mp + n) - mpmath.digamma(z_mp)) for n in N]
    np.testing.assert_allclose(log_rising(z, np.array(N)), exact_log, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(digamma_rising(z, np.array(N)), exact_psi, rtol=1e-13, atol=1e-300)


def test_plain_differences_would_fail_on_a_ridge() -> None:
    """Why the module exists: at r = 1e10 the plain difference carries a visible error."""
    from scipy.special import gammaln

    r, x = 1e10, 3.0
    exact = float(mpmath.loggamma(mpmath.mpf(r) + x) - mpmath.loggamma(mpmath.mpf(r)))
    assert abs((gammaln(r + x) - gammaln(r)) - exact) > 1e-7
    assert log_rising(r, x) == pytest.approx(exact, rel=1e-14)
