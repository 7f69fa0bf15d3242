"""A per-segment plan: invest, maintain, or go transactional, with the numbers behind it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Literal

import numpy as np
import pandas as pd

from custval._format import count, money, percent
from custval._validation import Interval, Options, validate_params
from custval.errors import DataError
from custval.invest._roi import retention_roi

__all__ = ["RULES", "InvestmentPlan", "investment_plan"]

#: The recommendation rules, in the order they are applied to each segment.
RULES: tuple[str, ...] = (
    "invest: acting on every customer of the segment is expected to return more than it costs "
    "(expected return > 0 and ROI >= min_roi)",
    "go transactional: the contribution at stake per customer is below the cost of one contact, "
    "so even a certain save of a certain churner would not pay; serve these customers through "
    "low-cost, transactional channels",
    "maintain: otherwise; the segment is worth keeping but extra spend does not pay back at "
    "the assumed effect (customers worth contacting individually are counted in "
    "customers_worth_contacting)",
)

_TIERS = ((0.10, "Top 10%"), (0.30, "Next 20%"), (0.60, "Middle 30%"), (1.00, "Bottom 40%"))


@dataclass(frozen=True)
class InvestmentPlan:
    """Result of :func:`investment_plan`.

    Attributes
    ----------
    plan : DataFrame
        One row per segment, highest expected return first: ``customers``,
        ``value_at_stake`` (contribution), ``value_share``, ``value_per_customer``,
        ``churn_probability`` (mean), ``expected_lift`` (expected incremental value of acting on
        everyone), ``cost``, ``expected_return`` (lift − cost), ``roi``,
        ``break_even_effect_multiplier`` (share of the assumed effect at which acting breaks
        even), ``customers_worth_contacting`` and ``targeted_return`` (contacting only those),
        ``recommendation`` and ``reason``.
    rules : tuple of str
        The rules, in the order applied.
    assumptions : dict
        As :attr:`RetentionROI.assumptions`, plus the grouping and ``min_roi``.
    """

    plan: pd.DataFrame
    rules: tuple[str, ...] = field(repr=False)
    assumptions: dict[str, Any] = field(repr=False)

    @property
    def headline(self) -> str:
        """One sentence for a chart title."""
        invest = self.plan[self.plan["recommendation"] == "invest"]
        if invest.empty:
            return "No segment pays back a retention contact under these assumptions"
        names = ", ".join(map(str, invest.index[:3])) + (", ..." if len(invest) > 3 else "")
        return (
            f"Invest in {count(len(invest))} segment{'s' if len(invest) > 1 else ''} ({names}): "
            f"expected return {money(invest['expected_return'].sum())}"
        )


def _value_tier(values: pd.Series) -> pd.Series:
    """Top 10%, next 20%, middle 30%, bottom 40% by value; the top p are ceil(p n) customers."""
    n = len(values)
    order = np.argsort(-values.to_numpy(dtype=float), kind="stable")
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(1, n + 1)
    labels = np.empty(n, dtype=object)
    for bound, label in reversed(_TIERS):
        labels[rank <= math.ceil(bound * n - 1e-9)] = label
    cats = pd.CategoricalDtype([label for _, label in _TIERS], ordered=True)
    return pd.Series(labels, index=values.index, name="value_tier").astype(cats)


@validate_params(
    {"uplift_kind": Options(("absolute", "save_rate")), "min_roi": Interval(Real, None, None)}
)
def investment_plan(
    value_table: pd.DataFrame,
    *,
    cost_per_contact: float | str | pd.Series,
    save_rate: float | str | pd.Series | None = None,
    uplift: pd.Series | str | None = None,
    uplift_kind: Literal["absolute", "save_rate"] = "absolute",
    by: str | pd.Series = "segment",
    churn: str | pd.Series = "churn_probability",
    value: str = "clv",
    margin: float | str | None = None,
    min_roi: float = 0.0,
) -> InvestmentPlan:
    """Per segment: invest, maintain or go transactional, with the numbers that justify it.

    The customer-level numbers are those of :func:`retention_roi` (same arguments, same value
    basis and margin rules); they are summed per segment and the :data:`RULES` are applied in
    order.

    Parameters
    ----------
    value_table : DataFrame
        Indexed by customer_id (:func:`custval.customer_value_table`).
    cost_per_contact, save_rate, uplift, uplift_kind, churn, value, margin
        As in :func:`retention_roi`.
    by : str or Series, default "segment"
        A column of the value table (the RFM ``segment``, ``value_decile``), ``"value_tier"``
        (top 10%, next 20%, middle 30%, bottom 40% by ``value``), or a Series by customer_id.
    min_roi : float, default 0.0
        Minimum return on cost for "invest" (0.5 asks for 50 cents per dollar spent).

    Returns
    -------
    InvestmentPlan
        ``plan``, ``rules`` and ``assumptions``.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame(
    ...     {"clv": [200.0, 150.0, 3.0, 2.0], "churn_probability": [0.6, 0.5, 0.9, 0.8],
    ...      "segment": ["At risk", "At risk", "Lost", "Lost"]},
    ...     index=pd.Index([1, 2, 3, 4], name="customer_id"))
    >>> table.attrs["value_basis"] = "contribution"
    >>> plan = investment_plan(table, cost_per_contact=5.0, save_rate=0.2)
    >>> plan.plan["recommendation"].to_dict()
    {'At risk': 'invest', 'Lost': 'go transactional'}
    """
    roi = retention_roi(
        value_table,
        cost_per_contact=cost_per_contact,
        save_rate=save_rate,
        uplift=uplift,
        uplift_kind=uplift_kind,
        margin=margin,
        churn=churn,
        value=value,
        sensitivity_multipliers=(),
    )
    scores = roi.scores.reindex(value_table.index)
    if isinstance(by, pd.Series):
        groups = by.reindex(value_table.index)
        if groups.isna().any():
            raise DataError(
                f"by Series has no group for {int(groups.isna().sum()):,} customers of the "
                "value table; give every customer a group"
            )
        label = by.name or "group"
    elif by == "value_tier" and "value_tier" not in value_table.columns:
        groups = _value_tier(scores["value_at_stake"])
        label = "value_tier"
    elif isinstance(by, str):
        if by not in value_table.columns:
            raise DataError(
                f"value table has no column {by!r} to group by; use 'segment', "
                "'value_decile', 'value_tier' or pass a Series by customer_id"
            )
        groups = value_table[by]
        label = by
    else:
        raise DataError(f"by must be a column name or a Series, got {type(by).__name__}")

    data = scores.assign(_group=groups.to_numpy())
    data["_positive"] = np.maximum(data["expected_net_value"], 0.0)
    data["_worth"] = data["expected_net_value"] > 0
    g = data.groupby("_group", sort=False, observed=True)
    plan = pd.DataFrame(
        {
            "customers": g.size(),
            "value_at_stake": g["value_at_stake"].sum(),
            "churn_probability": g["churn_probability"].mean(),
            "expected_lift": g["expected_incremental_value"].sum(),
            "cost": g["cost"].sum(),
            "customers_worth_contacting": g["_worth"].sum().astype(int),
            "targeted_return": g["_positive"].sum(),
        }
    )
    total_value = float(plan["value_at_stake"].sum())
    plan.insert(2, "value_share", plan["value_at_stake"] / total_value if total_value else np.nan)
    plan.insert(3, "value_per_customer", plan["value_at_stake"] / plan["customers"])
    plan.insert(7, "expected_return", plan["expected_lift"] - plan["cost"])
    with np.errstate(divide="ignore", invalid="ignore"):
        plan.insert(
            8, "roi", np.where(plan["cost"] > 0, plan["expected_return"] / plan["cost"], np.inf)
        )
        plan.insert(
            9,
            "break_even_effect_multiplier",
            np.where(plan["expected_lift"] > 0, plan["cost"] / plan["expected_lift"], np.inf),
        )
    cost_per_customer = plan["cost"] / plan["customers"]
    recommendation, reason = [], []
    for name, row in plan.iterrows():
        cpc = cost_per_customer[name]
        if row["expected_return"] > 0 and row["roi"] >= min_roi:
            recommendation.append("invest")
            reason.append(
                f"acting on all {count(row['customers'])} customers returns "
                f"{money(row['expected_return'])} on {money(row['cost'])} "
                f"(ROI {percent(row['roi'])})"
            )
        elif row["value_per_customer"] < cpc:
            recommendation.append("go transactional")
            reason.append(
                f"{money(row['value_per_customer'])} at stake per customer is below the "
                f"{money(cpc)} cost of one contact"
            )
        else:
            recommendation.append("maintain")
            worth = int(row["customers_worth_contacting"])
            extra = f"; {count(worth)} customers are worth contacting individually" if worth else ""
            reason.append(
                f"acting on everyone returns {money(row['expected_return'])} on "
                f"{money(row['cost'])}; it would need {row['break_even_effect_multiplier']:.1f}× "
                f"the assumed effect to break even{extra}"
            )
    plan["recommendation"] = recommendation
    plan["reason"] = reason
    plan.index.name = label
    plan = plan.sort_values("expected_return", ascending=False, kind="stable")
    assumptions = {
        **roi.assumptions,
        "grouping": label,
        "min_roi": min_roi,
        "rules": "see InvestmentPlan.rules (applied in order)",
    }
    return InvestmentPlan(plan=plan, rules=RULES, assumptions=assumptions)
