"""Retention ROI: hand-computed cases, targeting limits, profit curve, margin basis, sensitivity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval import DataError
from custval.invest import retention_roi


def _table(clv, churn, basis="contribution", ids=None, **extra):
    index = pd.Index(ids or [chr(ord("a") + i) for i in range(len(clv))], name="customer_id")
    table = pd.DataFrame({"clv": clv, "churn_probability": churn, **extra}, index=index)
    table.attrs.update(value_basis=basis, horizon="12M", annual_discount_rate=0.1, freq="D")
    return table


@pytest.fixture
def hand():
    # churn x save rate x value: a 0.5*0.2*100 = 10, b 0.4*0.2*50 = 4, c 0.9*0.2*10 = 1.8,
    # d 0.05*0.2*200 = 2; costs 2, 2, 15, 2 -> net 8, 2, -13.2, 0
    table = _table([100.0, 50.0, 10.0, 200.0], [0.5, 0.4, 0.9, 0.05])
    cost = pd.Series([2.0, 2.0, 15.0, 2.0], index=table.index)
    return table, cost


def test_hand_computed_case(hand):
    table, cost = hand
    roi = retention_roi(table, cost_per_contact=cost, save_rate=0.2)
    s = roi.scores
    assert s.index.tolist() == ["a", "b", "d", "c"]  # by expected net value; d (0) before c
    assert s["expected_incremental_value"].tolist() == pytest.approx([10.0, 4.0, 2.0, 1.8])
    assert s["expected_net_value"].tolist() == pytest.approx([8.0, 2.0, 0.0, -13.2])
    assert s["rank"].tolist() == [1, 2, 3, 4]
    assert s["target"].tolist() == [True, True, False, False]
    assert s.loc["a", "break_even_effect"] == pytest.approx(2 / 50)
    assert s.loc["c", "break_even_effect"] == pytest.approx(15 / 9)
    assert roi.targets.index.tolist() == ["a", "b"]
    curve = roi.profit_curve
    assert curve["profit"].tolist() == pytest.approx([0.0, 8.0, 10.0, 10.0, -3.2])
    assert curve["budget"].tolist() == pytest.approx([0.0, 2.0, 4.0, 6.0, 21.0])
    b = roi.best
    assert (b["n_targeted"], b["budget"], b["profit"]) == (2, 4.0, pytest.approx(10.0))
    assert b["incremental_value"] == pytest.approx(14.0)
    assert b["roi"] == pytest.approx(2.5)
    # targeting d as well still breaks even; adding c loses money overall
    assert (b["break_even_n"], b["break_even_budget"]) == (3, 6.0)
    assert b["break_even_effect_multiplier"] == pytest.approx(4 / 14)
    assert b["break_even_save_rate"] == pytest.approx(0.2 * 4 / 14)


def test_profit_curve_maximum_is_the_best_budget(hand):
    table, cost = hand
    rng = np.random.default_rng(3)
    n = 500
    big = _table(rng.gamma(1.0, 80.0, n), rng.uniform(size=n), ids=[f"x{i}" for i in range(n)])
    for tbl, c in ((table, cost), (big, 3.0), (big, pd.Series(rng.uniform(0, 8, n), big.index))):
        roi = retention_roi(tbl, cost_per_contact=c, save_rate=0.15)
        curve = roi.profit_curve
        k = int(curve["profit"].idxmax())
        assert roi.best["profit"] == pytest.approx(curve["profit"].max())
        assert roi.best["n_targeted"] == curve.loc[k, "n_targeted"]
        assert roi.best["budget"] == pytest.approx(curve.loc[k, "budget"])
        assert len(roi.targets) == roi.best["n_targeted"]
        assert roi.targets["expected_net_value"].sum() == pytest.approx(roi.best["profit"])


def test_sensitivity_to_the_save_rate(hand):
    table, cost = hand
    roi = retention_roi(
        table, cost_per_contact=cost, save_rate=0.2, sensitivity_multipliers=(0.5, 1.0, 2.0)
    )
    sens = roi.sensitivity.set_index("effect_multiplier")
    assert sens["save_rate"].tolist() == pytest.approx([0.1, 0.2, 0.4])
    # at half the effect: nets a 3, b 0, c -14.1, d -1
    assert sens.loc[0.5, "n_targeted"] == 1
    assert sens.loc[0.5, "best_profit"] == pytest.approx(3.0)
    assert sens.loc[0.5, "chosen_plan_profit"] == pytest.approx(3.0)
    assert sens.loc[1.0, "best_profit"] == pytest.approx(roi.best["profit"])
    # at twice the effect: nets a 18, b 6, c -11.4, d 2
    assert sens.loc[2.0, "n_targeted"] == 3
    assert sens.loc[2.0, "best_profit"] == pytest.approx(26.0)
    assert sens.loc[2.0, "chosen_plan_profit"] == pytest.approx(24.0)
    # at the break-even multiplier the chosen plan makes nothing
    even = retention_roi(
        table,
        cost_per_contact=cost,
        save_rate=0.2,
        sensitivity_multipliers=(roi.best["break_even_effect_multiplier"],),
    )
    assert even.sensitivity["chosen_plan_profit"].iloc[0] == pytest.approx(0.0, abs=1e-12)


def test_zero_cost_and_positive_effect_targets_everyone_with_positive_value():
    table = _table([100.0, 0.0, 5.0, 0.0, 1e-3], [0.5, 0.9, 0.1, 0.0, 0.2])
    roi = retention_roi(table, cost_per_contact=0.0, save_rate=0.3)
    expected = set(table.index[(table["clv"] > 0) & (table["churn_probability"] > 0)])
    assert set(roi.targets.index) == expected == {"a", "c", "e"}
    assert roi.best["budget"] == 0.0
    assert np.isnan(roi.best["roi"])


def test_cost_above_every_customers_value_targets_nobody():
    table = _table([100.0, 50.0, 10.0], [1.0, 1.0, 1.0])
    roi = retention_roi(table, cost_per_contact=100.01, save_rate=1.0)
    assert roi.targets.empty
    assert roi.best["n_targeted"] == 0 and roi.best["profit"] == 0.0
    assert roi.best["break_even_n"] == 0
    assert np.isnan(roi.best["break_even_effect_multiplier"])
    assert roi.headline == "No retention contact pays back under these assumptions"


def test_contribution_table_is_not_multiplied_by_margin_again():
    table = _table([100.0], [0.5])
    roi = retention_roi(table, cost_per_contact=1.0, save_rate=0.2)
    assert roi.scores["value_at_stake"].iloc[0] == 100.0
    assert roi.assumptions["value_basis"] == "contribution"
    assert roi.assumptions["margin_applied_here"] is None
    with pytest.raises(DataError, match=r"margin=\.\.\. would count the margin twice"):
        retention_roi(table, cost_per_contact=1.0, save_rate=0.2, margin=0.3)


def test_revenue_table_needs_and_applies_a_margin():
    table = _table([100.0, 40.0], [0.5, 0.5], basis="revenue", m=[0.5, 0.25])
    with pytest.raises(DataError, match=r"is revenue .*pass margin="):
        retention_roi(table, cost_per_contact=1.0, save_rate=0.2)
    roi = retention_roi(table, cost_per_contact=1.0, save_rate=0.2, margin=0.3)
    assert roi.scores.loc[["a", "b"], "value_at_stake"].tolist() == pytest.approx([30.0, 12.0])
    assert roi.scores.loc["a", "expected_net_value"] == pytest.approx(0.5 * 0.2 * 30 - 1)
    assert roi.assumptions["margin_applied_here"] == 0.3
    per_customer = retention_roi(table, cost_per_contact=1.0, save_rate=0.2, margin="m")
    assert per_customer.scores.loc[["a", "b"], "value_at_stake"].tolist() == [50.0, 10.0]
    table.attrs.pop("value_basis")
    with pytest.raises(DataError, match=r"attrs\['value_basis'\] is missing.*pandas drops attrs"):
        retention_roi(table, cost_per_contact=1.0, save_rate=0.2)


def test_uplift_absolute_is_not_multiplied_by_churn_again():
    table = _table([100.0, 50.0, 10.0], [0.5, 0.4, 0.9])
    uplift = pd.Series([0.1, 0.0, -0.05], index=table.index)
    roi = retention_roi(table, cost_per_contact=1.0, uplift=uplift)
    assert roi.scores.loc[["a", "b", "c"], "expected_incremental_value"].tolist() == (
        pytest.approx([10.0, 0.0, -0.5])
    )
    assert "already includes" in roi.assumptions["formula"]
    as_rate = retention_roi(table, cost_per_contact=1.0, uplift=uplift, uplift_kind="save_rate")
    assert as_rate.scores.loc[["a", "b", "c"], "expected_incremental_value"].tolist() == (
        pytest.approx([5.0, 0.0, -0.45])
    )
    assert as_rate.assumptions["formula"].startswith("churn_probability × uplift")


def test_churn_from_p_alive_or_a_series():
    table = _table([100.0, 50.0], [0.0, 0.0], p_alive=[0.2, 0.9])
    roi = retention_roi(table, cost_per_contact=1.0, save_rate=0.5, churn="1 - p_alive")
    assert roi.scores.loc["a", "expected_incremental_value"] == pytest.approx(0.8 * 0.5 * 100)
    assert roi.assumptions["churn"] == "1 - p_alive (value table)"
    scores = pd.Series([0.3, 0.6], index=table.index, name="churn_probability")
    roi = retention_roi(table, cost_per_contact=1.0, save_rate=0.5, churn=scores)
    assert roi.scores.loc["b", "expected_incremental_value"] == pytest.approx(0.6 * 0.5 * 50)


def test_every_assumption_is_in_the_output(hand):
    table, _ = hand
    roi = retention_roi(table, cost_per_contact=2.5, save_rate=0.2, value="clv")
    a = roi.assumptions
    assert a["save_rate"] == 0.2 and a["cost_per_contact"] == 2.5
    assert a["value_column"] == "clv" and a["value_basis"] == "contribution"
    assert a["churn"] == "column 'churn_probability'"
    assert a["value_table_horizon"] == "12M" and a["value_table_annual_discount_rate"] == 0.1
    assert a["formula"] == "churn_probability × save_rate × value_at_stake − cost"


def test_input_is_not_modified(hand):
    table, cost = hand
    before = table.copy()
    retention_roi(table, cost_per_contact=cost, save_rate=0.2)
    pd.testing.assert_frame_equal(table, before)
    assert table.attrs["value_basis"] == "contribution"


def test_errors(hand):
    table, cost = hand
    with pytest.raises(DataError, match="give exactly one of save_rate="):
        retention_roi(table, cost_per_contact=1.0)
    with pytest.raises(DataError, match="give exactly one of save_rate="):
        retention_roi(table, cost_per_contact=1.0, save_rate=0.1, uplift=table["clv"])
    with pytest.raises(DataError, match=r"save_rate must lie in \[0, 1\], got 1.2"):
        retention_roi(table, cost_per_contact=1.0, save_rate=1.2)
    with pytest.raises(DataError, match="uplift_kind must be 'absolute' or 'save_rate'"):
        retention_roi(table, cost_per_contact=1.0, uplift=table["clv"], uplift_kind="relative")
    with pytest.raises(
        DataError, match=r"column 'cost_per_contact' has 3 negative values \(rows a \(-1.0\)"
    ):
        retention_roi(table, cost_per_contact=cost - 3.0, save_rate=0.2)
    with pytest.raises(DataError, match="uplift has no value for 2 customers"):
        retention_roi(table, cost_per_contact=1.0, uplift=pd.Series([0.1, 0.1], index=["a", "b"]))
    with pytest.raises(DataError, match="value table has no column 'churn_risk'"):
        retention_roi(table, cost_per_contact=1.0, save_rate=0.2, churn="churn_risk")
    with pytest.raises(DataError, match="sensitivity multipliers must be >= 0"):
        retention_roi(table, cost_per_contact=1.0, save_rate=0.2, sensitivity_multipliers=(-1,))
    with pytest.raises(DataError, match="cost_per_contact must be a number, a column name"):
        retention_roi(table, cost_per_contact=[1.0], save_rate=0.2)
