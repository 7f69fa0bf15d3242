"""Continuous time-invariant covariates for the Pareto/NBD: every customer at their own
``alpha_i = alpha exp(-x'beta_p)``, ``beta_i = beta exp(-x'beta_d)``, the series and quadrature
of the model without covariates vectorised over the customers.

Evidence: zero coefficients give the model without covariates; on discrete covariates the
per-customer path equals the per-profile one; the gradient against finite differences; the
coefficients of simulated data recovered with 95% intervals covering at their nominal rate;
the value table is the discounted integral of the model's own ``expected_purchases``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from _models import assert_weighted_gradient
from _simulate_models import simulate_continuous_covariates
from custval import (
    GammaGammaModel,
    GammaGompertzNBDModel,
    ParetoNBDModel,
    customer_lifetime_value,
    customer_value_table,
)
from custval.datasets import simulate_gamma_gamma

PNBD = {"r": 0.6, "alpha": 8.0, "s": 0.7, "beta": 10.0}
PURCHASE = {"income": 0.4, "tenure": -0.3}
DROPOUT = {"income": -0.5}
TRUTH = {"purchase:income": 0.4, "purchase:tenure": -0.3, "dropout:income": -0.5}


@pytest.fixture(scope="module")
def simulated():
    return simulate_continuous_covariates(PNBD, PURCHASE, DROPOUT, 3000, random_state=5)


def _data(model, summary, customers):
    data = {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    if getattr(model, "covariates_", None) is not None:
        data.update(model.covariates_.design(customers))
    return model._prepare_patterns(data)


def _per_customer(model):
    """``model`` forced onto the per-customer path (no covariate profiles)."""
    model._max_profiles = 0
    return model


def _coefficients(names, values=None):
    return dict(zip(names, [0.0] * len(names) if values is None else values, strict=True))


NAMES = ["purchase:income", "purchase:tenure", "dropout:income"]


def test_zero_coefficients_equal_the_model_without_covariates(simulated):
    summary, customers = simulated
    with_cov = ParetoNBDModel.from_params(**PNBD, **_coefficients(NAMES))
    plain = ParetoNBDModel.from_params(**PNBD)
    data = _data(with_cov, summary, customers)
    assert data["_profiles"] is None  # every customer a profile of their own
    ll, grad = with_cov._loglik_grad(with_cov.params_.to_numpy(), data)
    ll0, grad0 = plain._loglik_grad(plain.params_.to_numpy(), _data(plain, summary, None))
    np.testing.assert_allclose(ll, ll0, rtol=1e-8)
    np.testing.assert_allclose(grad[:, :4], grad0, rtol=1e-8, atol=1e-12)
    # the coefficients' gradient is the chain rule of alpha's and beta's
    income = customers["income"].to_numpy()
    np.testing.assert_allclose(grad[:, 4], -PNBD["alpha"] * grad0[:, 1] * income, rtol=1e-8)
    np.testing.assert_allclose(grad[:, 6], -PNBD["beta"] * grad0[:, 3] * income, rtol=1e-8)
    for method, args in (("expected_purchases", (10.0,)), ("probability_alive", (5.0,))):
        np.testing.assert_allclose(
            getattr(with_cov, method)(summary, *args, customers=customers),
            getattr(plain, method)(summary, *args),
            rtol=1e-8,
        )


@pytest.mark.parametrize("equal", [False, True])
def test_per_customer_path_equals_the_per_profile_path(equal):
    """Discrete covariates: the vectorised per-customer likelihood, gradient and predictions
    equal those evaluated once per covariate profile."""
    summary, customers = simulate_continuous_covariates(PNBD, PURCHASE, DROPOUT, 1500)
    income = customers["income"]
    customers = pd.DataFrame(
        {
            "mid": ((income > -0.5) & (income <= 0.5)).astype(float),
            "high": (income > 0.5).astype(float),
            "old": (customers["tenure"] > 0).astype(float),
        }
    )
    names = ["purchase:mid", "purchase:high", "dropout:old"]
    values = [0.3, 0.6, -0.4]
    if equal:  # a both: coefficient, and very different alpha_i, beta_i (the quadrature)
        names, values = (
            ["purchase:mid", "dropout:mid", "dropout:old", "both:high"],
            [
                0.3,
                2.5,
                -0.4,
                3.0,
            ],
        )
    params = {**PNBD, **_coefficients(names, values)}
    by_profile = ParetoNBDModel.from_params(**params)
    by_customer = _per_customer(ParetoNBDModel.from_params(**params))
    data_p = _data(by_profile, summary, customers)
    data_c = _data(by_customer, summary, customers)
    assert data_p["_profiles"] is not None and data_c["_profiles"] is None
    theta = by_profile.params_.to_numpy()
    ll_p, grad_p = by_profile._loglik_grad(theta, data_p)
    ll_c, grad_c = by_customer._loglik_grad(theta, data_c)
    np.testing.assert_allclose(ll_c, ll_p, rtol=1e-10)
    np.testing.assert_allclose(grad_c, grad_p, rtol=1e-10, atol=1e-12)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, len(summary))
    total_p, wgrad_p = by_profile._weighted_loglik_grad(theta, data_p, weights)
    total_c, wgrad_c = by_customer._weighted_loglik_grad(theta, data_c, weights)
    assert total_c == pytest.approx(total_p, rel=1e-10)
    np.testing.assert_allclose(wgrad_c, wgrad_p, rtol=1e-10, atol=1e-10)
    for method, args in (("expected_purchases", (26.0,)), ("probability_alive", (None,))):
        np.testing.assert_allclose(
            getattr(by_customer, method)(summary, *args, customers=customers),
            getattr(by_profile, method)(summary, *args, customers=customers),
            rtol=1e-10,
        )


def _check_gradient(model, summary, customers, n):
    """check_grad of the weighted log-likelihood on the first ``n`` customers; the per-row
    terms sum to the weighted ones."""
    data = _data(model, summary.head(n), customers.head(n))
    weights = np.random.default_rng(1).uniform(0.5, 2.0, n)
    assert_weighted_gradient(model, data, weights)


def test_gradient_matches_finite_differences(simulated):
    summary, customers = simulated
    _check_gradient(ParetoNBDModel.from_params(**PNBD, **TRUTH), summary, customers, 600)


def test_fit_recovers_continuous_effects_with_covering_intervals():
    """12 simulated data sets, 3 coefficients each: the 95% Wald intervals cover the truth
    in at least 31 of 36 (binomial(36, 0.95): P(fewer) < 0.3%)."""
    covered, estimates = 0, []
    for seed in range(12):
        summary, customers = simulate_continuous_covariates(
            PNBD, PURCHASE, DROPOUT, 2500, random_state=100 + seed
        )
        model = ParetoNBDModel().fit(
            summary,
            customers=customers,
            purchase_covariates=["income", "tenure"],
            dropout_covariates=["income"],
        )
        table = model.summary
        for name, value in TRUTH.items():
            half = 1.959963984540054 * table.at[name, "std_error"]
            covered += abs(table.at[name, "estimate"] - value) <= half
        estimates.append([table.at[name, "estimate"] for name in TRUTH])
    assert covered >= 31
    # and the estimates centre on the truth (mean of 12 within 3 of its standard errors)
    estimates = np.asarray(estimates)
    spread = estimates.std(axis=0, ddof=1) / math.sqrt(len(estimates))
    assert np.all(np.abs(estimates.mean(axis=0) - list(TRUTH.values())) < 3 * spread + 0.02)


def test_value_table_with_continuous_covariates(simulated):
    summary, customers = simulated
    summary = summary.head(120)
    customers = customers.head(120)
    summary = summary.assign(
        monetary_value=simulate_gamma_gamma(
            6.0, 4.0, 15.0, summary["frequency"].to_numpy(), random_state=0
        )
    )
    summary.attrs["freq"] = "W"
    spend = GammaGammaModel().fit(summary)
    plain = ParetoNBDModel.from_params(**PNBD, freq="W")
    zero = ParetoNBDModel.from_params(**PNBD, **_coefficients(NAMES), freq="W")
    kwargs = {"horizon": "52W", "margin": 0.5, "n_draws": 0, "progress": False}
    columns = ["p_alive", "expected_purchases", "clv"]
    reference = customer_value_table(plain, spend, summary, **kwargs)[columns]
    table = customer_value_table(zero, spend, summary, customers=customers, **kwargs)
    pd.testing.assert_frame_equal(table[columns], reference, rtol=1e-8)
    # with effects: each customer's CLV is the discounted integral of their own predictions
    model = ParetoNBDModel.from_params(**PNBD, **TRUTH, freq="W")
    table = customer_value_table(model, spend, summary, customers=customers, **kwargs)
    clv = customer_lifetime_value(
        model, spend, summary, customers=customers, horizon="52W", margin=0.5
    )
    np.testing.assert_allclose(table["clv"], clv, rtol=1e-12)
    rate = clv.attrs["continuous_discount_rate"]
    expected_spend = spend.expected_spend(summary)
    for i in (0, 3):
        row, customer = summary.iloc[[i]], customers.iloc[[i]]

        def expected(t: float, row=row, customer=customer) -> float:
            return float(model.expected_purchases(row, t, customers=customer).iloc[0])

        inner = integrate.quad(
            lambda t, e=expected: math.exp(-rate * t) * e(t), 0, 52.0, epsabs=0, epsrel=1e-11
        )[0]
        value = math.exp(-rate * 52.0) * expected(52.0) + rate * inner
        reference = 0.5 * float(expected_spend.iloc[i]) * value
        assert clv.iloc[i] == pytest.approx(reference, rel=1e-9)


# ------------------------------------------------------------------------------ GGom/NBD
GGOM = {"r": 0.6, "alpha": 8.0, "b": 0.05, "s": 0.8, "beta": 2.0}
GGOM_PURCHASE = {"income": 0.4}
GGOM_DROPOUT = {"income": -0.5, "tenure": 0.3}
GGOM_NAMES = ["purchase:income", "dropout:income", "dropout:tenure"]


@pytest.fixture(scope="module")
def simulated_ggom():
    return simulate_continuous_covariates(GGOM, GGOM_PURCHASE, GGOM_DROPOUT, 3000, random_state=1)


def test_ggom_zero_coefficients_equal_the_model_without_covariates(simulated_ggom):
    summary, customers = simulated_ggom
    with_cov = GammaGompertzNBDModel.from_params(**GGOM, **_coefficients(GGOM_NAMES))
    plain = GammaGompertzNBDModel.from_params(**GGOM)
    data = _data(with_cov, summary, customers)
    assert data["_profiles"] is None
    ll, grad = with_cov._loglik_grad(with_cov.params_.to_numpy(), data)
    ll0, grad0 = plain._loglik_grad(plain.params_.to_numpy(), _data(plain, summary, None))
    np.testing.assert_allclose(ll, ll0, rtol=1e-8)
    np.testing.assert_allclose(grad[:, :5], grad0, rtol=1e-8, atol=1e-12)
    for method, args in (("expected_purchases", (10.0,)), ("probability_alive", (5.0,))):
        np.testing.assert_allclose(
            getattr(with_cov, method)(summary, *args, customers=customers),
            getattr(plain, method)(summary, *args),
            rtol=1e-8,
        )


@pytest.mark.parametrize(("b", "beta"), [(0.05, 2.0), (1.0, 2.0), (0.05, 0.3), (1.0, 50.0)])
def test_ggom_per_customer_path_equals_the_per_profile_path(simulated_ggom, b, beta):
    """Discrete covariates, with and without the graded pieces around the lifetime density's
    turning point (``b = 1``, ``beta_i > 1``) and with the singularity shift (``beta_i < 1``)."""
    summary, customers = simulated_ggom
    summary, customers = summary.head(800), customers.head(800)
    flags = pd.DataFrame(
        {
            "hi": (customers["income"] > 0.5).astype(float),
            "old": (customers["tenure"] > 0).astype(float),
        }
    )
    params = {**GGOM, "b": b, "beta": beta, "purchase:hi": 0.5, "dropout:hi": 1.5}
    params["dropout:old"] = -0.7
    by_profile = GammaGompertzNBDModel.from_params(**params)
    by_customer = _per_customer(GammaGompertzNBDModel.from_params(**params))
    data_p, data_c = _data(by_profile, summary, flags), _data(by_customer, summary, flags)
    assert data_p["_profiles"] is not None and data_c["_profiles"] is None
    theta = by_profile.params_.to_numpy()
    ll_p, grad_p = by_profile._loglik_grad(theta, data_p)
    ll_c, grad_c = by_customer._loglik_grad(theta, data_c)
    np.testing.assert_allclose(ll_c, ll_p, rtol=1e-10)
    np.testing.assert_allclose(grad_c, grad_p, rtol=1e-10, atol=1e-10)
    for method, args in (("expected_purchases", (26.0,)), ("probability_alive", (8.0,))):
        np.testing.assert_allclose(
            getattr(by_customer, method)(summary, *args, customers=flags),
            getattr(by_profile, method)(summary, *args, customers=flags),
            rtol=1e-10,
        )


def test_ggom_gradient_matches_finite_differences(simulated_ggom):
    summary, customers = simulated_ggom
    truth = {"purchase:income": 0.4, "dropout:income": -0.5, "dropout:tenure": 0.3}
    _check_gradient(GammaGompertzNBDModel.from_params(**GGOM, **truth), summary, customers, 500)


def test_ggom_fit_recovers_continuous_effects(simulated_ggom):
    summary, customers = simulated_ggom
    model = GammaGompertzNBDModel().fit(
        summary,
        customers=customers,
        purchase_covariates=["income"],
        dropout_covariates=["income", "tenure"],
    )
    table = model.summary
    truth = {"purchase:income": 0.4, "dropout:income": -0.5, "dropout:tenure": 0.3}
    for name, value in truth.items():
        assert abs(table.at[name, "estimate"] - value) < 3.5 * table.at[name, "std_error"], name
    assert table.at["purchase:income", "p_value"] < 1e-6
