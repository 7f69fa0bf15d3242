"""Seeded simulators of the model processes, for parameter recovery and coverage tests:
BG/NBD and MBG/NBD (:func:`simulate_beta_geo`), the same with static covariates applied by
known coefficients (:func:`simulate_beta_geo_covariates`), Gamma-Gamma spend
(:func:`simulate_gamma_gamma`) and the regularity models BG/CNBD-k and MBG/CNBD-k
(:func:`simulate_cnbd`).

Vectorised: a customer's purchases while alive form a Poisson process of rate ``lambda``, so the
count in ``(0, T]`` is Poisson; the purchase after which they drop out is geometric; given ``N``
arrivals in ``(0, T]`` the ``x``-th arrival time is ``T`` times a ``Beta(x, N - x + 1)`` variable
(order statistic of uniforms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from custval.errors import DataError

__all__ = [
    "simulate_beta_geo",
    "simulate_beta_geo_covariates",
    "simulate_cnbd",
    "simulate_gamma_gamma",
]


def simulate_beta_geo(
    r: float,
    alpha: float | np.ndarray,
    a: float | np.ndarray,
    b: float | np.ndarray,
    T: np.ndarray,
    *,
    future: float = 0.0,
    modified: bool = False,
    random_state: int = 0,
) -> pd.DataFrame:
    """Simulate BG/NBD (or MBG/NBD with ``modified=True``) customers observed for ``T``.

    Fader, Hardie & Lee (2005): while alive a customer buys at Poisson rate ``lambda ~
    Gamma(r, alpha)``; after each repeat purchase (MBG/NBD: also at the first) they drop out
    with probability ``p ~ Beta(a, b)``.

    Parameters
    ----------
    r, alpha, a, b : float or array
        The model's parameters; ``alpha``, ``a`` and ``b`` may be per customer (length of
        ``T``), as covariates make them.
    T : array of float
        Each customer's age at the end of observation, in periods.
    future : float, default 0
        Length of the period after ``T`` whose purchases are returned too.
    modified : bool, default False
        MBG/NBD instead of BG/NBD.
    random_state : int, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    DataFrame
        ``frequency, recency, T`` plus ``purchases_future`` (repeat purchases in
        ``(T, T+future]``), ``alive_T`` and ``alive_future`` (alive at ``T`` and at
        ``T + future``).

    Examples
    --------
    >>> import numpy as np
    >>> from custval.datasets import simulate_beta_geo
    >>> summary = simulate_beta_geo(0.243, 4.414, 0.793, 2.426, np.full(2000, 39.0))
    >>> list(summary.columns[:3]), bool((summary["recency"] <= summary["T"]).all())
    (['frequency', 'recency', 'T'], True)
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
    p: float,
    q: float,
    gamma: float | np.ndarray,
    frequency: np.ndarray,
    *,
    random_state: int = 0,
) -> np.ndarray:
    """Average value of ``frequency`` transactions per customer under the Gamma-Gamma model.

    Fader, Hardie & Lee (2005, "RFM and CLV"; Hardie's note 025): ``nu ~ Gamma(q, rate
    gamma)``; each transaction is ``Gamma(p, rate nu)``, so the mean of ``x`` of them is
    ``Gamma(p x, rate nu x)``.

    Parameters
    ----------
    p, q : float
        Shape of each transaction's value and of ``nu`` across customers.
    gamma : float or array
        Rate of ``nu``; per customer for spend covariates (``gamma_i = gamma exp(x'delta)``
        multiplies the expected spend by ``exp(x'delta)``).
    frequency : array of float
        Repeat transactions per customer.
    random_state : int, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    ndarray
        The mean transaction value per customer (``monetary_value``); 0 for frequency 0.

    Examples
    --------
    >>> import numpy as np
    >>> from custval.datasets import simulate_gamma_gamma
    >>> spend = simulate_gamma_gamma(6.25, 3.74, 15.44, np.array([0.0, 1.0, 5.0]))
    >>> bool(spend[0] == 0.0 and (spend[1:] > 0).all())
    True
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

    Reutterer, Platzer & Schröder (2021): while alive, inter-purchase times are Erlang-k with
    rate ``lambda ~ Gamma(r, alpha)``: every ``k``-th event of a Poisson process of rate
    ``lambda`` (started at the first purchase, time 0) is a purchase. Given ``M`` events in
    ``(0, T + future]`` their times are sorted uniforms, so the purchase times are every
    ``k``-th of them. The customer drops out after the purchase numbered ``D`` (geometric, as
    in :func:`simulate_beta_geo`).

    Parameters
    ----------
    r, alpha, a, b : float
        The model's parameters.
    k : int
        Regularity: the Erlang order of the inter-purchase times.
    T, future, modified, random_state
        As in :func:`simulate_beta_geo`.

    Returns
    -------
    (DataFrame, DataFrame)
        The summary (``frequency, recency, T, litt`` plus ``purchases_future``, ``alive_T``,
        ``alive_future``) and the event log (``customer_id, t``: every purchase made, the
        first at 0, in the summary's time unit, up to ``T + future``).

    Examples
    --------
    >>> import numpy as np
    >>> from custval.datasets import simulate_cnbd
    >>> summary, log = simulate_cnbd(1.0, 10.0, 0.5, 3.0, 3, np.full(500, 52.0))
    >>> int(summary["frequency"].sum()) == len(log) - 500  # the first purchases are not counted
    True
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


#: the design columns of :func:`simulate_beta_geo_covariates` and how each is drawn
COVARIATE_COLUMNS = ("x_num", "channel[referral]", "channel[social]")
_CHANNELS = ("direct", "referral", "social")
_CHANNEL_SHARES = (0.5, 0.3, 0.2)


def simulate_beta_geo_covariates(
    r: float,
    alpha: float,
    a: float,
    b: float,
    purchase: Mapping[str, float],
    dropout: Mapping[str, float],
    n: int,
    *,
    modified: bool = False,
    T: Sequence[float] = (26.0, 52.0),
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BG/NBD (MBG/NBD) customers whose covariates act with known coefficients.

    Draws two covariates per customer, ``x_num`` (standard normal) and ``channel``
    (``direct`` 50%, ``referral`` 30%, ``social`` 20%; one-hot design columns
    ``channel[referral]`` and ``channel[social]``, ``direct`` the baseline, as
    :class:`custval.BetaGeoModel` encodes it), and applies them as CLVTools' static
    covariates do (Fader & Hardie's note on covariates in BG/NBD): ``alpha_i = alpha
    exp(-x_i'beta)`` (``exp(beta)`` multiplies the purchase rate), ``a_i = a exp(x_i'gamma)``
    and ``b_i = b exp(x_i'gamma)``. A fit with ``purchase_covariates=["x_num", "channel"]``
    and ``dropout_covariates=["channel"]`` estimates ``purchase:x_num``,
    ``purchase:channel[referral]``, ... whose truth is ``purchase`` and ``dropout``.

    Parameters
    ----------
    r, alpha, a, b : float
        The parameters of the baseline customer (all covariates zero).
    purchase, dropout : mapping of str to float
        ``beta`` and ``gamma`` by design column (of :data:`COVARIATE_COLUMNS`); columns not
        given have coefficient 0.
    n : int
        Number of customers.
    modified : bool, default False
        MBG/NBD instead of BG/NBD.
    T : (float, float), default (26, 52)
        Customers' ages at the end of observation are whole periods drawn uniformly from
        this range.
    random_state : int, default 0
        Seed: the covariates use ``default_rng(random_state)``, the purchases
        ``random_state + 1``.

    Returns
    -------
    (DataFrame, DataFrame)
        The summary (``frequency, recency, T``) and the customers' covariates (``x_num``,
        ``channel``), both indexed by ``customer_id``.

    Examples
    --------
    >>> from custval import BetaGeoModel
    >>> from custval.datasets import simulate_beta_geo_covariates
    >>> summary, customers = simulate_beta_geo_covariates(
    ...     0.5, 5.0, 0.8, 2.5, purchase={"channel[referral]": 0.5}, dropout={}, n=4000)
    >>> model = BetaGeoModel().fit(summary, customers=customers, purchase_covariates=["channel"])
    >>> round(float(model.params_["purchase:channel[referral]"]), 1)
    0.5
    """
    for name, coefficients in (("purchase", purchase), ("dropout", dropout)):
        unknown = sorted(set(coefficients) - set(COVARIATE_COLUMNS))
        if unknown:
            raise DataError(
                f"{name} names {unknown}, which are not design columns of the simulation; use "
                f"{list(COVARIATE_COLUMNS)}"
            )
    whole = isinstance(n, int | np.integer) and not isinstance(n, bool)
    if not whole or n < 1:
        raise DataError(f"n must be a positive integer, got {n!r}")
    low, high = (float(v) for v in T)
    if not 0 < low <= high:
        raise DataError(f"T must be a range (low, high) with 0 < low <= high, got {T!r}")
    rng = np.random.default_rng(random_state)
    channel = rng.choice(list(_CHANNELS), size=n, p=list(_CHANNEL_SHARES))
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
    big_t = rng.uniform(low, high, size=n).round()
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
