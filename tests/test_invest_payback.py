"""Payback of acquisition spend: hand-built cohorts with known margins, projection, CLV:CAC."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from custval import CustvalWarning, DataError
from custval._units import DAYS_PER_UNIT
from custval.invest import payback

END = "2024-07-01"
MONTH = DAYS_PER_UNIT["M"]


@pytest.fixture
def cohort():
    """Two email customers buying $50 on the 15th of every month Jan-Jun 2024 (CAC $100 each),
    and one display customer ($300 CAC) who bought once and has $120 of expected value."""
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "channel": ["email", "email", "display"],
            "acquisition_date": pd.to_datetime(["2024-01-01"] * 3),
            "acquisition_cost": [90.0, 110.0, 300.0],
        }
    )
    monthly = pd.date_range("2024-01-01", periods=6, freq="MS") + pd.Timedelta("14D")
    log = pd.DataFrame(
        {
            "customer_id": ["1"] * 6 + ["2"] * 6 + ["3"],
            "timestamp": list(monthly) * 2 + [pd.Timestamp("2024-01-02")],
            "amount": [50.0] * 13,
        }
    )
    table = pd.DataFrame(
        {"clv": [0.0, 0.0, 120.0]}, index=pd.Index(["1", "2", "3"], name="customer_id")
    )
    table.attrs.update(value_basis="contribution", margin=0.4, horizon="12M", freq="D")
    return customers, log, table


def test_hand_built_cohort_pays_back_in_the_known_month(cohort):
    customers, log, table = cohort
    result = payback(customers, table, transactions=log, margin=0.4, observation_end=END)
    s = result.summary
    assert s.index.tolist() == ["display", "email"]
    # $50 x 40% = $20 a month against a mean CAC of $100: month 5
    assert s.loc["email", "payback_period"] == 5
    assert s.loc["email", "acquisition_cost"] == 100.0
    assert s.loc["email", "observed_contribution"] == pytest.approx(120.0)
    assert s.loc["email", "clv_to_cac"] == pytest.approx(1.2)
    assert s.loc["email", "payback_observed_share"] == 1.0
    email = result.curves[result.curves["group"] == "email"].set_index("period")
    assert email.loc[[0, 1, 4, 5, 6, 7], "cumulative_contribution"].tolist() == pytest.approx(
        [0, 20, 80, 100, 120, 120]
    )
    assert email.loc[5, "net"] == pytest.approx(0.0)
    # display: $20 observed + $120 expected against $300 never pays back
    assert np.isnan(s.loc["display", "payback_period"])
    assert s.loc["display", "lifetime_contribution"] == pytest.approx(140.0)
    assert s.loc["display", "clv_to_cac"] == pytest.approx(140 / 300)
    assert (
        result.headline
        == "Email customers pay back fastest (month 5); display never within the horizon"
    )


def test_projection_spreads_expected_value_evenly_over_the_horizon(cohort):
    customers, log, table = cohort
    result = payback(customers, table, transactions=log, margin=0.4, observation_end=END)
    display = result.curves[result.curves["group"] == "display"].set_index("period")
    tenure = (pd.Timestamp(END) - pd.Timestamp("2024-01-01")).days / MONTH
    assert result.summary.loc["display", "mean_tenure"] == pytest.approx(tenure)
    for m in (3, 8, 12, 17):
        expected = 20 + 120 * min(max((m - tenure) / 12, 0), 1)
        assert display.loc[m, "cumulative_contribution"] == pytest.approx(expected)
    assert display["cumulative_contribution"].iloc[-1] == pytest.approx(140.0)
    assert display.loc[5, "observed_share"] == 1.0 and display.loc[6, "observed_share"] == 0.0
    assert "spread evenly over 12M" in result.assumptions["projection"]
    longer = payback(
        customers,
        table,
        transactions=log,
        margin=0.4,
        observation_end=END,
        projection_horizon="24M",
    )
    display = longer.curves[longer.curves["group"] == "display"].set_index("period")
    assert display.loc[12, "cumulative_contribution"] == pytest.approx(
        20 + 120 * (12 - tenure) / 24
    )


def test_expected_value_can_bring_payback(cohort):
    customers, log, table = cohort
    table = table.copy()
    table.loc["3", "clv"] = 400.0  # 20 + 400 (m - 5.98) / 12 >= 300 at m = 14.4 -> period 15
    result = payback(customers, table, transactions=log, margin=0.4, observation_end=END)
    assert result.summary.loc["display", "payback_period"] == 15
    assert result.summary.loc["display", "payback_observed_share"] == 0.0


def test_revenue_value_table_gets_the_margin_once(cohort):
    customers, log, table = cohort
    revenue = table.assign(clv=table["clv"] / 0.4)
    revenue.attrs.update(value_basis="revenue", margin=1.0, horizon="12M")
    result = payback(customers, revenue, transactions=log, margin=0.4, observation_end=END)
    assert result.summary.loc["display", "expected_future_contribution"] == pytest.approx(120.0)
    assert result.assumptions["margin_applied_here"] == 0.4
    with pytest.warns(CustvalWarning, match=r"margin=0.3 for observed revenue differs"):
        payback(customers, table, transactions=log, margin=0.3, observation_end=END)


def test_groupings_and_weeks(cohort):
    customers, log, table = cohort
    one = payback(customers, table, transactions=log, margin=0.4, observation_end=END, by=None)
    assert one.summary.index.tolist() == ["all customers"]
    assert one.summary.loc["all customers", "acquisition_cost"] == pytest.approx(500 / 3)
    later = customers.assign(acquisition_date=pd.to_datetime(["2024-01-01"] * 2 + ["2024-04-02"]))
    cohorts = payback(later, table, transactions=log, margin=0.4, observation_end=END, by="cohort")
    assert cohorts.summary.index.tolist() == ["2024Q1", "2024Q2"]
    weeks = payback(customers, table, transactions=log, margin=0.4, observation_end=END, freq="W")
    assert weeks.freq == "W"
    # $20 a month, $100 CAC: the fifth purchase on 15 May is in week 20 (day 135 / 7 = 19.3)
    assert weeks.summary.loc["email", "payback_period"] == 20


def test_customers_indexed_by_id_and_missing_from_the_value_table(cohort):
    customers, log, table = cohort
    indexed = customers.set_index("customer_id")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = payback(indexed, table.iloc[:2], transactions=log, margin=0.4, observation_end=END)
    assert result.assumptions["customers_without_value_row"] == 1
    assert result.summary.loc["display", "expected_future_contribution"] == 0.0


def test_input_is_not_modified(cohort):
    customers, log, table = cohort
    before = customers.copy(), log.copy(), table.copy()
    payback(customers, table, transactions=log, margin=0.4, observation_end=END)
    for frame, copy in zip((customers, log, table), before, strict=True):
        pd.testing.assert_frame_equal(frame, copy)


def test_errors(cohort):
    customers, log, table = cohort
    kw = {"transactions": log, "margin": 0.4, "observation_end": END}
    with pytest.raises(
        DataError, match=r"customers is missing required column.*'acquisition_cost'"
    ):
        payback(customers.drop(columns="acquisition_cost"), table, **kw)
    with pytest.raises(DataError, match="customers has duplicated customer ids"):
        payback(pd.concat([customers, customers.iloc[[0]]]), table, **kw)
    late = customers.assign(acquisition_date=pd.to_datetime(["2024-01-01"] * 2 + ["2025-01-01"]))
    with pytest.raises(DataError, match="1 customers were acquired after the observation end"):
        payback(late, table, **kw)
    infinite = table.copy()
    infinite.attrs["horizon"] = "inf"
    with pytest.raises(DataError, match="cannot spread the expected value over the horizon 'inf'"):
        payback(customers, infinite, **kw)
    no_horizon = table.copy()
    no_horizon.attrs.pop("horizon")
    with pytest.raises(DataError, match=r"does not record its horizon \(attrs\['horizon'\]\)"):
        payback(customers, no_horizon, **kw)
    with pytest.raises(
        DataError, match=r"margin must be a fraction of revenue in \(0, 1\], got 30"
    ):
        payback(customers, table, transactions=log, margin=30, observation_end=END)
    with pytest.raises(DataError, match=r"customers is missing required column.*'region'"):
        payback(customers, table, by="region", **kw)
    no_date = customers.assign(acquisition_date=pd.NaT)
    with pytest.raises(DataError, match="has 3 missing dates"):
        payback(no_date, table, **kw)
