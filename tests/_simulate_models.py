"""Seeded simulators of the BG/NBD, MBG/NBD, (M)BG/CNBD-k, GGom/NBD and Gamma-Gamma processes.

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
    big_t = rng.uniform(26.0, 78.0, n).round()
    observed = np.minimum(tau, big_t)
    x = rng.poisson(lam * observed)
    last = observed * rng.random(n) ** (1.0 / np.maximum(x, 1))  # the last of x uniforms
    summary = pd.DataFrame(
        {"frequency": x.astype(float), "recency": np.where(x > 0, last, 0.0), "T": big_t},
        index=customers.index,
    )
    summary.attrs["freq"] = "W"
    return summary, customers


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
