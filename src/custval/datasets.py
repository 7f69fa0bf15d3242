"""Sample data: a simulated retailer with known truth, and loaders for public data sets.

:func:`simulate` builds a retailer whose customers follow the BG/NBD purchase process
(Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing Science 24(2)) with
Gamma-Gamma order values (Fader, Hardie & Lee 2005, "RFM and CLV", JMR 42(4); Colombo & Jiang
1999), acquisition channels with costs, a loyalty programme that customers self-select into and a
randomized relationship campaign whose effect differs by segment. Every latent quantity (purchase
rate, dropout probability, spend, alive/dead state, campaign effect) is returned next to the data a
user would have, so models and analyses can be judged against the truth.

:func:`load_sample` returns the committed sample made by ``custval simulate`` (see
``data/sample/README.md``); :func:`load_cdnow`, :func:`load_online_retail` and
:func:`load_donations` read public data sets in their published formats.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from custval._validation import require_columns
from custval.errors import DataError

__all__ = [
    "RetailerParameters",
    "SimulatedRetailer",
    "load_cdnow",
    "load_donations",
    "load_online_retail",
    "load_sample",
    "load_simulated",
    "simulate",
]

#: Version of the generator. Bump it whenever the same seed would give different data.
GENERATOR_VERSION = 1

_SECONDS_PER_DAY = 86_400
_DAYS_PER_YEAR = 365.2425

# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def _default_channels() -> dict[str, dict[str, float]]:
    return {
        "search": {
            "share": 0.35,
            "cac_mean": 30.0,
            "cac_cv": 0.35,
            "rate_multiplier": 1.0,
            "dropout_multiplier": 1.0,
        },
        "social": {
            "share": 0.30,
            "cac_mean": 22.0,
            "cac_cv": 0.35,
            "rate_multiplier": 0.8,
            "dropout_multiplier": 1.4,
        },
        "referral": {
            "share": 0.15,
            "cac_mean": 12.0,
            "cac_cv": 0.35,
            "rate_multiplier": 1.25,
            "dropout_multiplier": 0.7,
        },
        "affiliate": {
            "share": 0.20,
            "cac_mean": 26.0,
            "cac_cv": 0.35,
            "rate_multiplier": 0.9,
            "dropout_multiplier": 1.15,
        },
    }


def _default_regions() -> dict[str, dict[str, float]]:
    return {
        "north": {"share": 0.30, "spend_multiplier": 0.95},
        "south": {"share": 0.30, "spend_multiplier": 1.10},
        "east": {"share": 0.20, "spend_multiplier": 1.00},
        "west": {"share": 0.20, "spend_multiplier": 0.95},
    }


def _default_campaign_effects() -> dict[str, dict[str, float]]:
    return {
        "non_member": {"rate_multiplier": 1.8, "dropout_multiplier": 0.5},
        "member": {"rate_multiplier": 1.05, "dropout_multiplier": 1.0},
    }


@dataclass(frozen=True)
class RetailerParameters:
    """Every parameter of :func:`simulate`; the time unit is the day.

    Parameters
    ----------
    r, alpha : float
        BG/NBD purchase rates: ``lambda ~ Gamma(shape=r, rate=alpha)`` per day, before the
        channel multiplier. Mean ``r / alpha`` purchases a day.
    a, b : float
        BG/NBD dropout: ``p ~ Beta(a, b)``, the probability of becoming inactive after each repeat
        purchase, before the channel multiplier (the result is capped at ``max_dropout``).
    spend_p, spend_q, spend_gamma : float
        Gamma-Gamma order values: ``nu ~ Gamma(shape=q, rate=gamma)`` per customer (divided by the
        region's spend multiplier), order value ``~ Gamma(shape=p, rate=nu)``; a customer's mean
        order value is ``p / nu`` and the population mean ``p * gamma / (q - 1)``.
    channels : dict
        Acquisition channel -> ``share``, ``cac_mean`` and ``cac_cv`` (acquisition cost per
        customer ~ Gamma with that mean and coefficient of variation), ``rate_multiplier`` (on
        lambda) and ``dropout_multiplier`` (on p).
    regions : dict
        Region -> ``share`` and ``spend_multiplier`` (on the mean order value).
    loyalty_join_prob : float
        A non-member who survives a repeat purchase joins the loyalty programme at that purchase
        with this probability. Joining therefore depends on past purchasing (self-selection).
    loyalty_rate_multiplier, loyalty_dropout_multiplier : float
        The programme's true causal effect: after joining, lambda and p are multiplied by these.
    campaign_window_days : int
        The campaign acts on purchasing for this many days after the contact date; the campaign
        outcomes are measured over the same window.
    campaign_treated_share : float
        Share of each segment randomized to treatment (complete randomization within segment).
    campaign_cost_per_contact : float
        Cost of contacting one customer.
    campaign_effects : dict
        Segment (``"member"`` / ``"non_member"``, the loyalty status at the contact date) ->
        ``rate_multiplier`` and ``dropout_multiplier`` applied to treated customers during the
        window.
    gross_margin : float
        Not used by the generator; the margin that analyses of this retailer should assume.
    n_products, product_price_median, product_price_sigma, product_popularity_exponent
        The catalogue: list prices ~ LogNormal(log(median), sigma) rounded to a .49/.99 price
        point; product popularity ~ 1 / rank ** exponent.
    extra_lines_mean : float
        Lines per order = 1 + Poisson(extra_lines_mean * sqrt(order value / population mean)),
        before merging repeated products.
    return_line_prob : float
        Probability that a merchandise line of a customer order is (partly) returned.
    return_delay_days : tuple of float
        A return arrives Uniform(low, high) days after its order (dropped if after the end).
    postage_order_share, postage_amount : float
        Share of orders with a postage line (product code ``"POST"``) and its amount.
    guest_order_share : float
        Extra orders without a customer id (guest checkouts), as a share of customer orders.
    duplicate_line_share : float
        Share of lines written twice (exact duplicate rows).
    zero_amount_line_share : float
        Share of extra lines with unit price 0 (free items) added to random orders.
    max_dropout : float
        Cap on the dropout probability after multipliers.

    Examples
    --------
    >>> from custval.datasets import RetailerParameters
    >>> params = RetailerParameters()
    >>> round(params.r / params.alpha, 4)  # mean purchases a day
    0.0125
    >>> RetailerParameters.plain().loyalty_join_prob
    0.0
    """

    r: float = 0.75
    alpha: float = 60.0
    a: float = 1.2
    b: float = 6.0
    spend_p: float = 6.0
    spend_q: float = 4.0
    spend_gamma: float = 20.0
    channels: Mapping[str, Mapping[str, float]] = field(default_factory=_default_channels)
    regions: Mapping[str, Mapping[str, float]] = field(default_factory=_default_regions)
    loyalty_join_prob: float = 0.12
    loyalty_rate_multiplier: float = 1.3
    loyalty_dropout_multiplier: float = 0.6
    campaign_window_days: int = 90
    campaign_treated_share: float = 0.5
    campaign_cost_per_contact: float = 2.5
    campaign_effects: Mapping[str, Mapping[str, float]] = field(
        default_factory=_default_campaign_effects
    )
    gross_margin: float = 0.3
    n_products: int = 300
    product_price_median: float = 6.0
    product_price_sigma: float = 0.8
    product_popularity_exponent: float = 1.0
    extra_lines_mean: float = 1.5
    return_line_prob: float = 0.03
    return_delay_days: tuple[float, float] = (1.0, 30.0)
    postage_order_share: float = 0.06
    postage_amount: float = 4.95
    guest_order_share: float = 0.005
    duplicate_line_share: float = 0.002
    zero_amount_line_share: float = 0.001
    max_dropout: float = 0.99

    @classmethod
    def plain(cls) -> RetailerParameters:
        """Parameters with every attribute effect switched off.

        Channels and regions keep their shares and costs but change no behaviour, nobody joins
        the loyalty programme and the campaign has no effect, so the purchase process is exactly
        BG/NBD with ``(r, alpha, a, b)`` and order values exactly Gamma-Gamma with
        ``(spend_p, spend_q, spend_gamma)``: use it for parameter recovery.

        Examples
        --------
        >>> RetailerParameters.plain().campaign_effects["non_member"]["rate_multiplier"]
        1.0
        """
        base = cls()
        channels = {
            name: {**spec, "rate_multiplier": 1.0, "dropout_multiplier": 1.0}
            for name, spec in base.channels.items()
        }
        regions = {name: {**spec, "spend_multiplier": 1.0} for name, spec in base.regions.items()}
        effects = {
            name: {"rate_multiplier": 1.0, "dropout_multiplier": 1.0}
            for name in base.campaign_effects
        }
        return replace(
            base,
            channels=channels,
            regions=regions,
            loyalty_join_prob=0.0,
            loyalty_rate_multiplier=1.0,
            loyalty_dropout_multiplier=1.0,
            campaign_effects=effects,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as plain JSON-ready Python objects."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer | bool):
        return int(value) if not isinstance(value, bool) else value
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


_POSITIVE_PARAMETERS = ("r", "alpha", "a", "b", "spend_p", "spend_q", "spend_gamma")
_SHARE_PARAMETERS = (
    "loyalty_join_prob",
    "campaign_treated_share",
    "return_line_prob",
    "postage_order_share",
    "guest_order_share",
    "duplicate_line_share",
    "zero_amount_line_share",
)


def _check_parameters(params: RetailerParameters) -> None:
    for name in _POSITIVE_PARAMETERS:
        value = getattr(params, name)
        if not (value > 0 and math.isfinite(value)):
            raise DataError(f"parameter {name!r} must be a positive number, got {value!r}")
    for name in _SHARE_PARAMETERS:
        value = getattr(params, name)
        if not 0.0 <= value <= 1.0:
            raise DataError(f"parameter {name!r} must be a probability in [0, 1], got {value!r}")
    for what, table in (("channels", params.channels), ("regions", params.regions)):
        if not table:
            raise DataError(f"parameter {what!r} must name at least one {what[:-1]}")
        total = sum(spec["share"] for spec in table.values())
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise DataError(
                f"the shares of parameter {what!r} must sum to 1, got {total!r}; rescale them"
            )
    missing = {"member", "non_member"} - set(params.campaign_effects)
    if missing:
        raise DataError(
            "parameter 'campaign_effects' must give 'rate_multiplier' and 'dropout_multiplier' "
            f"for the segments 'member' and 'non_member'; missing {sorted(missing)}"
        )
    if params.campaign_window_days < 1:
        raise DataError(
            f"parameter 'campaign_window_days' must be at least 1, got "
            f"{params.campaign_window_days!r}"
        )


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


# --------------------------------------------------------------------------------------------
# The simulated retailer
# --------------------------------------------------------------------------------------------

_FILES = {
    "transactions": "transactions.csv.gz",
    "customers": "customers.csv.gz",
    "campaign": "campaign.csv.gz",
    "customer_truth": "customer_truth.csv.gz",
}
_TRUTH_FILE = "truth.json"

# column -> (dtype, csv format); formats: "int", "money" (2 decimals), "g" (6 significant digits),
# "str", "bool" (0/1), "datetime" (seconds), "date"
_SCHEMAS: dict[str, dict[str, tuple[str, str]]] = {
    "transactions": {
        "order_id": ("str", "str"),
        "customer_id": ("Int64", "int"),
        "timestamp": ("datetime64[ns]", "datetime"),
        "product_code": ("str", "str"),
        "quantity": ("int64", "int"),
        "unit_price": ("float64", "money"),
        "amount": ("float64", "money"),
    },
    "customers": {
        "customer_id": ("int64", "int"),
        "acquisition_date": ("datetime64[ns]", "date"),
        "channel": ("str", "str"),
        "region": ("str", "str"),
        "acquisition_cost": ("float64", "money"),
        "loyalty_member": ("bool", "bool"),
        "loyalty_join_date": ("datetime64[ns]", "date"),
    },
    "campaign": {
        "customer_id": ("int64", "int"),
        "treatment": ("int64", "int"),
        "contact_date": ("datetime64[ns]", "date"),
        "cost_per_contact": ("float64", "money"),
        "segment": ("str", "str"),
    },
    "customer_truth": {
        "customer_id": ("int64", "int"),
        "purchase_rate": ("float64", "g"),
        "dropout_prob": ("float64", "g"),
        "purchase_rate_member": ("float64", "g"),
        "dropout_prob_member": ("float64", "g"),
        "spend_nu": ("float64", "g"),
        "mean_order_value": ("float64", "g"),
        "n_orders": ("int64", "int"),
        "alive_at_contact": ("bool", "bool"),
        "member_at_contact": ("bool", "bool"),
        "alive_at_end": ("bool", "bool"),
        "dropout_date": ("datetime64[ns]", "date"),
        "expected_orders_next_365d": ("float64", "g"),
        "expected_revenue_next_365d": ("float64", "g"),
        "expected_revenue_future_discounted": ("float64", "g"),
        "loyalty_effect_orders_365d": ("float64", "g"),
        "campaign_purchase_prob_control": ("float64", "g"),
        "campaign_purchase_prob_treated": ("float64", "g"),
        "campaign_effect_purchase": ("float64", "g"),
        "campaign_orders_control": ("float64", "g"),
        "campaign_orders_treated": ("float64", "g"),
        "campaign_effect_orders": ("float64", "g"),
        "campaign_effect_revenue": ("float64", "g"),
        "campaign_effect_alive": ("float64", "g"),
    },
}


def _format_column(values: pd.Series, fmt: str) -> pd.Series:
    """The exact text written to the csv for one column (missing values become '')."""
    if fmt == "str":
        return values.astype(str)
    if fmt == "bool":
        return values.astype(bool).map({True: "1", False: "0"}).astype(str)
    if fmt == "int":
        return pd.Series(
            ["" if pd.isna(v) else str(int(v)) for v in values], index=values.index, dtype=str
        )
    if fmt in {"datetime", "date"}:
        pattern = "%Y-%m-%d %H:%M:%S" if fmt == "datetime" else "%Y-%m-%d"
        return values.dt.strftime(pattern).fillna("").astype(str)
    pattern = "{:.2f}" if fmt == "money" else "{:.6g}"
    array = values.to_numpy(dtype=float)
    # ``+ 0.0`` turns -0.0 into 0.0; a tiny negative rounded to zero is written without sign
    text = ["" if not math.isfinite(v) else pattern.format(v + 0.0) for v in array]
    text = ["0.00" if t == "-0.00" else ("0" if t == "-0" else t) for t in text]
    return pd.Series(text, index=values.index, dtype=str)


def _quantize(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Give ``frame`` its schema's dtypes and exactly the values that survive a csv round trip."""
    schema = _SCHEMAS[table]
    out = {}
    for column, (dtype, fmt) in schema.items():
        values = frame[column]
        if fmt in {"money", "g"}:
            text = _format_column(values.astype(float), fmt)
            values = pd.to_numeric(text.replace("", np.nan), errors="raise")
        out[column] = _as_dtype(values, dtype)
    return pd.DataFrame(out)


def _as_dtype(values: pd.Series, dtype: str) -> pd.Series:
    if dtype == "datetime64[ns]":
        return pd.to_datetime(values).astype("datetime64[ns]")
    if dtype == "bool":
        return values.astype(bool)
    if dtype == "str":
        return values.astype(str)
    return values.astype(dtype)


def _csv_bytes(frame: pd.DataFrame, table: str) -> bytes:
    schema = _SCHEMAS[table]
    text = pd.DataFrame({c: _format_column(frame[c], fmt) for c, (_, fmt) in schema.items()})
    return text.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _gzip_bytes(payload: bytes) -> bytes:
    """Gzip deterministically: no file name, mtime 0, fixed level."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    return buffer.getvalue()


def _read_table(path: Path, table: str) -> pd.DataFrame:
    schema = _SCHEMAS[table]
    dtypes: dict[str, Any] = {}
    for column, (dtype, _fmt) in schema.items():
        if dtype == "str":
            dtypes[column] = str
        elif dtype in {"int64", "Int64"}:
            dtypes[column] = "Int64"
        elif dtype == "float64":
            dtypes[column] = "float64"
        else:
            dtypes[column] = str
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    require_columns(frame, schema, what=f"{path.name}", hint=_REGENERATE_HINT)
    out = {}
    for column, (dtype, fmt) in schema.items():
        values = frame[column]
        if fmt == "bool":
            values = values.astype(int).astype(bool)
        elif dtype == "datetime64[ns]":
            pattern = "%Y-%m-%d %H:%M:%S" if fmt == "datetime" else "%Y-%m-%d"
            values = pd.to_datetime(values, format=pattern)
        out[column] = _as_dtype(values, dtype)
    return pd.DataFrame(out)


_REGENERATE_HINT = (
    "regenerate the folder with `custval simulate --out DIR` (see data/sample/README.md)"
)


@dataclass(frozen=True, eq=False)
class SimulatedRetailer:
    """A simulated retailer: the data a user would have, and the truth behind it.

    Attributes
    ----------
    transactions : DataFrame
        Line items: ``order_id`` (str; returns are ``"C" + order_id`` of the order returned),
        ``customer_id`` (Int64, missing for guest orders), ``timestamp``, ``product_code``
        (``"POST"`` for postage), ``quantity`` (negative for returns), ``unit_price``,
        ``amount`` (= quantity x unit price).
    customers : DataFrame
        One row per customer: ``customer_id``, ``acquisition_date`` (date of the first order),
        ``channel``, ``region``, ``acquisition_cost``, ``loyalty_member`` (at the end),
        ``loyalty_join_date``.
    campaign : DataFrame
        The randomized campaign: ``customer_id``, ``treatment`` (0/1), ``contact_date``,
        ``cost_per_contact``, ``segment``. No outcomes: measure them from ``transactions``.
    customer_truth : DataFrame
        Latent per-customer truth: rates, dropout, spend, alive state, expected future value and
        the true (expected) campaign and loyalty effects.
    truth : dict
        Every parameter, the seed, the generator version, counts and definitions.

    Examples
    --------
    >>> from custval.datasets import simulate
    >>> sim = simulate(n_customers=200, random_state=1)
    >>> sorted(sim.tables)
    ['campaign', 'customer_truth', 'customers', 'transactions']
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame
    campaign: pd.DataFrame
    customer_truth: pd.DataFrame
    truth: dict[str, Any]

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The four tables by name."""
        return {
            "transactions": self.transactions,
            "customers": self.customers,
            "campaign": self.campaign,
            "customer_truth": self.customer_truth,
        }

    @property
    def observation_end(self) -> pd.Timestamp:
        """The last day of the observation period (inclusive)."""
        return pd.Timestamp(self.truth["period"]["end"])

    def write(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write the four tables (gzipped csv) and ``truth.json`` to ``folder``.

        The bytes depend only on the data: gzip is written without file name and with mtime 0,
        floats with fixed formats (money with 2 decimals, other floats with 6 significant
        digits), so the same call regenerates identical files. Other files in ``folder`` are left
        alone.

        Parameters
        ----------
        folder : str or path
            Created if it does not exist.

        Returns
        -------
        list of Path
            The files written.

        Examples
        --------
        >>> import tempfile
        >>> from custval.datasets import simulate
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     paths = simulate(n_customers=50).write(tmp)
        ...     [p.name for p in paths]
        ['transactions.csv.gz', 'customers.csv.gz', 'campaign.csv.gz', 'customer_truth.csv.gz', 'truth.json']
        """  # noqa: E501
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for table, name in _FILES.items():
            path = folder / name
            path.write_bytes(_gzip_bytes(_csv_bytes(self.tables[table], table)))
            written.append(path)
        path = folder / _TRUTH_FILE
        text = json.dumps(self.truth, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
        return written


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
    if not isinstance(params, RetailerParameters):
        raise DataError(
            f"params must be a RetailerParameters, got {type(params).__name__}; build one with "
            "custval.datasets.RetailerParameters(...)"
        )
    _check_parameters(params)
    whole = isinstance(n_customers, int | np.integer) and not isinstance(n_customers, bool)
    if not whole or n_customers < 1:
        raise DataError(f"n_customers must be a positive integer, got {n_customers!r}")
    n = int(n_customers)
    first_day = _as_day(start, "start")
    last_day = _as_day(end, "end")
    n_days = (last_day - first_day).days + 1
    min_days = 3 * params.campaign_window_days
    if n_days < min_days:
        raise DataError(
            f"the period {first_day.date()}..{last_day.date()} has {n_days} days; it needs at "
            f"least {min_days} (3 campaign windows of {params.campaign_window_days} days); "
            "choose an earlier start or a later end"
        )
    if contact_date is None:
        contact = (2 * n_days) // 3
    else:
        contact = (_as_day(contact_date, "contact_date") - first_day).days
        if not 1 <= contact < n_days:
            raise DataError(
                f"contact_date {contact_date!r} must fall after start ({first_day.date()}) and "
                f"no later than end ({last_day.date()})"
            )
    window_end = min(contact + params.campaign_window_days, n_days)
    seed = random_state if isinstance(random_state, int | np.integer) else None
    rng = np.random.default_rng(random_state)

    # --- customers and their latent parameters
    channel_names = list(params.channels)
    region_names = list(params.regions)
    ch = params.channels
    channel = rng.choice(len(channel_names), size=n, p=[ch[c]["share"] for c in channel_names])
    region = rng.choice(
        len(region_names), size=n, p=[params.regions[x]["share"] for x in region_names]
    )
    acquisition = np.sort(rng.random(n) * contact)
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
    mean_order_value = params.spend_p / nu
    rate_member = rate * params.loyalty_rate_multiplier
    dropout_member = np.minimum(dropout * params.loyalty_dropout_multiplier, params.max_dropout)
    rates = (rate, dropout, rate_member, dropout_member)

    # --- phase 1: acquisition to contact
    all_ids = np.arange(n)
    phase1 = _simulate_phase(
        rng,
        acquisition,
        np.full(n, float(contact)),
        *rates,
        np.zeros(n, dtype=bool),
        params.loyalty_join_prob,
    )
    alive_contact = ~phase1["dead"]
    member_contact = phase1["member"].copy()
    segment = np.where(member_contact, "member", "non_member")
    treatment = _stratified_assignment(rng, segment, params.campaign_treated_share)

    # --- phase 2: the campaign window, treated customers' rates changed by segment
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

    def arm(treated: np.ndarray | bool):
        m_rate = np.where(treated, seg_rate, 1.0)
        m_drop = np.where(treated, seg_drop, 1.0)
        return (
            rate * m_rate,
            np.minimum(dropout * m_drop, params.max_dropout),
            rate_member * m_rate,
            np.minimum(dropout_member * m_drop, params.max_dropout),
        )

    def later_phase(
        alive: np.ndarray,
        member: np.ndarray,
        start: int,
        stop: int,
        phase_rates: tuple[np.ndarray, ...],
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Simulate the customers alive at ``start`` on ``[start, stop)``; return their ids,
        the phase, and everyone's membership and alive state at ``stop``."""
        ids = all_ids[alive]
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
        alive_after = np.zeros(n, dtype=bool)
        alive_after[ids] = ~phase["dead"]
        return ids, phase, member_after, alive_after

    assigned = arm(treatment.astype(bool))
    idx2, phase2, member_window, alive_window = later_phase(
        alive_contact, member_contact, contact, window_end, assigned
    )

    # --- phase 3: after the window to the end
    idx3, phase3, member_end, alive_end = later_phase(
        alive_window, member_window, window_end, n_days, rates
    )

    def first_time(key: str) -> np.ndarray:
        """The earliest time of an event (joining, dropout) over the three phases, else NaN."""
        times = phase1[key].copy()
        for ids, phase in ((idx2, phase2), (idx3, phase3)):
            times[ids] = np.where(np.isnan(times[ids]), phase[key], times[ids])
        return times

    join_time = first_time("join_time")
    death_time = first_time("death_time")

    order_owner = np.concatenate(
        (all_ids, phase1["owner"], idx2[phase2["owner"]], idx3[phase3["owner"]])
    )
    order_time = np.concatenate((acquisition, phase1["time"], phase2["time"], phase3["time"]))
    n_orders = np.bincount(order_owner, minlength=n)

    # --- order values (Gamma-Gamma), guest orders, line items
    order_value = rng.gamma(params.spend_p, 1.0 / nu[order_owner])
    n_guest = round(params.guest_order_share * order_owner.size)
    guest_time = rng.random(n_guest) * n_days
    guest_nu = rng.gamma(params.spend_q, 1.0 / params.spend_gamma, size=n_guest)
    guest_value = rng.gamma(params.spend_p, 1.0 / guest_nu)
    lines, line_counts = _line_items(
        rng,
        params,
        owner=np.concatenate((order_owner + 1, np.zeros(n_guest, dtype=np.int64))),
        time=np.concatenate((order_time, guest_time)),
        value=np.concatenate((order_value, guest_value)),
        n_days=n_days,
        first_day=first_day,
    )

    # --- expected quantities (the truth)
    member_alive_end = member_end & alive_end
    future = _expected_purchasing(*rates, member_alive_end, params.loyalty_join_prob, 365.0)
    delta = math.log1p(0.10) / _DAYS_PER_YEAR
    future_disc = _expected_purchasing(
        *rates, member_alive_end, params.loyalty_join_prob, math.inf, discount=delta
    )
    expected_orders_365 = np.where(alive_end, future["orders"], 0.0)
    expected_revenue_365 = expected_orders_365 * mean_order_value
    expected_revenue_future = np.where(alive_end, future_disc["orders"], 0.0) * mean_order_value
    joined = ~np.isnan(join_time)
    as_member = (1.0 - np.exp(-rate_member * dropout_member * 365.0)) / dropout_member
    as_non_member = (1.0 - np.exp(-rate * dropout * 365.0)) / dropout
    loyalty_effect = np.where(joined, as_member - as_non_member, np.nan)

    window = float(window_end - contact)
    control, treated = arm(False), arm(True)
    outcome = {}
    for name, rates in (("control", control), ("treated", treated)):
        outcome[name] = _expected_purchasing(
            *rates, member_contact, params.loyalty_join_prob, window
        )
        for key in outcome[name]:
            outcome[name][key] = np.where(alive_contact, outcome[name][key], 0.0)
    effect_purchase = outcome["treated"]["any_purchase"] - outcome["control"]["any_purchase"]
    effect_orders = outcome["treated"]["orders"] - outcome["control"]["orders"]
    effect_revenue = effect_orders * mean_order_value
    effect_alive = outcome["treated"]["alive"] - outcome["control"]["alive"]

    # --- tables
    ids = all_ids + 1
    day0 = np.datetime64(first_day.date(), "D")

    def to_dates(days: np.ndarray) -> pd.Series:
        whole = np.floor(np.nan_to_num(days, nan=0.0)).astype(np.int64)
        stamps = (day0 + whole.astype("timedelta64[D]")).astype("datetime64[ns]")
        return pd.Series(stamps).where(~np.isnan(days))

    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "acquisition_date": to_dates(acquisition),
            "channel": np.array(channel_names, dtype=object)[channel],
            "region": np.array(region_names, dtype=object)[region],
            "acquisition_cost": acquisition_cost,
            "loyalty_member": member_end,
            "loyalty_join_date": to_dates(join_time),
        }
    )
    contact_day = first_day + pd.Timedelta(days=contact)
    campaign = pd.DataFrame(
        {
            "customer_id": ids,
            "treatment": treatment,
            "contact_date": pd.Series(np.full(n, contact_day.to_datetime64())),
            "cost_per_contact": np.full(n, params.campaign_cost_per_contact),
            "segment": segment,
        }
    )
    dropout_days = np.where(alive_end, np.nan, death_time)
    customer_truth = pd.DataFrame(
        {
            "customer_id": ids,
            "purchase_rate": rate,
            "dropout_prob": dropout,
            "purchase_rate_member": rate_member,
            "dropout_prob_member": dropout_member,
            "spend_nu": nu,
            "mean_order_value": mean_order_value,
            "n_orders": n_orders,
            "alive_at_contact": alive_contact,
            "member_at_contact": member_contact,
            "alive_at_end": alive_end,
            "dropout_date": to_dates(dropout_days),
            "expected_orders_next_365d": expected_orders_365,
            "expected_revenue_next_365d": expected_revenue_365,
            "expected_revenue_future_discounted": expected_revenue_future,
            "loyalty_effect_orders_365d": loyalty_effect,
            "campaign_purchase_prob_control": outcome["control"]["any_purchase"],
            "campaign_purchase_prob_treated": outcome["treated"]["any_purchase"],
            "campaign_effect_purchase": effect_purchase,
            "campaign_orders_control": outcome["control"]["orders"],
            "campaign_orders_treated": outcome["treated"]["orders"],
            "campaign_effect_orders": effect_orders,
            "campaign_effect_revenue": effect_revenue,
            "campaign_effect_alive": effect_alive,
        }
    )
    tables = {
        "transactions": _quantize(lines, "transactions"),
        "customers": _quantize(customers, "customers"),
        "campaign": _quantize(campaign, "campaign"),
        "customer_truth": _quantize(customer_truth, "customer_truth"),
    }
    truth = _truth(
        params=params,
        seed=seed,
        n=n,
        first_day=first_day,
        last_day=last_day,
        n_days=n_days,
        contact=contact,
        window_end=window_end,
        tables=tables,
        line_counts=line_counts,
        n_guest=n_guest,
        default_design=contact_date is None,
    )
    return SimulatedRetailer(truth=truth, **tables)


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


# --------------------------------------------------------------------------------------------
# Loading the committed sample and simulated folders
# --------------------------------------------------------------------------------------------


def _sample_folder() -> Path:
    """``data/sample`` of the source tree this module was imported from."""
    return Path(__file__).resolve().parents[2] / "data" / "sample"


def load_simulated(folder: str | os.PathLike[str]) -> SimulatedRetailer:
    """Read a folder written by :meth:`SimulatedRetailer.write` (or ``custval simulate``).

    Parameters
    ----------
    folder : str or path
        Folder holding ``transactions.csv.gz``, ``customers.csv.gz``, ``campaign.csv.gz``,
        ``customer_truth.csv.gz`` and ``truth.json``.

    Returns
    -------
    SimulatedRetailer
        With the same dtypes and values as the simulation that wrote the folder.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the files is missing.

    Examples
    --------
    >>> import tempfile
    >>> from custval.datasets import load_simulated, simulate
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = simulate(n_customers=100).write(tmp)
    ...     load_simulated(tmp).customers.shape
    (100, 7)
    """
    folder = Path(folder)
    names = [*_FILES.values(), _TRUTH_FILE]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not a simulated-retailer folder: missing {', '.join(missing)}; "
            f"{_REGENERATE_HINT}"
        )
    tables = {table: _read_table(folder / name, table) for table, name in _FILES.items()}
    truth = json.loads((folder / _TRUTH_FILE).read_text(encoding="utf-8"))
    return SimulatedRetailer(truth=truth, **tables)


