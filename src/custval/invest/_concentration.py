"""How concentrated expected value is, and which valuable customers are at risk."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from custval._format import percent
from custval._validation import Interval, refuse_rows, require_numeric, validate_params
from custval.errors import DataError
from custval.invest._common import (
    check_fraction,
    check_value_table,
    churn_probability,
    value_table_context,
)

__all__ = ["ValueConcentration", "value_concentration"]


@dataclass(frozen=True)
class ValueConcentration:
    """Result of :func:`value_concentration`.

    Attributes
    ----------
    shares : DataFrame
        One row per top share: ``top_share`` (0.1 = top 10%), ``customers``, ``value`` (summed)
        and ``value_share`` (of the total).
    lorenz : DataFrame
        The Lorenz curve: ``customer_share`` (customers sorted from least to most valuable) and
        ``value_share`` (cumulative), from (0, 0) to (1, 1).
    gini : float
        Gini coefficient of value (0 = everyone equal, towards 1 = one customer holds all).
    at_risk : DataFrame
        High-value customers with a high probability of being lost, most valuable first:
        ``value``, ``churn_probability``, ``value_at_risk`` (their product), ``value_rank`` and
        ``segment`` when the table has them.
    total_value : float
        The value summed over every customer.
    assumptions : dict
        The value column, the thresholds that define "high value" and "at risk", the churn source
        and the value table's own assumptions.
    """

    shares: pd.DataFrame
    lorenz: pd.DataFrame = field(repr=False)
    gini: float
    at_risk: pd.DataFrame = field(repr=False)
    total_value: float
    assumptions: dict[str, Any]

    def share_of_top(self, top_share: float) -> float:
        """Value share held by the top ``top_share`` of customers (one of ``shares.top_share``)."""
        row = self.shares.loc[np.isclose(self.shares["top_share"], top_share)]
        if row.empty:
            raise DataError(
                f"top share {top_share!r} was not computed; computed: "
                f"{self.shares['top_share'].tolist()} (pass top=... to value_concentration)"
            )
        return float(row["value_share"].iloc[0])

    @property
    def headline(self) -> str:
        """One sentence for a chart title: "Top 10% of customers hold 58% of expected value".

        Quotes the top 10% when computed, else the first top share.
        """
        shares = self.shares["top_share"]
        top = 0.1 if np.isclose(shares, 0.1).any() else float(shares.iloc[0])
        return (
            f"Top {percent(top)} of customers hold {percent(self.share_of_top(top))} "
            "of expected value"
        )


@validate_params(
    {
        "high_value_share": Interval(Real, 0, 1, closed="right"),
        "churn_threshold": Interval(Real, 0, 1, closed="both"),
    }
)
def value_concentration(
    value_table: pd.DataFrame,
    *,
    value: str = "clv",
    top: Sequence[float] = (0.01, 0.05, 0.10, 0.20),
    churn: str | pd.Series = "churn_probability",
    high_value_share: float = 0.20,
    churn_threshold: float = 0.5,
) -> ValueConcentration:
    """Share of expected value held by the top customers, Lorenz curve, Gini, value at risk.

    Parameters
    ----------
    value_table : DataFrame
        Indexed by ``customer_id`` (from :func:`custval.customer_value_table`).
    value : str, default "clv"
        Column holding each customer's expected value; must be non-negative.
    top : sequence of float, default (0.01, 0.05, 0.10, 0.20)
        Top shares of customers to report. The top ``p`` are the ``ceil(p * n)`` most valuable.
    churn : str or Series, default "churn_probability"
        The probability of losing each customer: a column of the value table, the string
        ``"1 - p_alive"`` (the model's probability that the customer is already lost), or a
        Series indexed by customer_id such as :func:`custval.churn_scores` returns.
    high_value_share : float, default 0.20
        "High value" means being among the top ``high_value_share`` of customers by ``value``.
    churn_threshold : float, default 0.5
        "At risk" means a churn probability of at least this (with ``"1 - p_alive"``: a P(alive)
        of at most ``1 - churn_threshold``).

    Returns
    -------
    ValueConcentration
        ``shares``, ``lorenz``, ``gini``, ``at_risk``, ``total_value`` and ``assumptions``.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"clv": [1.0, 1.0, 2.0, 96.0], "churn_probability": [.1, .2, .3, .9]},
    ...                      index=pd.Index([1, 2, 3, 4], name="customer_id"))
    >>> result = value_concentration(table, top=(0.25,), high_value_share=0.25)
    >>> result.share_of_top(0.25)
    0.96
    >>> result.at_risk.index.tolist()
    [4]
    """
    check_value_table(value_table, [value])
    require_numeric(value_table, [value], what="value table")
    values = value_table[value].to_numpy(dtype=float)
    negative = values < 0
    refuse_rows(
        value_table,
        negative,
        value,
        "negative values",
        "concentration needs non-negative values; use a non-negative value column",
    )
    n = len(values)
    total = float(values.sum())
    if n == 0 or total <= 0:
        raise DataError(
            f"value table column {value!r} sums to {total!r} over {n:,} customers; "
            "concentration needs a positive total value"
        )
    top = [check_fraction("top share", p, low_open=True) for p in top]
    high_value_share, churn_threshold = float(high_value_share), float(churn_threshold)

    # Most valuable first; ties broken by the table's order so the result is deterministic.
    order = np.argsort(-values, kind="stable")
    desc = values[order]
    cum_desc = np.cumsum(desc)
    rows = []
    for p in top:
        k = max(1, math.ceil(p * n - 1e-9))
        rows.append(
            {
                "top_share": p,
                "customers": k,
                "value": float(cum_desc[k - 1]),
                "value_share": float(cum_desc[k - 1] / total),
            }
        )
    shares = pd.DataFrame(rows)

    asc = desc[::-1]
    lorenz = pd.DataFrame(
        {
            "customer_share": np.arange(n + 1) / n,
            "value_share": np.concatenate([[0.0], np.cumsum(asc) / total]),
        }
    )
    # Gini of the empirical distribution: G = 2 sum_i i x_(i) / (n sum x) - (n + 1) / n,
    # with x_(i) ascending and i = 1..n (equal to 1 - 2 * area under the step Lorenz curve).
    ranks = np.arange(1, n + 1)
    gini = float(2.0 * np.sum(ranks * asc) / (n * total) - (n + 1) / n)

    p_loss, churn_label = churn_probability(value_table, churn)
    n_high = max(1, math.ceil(high_value_share * n - 1e-9))
    high = np.zeros(n, dtype=bool)
    high[order[:n_high]] = True
    threshold_value = float(desc[n_high - 1])
    at_risk_mask = high & (p_loss.to_numpy() >= churn_threshold)
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(1, n + 1)
    at_risk = pd.DataFrame(
        {
            "value": values,
            "churn_probability": p_loss.to_numpy(),
            "value_at_risk": values * p_loss.to_numpy(),
            "value_rank": rank,
        },
        index=value_table.index,
    )
    if "segment" in value_table.columns:
        at_risk["segment"] = value_table["segment"]
    at_risk = at_risk.loc[at_risk_mask].sort_values(["value_rank"])
    assumptions = {
        "value_column": value,
        "customers": n,
        "high_value": f"top {percent(high_value_share, decimals=1)} by {value!r} "
        f"(value >= {threshold_value:,.2f}; {n_high:,} customers)",
        "high_value_share": high_value_share,
        "high_value_threshold": threshold_value,
        "at_risk": f"churn probability >= {churn_threshold:g}",
        "churn_threshold": churn_threshold,
        "churn": churn_label,
        **value_table_context(value_table),
    }
    return ValueConcentration(
        shares=shares,
        lorenz=lorenz,
        gini=gini,
        at_risk=at_risk,
        total_value=total,
        assumptions=assumptions,
    )
