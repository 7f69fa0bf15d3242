"""Value and evaluation figures: each returns its Axes, draws the numbers of the public
function it is given, and states the finding in its title; no figure is left open."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import custval
from custval import BetaGeoModel, DataError, ModifiedBetaGeoModel
from custval import evaluation as ev
from custval import plotting as cp
from custval._format import money
from custval.invest import value_concentration

PUBLISHED_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
    assert plt.get_fignums() == []


@pytest.fixture(scope="module")
def data():
    """A simulated split (BG/NBD truth) with its transaction log and fitted models."""
    rng = np.random.default_rng(4)
    rows = []
    start = pd.Timestamp("2024-01-01")
    for customer in range(600):
        first = int(rng.integers(0, 60))
        rate = rng.gamma(0.5, 1 / 20.0)  # BG/NBD: purchases per day while alive
        dropout = rng.beta(0.8, 2.4)  # drop-out probability after each purchase
        scale = 1.0 / rng.gamma(4.0, 1 / 40.0)  # Gamma-Gamma: the customer's spend scale
        days = [first]
        while rate > 0:
            nxt = days[-1] + int(np.ceil(rng.exponential(1 / rate)))
            if nxt > 364:
                break
            days.append(nxt)
            if rng.random() < dropout:
                break
        for day in days:
            rows.append((customer, start + pd.Timedelta(days=day), float(rng.gamma(6, scale))))
    log = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    split = custval.calibration_holdout_split(
        log, calibration_end="2024-07-31", observation_end="2024-12-30", freq="D"
    )
    bg = BetaGeoModel().fit(split)
    mbg = ModifiedBetaGeoModel().fit(split)
    gg = custval.GammaGammaModel().fit(split)
    return log, split, bg, mbg, gg


def test_tracking_plot(data):
    log, split, bg, _, _ = data
    table = ev.tracking(bg, log, split)
    ax = cp.plot_tracking(table)
    holdout = table[table["holdout"]]
    predicted, actual = holdout["predicted"].sum(), holdout["actual"].sum()
    title = ax.get_title()
    assert title.startswith(f"Forecast {round(predicted):,} holdout repeat purchases vs ")
    assert f"{round(actual):,} actual" in title
    np.testing.assert_allclose(ax.lines[0].get_ydata(), table["actual_cumulative"])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), table["predicted_cumulative"])
    assert "Days since" in ax.get_xlabel()
    per_period = cp.plot_tracking(table, cumulative=False)
    np.testing.assert_allclose(per_period.lines[0].get_ydata(), table["actual"])
    assert per_period.get_ylabel() == "Repeat purchases per day"


def test_conditional_expectation_plot(data):
    _, split, bg, _, _ = data
    table = ev.conditional_expectations(bg, split)
    _, ax = plt.subplots()
    returned = cp.plot_conditional_expectations(table, ax=ax)
    assert returned is ax
    np.testing.assert_allclose(ax.lines[0].get_ydata(), table["actual"])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), table["predicted"])
    errors = table["relative_error"].abs()
    if errors.max() <= 0.10:
        assert ax.get_title().startswith("Holdout purchases predicted within")
    else:
        worst = errors.idxmax()
        assert ax.get_title().startswith(f"Largest gap: customers with {worst} repeat purchase")
    assert "days" in ax.get_ylabel()


def test_matrices():
    model = BetaGeoModel.from_params(**PUBLISHED_BG, freq="W")
    ax = cp.plot_frequency_recency_matrix(model, T="39W", horizon="52W", max_frequency=10)
    image = ax.get_images()[0].get_array()
    grid = pd.DataFrame({"frequency": 10.0, "recency": 39.0, "T": 39.0}, index=[0])
    grid.attrs["freq"] = "W"
    best = float(model.expected_purchases(grid, "52W").iloc[0])
    assert float(np.nanmax(image)) == pytest.approx(best)
    assert ax.get_title().startswith(f"Recent frequent buyers expect up to {best:.1f} purchases")
    assert "weeks" in ax.get_xlabel()
    alive = cp.plot_probability_alive_matrix(model, T=39.0, max_frequency=10)
    values = alive.get_images()[0].get_array()
    assert np.nanmin(values) >= 0.0 and np.nanmax(values) <= 1.0
    assert "Customers with 10 repeat purchases are more likely gone" in alive.get_title()
    with pytest.raises(DataError, match="does not record its time unit"):
        cp.plot_probability_alive_matrix(BetaGeoModel.from_params(**PUBLISHED_BG), T=39.0)


def test_alive_calibration_plot(data):
    _, split, _, mbg, _ = data
    table = ev.alive_calibration(mbg, split)
    ax = cp.plot_alive_calibration(table)
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], table["mean_p_alive"])
    np.testing.assert_allclose(offsets[:, 1], table["share_active"])
    assert f"ROC AUC {table.attrs['roc_auc']:.2f}" in ax.get_title()


def test_value_plots(data):
    _, split, bg, _, gg = data
    table = custval.customer_value_table(bg, gg, split, margin=0.4, n_draws=0)
    ax = cp.plot_value_concentration(table)
    share = value_concentration(table, churn="1 - p_alive").share_of_top(0.1)
    assert ax.get_title() == (
        f"Top 10% of customers hold {round(100 * share):.0f}% of expected value"
    )
    assert "contribution" in ax.get_ylabel()
    hist = cp.plot_clv_distribution(table)
    median = table["clv"].median()
    assert hist.get_title().startswith("Median customer is worth ")
    assert money(median).replace("$", r"\$") in hist.get_title()
    assert "over 12M" in hist.get_title()
    assert sum(p.get_height() for p in hist.patches) == len(table)


def test_model_comparison_plot(data):
    _, split, bg, mbg, _ = data
    comparison = ev.compare_models({"BG/NBD": bg, "MBG/NBD": mbg}, split, metric="mae")
    ax = cp.plot_model_comparison(comparison)
    best = comparison.attrs["best_model"]
    assert ax.get_title().startswith(f"{best} is best by MAE")
    np.testing.assert_allclose(
        sorted(ax.collections[-1].get_offsets()[:, 0]), sorted(comparison["mae"])
    )
    plain = comparison.copy()
    plain.attrs = {}
    with pytest.raises(DataError, match="needs the table from compare_models"):
        cp.plot_model_comparison(plain)
