"""Seeded simulators of the BG/NBD, MBG/NBD, (M)BG/CNBD-k and Gamma-Gamma processes.

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


def simulate_cnbd(
    r: float,
    alpha: float,
    a: float,
    b: float,
    k: int,
    T: np.ndarray,
    *,
    future: float = 0.0,
    modified: bool = False,
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate BG/CNBD-k (MBG/CNBD-k with ``modified=True``) customers observed for ``T``.

    While alive, inter-purchase times are Erlang-k with rate ``lambda ~ Gamma(r, alpha)``:
    every ``k``-th event of a Poisson process of rate ``lambda`` (started at the first purchase,
    time 0) is a purchase. Given ``M`` events in ``(0, T + future]`` their times are sorted
    uniforms, so the purchase times are every ``k``-th of them. The customer drops out after the
    purchase numbered ``D`` (geometric, as in :func:`simulate_beta_geo`).

    Returns the summary (``frequency, recency, T, litt`` plus ``purchases_future``,
    ``alive_T``, ``alive_future``) and the event log (``customer_id, t``: every purchase made,
    the first at 0, in the summary's time unit, up to ``T + future``).
    """
    rng = np.random.default_rng(random_state)
    big_t = np.asarray(T, dtype=float)
    n = big_t.shape[0]
    horizon = big_t + future
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    death_at = rng.geometric(p) - (1 if modified else 0)
    events = rng.poisson(lam * horizon)
    owner = np.repeat(np.arange(n), events)
    times = rng.uniform(0.0, 1.0, size=owner.size) * horizon[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    # rank of each event within its customer (1-based); purchases are the events k, 2k, ...
    first_of = np.cumsum(events) - events
    rank = np.arange(owner.size) - first_of[owner] + 1
    is_purchase = rank % k == 0
    owner, times, number = owner[is_purchase], times[is_purchase], rank[is_purchase] // k
    made = number <= death_at[owner]  # purchases after the drop-out are never made
    owner, times, number = owner[made], times[made], number[made]
    now = times <= big_t[owner]
    x = np.bincount(owner[now], minlength=n).astype(float)
    t_x = np.zeros(n)
    np.maximum.at(t_x, owner[now], times[now])
    previous = np.where(number > 1, np.roll(times, 1), 0.0)
    litt = np.bincount(owner[now], weights=np.log(times[now] - previous[now]), minlength=n)
    purchases_future = np.bincount(owner[~now], minlength=n).astype(float)
    # alive at T: purchase number D (after which the customer drops out) is not made by T
    summary = pd.DataFrame(
        {
            "frequency": x,
            "recency": t_x,
            "T": big_t,
            "litt": litt,
            "purchases_future": purchases_future,
            "alive_T": x < death_at,
            "alive_future": x + purchases_future < death_at,
        }
    )
    log = pd.DataFrame(
        {
            "customer_id": np.concatenate([np.arange(n), owner]),
            "t": np.concatenate([np.zeros(n), times]),
        }
    ).sort_values(["customer_id", "t"], kind="stable", ignore_index=True)
    return summary, log


def simulate_beta_geo_covariates(
    r: float,
    alpha: float,
    a: float,
    b: float,
    purchase: dict[str, float],
    dropout: dict[str, float],
    n: int,
    *,
    modified: bool = False,
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BG/NBD (MBG/NBD) customers with static covariates (CLVTools' parametrisation).

    Covariates: ``x_num`` standard normal, ``channel`` in ``direct, referral, social`` (one-hot
    ``channel[referral]``, ``channel[social]``). Per customer ``alpha_i = alpha exp(-x'beta)``,
    ``a_i = a exp(x'gamma)``, ``b_i = b exp(x'gamma)`` with ``beta = purchase``,
    ``gamma = dropout`` keyed by design-column name. Returns ``(summary, customers)``.
    """
    rng = np.random.default_rng(random_state)
    channel = rng.choice(["direct", "referral", "social"], size=n, p=[0.5, 0.3, 0.2])
    customers = pd.DataFrame(
        {"x_num": rng.normal(size=n), "channel": channel},
        index=pd.RangeIndex(n, name="customer_id"),
    )
    design = {
        "x_num": customers["x_num"].to_numpy(),
        "channel[referral]": (channel == "referral").astype(float),
        "channel[social]": (channel == "social").astype(float),
    }
    eta_p = sum(c * design[k] for k, c in purchase.items()) + np.zeros(n)
    eta_d = sum(c * design[k] for k, c in dropout.items()) + np.zeros(n)
    big_t = rng.uniform(26, 52, size=n).round()
    summary = simulate_beta_geo(
        r,
        alpha * np.exp(-eta_p),
        a * np.exp(eta_d),
        b * np.exp(eta_d),
        big_t,
        modified=modified,
        random_state=random_state + 1,
    )
    summary.index = customers.index
    return summary[["frequency", "recency", "T"]], customers


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
