"""Parameters of the simulated retailer (:class:`RetailerParameters`) and their checks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from custval.errors import DataError

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
