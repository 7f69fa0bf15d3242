"""Relationship-investment figures: Axes returned, findings as titles, no figure left open."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from custval import DataError
from custval.invest import (
    estimate_uplift,
    investment_plan,
    payback,
    retention_roi,
    value_concentration,
)
from custval.plotting import (
    plot_investment_plan,
    plot_lorenz_curve,
    plot_payback_curves,
    plot_profit_curve,
    plot_qini_curve,
    plot_uplift_by_decile,
)


@pytest.fixture(autouse=True)
def no_figure_left_open():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a test left a figure open"


def _close(ax):
    plt.close(ax.figure)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 200
    clv = np.sort(rng.pareto(1.5, n) * 20)[::-1]
    data = pd.DataFrame(
        {
            "clv": clv,
            "churn_probability": rng.uniform(size=n),
            "segment": rng.choice(["Champions", "At risk", "Hibernating"], n),
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )
    data.attrs.update(value_basis="contribution", horizon="12M")
    return data


@pytest.fixture(scope="module")
def uplift():
    rng = np.random.default_rng(1)
    n = 1000
    x = rng.uniform(size=n)
    t = rng.permutation(np.repeat([0, 1], n // 2))
    frame = pd.DataFrame({"x": x, "treatment": t, "spend": 4 * x * t + rng.normal(size=n)})
    return estimate_uplift(
        frame, outcome="spend", features=["x"], n_bootstrap=50, fit_final=False, progress=False
    )


def test_lorenz_curve(table):
    result = value_concentration(table)
    ax = plot_lorenz_curve(result)
    share = result.share_of_top(0.1)
    assert ax.get_title() == f"Top 10% of customers hold {100 * share:.0f}% of expected value"
    assert ax.get_xlabel() == "Share of customers, most valuable first"
    assert ax.get_ylabel() == "Share of expected value"
    assert ax.yaxis.get_major_formatter()(0.5, 0) == "50%"
    _close(ax)


def test_profit_curve(table):
    roi = retention_roi(table, cost_per_contact=2.0, save_rate=0.2)
    ax = plot_profit_curve(roi, currency="€")
    b = roi.best
    assert ax.get_title().startswith(f"Contacting the top {b['n_targeted']:,} customers")
    assert "€" in ax.get_title() and "assumed save rate 20.0%" in ax.get_title()
    assert ax.get_ylabel() == "Expected profit (€)"
    assert ax.get_xlabel() == "Customers targeted, highest expected net value first"
    line = ax.get_lines()[0]
    assert np.max(line.get_ydata()) == pytest.approx(b["profit"])
    _close(ax)
    nobody = retention_roi(table, cost_per_contact=1e6, save_rate=0.2)
    ax = plot_profit_curve(nobody)
    assert ax.get_title().startswith("No retention contact pays back under these assumptions")
    _close(ax)


def test_qini_curve(uplift):
    ax = plot_qini_curve(uplift, currency="$")
    q = uplift.qini
    share = q["incremental_outcome"].iloc[20] / q["incremental_outcome"].iloc[-1]
    title = ax.get_title()
    assert title.startswith(
        f"Top 20% by predicted uplift deliver {100 * share:.0f}% of the incremental spend"
    )
    assert "Ranking beats random targeting" in title
    assert ax.get_ylabel() == "Cumulative incremental spend ($)"
    assert ax.get_xlabel() == "Share of customers targeted, highest predicted uplift first"
    _close(ax)


def test_uplift_by_decile(uplift):
    fig, given = plt.subplots()
    ax = plot_uplift_by_decile(uplift, currency="$", ax=given)
    assert ax is given
    top = uplift.by_decile.loc[1, "observed_uplift"]
    ate = uplift.ate.loc["difference in means", "estimate"]
    assert ax.get_title() == f"Top decile: +${top:,.2f} spend vs +${ate:,.2f} on average"
    assert ax.get_xlabel() == "Decile of predicted uplift (1 = highest; out of fold)"
    assert ax.get_ylabel() == "Uplift in spend ($)"
    plt.close(fig)


def test_uplift_by_decile_binary_outcome_in_points():
    rng = np.random.default_rng(2)
    n = 1000
    frame = pd.DataFrame(
        {"x": rng.uniform(size=n), "treatment": rng.permutation(np.repeat([0, 1], n // 2))}
    )
    frame["buy"] = (rng.uniform(size=n) < 0.1 + 0.2 * frame["x"] * frame["treatment"]).astype(int)
    result = estimate_uplift(
        frame, outcome="buy", features=["x"], n_bootstrap=20, fit_final=False, progress=False
    )
    ax = plot_uplift_by_decile(result)
    ate = result.ate.loc["difference in means", "estimate"]
    assert ax.get_title().endswith(f"buy vs {100 * ate:+.2f} points on average")
    assert ax.get_ylabel() == "Uplift in buy rate (points)"
    _close(ax)


def test_payback_curves():
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "channel": ["email", "display"],
            "acquisition_date": pd.to_datetime(["2024-01-01", "2024-01-01"]),
            "acquisition_cost": [100.0, 300.0],
        }
    )
    stamps = pd.date_range("2024-01-01", periods=6, freq="MS") + pd.Timedelta("14D")
    log = pd.DataFrame(
        {"customer_id": [1] * 6 + [2], "timestamp": [*stamps, stamps[0]], "amount": 50.0}
    )
    table = pd.DataFrame({"clv": [0.0, 100.0]}, index=pd.Index([1, 2], name="customer_id"))
    table.attrs.update(value_basis="contribution", horizon="12M")
    result = payback(customers, table, transactions=log, margin=0.4, observation_end="2024-07-01")
    ax = plot_payback_curves(result)
    assert ax.get_title() == (
        "Email customers pay back fastest (month 5); display never within the horizon"
    )
    assert ax.get_xlabel() == "Time since acquisition (months)"
    assert ax.get_ylabel() == "Cumulative contribution per customer ($)"
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["display", "email"]
    _close(ax)


def test_investment_plan_chart(table):
    plan = investment_plan(table, cost_per_contact=1.0, save_rate=0.3)
    ax = plot_investment_plan(plan)
    assert ax.get_title() == plan.headline
    assert ax.get_title().startswith("Invest in ")
    assert ax.get_xlabel() == "Expected return of acting on the whole segment ($, net of cost)"
    assert ax.get_ylabel() == "segment"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    best = plan.plan.iloc[0]
    assert labels[-1].startswith(f"{plan.plan.index[0]}\n{best['customers']:,} customers, $")
    _close(ax)


def test_wrong_input_is_refused():
    with pytest.raises(DataError, match=r"expected the result of custval.invest.retention_roi"):
        plot_profit_curve(pd.DataFrame())
    with pytest.raises(DataError, match=r"value_concentration\(...\), got dict"):
        plot_lorenz_curve({})
