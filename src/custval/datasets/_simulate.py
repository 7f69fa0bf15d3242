"""The simulated retailer: the purchase process, :func:`simulate` in named steps, and the
truth dictionary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from custval.datasets._parameters import (
    _DAYS_PER_YEAR,
    _SECONDS_PER_DAY,
    GENERATOR_VERSION,
    RetailerParameters,
    _check_parameters,
    _jsonable,
)
from custval.datasets._retailer import SimulatedRetailer, _quantize
from custval.errors import DataError

# --------------------------------------------------------------------------------------------
# Purchase process
# --------------------------------------------------------------------------------------------


def _simulate_phase(
    rng: np.random.Generator,
    t0: np.ndarray,
    t1: np.ndarray,
    rate: np.ndarray,
    dropout: np.ndarray,
    rate_member: np.ndarray,
    dropout_member: np.ndarray,
    member: np.ndarray,
    join_prob: float,
) -> dict[str, np.ndarray]:
    """Simulate the purchases of alive customers on ``[t0, t1)`` with constant rates.

    BG/NBD: purchases arrive as a Poisson process with rate lambda while the customer is alive;
    after each purchase the customer drops out with probability p. A non-member who survives a
    purchase joins the loyalty programme with probability ``join_prob`` and continues from that
    moment with the member's rates (the Poisson process is memoryless, so the remainder of the
    phase is simply drawn again). Given their number, Poisson arrival times on an interval are
    sorted uniforms, which keeps the whole phase vectorized.
    """
    n = t0.size
    member = member.copy()
    dead = np.zeros(n, dtype=bool)
    death_time = np.full(n, np.nan)
    join_time = np.full(n, np.nan)
    now = t0.astype(float).copy()
    active = np.flatnonzero(t1 > t0)
    owners: list[np.ndarray] = []
    times: list[np.ndarray] = []
    while active.size:
        is_member = member[active]
        lam = np.where(is_member, rate_member[active], rate[active])
        p = np.where(is_member, dropout_member[active], dropout[active])
        length = t1[active] - now[active]
        counts = rng.poisson(lam * length)
        owner = np.repeat(np.arange(active.size), counts)
        when = now[active][owner] + rng.random(owner.size) * length[owner]
        order = np.lexsort((when, owner))
        owner, when = owner[order], when[order]
        dies = rng.random(owner.size) < p[owner]
        joins = ~dies & ~is_member[owner] & (rng.random(owner.size) < join_prob)
        stop = dies | joins
        # number of stopping events (death or join) strictly before each event, per customer
        before = np.cumsum(stop) - stop
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        offset = np.zeros(active.size, dtype=before.dtype)
        has = counts > 0
        offset[has] = before[first[has]]
        keep = (before - offset[owner]) == 0
        owners.append(active[owner[keep]])
        times.append(when[keep])
        stopping = keep & stop
        died = active[owner[stopping & dies]]
        dead[died] = True
        death_time[died] = when[stopping & dies]
        joined_local = owner[stopping & joins]
        joined = active[joined_local]
        member[joined] = True
        join_time[joined] = when[stopping & joins]
        now[joined] = join_time[joined]
        active = joined
    return {
        "owner": np.concatenate(owners) if owners else np.zeros(0, dtype=np.intp),
        "time": np.concatenate(times) if times else np.zeros(0),
        "dead": dead,
        "death_time": death_time,
        "member": member,
        "join_time": join_time,
    }


def _integral_exp(x: np.ndarray, horizon: float) -> np.ndarray:
    """``int_0^horizon exp(-x s) ds`` for x > 0 (horizon may be infinite)."""
    if math.isinf(horizon):
        return 1.0 / x
    return -np.expm1(-x * horizon) / x


def _divided_difference(func, x1: np.ndarray, x2: np.ndarray, derivative) -> np.ndarray:
    """``(func(x1) - func(x2)) / (x2 - x1)``, using ``-derivative`` where x1 and x2 coincide."""
    gap = x2 - x1
    close = np.abs(gap) <= 1e-7 * np.maximum(np.abs(x1), np.abs(x2))
    safe_gap = np.where(close, 1.0, gap)
    value = (func(x1) - func(x2)) / safe_gap
    middle = 0.5 * (x1 + x2)
    return np.where(close, -derivative(middle), value)


def _expected_purchasing(
    rate: np.ndarray,
    dropout: np.ndarray,
    rate_member: np.ndarray,
    dropout_member: np.ndarray,
    member: np.ndarray,
    join_prob: float,
    horizon: float,
    discount: float = 0.0,
) -> dict[str, np.ndarray]:
    """Exact expectations over ``[0, horizon)`` for customers alive at 0.

    The customer is a three-state Markov chain: alive non-member (A), alive member (B), dead.
    From A, purchases arrive at rate lambda_A; each ends in dropout with probability p_A, else in
    joining with probability pi. So A is left at rate mu_A = lambda_A (p_A + (1 - p_A) pi), B is
    entered from A at rate k = lambda_A (1 - p_A) pi and left at rate mu_B = lambda_B p_B.
    ``P_A(s) = exp(-mu_A s)`` and ``P_B(s) = k (exp(-mu_A s) - exp(-mu_B s)) / (mu_B - mu_A)``;
    expected purchases are ``int lambda_A P_A + lambda_B P_B`` (with ``exp(-delta s)`` inside
    for a continuous discount rate delta). Without joining this is the BG/NBD result
    ``E[X(t) | lambda, p] = (1 - exp(-lambda p t)) / p`` (Fader, Hardie & Lee 2005, eq. 7's
    integrand). The first purchase comes before any change of state, so the probability of at
    least one purchase is ``1 - exp(-lambda_A t)``.
    """
    lam_a = np.where(member, rate_member, rate)
    p_a = np.where(member, dropout_member, dropout)
    pi = np.where(member, 0.0, join_prob)
    mu_a = lam_a * (p_a + (1.0 - p_a) * pi)
    k = lam_a * (1.0 - p_a) * pi
    mu_b = rate_member * dropout_member
    d = discount
    integral_a = _integral_exp(mu_a + d, horizon)

    def f(x):
        return _integral_exp(x + d, horizon)

    def f_prime(x):
        x = x + d
        if math.isinf(horizon):
            return -1.0 / x**2
        e = np.exp(-x * horizon)
        return (horizon * x * e - (1.0 - e)) / x**2

    integral_b = k * _divided_difference(f, mu_a, mu_b, f_prime)
    orders = lam_a * integral_a + rate_member * integral_b
    result = {"orders": orders}
    if not math.isinf(horizon):
        result["any_purchase"] = -np.expm1(-lam_a * horizon)

        def g(x):
            return np.exp(-x * horizon)

        def g_prime(x):
            return -horizon * np.exp(-x * horizon)

        alive_b = k * _divided_difference(g, mu_a, mu_b, g_prime)
        result["alive"] = np.exp(-mu_a * horizon) + alive_b
    return result


def _as_day(value: str | pd.Timestamp, name: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as error:
        raise DataError(f"{name} must be a date such as '2022-01-01', got {value!r}") from error
    if stamp != stamp.normalize():
        raise DataError(f"{name} must be a date without time of day, got {value!r}")
    return stamp


def _stratified_assignment(
    rng: np.random.Generator, strata: np.ndarray, share: float
) -> np.ndarray:
    """Complete randomization within each stratum: ``round(share * n)`` treated per stratum."""
    treated = np.zeros(strata.size, dtype=np.int64)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        chosen = rng.permutation(members)[: round(share * members.size)]
        treated[chosen] = 1
    return treated


def simulate(
    *,
    n_customers: int = 5000,
    start: str = "2022-01-01",
    end: str = "2024-12-31",
    random_state: int | np.random.Generator | None = 0,
    contact_date: str | None = None,
    params: RetailerParameters | None = None,
) -> SimulatedRetailer:
    """Simulate a retailer with known truth.

    Customers are acquired uniformly over ``[start, contact_date)`` (their first order is the
    acquisition). Each customer draws BG/NBD rates ``lambda ~ Gamma(r, alpha)`` (per day) and
    ``p ~ Beta(a, b)``, scaled by the acquisition channel; repeat orders arrive as a Poisson
    process while the customer is alive, and after each repeat order the customer drops out with
    probability p. Order values are Gamma-Gamma. Non-members who survive a repeat order join the
    loyalty programme with probability ``loyalty_join_prob`` (self-selection on purchasing),
    after which their rate and dropout change by the programme's true effect. On
    ``contact_date`` every customer acquired so far (alive or not, as the retailer cannot tell)
    is randomized within segment (loyalty member or not at that date) to a relationship
    campaign that, for ``campaign_window_days``, multiplies the treated customers' purchase rate
    and dropout by the segment's effect. Orders become line items with returns, postage lines
    and a few dirty rows (guest orders without customer id, exact duplicates, zero amounts).

    Parameters
    ----------
    n_customers : int, default 5000
        Number of customers acquired.
    start, end : str, default "2022-01-01", "2024-12-31"
        First and last day (inclusive) of the observation period.
    random_state : int, Generator or None, default 0
        Seed of the single ``numpy.random.default_rng`` used for everything.
    contact_date : str, optional
        Day of the campaign contact; default the day two thirds through the period
        (2024-01-01 for the default period). Acquisition ends the day before.
    params : RetailerParameters, optional
        Every other parameter; default ``RetailerParameters()``. ``RetailerParameters.plain()``
        switches off all attribute effects (pure BG/NBD + Gamma-Gamma).

    Returns
    -------
    SimulatedRetailer
        ``transactions``, ``customers``, ``campaign``, ``customer_truth`` and ``truth``.

    Raises
    ------
    DataError
        If the period, the number of customers or a parameter is invalid.

    Examples
    --------
    >>> from custval.datasets import simulate
    >>> sim = simulate(n_customers=500, random_state=7)
    >>> sim.customers.shape[0]
    500
    >>> sim.truth["campaign"]["responsive_segment"]
    'non_member'
    """
    params = RetailerParameters() if params is None else params
    design = _Design.check(n_customers, start, end, contact_date, params)
    seed = random_state if isinstance(random_state, int | np.integer) else None
    rng = np.random.default_rng(random_state)  # one generator, drawn from in the steps' order
    population = _draw_customers(rng, params, design)
    history = _simulate_history(rng, params, design, population)
    lines, line_counts, n_guest = _order_lines(rng, params, design, population, history)
    expected = _expected_truth(params, design, population, history)
    tables = _tables(params, design, population, history, expected, lines)
    truth = _truth(
        params=params,
        seed=seed,
        n=design.n,
        first_day=design.first_day,
        last_day=design.last_day,
        n_days=design.n_days,
        contact=design.contact,
        window_end=design.window_end,
        tables=tables,
        line_counts=line_counts,
        n_guest=n_guest,
        default_design=contact_date is None,
    )
    return SimulatedRetailer(truth=truth, **tables)


# --------------------------------------------------------------------------------------------
# The steps of simulate
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Design:
    """The period, in days from ``first_day``: acquisition on ``[0, contact)``, the campaign
    window ``[contact, window_end)``, observation to ``n_days``."""

    n: int
    first_day: pd.Timestamp
    last_day: pd.Timestamp
    n_days: int
    contact: int
    window_end: int

    @classmethod
    def check(
        cls,
        n_customers: Any,
        start: str,
        end: str,
        contact_date: str | None,
        params: RetailerParameters,
    ) -> _Design:
        if not isinstance(params, RetailerParameters):
            raise DataError(
                f"params must be a RetailerParameters, got {type(params).__name__}; build one "
                "with custval.datasets.RetailerParameters(...)"
            )
        _check_parameters(params)
        whole = isinstance(n_customers, int | np.integer) and not isinstance(n_customers, bool)
        if not whole or n_customers < 1:
            raise DataError(f"n_customers must be a positive integer, got {n_customers!r}")
        first_day = _as_day(start, "start")
        last_day = _as_day(end, "end")
        n_days = (last_day - first_day).days + 1
        min_days = 3 * params.campaign_window_days
        if n_days < min_days:
            raise DataError(
                f"the period {first_day.date()}..{last_day.date()} has {n_days} days; it needs "
                f"at least {min_days} (3 campaign windows of {params.campaign_window_days} "
                "days); choose an earlier start or a later end"
            )
        if contact_date is None:
            contact = (2 * n_days) // 3
        else:
            contact = (_as_day(contact_date, "contact_date") - first_day).days
            if not 1 <= contact < n_days:
                raise DataError(
                    f"contact_date {contact_date!r} must fall after start ({first_day.date()}) "
                    f"and no later than end ({last_day.date()})"
                )
        window_end = min(contact + params.campaign_window_days, n_days)
        return cls(int(n_customers), first_day, last_day, n_days, contact, window_end)


@dataclass(frozen=True)
class _Population:
    """Each customer's attributes and latent parameters (indices into the channel and region
    names of the parameters)."""

    channel: np.ndarray
    region: np.ndarray
    acquisition: np.ndarray  # day of the first order
    acquisition_cost: np.ndarray
    rates: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # rate, dropout (member too)
    nu: np.ndarray
    mean_order_value: np.ndarray


def _draw_customers(
    rng: np.random.Generator, params: RetailerParameters, design: _Design
) -> _Population:
    """Channel, region, acquisition day and cost; BG/NBD rates scaled by the channel, spend
    scaled by the region, and the rates the loyalty programme's members have."""
    n = design.n
    channel_names = list(params.channels)
    region_names = list(params.regions)
    ch = params.channels
    channel = rng.choice(len(channel_names), size=n, p=[ch[c]["share"] for c in channel_names])
    region = rng.choice(
        len(region_names), size=n, p=[params.regions[x]["share"] for x in region_names]
    )
    acquisition = np.sort(rng.random(n) * design.contact)
    cac_mean = np.array([ch[c]["cac_mean"] for c in channel_names])[channel]
    cac_cv = np.array([ch[c]["cac_cv"] for c in channel_names])[channel]
    cac_shape = 1.0 / np.maximum(cac_cv, 1e-6) ** 2
    acquisition_cost = rng.gamma(cac_shape, cac_mean / cac_shape)
    lam0 = rng.gamma(params.r, 1.0 / params.alpha, size=n)
    p0 = rng.beta(params.a, params.b, size=n)
    nu0 = rng.gamma(params.spend_q, 1.0 / params.spend_gamma, size=n)
    rate = np.maximum(
        lam0 * np.array([ch[c]["rate_multiplier"] for c in channel_names])[channel], 1e-12
    )
    dropout = np.minimum(
        p0 * np.array([ch[c]["dropout_multiplier"] for c in channel_names])[channel],
        params.max_dropout,
    )
    spend_mult = np.array([params.regions[x]["spend_multiplier"] for x in region_names])[region]
    nu = nu0 / spend_mult
    rate_member = rate * params.loyalty_rate_multiplier
    dropout_member = np.minimum(dropout * params.loyalty_dropout_multiplier, params.max_dropout)
    return _Population(
        channel=channel,
        region=region,
        acquisition=acquisition,
        acquisition_cost=acquisition_cost,
        rates=(rate, dropout, rate_member, dropout_member),
        nu=nu,
        mean_order_value=params.spend_p / nu,
    )


