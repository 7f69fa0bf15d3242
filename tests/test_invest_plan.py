"""Investment plan: per-segment recommendations and the numbers behind them."""

from __future__ import annotations

import pandas as pd
import pytest

from custval import DataError
from custval.invest import RULES, investment_plan, retention_roi


@pytest.fixture
def table():
    data = pd.DataFrame(
        {
            # At risk: valuable and slipping -> acting pays back
            # Champions: valuable but safe -> acting does not pay, worth keeping
            # Lost: too little value to pay for a contact at all
            "clv": [200.0, 150.0, 300.0, 250.0, 3.0, 2.0],
            "churn_probability": [0.6, 0.5, 0.02, 0.05, 0.9, 0.8],
            "segment": ["At risk", "At risk", "Champions", "Champions", "Lost", "Lost"],
        },
        index=pd.Index([f"c{i}" for i in range(6)], name="customer_id"),
    )
    data.attrs.update(value_basis="contribution", horizon="12M")
    return data


def test_recommendations_and_their_numbers(table):
    plan = investment_plan(table, cost_per_contact=5.0, save_rate=0.2).plan
    assert plan.index.tolist() == ["At risk", "Champions", "Lost"]  # best return first
    assert plan["recommendation"].tolist() == ["invest", "maintain", "go transactional"]
    at_risk = plan.loc["At risk"]
    # lift 0.6*0.2*200 + 0.5*0.2*150 = 24 + 15 = 39; cost 10
    assert at_risk["customers"] == 2
    assert at_risk["value_at_stake"] == 350.0
    assert at_risk["value_share"] == pytest.approx(350 / 905)
    assert at_risk["expected_lift"] == pytest.approx(39.0)
    assert at_risk["cost"] == 10.0
    assert at_risk["expected_return"] == pytest.approx(29.0)
    assert at_risk["roi"] == pytest.approx(2.9)
    assert at_risk["churn_probability"] == pytest.approx(0.55)
    assert at_risk["customers_worth_contacting"] == 2
    assert "returns $29.00 on $10.00 (ROI 290%)" in at_risk["reason"]
    champions = plan.loc["Champions"]
    # lift 0.02*0.2*300 + 0.05*0.2*250 = 1.2 + 2.5 = 3.7 < cost 10
    assert champions["expected_return"] == pytest.approx(-6.3)
    assert champions["break_even_effect_multiplier"] == pytest.approx(10 / 3.7)
    assert "would need 2.7× the assumed effect" in champions["reason"]
    lost = plan.loc["Lost"]
    assert lost["value_per_customer"] == 2.5
    assert "$2.50 at stake per customer is below the $5.00 cost of one contact" in lost["reason"]


def test_plan_agrees_with_retention_roi(table):
    plan = investment_plan(table, cost_per_contact=5.0, save_rate=0.2)
    roi = retention_roi(table, cost_per_contact=5.0, save_rate=0.2)
    assert plan.plan["expected_lift"].sum() == pytest.approx(
        roi.scores["expected_incremental_value"].sum()
    )
    assert plan.plan["targeted_return"].sum() == pytest.approx(roi.best["profit"])
    assert plan.rules == RULES and len(RULES) == 3
    assert plan.assumptions["save_rate"] == 0.2 and plan.assumptions["grouping"] == "segment"
    assert plan.headline == "Invest in 1 segment (At risk): expected return $29.00"


def test_min_roi_and_a_maintain_segment_with_individual_targets(table):
    strict = investment_plan(table, cost_per_contact=5.0, save_rate=0.2, min_roi=3.0).plan
    assert strict.loc["At risk", "recommendation"] == "maintain"
    mixed = table.copy()
    mixed.loc["c3", "churn_probability"] = 0.5  # 0.5*0.2*250 = 25 > 5: worth contacting alone
    mixed.loc["c2", "churn_probability"] = 0.0
    plan = investment_plan(mixed, cost_per_contact=30.0, save_rate=0.2).plan
    assert plan.loc["Champions", "recommendation"] == "maintain"
    plan = investment_plan(mixed, cost_per_contact=20.0, save_rate=0.2).plan
    assert plan.loc["Champions", "customers_worth_contacting"] == 1
    assert "1 customers are worth contacting individually" in plan.loc["Champions", "reason"]


def test_value_tiers_and_other_groupings(table):
    plan = investment_plan(table, cost_per_contact=5.0, save_rate=0.2, by="value_tier").plan
    # 6 customers: top 10% -> 1 (c2), next 20% -> 1 (c3), middle 30% -> 2, bottom 40% -> 2
    assert plan["customers"].to_dict() == {
        "Top 10%": 1,
        "Next 20%": 1,
        "Middle 30%": 2,
        "Bottom 40%": 2,
    }
    assert plan.loc["Top 10%", "value_at_stake"] == 300.0
    assert plan.loc["Bottom 40%", "value_at_stake"] == 5.0
    series = pd.Series(["x", "y", "x", "y", "x", "y"], index=table.index, name="test_cell")
    plan = investment_plan(table, cost_per_contact=5.0, save_rate=0.2, by=series).plan
    assert plan.index.name == "test_cell" and plan["customers"].sum() == 6


def test_revenue_table_margin(table):
    revenue = table.copy()
    revenue.attrs["value_basis"] = "revenue"
    plan = investment_plan(revenue, cost_per_contact=5.0, save_rate=0.2, margin=0.5).plan
    assert plan.loc["At risk", "expected_lift"] == pytest.approx(19.5)
    with pytest.raises(DataError, match=r"margin=\.\.\. would count the margin twice"):
        investment_plan(table, cost_per_contact=5.0, save_rate=0.2, margin=0.5)


def test_errors(table):
    with pytest.raises(DataError, match="value table has no column 'tier' to group by"):
        investment_plan(table, cost_per_contact=5.0, save_rate=0.2, by="tier")
    partial = pd.Series(["x"], index=["c0"])
    with pytest.raises(DataError, match="by Series has no group for 5 customers"):
        investment_plan(table, cost_per_contact=5.0, save_rate=0.2, by=partial)
    with pytest.raises(DataError, match="give exactly one of save_rate="):
        investment_plan(table, cost_per_contact=5.0)