def load_sample(path: str | os.PathLike[str] | None = None) -> SimulatedRetailer:
    """Return the project's sample retailer (``data/sample/``), made by ``custval simulate``.

    Parameters
    ----------
    path : str or path, optional
        Folder to read instead of the committed ``data/sample/`` of the source tree. An
        installed package does not ship the sample: make one with
        ``custval simulate --out DIR`` and pass ``path=DIR``.

    Returns
    -------
    SimulatedRetailer
        Transactions, customers, campaign, customer truth and the truth dictionary.

    Raises
    ------
    FileNotFoundError
        If the folder cannot be found, with the command that makes it.

    Examples
    --------
    >>> from custval.datasets import load_sample
    >>> sample = load_sample()  # doctest: +SKIP
    >>> sample.truth["n_customers"]  # doctest: +SKIP
    5000
    """
    if path is not None:
        return load_simulated(path)
    folder = _sample_folder()
    if not (folder / _TRUTH_FILE).is_file():
        raise FileNotFoundError(
            f"the sample data folder was not found at {folder} (an installed custval does not "
            "ship it); run `custval simulate --out DIR` to make it and call "
            "load_sample(path=DIR)"
        )
    return load_simulated(folder)


# --------------------------------------------------------------------------------------------
# Public data sets
# --------------------------------------------------------------------------------------------