@dataclass(frozen=True)
class _History:
    """What happened: the campaign's assignment, membership and alive state at contact and at
    the end, the first join and dropout times, and every order (owner, day)."""

    alive_contact: np.ndarray
    member_contact: np.ndarray
    segment: np.ndarray
    treatment: np.ndarray
    member_end: np.ndarray
    alive_end: np.ndarray
    join_time: np.ndarray
    death_time: np.ndarray
    order_owner: np.ndarray
    order_time: np.ndarray


def _campaign_rates(
    params: RetailerParameters,
    population: _Population,
    member_contact: np.ndarray,
    treated: np.ndarray | bool,
) -> tuple[np.ndarray, ...]:
    """The four rates during the campaign window, multiplied by the segment's effect where
    ``treated``."""
    effects = params.campaign_effects
    seg_rate = np.where(
        member_contact,
        effects["member"]["rate_multiplier"],
        effects["non_member"]["rate_multiplier"],
    )
    seg_drop = np.where(
        member_contact,
        effects["member"]["dropout_multiplier"],
        effects["non_member"]["dropout_multiplier"],
    )
    rate, dropout, rate_member, dropout_member = population.rates
    m_rate = np.where(treated, seg_rate, 1.0)
    m_drop = np.where(treated, seg_drop, 1.0)
    return (
        rate * m_rate,
        np.minimum(dropout * m_drop, params.max_dropout),
        rate_member * m_rate,
        np.minimum(dropout_member * m_drop, params.max_dropout),
    )


