"""Gamma-Gamma spend with time-invariant covariates: ``gamma_i = gamma exp(x'delta)``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad

from custval import DataError, GammaGammaModel, covariate_effects, load_model
from custval.datasets import simulate_gamma_gamma
from custval.models import gamma_gamma

BASE = {"p": 6.0, "q": 4.0, "gamma": 15.0}


@pytest.fixture(scope="module")
def spenders():
    rng = np.random.default_rng(5)
    n = 6000
    customers = pd.DataFrame(
        {"income": rng.normal(size=n), "region": rng.choice(["north", "south"], size=n)},
        index=pd.RangeIndex(n, name="customer_id"),
    )
    frequency = rng.integers(0, 8, size=n).astype(float)
    eta = 0.2 * customers["income"].to_numpy() + 0.4 * (customers["region"] == "south")
    spend = simulate_gamma_gamma(
        BASE["p"], BASE["q"], BASE["gamma"] * np.exp(eta.to_numpy()), frequency, random_state=6
    )
    summary = pd.DataFrame({"frequency": frequency, "monetary_value": spend}, index=customers.index)
    return summary, customers


def _data(model, summary, customers):
    repeat = summary["frequency"].to_numpy() > 0
    data = {c: summary[c].to_numpy(dtype=float)[repeat] for c in ("frequency", "monetary_value")}
    matrix = model._customer_matrix(summary, customers)[repeat]
    data["_Zs"] = model._group_design(matrix, int(repeat.sum()), "spend")
    return data


def test_zero_coefficients_equal_the_model_without_covariates(spenders):
    summary, customers = spenders
    with_cov = GammaGammaModel.from_params(**BASE, **{"spend:income": 0.0})
    plain = GammaGammaModel.from_params(**BASE)
    data = _data(with_cov, summary, customers)
    ll_cov, grad_cov = gamma_gamma._loglik_grad_covariates(with_cov.params_.to_numpy(), data)
    ll, grad = gamma_gamma._loglik_grad(plain.params_.to_numpy(), data)
    np.testing.assert_allclose(ll_cov, ll, rtol=1e-12)
    np.testing.assert_allclose(grad_cov[:, :3], grad, rtol=1e-10)
    np.testing.assert_allclose(
        with_cov.expected_spend(summary, customers=customers), plain.expected_spend(summary)
    )


def test_gradient_matches_finite_differences(spenders):
    summary, customers = spenders
    model = GammaGammaModel.from_params(**BASE, **{"spend:income": 0.3, "spend:vip": -0.2})
    customers = customers.assign(vip=(customers["region"] == "south").astype(float))
    data = _data(model, summary.head(400), customers.head(400))
    start = model.params_.to_numpy()

    def total(p):
        return gamma_gamma._loglik_grad_covariates(p, data)[0].sum()

    def gradient(p):
        return gamma_gamma._loglik_grad_covariates(p, data)[1].sum(axis=0)

    assert check_grad(total, gradient, start, epsilon=1e-7) < 1e-4 * np.abs(gradient(start)).max()


def test_fit_recovers_the_spend_effects(spenders, tmp_path):
    summary, customers = spenders
    model = GammaGammaModel().fit(
        summary, customers=customers, spend_covariates=["income", "region"]
    )
    table = model.summary
    assert list(table.index[3:]) == ["spend:income", "spend:region[south]"]
    for name, value in {"spend:income": 0.2, "spend:region[south]": 0.4}.items():
        assert table.at[name, "lower_95"] <= value <= table.at[name, "upper_95"], name
    assert model.n_customers_ == (summary["frequency"] > 0).sum()
    effects = covariate_effects(model)
    assert effects.loc["spend:region[south]", "statement"].startswith(
        "customers with region = south spend "
    )
    # the multiplier is the ratio of expected spend of two otherwise equal new customers
    profiles = pd.DataFrame(
        {
            "frequency": [0.0, 0.0],
            "monetary_value": [0.0, 0.0],
            "income": [0.0, 0.0],
            "region": ["north", "south"],
        }
    )
    spend = model.expected_spend(profiles)
    np.testing.assert_allclose(spend.iloc[1] / spend.iloc[0], effects.iloc[1]["multiplier"])
    loaded = load_model(model.save(tmp_path / "gg.json"))
    pd.testing.assert_series_equal(loaded.expected_spend(profiles), spend)
    with pytest.raises(DataError, match="has the level 'east'"):
        model.expected_spend(profiles.assign(region="east"))
