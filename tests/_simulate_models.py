"""The model simulators live in :mod:`custval.datasets` (public, documented); this module
re-exports them for the benchmarks; the time-varying Pareto/NBD simulator of the dynamic-covariate
tests is here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from custval.datasets import (
    simulate_beta_geo,
    simulate_beta_geo_covariates,
    simulate_cnbd,
    simulate_gamma_gamma,
)

__all__ = [
    "simulate_beta_geo",
    "simulate_beta_geo_covariates",
    "simulate_cnbd",
    "simulate_gamma_gamma",
    "simulate_pareto_dynamic",
]


def simulate_pareto_dynamic(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    purchase: dict[str, float],
    dropout: dict[str, float],
    n: int,
    *,
    weeks: int = 52,
    horizon: int = 0,
    cohort_weeks: int = 8,
    constant: bool = False,
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Pareto/NBD customers with weekly time-varying covariates (Bachmann et al. 2021).

    Covariates per calendar week ``k`` (weeks start on 2024-01-01): ``season = sin(2 pi k /
    52)``, common to everyone, and ``mail``, a customer's 0/1 marketing contact that week
    (probability 0.3; with ``constant`` one draw per customer for all weeks, ``season`` then
    0). While alive a customer buys at rate ``lambda exp(x_k'purchase)`` and drops out at hazard
    ``mu exp(x_k'dropout)``: the dropout time solves ``mu B(tau) = E``, ``E ~ Exp(1)``, and the
    purchases are a unit-rate Poisson process in ``lambda A(t)``, mapped back through the
    piecewise-linear ``A``. First purchases fall on a uniform day of the first ``cohort_weeks``;
    times are whole days (as in a transaction log). Returns ``(transactions, covariates,
    observation_end)``; ``transactions`` runs ``horizon`` weeks past ``observation_end``.
    """
    rng = np.random.default_rng(random_state)
    total = weeks + horizon
    start = pd.Timestamp("2024-01-01")
    k = np.arange(total + 1)
    season = np.zeros(k.size) if constant else np.sin(2 * np.pi * k / 52.0)
    if constant:
        mail = np.repeat(rng.random(n)[:, None] < 0.3, k.size, axis=1).astype(float)
    else:
        mail = (rng.random((n, k.size)) < 0.3).astype(float)
    covs = {"season": np.broadcast_to(season, (n, k.size)), "mail": mail}
    eta_p = sum(c * covs[name] for name, c in purchase.items()) + np.zeros((n, k.size))
    eta_d = sum(c * covs[name] for name, c in dropout.items()) + np.zeros((n, k.size))
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    mu = rng.gamma(s, 1.0 / beta, size=n)
    first = rng.integers(0, cohort_weeks * 7, size=n)
    stop = total * 7
    owners, days = [], []
    for i in range(n):
        # knots of the piecewise-linear exposures in days since the first purchase
        edges = np.concatenate([[first[i]], np.arange((first[i] // 7 + 1) * 7, stop, 7), [stop]])
        knots = (edges - first[i]) / 7.0
        week = (edges[:-1] // 7).astype(int)
        big_a = np.concatenate([[0.0], np.cumsum(np.exp(eta_p[i, week]) * np.diff(knots))])
        big_b = np.concatenate([[0.0], np.cumsum(np.exp(eta_d[i, week]) * np.diff(knots))])
        death = np.interp(rng.exponential() / mu[i], big_b, knots, right=np.inf)
        a_end = np.interp(min(death, knots[-1]), knots, big_a)
        arrivals = np.sort(rng.uniform(0.0, lam[i] * a_end, size=rng.poisson(lam[i] * a_end)))
        times = np.interp(arrivals / lam[i], big_a, knots)
        owners.append(np.full(times.size + 1, i))
        days.append(np.concatenate([[first[i]], first[i] + np.floor(times * 7.0)]))
    owner, day = np.concatenate(owners), np.concatenate(days)
    transactions = pd.DataFrame(
        {"customer_id": owner, "timestamp": start + pd.to_timedelta(day, unit="D")}
    )
    periods = start + pd.to_timedelta(7 * k, unit="D")
    covariates = pd.DataFrame(
        {
            "customer_id": np.repeat(np.arange(n), k.size),
            "period": np.tile(periods, n),
            "season": covs["season"].ravel(),
            "mail": covs["mail"].ravel(),
        }
    )
    observation_end = str((start + pd.Timedelta(days=weeks * 7)).date())
    return transactions, covariates, observation_end
