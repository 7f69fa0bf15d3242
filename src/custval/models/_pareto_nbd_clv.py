"""The value kernel of the Pareto/NBD for :func:`custval.customer_lifetime_value`, reached
through ``ParetoNBDModel._value_kernel``."""

from __future__ import annotations

from typing import Any

import numpy as np

from custval._quadrature import AliveFactorKernel
from custval.models.pareto_nbd import _log_one_minus_power, _log_probability_alive

__all__ = ["ParetoNBDKernel"]


class ParetoNBDKernel(AliveFactorKernel):
    """Pareto/NBD (:mod:`custval.models.pareto_nbd`).

    Given alive at ``T``, ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~ Gamma(s, beta+T)`` are
    independent, so the purchase rate ``t`` later is ``E[lambda] E[exp(-mu t)]`` and
    ``E_alive(t) = (r+x)/(alpha+T) * (beta+T)/(s-1) [1 - ((beta+T)/(beta+T+t))^(s-1)]``
    (Hardie's note 009, eq. 41 without its P(alive) factor).
    """

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
            + _log_one_minus_power(base_log, s - 1.0)
        )
        with np.errstate(over="ignore"):
            return np.where(t > 0, np.exp(log_value), 0.0)

    def log_p_alive(self, params: np.ndarray, x: Any, t_x: Any, big_t: Any) -> np.ndarray:
        return _log_probability_alive(params, x, t_x, big_t)
