"""The value kernel of the GGom/NBD for :func:`custval.customer_lifetime_value`, reached
through ``GammaGompertzNBDModel._value_kernel``.

The discounted purchases are the model's DERT, ``P(alive) (r+x)/(alpha+T) integral_0^H
e^(-delta u) P(tau > T+u | alive at T) du`` (Bemmaor & Glady 2012, section 3; Fader, Hardie &
Lee 2005, "RFM and CLV", eq. 2), one quadrature per customer for finite and infinite
horizons alike (:func:`custval.models.gamma_gompertz_nbd._expected_purchases`).
"""

from __future__ import annotations

import numpy as np

from custval._quadrature import TabulatedKernel
from custval.models.gamma_gompertz_nbd import _expected_purchases

__all__ = ["GammaGompertzNBDKernel"]


class GammaGompertzNBDKernel(TabulatedKernel):
    """DERT at given parameters (exact integral only: ``step=`` takes the generic path)."""

    def values(self, params: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        return _expected_purchases(
            params,
            rows["frequency"],
            rows["recency"],
            rows["T"],
            self.terms.horizon,
            delta=self.terms.delta,
        )