_CDNOW_SOURCES = {
    "master": ("https://www.brucehardie.com/datasets/CDNOW_master.zip", "CDNOW_master.txt"),
    "sample": ("https://www.brucehardie.com/datasets/CDNOW_sample.zip", "CDNOW_sample.txt"),
}
_ONLINE_RETAIL_SOURCE = (
    "https://archive.ics.uci.edu/static/public/352/online+retail.zip",
    "Online Retail.xlsx",
)
_ONLINE_RETAIL_COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


def _bad_values(
    where: str,
    raw: pd.DataFrame,
    column: str,
    mask: np.ndarray,
    problem: str,
    fix: str | None = None,
    *,
    example: bool = True,
) -> DataError:
    """The error for the rows ``mask`` of ``column`` of a published file (``where``) that hold
    ``problem``: their count, the first five rows, the first value and the fix."""
    shown = f", e.g. {raw.loc[mask, column].iloc[0]!r}" if example else ""
    rows = raw.index[mask][:5].tolist()
    text = f"{where}: column {column!r} has {int(mask.sum()):,} {problem} (rows {rows}{shown})"
    return DataError(text if fix is None else f"{text}; {fix}")


def _cache_dir() -> Path:
    """``$CUSTVAL_CACHE`` or ``~/.cache/custval``."""
    return Path(os.environ.get("CUSTVAL_CACHE", Path.home() / ".cache" / "custval"))


