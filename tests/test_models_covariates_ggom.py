"""GGom/NBD with discrete time-invariant covariates (CLVTools' ``ggomnbd`` static covariates)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from _models import assert_weighted_gradient
from _simulate_models import simulate_ggom_covariates
from custval import DataError, GammaGompertzNBDModel, covariate_effects, load_model

BASE = {"r": 0.8, "alpha": 5.0, "b": 0.05, "s": 1.5, "beta": 3.0}
PURCHASE = {"vip[True]": 0.5}
DROPOUT = {"channel[referral]": 0.8}


@pytest.fixture(scope="module")
def simulated():
    return simulate_ggom_covariates(
        **BASE, purchase=PURCHASE, dropout=DROPOUT, n=5000, random_state=4
    )


def _prepared(model, summary, customers):
    data = {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    data.update(model.covariates_.design(customers))
    return model._prepare_patterns(data)


def _plain_data(model, summary):
    return model._prepare_patterns(
        {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    )


def test_zero_coefficients_equal_the_model_without_covariates(simulated):
    summary, customers = simulated
    numeric = customers.assign(vip=customers["vip"].astype(float), ref=0.0)
    numeric["ref"] = (customers["channel"] == "referral").astype(float)
    zero = {"purchase:vip": 0.0, "dropout:vip": 0.0, "dropout:ref": 0.0}
    with_cov = GammaGompertzNBDModel.from_params(**BASE, **zero, freq="W")
    plain = GammaGompertzNBDModel.from_params(**BASE, freq="W")
    summary, numeric = summary.head(1500), numeric.head(1500)
    ll, grad = with_cov._loglik_grad(
        with_cov.params_.to_numpy(), _prepared(with_cov, summary, numeric)
    )
    ll0, grad0 = plain._loglik_grad(plain.params_.to_numpy(), _plain_data(plain, summary))
    np.testing.assert_allclose(ll, ll0, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(grad[:, :5], grad0, rtol=1e-8, atol=1e-12)
    for horizon in (10.0, "20W"):
        np.testing.assert_allclose(
            with_cov.expected_purchases(summary, horizon, customers=numeric),
            plain.expected_purchases(summary, horizon),
            rtol=1e-8,
        )
    for horizon in (None, 10.0):
        np.testing.assert_allclose(
            with_cov.probability_alive(summary, horizon, customers=numeric),
            plain.probability_alive(summary, horizon),
            rtol=1e-8,
        )


def test_gradient_matches_finite_differences(simulated):
    summary, customers = simulated
    numeric = customers.assign(vip=customers["vip"].astype(float)).head(400)
    model = GammaGompertzNBDModel.from_params(
        **BASE, **{"purchase:vip": 0.4, "dropout:vip": -0.3, "both:vip2": 0.2}
    )
    numeric = numeric.assign(vip2=(customers["channel"].head(400) == "social").astype(float))
    data = _prepared(model, summary.head(400), numeric)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, 400)
    assert_weighted_gradient(model, data, weights)


@pytest.mark.slow
def test_fit_recovers_the_effects(simulated, tmp_path):
    summary, customers = simulated
    model = GammaGompertzNBDModel().fit(
        summary, customers=customers, purchase_covariates=["vip"], dropout_covariates=["channel"]
    )
    table = model.summary
    assert model.convergence_ == "optimum"
    assert list(table.index[5:]) == [
        "purchase:vip[True]",
        "dropout:channel[referral]",
        "dropout:channel[social]",
    ]
    truth = {**BASE, "purchase:vip[True]": 0.5, "dropout:channel[referral]": 0.8}
    truth["dropout:channel[social]"] = 0.0
    for name, value in truth.items():
        assert table.at[name, "lower_95"] < value < table.at[name, "upper_95"], name
    assert table.at["purchase:vip[True]", "p_value"] < 1e-6
    assert table.at["dropout:channel[referral]", "p_value"] < 1e-3
    # the maximum: at least the likelihood of the truth, and above the model without covariates
    at_truth = model._loglik(
        np.array(list(truth.values())), _prepared(model, summary, customers)
    ).sum()
    assert model.log_likelihood_ >= at_truth
    plain = GammaGompertzNBDModel().fit(summary)
    assert model.log_likelihood_ > plain.log_likelihood_ + 20
    effects = covariate_effects(model)
    assert effects.at["purchase:vip[True]", "statement"].startswith(
        "customers with vip = True buy "
    )
    assert "dropout rate" in effects.at["dropout:channel[referral]", "statement"]
    loaded = load_model(model.save(tmp_path / "ggom.json"))
    pd.testing.assert_series_equal(
        loaded.probability_alive(summary, customers=customers),
        model.probability_alive(summary, customers=customers),
    )


@pytest.mark.slow
def test_coefficient_intervals_cover_the_truth_at_their_nominal_rate():
    """Six seeds of 2,500 customers, the three coefficients' 95% intervals each (18 intervals).

    Bounds from the sampling distribution of a correct model, not from this machine: the
    number covering is Binomial(18, 0.95) (the intervals of one fit are mildly correlated:
    referral and social both contrast with direct, correlation about 0.3), so fewer than its
    0.1% quantile fails; ``z = (estimate - truth) / std_error`` is standard normal, so the mean
    of the 18 ``z^2`` lies between the 0.1% and 99.9% quantiles of chi2(18)/18 (intervals twice
    too wide or too narrow fail it), and each coefficient's mean ``z`` over the seeds lies
    within 3.5 / sqrt(6) of 0 (a bias of about a standard error fails)."""
    truth = pd.Series({**PURCHASE, **DROPOUT, "dropout:channel[social]": 0.0})
    truth.index = ["purchase:vip[True]", "dropout:channel[referral]", "dropout:channel[social]"]
    seeds = range(20, 26)
    z = []
    for seed in seeds:
        summary, customers = simulate_ggom_covariates(
            **BASE, purchase=PURCHASE, dropout=DROPOUT, n=2500, random_state=seed
        )
        model = GammaGompertzNBDModel().fit(
            summary,
            customers=customers,
            purchase_covariates=["vip"],
            dropout_covariates=["channel"],
        )
        table = model.summary.loc[truth.index]
        z.append((table["estimate"] - truth) / table["std_error"])
    z = pd.concat(z, axis=1)  # coefficients x seeds
    k = z.size
    covered = int((np.abs(z) < stats.norm.ppf(0.975)).to_numpy().sum())
    assert covered >= stats.binom.ppf(0.001, k, 0.95), (covered, z)
    mean_square = float((z**2).to_numpy().mean())
    assert stats.chi2.ppf(0.001, k) / k < mean_square < stats.chi2.ppf(0.999, k) / k, z
    assert (np.abs(z.mean(axis=1)) < 3.5 / np.sqrt(len(seeds))).all(), z


def test_covariate_model_needs_the_customers():
    # continuous covariates: tests/test_models_covariates_continuous.py
    model = GammaGompertzNBDModel.from_params(**BASE, **{"purchase:vip": 0.4})
    with pytest.raises(DataError, match="has covariates: give each customer's covariates"):
        model.expected_purchases_new_customer(10.0)
