"""The model simulators live in :mod:`custval.datasets` (public, documented); this module
re-exports them for the benchmarks; the time-varying Pareto/NBD simulator of the dynamic-covariate
tests, the GGom/NBD covariate, the continuous-covariate Pareto/NBD and GGom/NBD and the sBG/BdW
cohort-covariate simulators are here."""

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
    "simulate_cohort_covariates",
    "simulate_continuous_covariates",
    "simulate_gamma_gamma",
    "simulate_ggom_covariates",
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


def simulate_ggom_covariates(
    r: float,
    alpha: float,
    b: float,
    s: float,
    beta: float,
    purchase: dict[str, float],
    dropout: dict[str, float],
    n: int,
    *,
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GGom/NBD customers with static covariates (CLVTools' ``ggomnbd`` parametrisation).

    Covariates: ``vip`` (boolean, one-hot ``vip[True]``) and ``channel`` in ``direct,
    referral, social`` (``channel[referral]``, ``channel[social]``). Per customer ``alpha_i =
    alpha exp(-x'beta_p)`` and ``beta_i = beta exp(-x'beta_d)`` (``beta_p = purchase``,
    ``beta_d = dropout``, keyed by design-column name): ``lambda ~ Gamma(r, alpha_i)``,
    ``eta ~ Gamma(s, beta_i)``, a Gompertz lifetime ``P(tau > t) = exp(-eta (e^(b t) - 1))``
    drawn by inversion, Poisson purchases while alive. Returns ``(summary, customers)``.
    """
    rng = np.random.default_rng(random_state)
    customers = pd.DataFrame(
        {
            "vip": rng.random(n) < 0.4,
            "channel": rng.choice(["direct", "referral", "social"], size=n, p=[0.5, 0.3, 0.2]),
        },
        index=pd.RangeIndex(n, name="customer_id"),
    )
    design = {
        "vip[True]": customers["vip"].to_numpy(dtype=float),
        "channel[referral]": (customers["channel"] == "referral").to_numpy(dtype=float),
        "channel[social]": (customers["channel"] == "social").to_numpy(dtype=float),
    }
    eta_p = sum(c * design[k] for k, c in purchase.items()) + np.zeros(n)
    eta_d = sum(c * design[k] for k, c in dropout.items()) + np.zeros(n)
    lam = rng.gamma(r, 1.0 / (alpha * np.exp(-eta_p)))
    eta = rng.gamma(s, 1.0 / (beta * np.exp(-eta_d)))
    tau = np.log1p(rng.exponential(size=n) / eta) / b
    return _observed(rng, lam, tau, customers.index), customers


def _observed(rng: np.random.Generator, lam: np.ndarray, tau: np.ndarray, index) -> pd.DataFrame:
    """The weekly summary of Poisson(``lam``) purchasing until the lifetime ``tau`` ends, seen
    for ``T ~ U(26, 78)`` whole weeks (the recency is the last of ``x`` uniform times)."""
    n = len(lam)
    big_t = rng.uniform(26.0, 78.0, n).round()
    observed = np.minimum(tau, big_t)
    x = rng.poisson(lam * observed)
    last = observed * rng.random(n) ** (1.0 / np.maximum(x, 1))
    summary = pd.DataFrame(
        {"frequency": x.astype(float), "recency": np.where(x > 0, last, 0.0), "T": big_t},
        index=index,
    )
    summary.attrs["freq"] = "W"
    return summary


def simulate_continuous_covariates(
    params: dict[str, float],
    purchase: dict[str, float],
    dropout: dict[str, float],
    n: int,
    *,
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pareto/NBD (``params`` without ``b``) or GGom/NBD (with ``b``) customers with two
    continuous covariates: ``income ~ N(0, 1)`` and ``tenure ~ U(-1, 1)``.

    Per customer ``alpha_i = alpha exp(-x'beta_p)``, ``beta_i = beta exp(-x'beta_d)``
    (CLVTools' static parametrisation; ``purchase``, ``dropout`` keyed by column name):
    ``lambda ~ Gamma(r, alpha_i)``; an exponential lifetime of rate ``mu ~ Gamma(s, beta_i)``
    or a Gompertz one, ``P(tau > t) = exp(-eta (e^(b t) - 1))`` with ``eta ~ Gamma(s,
    beta_i)``, drawn by inversion; Poisson purchases while alive, ``T ~ U(26, 78)`` weeks.
    Returns ``(summary, customers)``.
    """
    rng = np.random.default_rng(random_state)
    customers = pd.DataFrame(
        {"income": rng.normal(size=n), "tenure": rng.uniform(-1.0, 1.0, n)},
        index=pd.RangeIndex(n, name="customer_id"),
    )
    eta_p = sum(c * customers[k].to_numpy() for k, c in purchase.items()) + np.zeros(n)
    eta_d = sum(c * customers[k].to_numpy() for k, c in dropout.items()) + np.zeros(n)
    lam = rng.gamma(params["r"], 1.0 / (params["alpha"] * np.exp(-eta_p)))
    rate = rng.gamma(params["s"], 1.0 / (params["beta"] * np.exp(-eta_d)))
    if "b" in params:
        tau = np.log1p(rng.exponential(size=n) / rate) / params["b"]
    else:
        tau = rng.exponential(size=n) / rate
    return _observed(rng, lam, tau, customers.index), customers


def simulate_cohort_covariates(
    alpha: float,
    beta: float,
    c: float,
    alpha_effects: dict[str, float],
    beta_effects: dict[str, float],
    n_cohorts: int,
    size: int,
    *,
    random_state: int = 0,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Subscription cohorts (sBG for ``c = 1``, BdW otherwise) with cohort-level covariates.

    Each cohort has ``price`` (standard normal) and ``region`` (``EU``/``US``, one-hot
    ``region[US]``); ``alpha_c = alpha exp(x_c' gamma)``, ``beta_c = beta exp(x_c' delta)``
    (``gamma = alpha_effects``, ``delta = beta_effects`` keyed by design column). Its ``size``
    subscribers draw ``theta ~ Beta(alpha_c, beta_c)`` and a discrete-Weibull lifetime, ``P(T >
    t | theta) = (1 - theta)^(t^c)``, by inversion; the cohort is observed for 6 to 12 periods.
    Returns the counts active at the start of each period by cohort name, and the cohorts.
    """
    rng = np.random.default_rng(random_state)
    names = [f"cohort {i:02d}" for i in range(n_cohorts)]
    cohorts = pd.DataFrame(
        {"price": rng.normal(size=n_cohorts), "region": rng.choice(["EU", "US"], n_cohorts)},
        index=pd.Index(names, name="cohort"),
    )
    design = {
        "price": cohorts["price"].to_numpy(),
        "region[US]": (cohorts["region"] == "US").to_numpy(dtype=float),
    }
    eta_a = sum(v * design[k] for k, v in alpha_effects.items()) + np.zeros(n_cohorts)
    eta_b = sum(v * design[k] for k, v in beta_effects.items()) + np.zeros(n_cohorts)
    counts = {}
    for i, name in enumerate(names):
        theta = rng.beta(alpha * np.exp(eta_a[i]), beta * np.exp(eta_b[i]), size=size)
        # S(t) <= U  <=>  t^c >= log U / log(1 - theta)
        threshold = np.log(rng.random(size)) / np.log1p(-np.minimum(theta, 1 - 1e-16))
        lifetime = np.maximum(1.0, np.ceil(threshold ** (1.0 / c)))
        periods = int(rng.integers(6, 13))
        counts[name] = np.array([(lifetime > t).sum() for t in range(periods + 1)], dtype=float)
    return counts, cohorts