def _download(url: str, what: str, how: str) -> Path:
    """Download ``url`` into the cache once; raise ``OSError`` saying what to do offline."""
    target = _cache_dir() / url.rsplit("/", 1)[-1].replace("+", "_")
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with urllib.request.urlopen(url, timeout=60) as response:
            partial.write_bytes(response.read())
        partial.replace(target)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise OSError(
            f"could not download the {what} from {url} ({error}); if you are offline or the "
            f"address has moved, download the file yourself and pass it: {how}"
        ) from error
    return target


def _read_bytes(path: Path, member: str | None) -> bytes:
    """Bytes of ``path``, of ``member`` inside a zip, or decompressed from ``.gz``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; check the path")
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            wanted = [n for n in names if member and n.rsplit("/", 1)[-1] == member]
            if not wanted:
                raise DataError(
                    f"{path} holds {', '.join(names)}, not {member!r}; pass the extracted file"
                )
            return archive.read(wanted[0])
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        data = gzip.decompress(data)
    return data


def load_cdnow(
    path: str | os.PathLike[str] | None = None,
    *,
    which: Literal["master", "sample"] = "master",
) -> pd.DataFrame:
    """Read the CDNOW purchase log (Fader & Hardie) in its published format.

    The master file has one line per customer and day: ``customer_id date number_of_cds
    dollar_value`` (whitespace-separated; the copy shipped with lifetimes adds that header line,
    Hardie's original has none; both are read). The 1/10 sample has no header and the columns
    ``master_id sample_id date cds dollars``. Dates are ``YYYYMMDD``.

    Parameters
    ----------
    path : str or path, optional
        The ``.txt`` file (or Hardie's ``.zip``). If omitted, the zip is downloaded once from
        Hardie's site into ``~/.cache/custval`` (``$CUSTVAL_CACHE``).
    which : {"master", "sample"}, default "master"
        Which of the two files ``path`` is (or which to download).

    Returns
    -------
    DataFrame
        ``customer_id`` (int64), ``timestamp`` (datetime64[ns], the day), ``amount`` (float64,
        dollars), ``quantity`` (int64, CDs), in file order. For the sample, ``customer_id`` is
        the sample id (1..2357, the ``ID`` of Hardie's summaries) and ``master_id`` is kept.

    Raises
    ------
    DataError
        If the file does not have the published layout.
    OSError
        If the download fails (offline): pass ``path`` instead.

    Examples
    --------
    >>> from custval.datasets import load_cdnow
    >>> log = load_cdnow("../shared/data/cdnow/CDNOW_master.txt")  # doctest: +SKIP
    >>> log.shape, log["customer_id"].nunique()  # doctest: +SKIP
    ((69659, 4), 23570)
    """
    if which not in _CDNOW_SOURCES:
        raise DataError(f"which must be 'master' or 'sample', got {which!r}")
    url, member = _CDNOW_SOURCES[which]
    if path is None:
        path = _download(url, f"CDNOW {which} file", f"load_cdnow('.../{member}', which={which!r})")
    path = Path(path)
    text = _read_bytes(path, member).decode("ascii", errors="replace")
    names = (
        ["customer_id", "date", "quantity", "amount"]
        if which == "master"
        else ["master_id", "customer_id", "date", "quantity", "amount"]
    )
    first = text.lstrip().split(None, 1)[0] if text.strip() else ""
    has_header = bool(first) and not first.isdigit()
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            sep=r"\s+",
            header=None,
            skiprows=1 if has_header else 0,
            names=names,
            dtype=str,
        )
    except pd.errors.ParserError as error:
        raise DataError(
            f"{path} is not the CDNOW {which} layout ({len(names)} whitespace-separated columns: "
            f"{' '.join(names)}): {error}; check which= and the file"
        ) from error
    if raw.empty or raw[names[-1]].isna().any():
        bad = raw.index[raw[names[-1]].isna()][:5].tolist() if not raw.empty else []
        raise DataError(
            f"{path} is not the CDNOW {which} layout: expected {len(names)} columns "
            f"({' '.join(names)}), rows {bad} have fewer; check which= and the file"
        )
    out = pd.DataFrame(index=raw.index)
    for column in ("customer_id", "quantity") + (("master_id",) if which == "sample" else ()):
        values = pd.to_numeric(raw[column], errors="coerce")
        if values.isna().any():
            raise _bad_values(
                str(path),
                raw,
                column,
                values.isna().to_numpy(),
                "non-integer values",
                "the CDNOW files hold whole numbers there",
            )
        out[column] = values.astype(np.int64)
    dates = pd.to_datetime(raw["date"], format="%Y%m%d", errors="coerce")
    if dates.isna().any():
        mask = dates.isna().to_numpy()
        raise _bad_values(str(path), raw, "date", mask, "values that are not YYYYMMDD dates")
    amount = pd.to_numeric(raw["amount"], errors="coerce")
    if amount.isna().any():
        raise _bad_values(str(path), raw, "amount", amount.isna().to_numpy(), "non-numeric values")
    result = pd.DataFrame(
        {
            "customer_id": out["customer_id"],
            "timestamp": dates.astype("datetime64[ns]"),
            "amount": amount.astype(np.float64),
            "quantity": out["quantity"],
        }
    )
    if which == "sample":
        result["master_id"] = out["master_id"]
    return result


def load_online_retail(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Read the UCI Online Retail data set (Chen, Sain & Guo 2012) with its published columns.

    Nothing is cleaned: cancellations (``InvoiceNo`` starting with ``"C"``), missing customer
    ids, negative quantities and postage rows are all kept (cleaning is
    ``custval.transactions``' job).

    Parameters
    ----------
    path : str or path, optional
        A ``.csv`` / ``.csv.gz`` with the published columns (ISO or ``M/D/YYYY H:MM`` dates),
        the UCI ``Online Retail.xlsx`` (needs ``openpyxl``) or UCI's ``.zip``. If omitted, the
        zip is downloaded once from the UCI repository into ``~/.cache/custval``.

    Returns
    -------
    DataFrame
        ``InvoiceNo`` (str), ``StockCode`` (str), ``Description`` (str, may be missing),
        ``Quantity`` (int64), ``InvoiceDate`` (datetime64[ns]), ``UnitPrice`` (float64),
        ``CustomerID`` (Int64, missing for 135,080 rows), ``Country`` (str); 541,909 rows.

    Raises
    ------
    DataError
        If columns are missing or values cannot be read.
    OSError
        If the download fails (offline): pass ``path`` instead.

    Examples
    --------
    >>> from custval.datasets import load_online_retail
    >>> retail = load_online_retail("../shared/data/online_retail/online_retail.csv.gz")  # doctest: +SKIP
    >>> len(retail)  # doctest: +SKIP
    541909
    """  # noqa: E501
    url, member = _ONLINE_RETAIL_SOURCE
    if path is None:
        path = _download(url, "UCI Online Retail data set", "load_online_retail('.../file.csv')")
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".xlsx", ".zip"}:
        data = _read_bytes(path, member)
        try:
            raw = pd.read_excel(io.BytesIO(data), dtype={"InvoiceNo": str, "StockCode": str})
        except ImportError as error:
            raise DataError(
                f"reading {path.name} needs the optional package openpyxl: pip install openpyxl, "
                "or convert the sheet to csv and pass that"
            ) from error
    else:
        raw = pd.read_csv(
            io.BytesIO(_read_bytes(path, None)),
            dtype={"InvoiceNo": str, "StockCode": str, "Description": str, "Country": str},
            keep_default_na=False,
            na_values=[""],
        )
    require_columns(
        raw,
        _ONLINE_RETAIL_COLUMNS,
        what=path.name,
        hint="pass the UCI Online Retail file with its published columns",
    )
    raw = raw[_ONLINE_RETAIL_COLUMNS]
    out = {}
    for column in ("InvoiceNo", "StockCode", "Description", "Country"):
        values = raw[column]
        out[column] = values.where(values.isna(), values.astype(str))  # values kept as published
    out["InvoiceNo"] = out["InvoiceNo"].astype(str)
    out["StockCode"] = out["StockCode"].astype(str)
    out["Quantity"] = _integers(raw, "Quantity", path, nullable=False)
    dates = raw["InvoiceDate"]
    if not pd.api.types.is_datetime64_any_dtype(dates):
        parsed = pd.to_datetime(dates, format="%Y-%m-%d %H:%M:%S", errors="coerce")
        if parsed.isna().any():
            parsed = pd.to_datetime(dates, format="%m/%d/%Y %H:%M", errors="coerce")
        if parsed.isna().any():
            raise _bad_values(
                path.name,
                raw,
                "InvoiceDate",
                parsed.isna().to_numpy(),
                "values that are not dates",
                "expected 'YYYY-MM-DD HH:MM:SS' or 'M/D/YYYY H:MM'",
            )
        dates = parsed
    out["InvoiceDate"] = dates.astype("datetime64[ns]")
    price = pd.to_numeric(raw["UnitPrice"], errors="coerce")
    if (price.isna() & raw["UnitPrice"].notna()).any():
        mask = (price.isna() & raw["UnitPrice"].notna()).to_numpy()
        raise _bad_values(
            path.name, raw, "UnitPrice", mask, "non-numeric values", "fix the file", example=False
        )
    out["UnitPrice"] = price.astype(np.float64)
    out["CustomerID"] = _integers(raw, "CustomerID", path, nullable=True)
    return pd.DataFrame({c: out[c] for c in _ONLINE_RETAIL_COLUMNS})


def _integers(raw: pd.DataFrame, column: str, path: Path, *, nullable: bool) -> pd.Series:
    values = pd.to_numeric(raw[column], errors="coerce")
    bad = (values.isna() & raw[column].notna()) | (values.notna() & (values % 1 != 0))
    if not nullable:
        bad |= values.isna()
    if bad.any():
        raise _bad_values(
            path.name,
            raw,
            column,
            bad.to_numpy(),
            "values that are not whole numbers",
            "fix the file",
        )
    if nullable:
        return values.astype("Float64").astype("Int64")
    return values.astype(np.int64)


def load_donations(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the BG/BB donations summary (Fader, Hardie & Shang 2010; Hardie's note 010).

    Parameters
    ----------
    path : str or path
        The csv with columns ``frequency, recency, periods, weights`` (one row per
        recency/frequency pattern, ``weights`` donors); extra columns such as
        ``holdout_transactions_total`` are kept.

    Returns
    -------
    DataFrame
        The columns as int64: 22 patterns and 11,104 donors for the published file.

    Raises
    ------
    DataError
        If a column is missing, not a whole number, or the patterns are impossible
        (recency < frequency, recency > periods, or frequency 0 with recency > 0).

    Examples
    --------
    >>> from custval.datasets import load_donations
    >>> donations = load_donations("../shared/data/donations/donations.csv")  # doctest: +SKIP
    >>> int(donations["weights"].sum())  # doctest: +SKIP
    11104
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; check the path")
    raw = pd.read_csv(path)
    columns = ["frequency", "recency", "periods", "weights"]
    require_columns(
        raw, columns, what=path.name, hint="pass the BG/BB donations summary (lifetimes' csv)"
    )
    out = raw.copy()
    for column in raw.columns:
        if pd.api.types.is_numeric_dtype(raw[column]) or column in columns:
            out[column] = _integers(raw, column, path, nullable=False)
    bad = (
        (out["recency"] < out["frequency"])
        | (out["recency"] > out["periods"])
        | ((out["frequency"] == 0) & (out["recency"] > 0))
        | (out["weights"] < 0)
    )
    if bad.any():
        rows = out.index[bad.to_numpy()][:5].tolist()
        raise DataError(
            f"{path.name}: {int(bad.sum()):,} patterns are impossible (rows {rows}): BG/BB needs "
            "0 <= frequency <= recency <= periods, recency 0 when frequency is 0, and weights "
            ">= 0; check the columns"
        )
    return out
