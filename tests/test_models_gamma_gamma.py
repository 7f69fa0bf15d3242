"""Gamma-Gamma: published CDNOW estimates, lifetimes agreement, gradient, simulation, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from conftest import shared_file
from custval import (
    CustvalWarning,
    DataError,
    GammaGammaModel,
    frequency_spend_correlation,
    load_model,
)
from custval.datasets import simulate_gamma_gamma
from custval.models import gamma_gamma

# Hardie's note 025 / FHL (2005, "RFM and CLV"): the 946 CDNOW repeat buyers
PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}


@pytest.fixture(scope="module")
def cdnow_spend() -> pd.DataFrame:
    """All 2,357 CDNOW customers: ``frequency`` (x) and ``monetary_value`` (zbar)."""
    frame = pd.read_csv(
        shared_file("cdnow", "cdnow_customers_summary_with_transactions.csv"), index_col="ID"
    )
    return frame.rename(columns={"x": "frequency", "zbar": "monetary_value"})[
        ["frequency", "monetary_value"]
    ].astype(float)


def test_reproduces_published_cdnow_estimates_on_repeat_buyers(cdnow_spend):
    model = GammaGammaModel().fit(cdnow_spend)
    # the note prints two decimals (its Solver run stops a little early: gamma 15.44 vs 15.4477)
    assert model.params_.to_numpy() == pytest.approx(list(PUBLISHED.values()), abs=0.01)
    assert model.params_.to_numpy() == pytest.approx([6.2488, 3.7446, 15.4477], rel=1e-4)
    # frequency-0 rows are left out of the fit, and counted
    assert model.n_customers_ == 946
    assert model.n_excluded_ == 2357 - 946
    repeat_only = GammaGammaModel().fit(cdnow_spend[cdnow_spend["frequency"] > 0])
    np.testing.assert_allclose(repeat_only.params_, model.params_, rtol=1e-12)
    assert repeat_only.n_excluded_ == 0
    assert model.log_likelihood_ == pytest.approx(repeat_only.log_likelihood_, rel=1e-12)
    assert np.all(model.summary["std_error"] > 0)


def test_fit_and_prediction_agree_with_lifetimes(cdnow_spend):
    lifetimes = pytest.importorskip("lifetimes")
    repeat = cdnow_spend[cdnow_spend["frequency"] > 0]
    reference = lifetimes.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    model = GammaGammaModel().fit(cdnow_spend)
    np.testing.assert_allclose(model.params_.to_numpy(), reference.params_.to_numpy(), rtol=1e-4)
    # predictions with injected (published) parameters, all 2,357 customers
    injected = GammaGammaModel.from_params(**PUBLISHED)
    fitter = lifetimes.GammaGammaFitter()
    fitter.params_ = pd.Series({"p": PUBLISHED["p"], "q": PUBLISHED["q"], "v": PUBLISHED["gamma"]})
    ours = injected.expected_spend(cdnow_spend)
    theirs = fitter.conditional_expected_average_profit(
        cdnow_spend["frequency"], cdnow_spend["monetary_value"]
    )
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-6)
    assert ours.index.equals(cdnow_spend.index) and ours.name == "expected_spend"


def test_expected_spend_shrinks_towards_the_population_mean():
    p, q, gamma = PUBLISHED.values()
    model = GammaGammaModel.from_params(**PUBLISHED)
    summary = pd.DataFrame({"frequency": [0, 1, 2, 50], "monetary_value": [123.0, 40.0, 40, 40]})
    spend = model.expected_spend(summary).to_numpy()
    mean = p * gamma / (q - 1)
    assert spend[0] == pytest.approx(mean, rel=1e-14)  # frequency 0: monetary_value unused
    weights = p * summary["frequency"] / (p * summary["frequency"] + q - 1)
    np.testing.assert_allclose(spend[1:], (weights * 40 + (1 - weights) * mean)[1:], rtol=1e-14)
    assert mean < spend[1] < spend[2] < spend[3] < 40  # more transactions, closer to own mean


def test_gradient_matches_finite_differences(cdnow_spend):
    model = GammaGammaModel()
    repeat = cdnow_spend[cdnow_spend["frequency"] > 0]
    extreme = pd.DataFrame(
        {"frequency": [10_000, 1, 10_000, 3], "monetary_value": [1e6, 1e-3, 0.01, 25.0]}
    )
    # forward differences are accurate to ~1e-7 relative on real data; with p x ~ 4e5 the
    # curvature is large and their truncation error reaches ~1e-5
    for frame, tolerance in ((repeat, 1e-6), (extreme, 5e-5)):
        data = model._prepare_patterns(model._extract(frame))
        for params in ([6.25, 3.74, 15.44], [0.5, 20.0, 1000.0], [40.0, 1.2, 0.3]):

            def total(theta, data=data):
                return model._loglik(np.exp(theta), data).mean()

            def gradient(theta, data=data):
                return model._loglik_grad(np.exp(theta), data)[1].mean(axis=0) * np.exp(theta)

            theta = np.log(params)
            error = optimize.check_grad(total, gradient, theta, epsilon=1e-7)
            assert error < tolerance * max(1.0, np.linalg.norm(gradient(theta)))
            ll, grad = model._loglik_grad(np.array(params), data)
            assert np.all(np.isfinite(ll)) and np.all(np.isfinite(grad))
            # the weighted sum the optimiser uses equals the per-row computation
            weights = np.arange(1.0, len(ll) + 1)
            total_ll, total_grad = model._weighted_loglik_grad(np.array(params), data, weights)
            assert total_ll == pytest.approx(weights @ ll, rel=1e-12)
            np.testing.assert_allclose(total_grad, weights @ grad, rtol=1e-10)
    spend = GammaGammaModel.from_params(**PUBLISHED).expected_spend(extreme)
    assert np.all(np.isfinite(spend))


@pytest.mark.slow
def test_parameter_recovery_on_simulated_customers():
    truth = {"p": 4.0, "q": 5.0, "gamma": 40.0}
    rng = np.random.default_rng(3)
    frequency = rng.poisson(3.0, size=100_000).astype(float)
    spend = simulate_gamma_gamma(**truth, frequency=frequency, random_state=4)
    model = GammaGammaModel().fit(pd.DataFrame({"frequency": frequency, "monetary_value": spend}))
    estimate, se = model.summary["estimate"], model.summary["std_error"]
    for name, value in truth.items():
        assert estimate[name] == pytest.approx(value, rel=0.05), name
        assert abs(estimate[name] - value) < 4 * se[name], name
    assert model.n_excluded_ == (frequency == 0).sum()


def test_frequency_spend_correlation(cdnow_spend):
    result = frequency_spend_correlation(cdnow_spend)
    repeat = cdnow_spend[cdnow_spend["frequency"] > 0]
    assert result["pearson"] == pytest.approx(
        np.corrcoef(repeat["frequency"], repeat["monetary_value"])[0, 1], rel=1e-12
    )
    assert result["pearson"] == pytest.approx(0.1139, abs=1e-4)  # weak: the assumption holds
    assert 0 < result["spearman"] < 0.3
    assert result["n_customers"] == 946
    with pytest.raises(DataError, match=r"has 2 repeat buyers .* at least 3 are needed"):
        frequency_spend_correlation(cdnow_spend.head(5).assign(frequency=[0, 0, 0, 1, 2]))
    with pytest.raises(DataError, match=r"missing required column\(s\) 'monetary_value'"):
        frequency_spend_correlation(cdnow_spend[["frequency"]])


def test_save_load_round_trip_keeps_the_excluded_count(cdnow_spend, tmp_path):
    model = GammaGammaModel().fit(cdnow_spend)
    loaded = load_model(model.save(tmp_path / "gg.json"))
    assert isinstance(loaded, GammaGammaModel)
    pd.testing.assert_series_equal(loaded.params_, model.params_)
    assert loaded.n_excluded_ == model.n_excluded_ == 1411
    assert loaded.n_customers_ == 946
    pd.testing.assert_series_equal(
        loaded.expected_spend(cdnow_spend), model.expected_spend(cdnow_spend)
    )
    injected = GammaGammaModel.from_params(**PUBLISHED)
    assert np.isnan(injected.n_excluded_)
    assert np.isnan(load_model(injected.save(tmp_path / "p.json")).n_excluded_)


def test_errors_name_the_column_and_the_fix():
    good = pd.DataFrame({"frequency": [0, 2, 3], "monetary_value": [0.0, 10.0, 20.0]})
    model = GammaGammaModel.from_params(**PUBLISHED)
    cases = [
        (
            good.assign(monetary_value=[0.0, 0.0, 20.0]),
            r"'monetary_value' has 1 zero values for repeat buyers .*net returns",
        ),
        (good.assign(monetary_value=[0.0, -5.0, 20.0]), r"'monetary_value' has 1 negative values"),
        (good.assign(frequency=[0, 2.5, 3]), r"'frequency' has 1 non-integer frequencies"),
        (good.drop(columns="monetary_value"), r"missing required column\(s\) 'monetary_value'"),
        (good.assign(monetary_value=["0", "x", "1"]), r"'monetary_value' has 1 non-numeric"),
    ]
    for frame, message in cases:
        with pytest.raises(DataError, match=message):
            GammaGammaModel().fit(frame)
        with pytest.raises(DataError, match=message):
            model.expected_spend(frame)
    with pytest.raises(DataError, match=r"fitted on repeat buyers .* has none among its 3 rows"):
        GammaGammaModel().fit(good.assign(frequency=0))


def test_infinite_population_mean_warns():
    model = GammaGammaModel.from_params(p=2.0, q=0.8, gamma=10.0)
    summary = pd.DataFrame({"frequency": [0, 3], "monetary_value": [0.0, 30.0]})
    with pytest.warns(CustvalWarning, match=r"q = 0.8 <= 1, so the population mean spend"):
        spend = model.expected_spend(summary)
    assert np.isinf(spend.iloc[0]) and np.isfinite(spend.iloc[1])
    assert gamma_gamma._expected_spend(
        np.array([2.0, 0.8, 10.0]), np.array([3.0]), np.array([30.0])
    ) == pytest.approx(2.0 * (10.0 + 90.0) / (6.0 - 0.2))
