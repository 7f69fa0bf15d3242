"""Seeded simulators of the BG/NBD, MBG/NBD and Gamma-Gamma processes (ground truth for tests).

Vectorised: a customer's purchases while alive form a Poisson process of rate ``lambda``, so the
count in ``(0, T]`` is Poisson; the purchase after which they drop out is geometric; given ``N``
arrivals in ``(0, T]`` the ``x``-th arrival time is ``T`` times a ``Beta(x, N - x + 1)`` variable
(order statistic of uniforms). Used by the model tests and by ``benchmarks/bench_models.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_beta_geo(
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: np.ndarray,
    *,
    future: float = 0.0,
    modified: bool = False,
    random_state: int = 0,
) -> pd.DataFrame:
    """Simulate BG/NBD (or MBG/NBD with ``modified=True``) customers observed for ``T``.

    Returns ``frequency, recency, T`` plus, over the following ``future`` periods,
    ``purchases_future`` (repeat purchases in ``(T, T+future]``), ``alive_T`` and
    ``alive_future`` (alive at ``T`` and at ``T + future``).
    """
    rng = np.random.default_rng(random_state)
    big_t = np.asarray(T, dtype=float)
    n = big_t.shape[0]
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    # the purchase (counted from 1; from 0 = the first purchase for MBG/NBD) after which the
    # customer drops out
    death_at = rng.geometric(p) - (1 if modified else 0)
    n_now = rng.poisson(lam * big_t)
    n_future = rng.poisson(lam * future)
    x = np.minimum(n_now, death_at)
    t_x = np.zeros(n)
    repeat = x > 0
    t_x[repeat] = big_t[repeat] * rng.beta(x[repeat], n_now[repeat] - x[repeat] + 1)
    total = np.minimum(n_now + n_future, death_at)
    return pd.DataFrame(
        {
            "frequency": x.astype(float),
            "recency": t_x,
            "T": big_t,
            "purchases_future": (total - x).astype(float),
            "alive_T": n_now < death_at,
            "alive_future": n_now + n_future < death_at,
        }
    )


def simulate_gamma_gamma(
    p: float, q: float, gamma: float, frequency: np.ndarray, *, random_state: int = 0
) -> np.ndarray:
    """Average value of ``frequency`` transactions per customer under the Gamma-Gamma model.

    ``nu ~ Gamma(q, rate gamma)``; each transaction is ``Gamma(p, rate nu)``, so the mean of ``x``
    of them is ``Gamma(p x, rate nu x)``. Customers with frequency 0 get 0.
    """
    rng = np.random.default_rng(random_state)
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1.0 / gamma, size=x.shape[0])
    spend = np.zeros(x.shape[0])
    repeat = x > 0
    spend[repeat] = rng.gamma(p * x[repeat], 1.0 / (nu[repeat] * x[repeat]))
    return spend