def _later_phase(
    rng: np.random.Generator,
    params: RetailerParameters,
    alive: np.ndarray,
    member: np.ndarray,
    start: int,
    stop: int,
    phase_rates: tuple[np.ndarray, ...],
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Simulate the customers alive at ``start`` on ``[start, stop)``; return their ids, the
    phase, and everyone's membership and alive state at ``stop``."""
    ids = np.flatnonzero(alive)
    phase = _simulate_phase(
        rng,
        np.full(ids.size, float(start)),
        np.full(ids.size, float(stop)),
        *(values[ids] for values in phase_rates),
        member[ids],
        params.loyalty_join_prob,
    )
    member_after = member.copy()
    member_after[ids] = phase["member"]
    alive_after = np.zeros(alive.size, dtype=bool)
    alive_after[ids] = ~phase["dead"]
    return ids, phase, member_after, alive_after


def _simulate_history(
    rng: np.random.Generator,
    params: RetailerParameters,
    design: _Design,
    population: _Population,
) -> _History:
    """Three phases: acquisition to contact; the campaign window, randomized within segment
    (member or not at contact), treated customers' rates changed by the segment's effect; the
    window's end to the end of observation."""
    n = design.n
    phase1 = _simulate_phase(
        rng,
        population.acquisition,
        np.full(n, float(design.contact)),
        *population.rates,
        np.zeros(n, dtype=bool),
        params.loyalty_join_prob,
    )
    alive_contact = ~phase1["dead"]
    member_contact = phase1["member"].copy()
    segment = np.where(member_contact, "member", "non_member")
    treatment = _stratified_assignment(rng, segment, params.campaign_treated_share)
    assigned = _campaign_rates(params, population, member_contact, treatment.astype(bool))
    idx2, phase2, member_window, alive_window = _later_phase(
        rng, params, alive_contact, member_contact, design.contact, design.window_end, assigned
    )
    idx3, phase3, member_end, alive_end = _later_phase(
        rng,
        params,
        alive_window,
        member_window,
        design.window_end,
        design.n_days,
        population.rates,
    )

    def first_time(key: str) -> np.ndarray:
        """The earliest time of an event (joining, dropout) over the three phases, else NaN."""
        times = phase1[key].copy()
        for ids, phase in ((idx2, phase2), (idx3, phase3)):
            times[ids] = np.where(np.isnan(times[ids]), phase[key], times[ids])
        return times

    order_owner = np.concatenate(
        (np.arange(n), phase1["owner"], idx2[phase2["owner"]], idx3[phase3["owner"]])
    )
    order_time = np.concatenate(
        (population.acquisition, phase1["time"], phase2["time"], phase3["time"])
    )
    return _History(
        alive_contact=alive_contact,
        member_contact=member_contact,
        segment=segment,
        treatment=treatment,
        member_end=member_end,
        alive_end=alive_end,
        join_time=first_time("join_time"),
        death_time=first_time("death_time"),
        order_owner=order_owner,
        order_time=order_time,
    )


def _order_lines(
    rng: np.random.Generator,
    params: RetailerParameters,
    design: _Design,
    population: _Population,
    history: _History,
) -> tuple[pd.DataFrame, dict[str, int], int]:
    """Gamma-Gamma order values, guest orders without customer id, and the line items (with
    returns, postage and dirty rows); the line counts and the number of guest orders."""
    owner = history.order_owner
    order_value = rng.gamma(params.spend_p, 1.0 / population.nu[owner])
    n_guest = round(params.guest_order_share * owner.size)
    guest_time = rng.random(n_guest) * design.n_days
    guest_nu = rng.gamma(params.spend_q, 1.0 / params.spend_gamma, size=n_guest)
    guest_value = rng.gamma(params.spend_p, 1.0 / guest_nu)
    lines, line_counts = _line_items(
        rng,
        params,
        owner=np.concatenate((owner + 1, np.zeros(n_guest, dtype=np.int64))),
        time=np.concatenate((history.order_time, guest_time)),
        value=np.concatenate((order_value, guest_value)),
        n_days=design.n_days,
        first_day=design.first_day,
    )
    return lines, line_counts, n_guest


def _expected_truth(
    params: RetailerParameters, design: _Design, population: _Population, history: _History
) -> dict[str, np.ndarray]:
    """The expected quantities of the customer truth table: future orders and revenue (365
    days; discounted at 10% a year over the whole future), the loyalty effect, and the
    campaign's expected outcomes in each arm and their differences."""
    rates, join_prob = population.rates, params.loyalty_join_prob
    mean_order_value = population.mean_order_value
    alive_end = history.alive_end
    member_alive_end = history.member_end & alive_end
    future = _expected_purchasing(*rates, member_alive_end, join_prob, 365.0)
    delta = math.log1p(0.10) / _DAYS_PER_YEAR
    future_disc = _expected_purchasing(
        *rates, member_alive_end, join_prob, math.inf, discount=delta
    )
    expected_orders_365 = np.where(alive_end, future["orders"], 0.0)
    rate, dropout, rate_member, dropout_member = rates
    joined = ~np.isnan(history.join_time)
    as_member = (1.0 - np.exp(-rate_member * dropout_member * 365.0)) / dropout_member
    as_non_member = (1.0 - np.exp(-rate * dropout * 365.0)) / dropout
    window = float(design.window_end - design.contact)
    outcome = {}
    for arm, treated in (("control", False), ("treated", True)):
        arm_rates = _campaign_rates(params, population, history.member_contact, treated)
        outcome[arm] = _expected_purchasing(*arm_rates, history.member_contact, join_prob, window)
        for key in outcome[arm]:
            outcome[arm][key] = np.where(history.alive_contact, outcome[arm][key], 0.0)
    effect_orders = outcome["treated"]["orders"] - outcome["control"]["orders"]
    return {
        "expected_orders_next_365d": expected_orders_365,
        "expected_revenue_next_365d": expected_orders_365 * mean_order_value,
        "expected_revenue_future_discounted": np.where(alive_end, future_disc["orders"], 0.0)
        * mean_order_value,
        "loyalty_effect_orders_365d": np.where(joined, as_member - as_non_member, np.nan),
        "campaign_purchase_prob_control": outcome["control"]["any_purchase"],
        "campaign_purchase_prob_treated": outcome["treated"]["any_purchase"],
        "campaign_effect_purchase": outcome["treated"]["any_purchase"]
        - outcome["control"]["any_purchase"],
        "campaign_orders_control": outcome["control"]["orders"],
        "campaign_orders_treated": outcome["treated"]["orders"],
        "campaign_effect_orders": effect_orders,
        "campaign_effect_revenue": effect_orders * mean_order_value,
        "campaign_effect_alive": outcome["treated"]["alive"] - outcome["control"]["alive"],
    }


def _tables(
    params: RetailerParameters,
    design: _Design,
    population: _Population,
    history: _History,
    expected: dict[str, np.ndarray],
    lines: pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    """The four tables, quantized to what their csv files hold."""
    n = design.n
    ids = np.arange(n) + 1
    day0 = np.datetime64(design.first_day.date(), "D")

    def to_dates(days: np.ndarray) -> pd.Series:
        whole = np.floor(np.nan_to_num(days, nan=0.0)).astype(np.int64)
        stamps = (day0 + whole.astype("timedelta64[D]")).astype("datetime64[ns]")
        return pd.Series(stamps).where(~np.isnan(days))

    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "acquisition_date": to_dates(population.acquisition),
            "channel": np.array(list(params.channels), dtype=object)[population.channel],
            "region": np.array(list(params.regions), dtype=object)[population.region],
            "acquisition_cost": population.acquisition_cost,
            "loyalty_member": history.member_end,
            "loyalty_join_date": to_dates(history.join_time),
        }
    )
    contact_day = design.first_day + pd.Timedelta(days=design.contact)
    campaign = pd.DataFrame(
        {
            "customer_id": ids,
            "treatment": history.treatment,
            "contact_date": pd.Series(np.full(n, contact_day.to_datetime64())),
            "cost_per_contact": np.full(n, params.campaign_cost_per_contact),
            "segment": history.segment,
        }
    )
    rate, dropout, rate_member, dropout_member = population.rates
    dropout_days = np.where(history.alive_end, np.nan, history.death_time)
    customer_truth = pd.DataFrame(
        {
            "customer_id": ids,
            "purchase_rate": rate,
            "dropout_prob": dropout,
            "purchase_rate_member": rate_member,
            "dropout_prob_member": dropout_member,
            "spend_nu": population.nu,
            "mean_order_value": population.mean_order_value,
            "n_orders": np.bincount(history.order_owner, minlength=n),
            "alive_at_contact": history.alive_contact,
            "member_at_contact": history.member_contact,
            "alive_at_end": history.alive_end,
            "dropout_date": to_dates(dropout_days),
            **expected,
        }
    )
    return {
        "transactions": _quantize(lines, "transactions"),
        "customers": _quantize(customers, "customers"),
        "campaign": _quantize(campaign, "campaign"),
        "customer_truth": _quantize(customer_truth, "customer_truth"),
    }


