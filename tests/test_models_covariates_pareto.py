"""Pareto/NBD with discrete time-invariant covariates (CLVTools' static parametrisation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _models import assert_weighted_gradient
from custval import ParetoNBDModel, covariate_effects, load_model

BASE = {"r": 0.6, "alpha": 8.0, "s": 0.7, "beta": 10.0}


def simulate_pareto_covariates(n: int, purchase: float, dropout: float, seed: int = 0):
    """Pareto/NBD customers with a binary ``vip`` and a 3-level ``channel`` covariate:
    ``alpha_i = alpha exp(-purchase vip)``, ``beta_i = beta exp(-dropout [channel = b])``."""
    rng = np.random.default_rng(seed)
    customers = pd.DataFrame(
        {"vip": rng.random(n) < 0.4, "channel": rng.choice(["a", "b", "c"], size=n)},
        index=pd.RangeIndex(n, name="customer_id"),
    )
    alpha = BASE["alpha"] * np.exp(-purchase * customers["vip"].to_numpy())
    beta = BASE["beta"] * np.exp(-dropout * (customers["channel"] == "b").to_numpy())
    lam = rng.gamma(BASE["r"], 1.0 / alpha)
    mu = rng.gamma(BASE["s"], 1.0 / beta)
    big_t = rng.uniform(30, 60, size=n).round()
    active = np.minimum(rng.exponential(1.0 / mu), big_t)
    x = rng.poisson(lam * active)
    t_x = np.where(x > 0, active * rng.random(n) ** (1.0 / np.maximum(x, 1)), 0.0)
    summary = pd.DataFrame(
        {"frequency": x.astype(float), "recency": t_x, "T": big_t}, index=customers.index
    )
    return summary, customers


@pytest.fixture(scope="module")
def simulated():
    return simulate_pareto_covariates(4000, purchase=0.5, dropout=0.7, seed=3)


def _prepared(model, summary, customers):
    data = {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    data.update(model.covariates_.design(customers))
    return model._prepare_patterns(data)


def test_zero_coefficients_equal_the_model_without_covariates(simulated):
    summary, customers = simulated
    numeric = customers.assign(vip=customers["vip"].astype(float))
    with_cov = ParetoNBDModel.from_params(**BASE, **{"purchase:vip": 0.0, "dropout:vip": 0.0})
    plain = ParetoNBDModel.from_params(**BASE)
    data = _prepared(with_cov, summary, numeric)
    ll, grad = with_cov._loglik_grad(with_cov.params_.to_numpy(), data)
    ll0, grad0 = plain._loglik_grad(plain.params_.to_numpy(), _prepared_plain(plain, summary))
    np.testing.assert_allclose(ll, ll0, rtol=1e-8)
    np.testing.assert_allclose(grad[:, :4], grad0, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(
        with_cov.expected_purchases(summary, 10.0, customers=numeric),
        plain.expected_purchases(summary, 10.0),
        rtol=1e-8,
    )
    np.testing.assert_allclose(
        with_cov.probability_alive(summary, customers=numeric),
        plain.probability_alive(summary),
        rtol=1e-8,
    )


def _prepared_plain(model, summary):
    return model._prepare_patterns(
        {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    )


def test_gradient_matches_finite_differences(simulated):
    summary, customers = simulated
    numeric = customers.assign(vip=customers["vip"].astype(float)).head(500)
    model = ParetoNBDModel.from_params(**BASE, **{"purchase:vip": 0.4, "dropout:vip": -0.3})
    data = _prepared(model, summary.head(500), numeric)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, 500)
    assert_weighted_gradient(model, data, weights)


def test_fit_recovers_the_effects(simulated, tmp_path):
    summary, customers = simulated
    model = ParetoNBDModel().fit(
        summary, customers=customers, purchase_covariates=["vip"], dropout_covariates=["channel"]
    )
    table = model.summary
    assert list(table.index[4:]) == [
        "purchase:vip[True]",
        "dropout:channel[b]",
        "dropout:channel[c]",
    ]
    truth = {"purchase:vip[True]": 0.5, "dropout:channel[b]": 0.7, "dropout:channel[c]": 0.0}
    for name, value in truth.items():
        assert abs(table.at[name, "estimate"] - value) < 4 * table.at[name, "std_error"], name
    assert table.at["purchase:vip[True]", "p_value"] < 1e-6
    effects = covariate_effects(model)
    assert effects.at["dropout:channel[b]", "statement"].startswith(
        "customers with channel = b have "
    )
    assert "dropout rate" in effects.at["dropout:channel[b]", "statement"]
    loaded = load_model(model.save(tmp_path / "pnbd.json"))
    pd.testing.assert_series_equal(
        loaded.probability_alive(summary, customers=customers),
        model.probability_alive(summary, customers=customers),
    )