def _line_items(
    rng: np.random.Generator,
    params: RetailerParameters,
    *,
    owner: np.ndarray,
    time: np.ndarray,
    value: np.ndarray,
    n_days: int,
    first_day: pd.Timestamp,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Turn orders (owner 0 = guest, else customer index + 1) into line items."""
    n_orders = owner.size
    seconds = np.floor(time * _SECONDS_PER_DAY).astype(np.int64)
    by_time = np.lexsort((owner, seconds))
    owner, seconds, value = owner[by_time], seconds[by_time], value[by_time]
    order_ids = np.array([str(100_000 + i) for i in range(n_orders)], dtype=object)

    # catalogue
    n_products = params.n_products
    raw_price = np.exp(
        np.log(params.product_price_median)
        + params.product_price_sigma * rng.standard_normal(n_products)
    )
    list_price = np.maximum(np.round(raw_price * 2.0) / 2.0 - 0.01, 0.49)
    popularity = 1.0 / rng.permutation(np.arange(1, n_products + 1)) ** (
        params.product_popularity_exponent
    )
    popularity /= popularity.sum()
    codes = np.array([f"P{i + 1:04d}" for i in range(n_products)], dtype=object)

    # lines: products, merged when repeated within an order, value split by Dirichlet weights
    mean_value = params.spend_p * params.spend_gamma / max(params.spend_q - 1.0, 1e-9)
    extra = rng.poisson(params.extra_lines_mean * np.sqrt(value / mean_value))
    k = 1 + extra
    line_order = np.repeat(np.arange(n_orders), k)
    product = rng.choice(n_products, size=line_order.size, p=popularity)
    weight = rng.gamma(1.0, 1.0, size=line_order.size)
    key, inverse = np.unique(line_order * n_products + product, return_inverse=True)
    weight = np.bincount(inverse, weights=weight)
    line_order, product = key // n_products, key % n_products
    weight = weight / np.bincount(line_order, weights=weight, minlength=n_orders)[line_order]
    line_value = value[line_order] * weight
    quantity = np.maximum(1, np.round(line_value / list_price[product])).astype(np.int64)
    unit_price = np.maximum(np.round(line_value / quantity, 2), 0.01)
    amount = np.round(quantity * unit_price, 2)

    frames = [
        {
            "order": line_order,
            "kind": np.zeros(line_order.size, dtype=np.int64),
            "seconds": seconds[line_order],
            "product": product,
            "quantity": quantity,
            "unit_price": unit_price,
            "amount": amount,
        }
    ]

    # returns: per line with probability return_line_prob, customers only, one invoice per order
    is_return = (rng.random(line_order.size) < params.return_line_prob) & (owner[line_order] > 0)
    low, high = params.return_delay_days
    delay = np.floor((low + (high - low) * rng.random(n_orders)) * _SECONDS_PER_DAY).astype(
        np.int64
    )
    returned_qty = 1 + np.floor(rng.random(line_order.size) * quantity).astype(np.int64)
    return_seconds = seconds[line_order] + delay[line_order]
    is_return &= return_seconds < n_days * _SECONDS_PER_DAY
    frames.append(
        {
            "order": line_order[is_return],
            "kind": np.full(int(is_return.sum()), 3, dtype=np.int64),
            "seconds": return_seconds[is_return],
            "product": product[is_return],
            "quantity": -returned_qty[is_return],
            "unit_price": unit_price[is_return],
            "amount": -np.round(returned_qty[is_return] * unit_price[is_return], 2),
        }
    )

    # postage lines
    post = np.flatnonzero(rng.random(n_orders) < params.postage_order_share)
    frames.append(
        {
            "order": post,
            "kind": np.full(post.size, 1, dtype=np.int64),
            "seconds": seconds[post],
            "product": np.full(post.size, -1, dtype=np.int64),
            "quantity": np.ones(post.size, dtype=np.int64),
            "unit_price": np.full(post.size, params.postage_amount),
            "amount": np.full(post.size, params.postage_amount),
        }
    )

    # zero-amount lines (free items) in random orders, at most one per (order, product)
    n_zero = round(params.zero_amount_line_share * line_order.size)
    zero_key = np.unique(
        rng.integers(0, n_orders, size=n_zero) * n_products
        + rng.choice(n_products, size=n_zero, p=popularity)
    )
    zero_order, zero_product = zero_key // n_products, zero_key % n_products
    frames.append(
        {
            "order": zero_order,
            "kind": np.full(zero_order.size, 2, dtype=np.int64),
            "seconds": seconds[zero_order],
            "product": zero_product,
            "quantity": np.ones(zero_order.size, dtype=np.int64),
            "unit_price": np.zeros(zero_order.size),
            "amount": np.zeros(zero_order.size),
        }
    )
    parts = {name: np.concatenate([f[name] for f in frames]) for name in frames[0]}

    # exact duplicates of random lines (not of returns)
    n_rows = parts["order"].size
    n_dup = round(params.duplicate_line_share * n_rows)
    candidates = np.flatnonzero(parts["kind"] < 3)
    dup = np.sort(rng.choice(candidates, size=min(n_dup, candidates.size), replace=False))
    parts = {name: np.concatenate((values, values[dup])) for name, values in parts.items()}

    is_ret = parts["kind"] == 3
    position = np.lexsort(
        (parts["product"], parts["kind"], parts["order"], is_ret, parts["seconds"])
    )
    parts = {name: values[position] for name, values in parts.items()}
    is_ret = parts["kind"] == 3
    order_id = order_ids[parts["order"]]
    order_id = np.where(is_ret, "C" + order_id.astype(str), order_id.astype(str))
    customer = owner[parts["order"]].astype(float)
    customer[customer == 0] = np.nan
    product_code = np.where(parts["product"] < 0, "POST", codes[np.maximum(parts["product"], 0)])
    day0 = np.datetime64(first_day.date(), "s")
    lines = pd.DataFrame(
        {
            "order_id": order_id,
            "customer_id": pd.array(customer, dtype="Float64").astype("Int64"),
            "timestamp": (day0 + parts["seconds"].astype("timedelta64[s]")).astype(
                "datetime64[ns]"
            ),
            "product_code": product_code,
            "quantity": parts["quantity"],
            "unit_price": parts["unit_price"],
            "amount": parts["amount"],
        }
    )
    counts = {
        "orders": int(n_orders),
        "customer_orders": int((owner > 0).sum()),
        "merchandise_lines": int(line_order.size),
        "return_lines": int(is_return.sum()),
        "return_invoices": int(np.unique(line_order[is_return]).size),
        "postage_lines": int(post.size),
        "zero_amount_lines": int(zero_order.size),
        "duplicate_lines": int(dup.size),
    }
    return lines, counts


def _mean(values: pd.Series | np.ndarray) -> float:
    array = np.asarray(values, dtype=float)
    return round(float(array.mean()), 6) if array.size else 0.0


def _truth(
    *,
    params: RetailerParameters,
    seed: int | None,
    n: int,
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    n_days: int,
    contact: int,
    window_end: int,
    tables: dict[str, pd.DataFrame],
    line_counts: dict[str, int],
    n_guest: int,
    default_design: bool,
) -> dict[str, Any]:
    """Everything a user needs to judge an analysis of the simulated retailer."""
    ct = tables["customer_truth"]
    customers = tables["customers"]
    campaign = tables["campaign"]
    lines = tables["transactions"]
    day = first_day.date()

    def iso(offset: int) -> str:
        return (first_day + pd.Timedelta(days=offset)).date().isoformat()

    margin = params.gross_margin
    cost = params.campaign_cost_per_contact
    segments = {}
    for name in ("non_member", "member", "all"):
        mask = np.ones(n, dtype=bool) if name == "all" else (campaign["segment"] == name).to_numpy()
        sub = ct[mask]
        alive = sub["alive_at_contact"].to_numpy()
        effect_revenue = _mean(sub["campaign_effect_revenue"])
        segments[name] = {
            "n_customers": int(mask.sum()),
            "n_treated": int(campaign.loc[mask, "treatment"].sum()),
            "n_alive_at_contact": int(alive.sum()),
            "purchase_prob_control": _mean(sub["campaign_purchase_prob_control"]),
            "purchase_prob_treated": _mean(sub["campaign_purchase_prob_treated"]),
            "effect_purchase": _mean(sub["campaign_effect_purchase"]),
            "effect_purchase_if_alive": _mean(sub.loc[alive, "campaign_effect_purchase"]),
            "orders_control": _mean(sub["campaign_orders_control"]),
            "orders_treated": _mean(sub["campaign_orders_treated"]),
            "effect_orders": _mean(sub["campaign_effect_orders"]),
            "effect_revenue": effect_revenue,
            "effect_alive_at_window_end": _mean(sub["campaign_effect_alive"]),
            "incremental_gross_profit_per_contact": round(effect_revenue * margin - cost, 6),
        }

    # channel payback truth: expected first-year orders from acquisition, absent the campaign
    first_year = _expected_purchasing(
        ct["purchase_rate"].to_numpy(),
        ct["dropout_prob"].to_numpy(),
        ct["purchase_rate_member"].to_numpy(),
        ct["dropout_prob_member"].to_numpy(),
        np.zeros(n, dtype=bool),
        params.loyalty_join_prob,
        365.0,
    )["orders"]
    first_year_revenue = (1.0 + first_year) * ct["mean_order_value"].to_numpy()
    channels = {}
    for name, spec in params.channels.items():
        mask = (customers["channel"] == name).to_numpy()
        channels[name] = {
            "n_customers": int(mask.sum()),
            "acquisition_cost_mean": _mean(customers.loc[mask, "acquisition_cost"]),
            "purchase_rate_mean": _mean(ct.loc[mask, "purchase_rate"]),
            "dropout_prob_mean": _mean(ct.loc[mask, "dropout_prob"]),
            "expected_orders_first_365d": _mean(1.0 + first_year[mask]),
            "expected_revenue_first_365d": _mean(first_year_revenue[mask]),
            "expected_gross_profit_first_365d": _mean(first_year_revenue[mask] * margin),
            "rate_multiplier": spec["rate_multiplier"],
            "dropout_multiplier": spec["dropout_multiplier"],
        }

    members = customers["loyalty_member"].to_numpy()
    n_lines = len(lines)
    dirty = {
        "guest_orders": int(n_guest),
        "lines_missing_customer_id": int(lines["customer_id"].isna().sum()),
        "duplicate_lines": line_counts["duplicate_lines"],
        "zero_amount_lines": line_counts["zero_amount_lines"],
        "postage_lines": line_counts["postage_lines"],
        "return_lines": line_counts["return_lines"],
        "return_invoices": line_counts["return_invoices"],
    }
    dirty_shares = {f"{k}_share_of_lines": round(v / n_lines, 6) for k, v in dirty.items()}
    window = params.campaign_window_days
    command = None
    if seed is not None and default_design and params == RetailerParameters():
        command = (
            f"custval simulate --out DIR --customers {n} --seed {seed} "
            f"--start {day.isoformat()} --end {last_day.date().isoformat()}"
        )
    return _jsonable(
        {
            "generator": "custval.datasets.simulate",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "command": command,
            "n_customers": n,
            "time_unit": "D",
            "period": {
                "start": day.isoformat(),
                "end": last_day.date().isoformat(),
                "n_days": n_days,
                "observation_end": last_day.date().isoformat(),
                "acquisition_start": day.isoformat(),
                "acquisition_end": iso(contact - 1),
                "contact_date": iso(contact),
                "campaign_window_last_day": iso(window_end - 1),
            },
            "parameters": params.to_dict(),
            "purchase_process": {
                "model": "BG/NBD (Fader, Hardie & Lee 2005)",
                "time_unit": "days",
                "r": params.r,
                "alpha": params.alpha,
                "a": params.a,
                "b": params.b,
                "mean_purchase_rate_per_day": round(params.r / params.alpha, 6),
                "mean_dropout_prob": round(params.a / (params.a + params.b), 6),
                "note": (
                    "lambda ~ Gamma(shape r, rate alpha) per day and p ~ Beta(a, b), each then "
                    "multiplied by the channel's rate_multiplier / dropout_multiplier (p capped at "
                    "max_dropout); the first order is the acquisition; repeat orders are Poisson "
                    "while alive; after each repeat order the customer drops out with probability "
                    "p. customer_truth.purchase_rate and dropout_prob are the per-customer values "
                    "(non-member, no campaign)."
                ),
            },
            "spend": {
                "model": "Gamma-Gamma (Fader, Hardie & Lee 2005; Colombo & Jiang 1999)",
                "p": params.spend_p,
                "q": params.spend_q,
                "gamma": params.spend_gamma,
                "population_mean_order_value": round(
                    params.spend_p * params.spend_gamma / (params.spend_q - 1.0), 6
                )
                if params.spend_q > 1
                else None,
                "note": (
                    "nu ~ Gamma(shape q, rate gamma) divided by the region's spend_multiplier; "
                    "order value ~ Gamma(shape p, rate nu), independent of purchasing; a "
                    "customer's mean order value is p / nu. The order value is the order's "
                    "merchandise amount (sum of its non-POST lines, up to cent rounding), before "
                    "returns and without postage."
                ),
            },
            "channels": channels,
            "regions": {k: dict(v) for k, v in params.regions.items()},
            "loyalty": {
                "join_prob_per_repeat_order": params.loyalty_join_prob,
                "rate_multiplier": params.loyalty_rate_multiplier,
                "dropout_multiplier": params.loyalty_dropout_multiplier,
                "selection": (
                    "non-random: a non-member who survives a repeat order joins at that order "
                    "with join_prob, so frequent buyers join more and earlier; a naive "
                    "member/non-member comparison overstates the effect."
                ),
                "n_members_at_end": int(members.sum()),
                "n_members_at_contact": int(ct["member_at_contact"].sum()),
                "member_purchase_rate_mean": _mean(ct.loc[members, "purchase_rate"]),
                "non_member_purchase_rate_mean": _mean(ct.loc[~members, "purchase_rate"]),
                "att_orders_365d": _mean(ct.loc[members, "loyalty_effect_orders_365d"]),
                "att_definition": (
                    "mean over members of the expected orders in the 365 days after joining as a "
                    "member minus as a non-member who never joins, given the member's latent "
                    "rates and absent the campaign (customer_truth.loyalty_effect_orders_365d)."
                ),
            },
            "campaign": {
                "design": (
                    "every customer acquired before contact_date (alive or not: the retailer "
                    "cannot tell) is randomized, by complete randomization within segment, to "
                    "treatment with share treated_share; treated customers' purchase rate and "
                    "dropout probability are multiplied by the segment's effect for window_days "
                    "from contact_date."
                ),
                "contact_date": iso(contact),
                "window_days": window,
                "treated_share": params.campaign_treated_share,
                "cost_per_contact": cost,
                "segment_definition": (
                    "loyalty membership at the contact date: 'member' if loyalty_join_date < "
                    "contact_date, else 'non_member'"
                ),
                "responsive_segment": "non_member",
                "effects": {k: dict(v) for k, v in params.campaign_effects.items()},
                "outcomes": {
                    "purchase": (
                        f"1 if the customer has an order (order_id not starting with 'C') with "
                        f"contact_date <= timestamp < contact_date + {window} days, else 0"
                    ),
                    "orders": "number of distinct such order_ids",
                    "revenue": (
                        "sum of amount over those orders' lines with product_code != 'POST' "
                        "(gross merchandise, before returns; drop exact duplicate rows first)"
                    ),
                },
                "effect_definition": (
                    "per customer, E[outcome | treated] - E[outcome | control] given the "
                    "customer's latent state at contact (0 for customers dead by then); segment "
                    "values are means over all randomized customers of the segment"
                ),
                "gross_margin_assumed": margin,
                "segments": segments,
            },
            "line_items": {
                "order_id": "'100000' onwards in time order; returns are 'C' + the returned order",
                "n_products": params.n_products,
                "product_codes": "P0001..; 'POST' is postage",
                "lines_per_order": (
                    "1 + Poisson(extra_lines_mean * sqrt(order value / population mean)), "
                    "repeated products merged; the order value is split across lines by "
                    "Dirichlet(1) weights; quantity = max(1, round(line value / list price)); "
                    "unit_price = line value / quantity rounded to cents (order-level prices "
                    "around the list price)"
                ),
                "returns": (
                    "each merchandise line of a customer order is returned with probability "
                    "return_line_prob (quantity uniform 1..bought, same unit price), all returned "
                    "lines of an order together on one invoice 'C' + order_id, "
                    "return_delay_days after the order; returns after the end are dropped. "
                    "Returns do not change purchasing or the alive state."
                ),
            },
            "dirty": {**dirty, **dirty_shares},
            "counts": {
                "customers": n,
                "customer_orders": line_counts["customer_orders"],
                "orders_including_guests": line_counts["orders"],
                "repeat_orders": line_counts["customer_orders"] - n,
                "transaction_lines": n_lines,
                "merchandise_lines": line_counts["merchandise_lines"],
                "alive_at_contact": int(ct["alive_at_contact"].sum()),
                "alive_at_end": int(ct["alive_at_end"].sum()),
                "loyalty_members_at_end": int(members.sum()),
                "campaign_treated": int(campaign["treatment"].sum()),
                "campaign_control": int(n - campaign["treatment"].sum()),
            },
            "definitions": {
                "observation_end": (
                    "the last day of the period, inclusive; alive_at_end is the state at the end "
                    "of that day"
                ),
                "alive": (
                    "a customer who has not dropped out; dropout happens right after a repeat "
                    "order (BG/NBD), so dropout_date is the date of the last order"
                ),
                "expected_orders_next_365d": (
                    "expected orders in the 365 days after the observation end given the latent "
                    "state at the end (0 if dead), including possible loyalty joining"
                ),
                "expected_revenue_next_365d": "expected_orders_next_365d * mean_order_value",
                "expected_revenue_future_discounted": (
                    "expected revenue of all future orders after the observation end, "
                    "continuously discounted at 10% a year (residual lifetime value, revenue)"
                ),
                "gross_margin": (
                    f"the generator works on revenue; analyses should assume a gross margin of "
                    f"{margin} (contribution = margin * revenue)"
                ),
            },
        }
    )
