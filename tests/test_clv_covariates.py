"""The value table with covariate models: each customer valued with their own covariates.

Evidence: a covariate model whose coefficients are zero values customers exactly as the model
without covariates (point values and, with the coefficients' variance zero, the intervals); a
covariate model's CLV is the discounted integral of its own ``expected_purchases`` (adaptive
quadrature, independent of custval's rule); intervals cover the true value at their nominal
rate on simulated data with known coefficients; ``compare_models`` counts the coefficients."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from custval import (
    BetaGeoModel,
    DataError,
    GammaGammaModel,
    ParetoNBDModel,
    clv_interval,
    customer_lifetime_value,
    customer_value_table,
    evaluation,
)
from custval._quadrature import CovariateKernel, ProfileKernel
from custval._validation import covariate_profiles
from custval.clv import _resolve_terms, _transaction_kernel
from custval.datasets import simulate_beta_geo_covariates, simulate_gamma_gamma

BASE = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
PURCHASE = {"x_num": 0.3, "channel[referral]": 0.5}
DROPOUT = {"channel[referral]": -0.6}
SPEND = {"p": 6.0, "q": 4.0, "gamma": 15.0}
POINT_COLUMNS = ["p_alive", "expected_purchases", "expected_spend", "clv", "value_rank"]
BAND_COLUMNS = ["clv_lower", "clv_median", "clv_upper"]


def _simulated(n: int, seed: int, spend_effect: float = 0.0):
    """Covariate BG/NBD purchases (weeks) and Gamma-Gamma spend whose scale is multiplied by
    ``exp(spend_effect)`` for the referral channel."""
    summary, customers = simulate_beta_geo_covariates(
        **BASE, purchase=PURCHASE, dropout=DROPOUT, n=n, random_state=seed
    )
    referral = (customers["channel"] == "referral").to_numpy()
    gamma = SPEND["gamma"] * np.exp(spend_effect * referral)
    summary = summary.assign(
        monetary_value=simulate_gamma_gamma(
            SPEND["p"], SPEND["q"], gamma, summary["frequency"].to_numpy(), random_state=seed
        )
    )
    summary.attrs["freq"] = "W"
    return summary, customers


@pytest.fixture(scope="module")
def simulated():
    return _simulated(1500, 0, spend_effect=0.4)


@pytest.fixture(scope="module")
def fitted(simulated):
    summary, customers = simulated
    bg = BetaGeoModel().fit(
        summary,
        customers=customers,
        purchase_covariates=["x_num", "channel"],
        dropout_covariates=["channel"],
    )
    gg = GammaGammaModel().fit(summary, customers=customers, spend_covariates=["channel"])
    return bg, gg


def _with_zero_coefficients(model, names):
    """``model`` plus covariate coefficients fixed at zero, with zero variance."""
    params = {**model.params_.to_dict(), **dict.fromkeys(names, 0.0)}
    zero = type(model).from_params(**params, freq=model.freq_)
    k = len(model.params_)
    variance = np.zeros((len(params), len(params)))
    variance[:k, :k] = np.asarray(model.variance_matrix_, dtype=float)
    zero.variance_matrix_ = pd.DataFrame(variance, index=zero.params_.index, columns=list(params))
    return zero


@pytest.mark.parametrize("horizon", ["52W", "inf"])
def test_zero_coefficients_give_the_table_of_the_model_without_covariates(simulated, horizon):
    summary, customers = simulated
    customers = customers.assign(vip=(customers["x_num"] > 1).astype(float))
    plain_bg, plain_gg = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
    bg = _with_zero_coefficients(plain_bg, ["purchase:x_num", "dropout:vip"])
    gg = _with_zero_coefficients(plain_gg, ["spend:vip"])
    draws = 40 if horizon != "inf" else 20  # inf: 75 quadrature nodes per draw
    kwargs = {"horizon": horizon, "margin": 0.3, "n_draws": draws, "progress": False}
    plain = customer_value_table(plain_bg, plain_gg, summary, **kwargs)
    table = customer_value_table(bg, gg, summary, customers=customers, **kwargs)
    pd.testing.assert_frame_equal(table[POINT_COLUMNS], plain[POINT_COLUMNS], rtol=1e-8)
    # the same draws (zero-variance coefficients are drawn at zero): the percentiles differ
    # only by the float32 tables and the 5-node quadrature of the draws (~1e-6)
    pd.testing.assert_frame_equal(table[BAND_COLUMNS], plain[BAND_COLUMNS], rtol=2e-5)
    assert (table["segment"] == plain["segment"]).all()


@pytest.mark.parametrize("model_class", [BetaGeoModel, ParetoNBDModel])
def test_discrete_covariates_use_each_profiles_plain_kernel(simulated, model_class):
    """Few covariate profiles: each is valued by the plain model's kernel at the profile's
    parameters (``_profile_params``); it agrees with the generic quadrature of the covariate
    model's own expected_purchases, at the estimates and at every draw."""
    summary, customers = simulated
    model = model_class().fit(
        summary,
        customers=customers,
        purchase_covariates=["channel"],
        dropout_covariates=["channel"],
    )
    for horizon in ("52W", "inf"):
        terms = _resolve_terms(model, None, summary, horizon, 0.1, None)
        profiles, codes = covariate_profiles(customers, ["channel"])
        rows = {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
        rows["profile"] = codes.astype(float)
        kernel = _transaction_kernel(model, terms, profiles)
        assert isinstance(kernel, ProfileKernel)
        generic = CovariateKernel(model, terms, profiles)
        theta = model.params_.to_numpy()
        np.testing.assert_allclose(kernel.values(theta, rows), generic.values(theta, rows), 1e-8)
        thetas = theta + np.random.default_rng(1).normal(0, 0.05, (3, len(theta)))
        head = {k: v[:200] for k, v in rows.items()}
        kernel.prepare_draws(thetas, head)
        generic.prepare_draws(thetas, head)
        np.testing.assert_allclose(
            kernel.values_draws(thetas, slice(0, 200)),
            generic.values_draws(thetas, slice(0, 200)),
            rtol=2e-5,
        )
    # each profile's parameters give that profile's predictions
    plain_params = model._profile_params(model.params_.to_numpy(), profiles)
    for g in range(len(profiles)):
        members = codes == g
        names = model._param_names[:4]
        plain = model_class.from_params(**dict(zip(names, plain_params[g], strict=True)))
        np.testing.assert_allclose(
            plain.expected_purchases(summary[members], 20.0),
            model.expected_purchases(summary[members], 20.0, customers=customers[members]),
            rtol=1e-10,
        )


def test_zero_spend_coefficients_give_the_plain_intervals_with_the_fast_kernel(simulated):
    """A plain BG/NBD (fast kernel, folded spend tables) with a covariate Gamma-Gamma whose
    coefficients are zero: the unfolded path gives the folded path's intervals."""
    summary, customers = simulated
    plain_bg, plain_gg = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
    gg = _with_zero_coefficients(plain_gg, ["spend:x_num"])
    plain = clv_interval(plain_bg, plain_gg, summary, n_draws=40, progress=False)
    bands = clv_interval(plain_bg, gg, summary, customers=customers, n_draws=40, progress=False)
    pd.testing.assert_frame_equal(bands, plain, rtol=1e-6)


def _discounted_integral(model, row, customer, horizon, delta):
    """``exp(-delta H) E(H) + delta int_0^H exp(-delta t) E(t) dt`` by adaptive quadrature."""

    def expected(t: float) -> float:
        return float(model.expected_purchases(row, t, customers=customer).iloc[0])

    inner = integrate.quad(
        lambda t: math.exp(-delta * t) * expected(t), 0.0, horizon, epsabs=0, epsrel=1e-11
    )[0]
    return math.exp(-delta * horizon) * expected(horizon) + delta * inner


@pytest.mark.parametrize("model_class", [BetaGeoModel, ParetoNBDModel])
def test_clv_is_the_discounted_integral_of_the_models_own_expected_purchases(
    simulated, model_class
):
    summary, customers = simulated
    transaction = model_class().fit(
        summary,
        customers=customers,
        purchase_covariates=["channel"],
        dropout_covariates=["channel"],
    )
    spend = GammaGammaModel().fit(summary, customers=customers, spend_covariates=["channel"])
    assert np.abs(transaction.params_.filter(like=":")).max() > 0.05  # real effects
    clv = customer_lifetime_value(
        transaction, spend, summary, customers=customers, horizon="52W", margin=0.5
    )
    rate = clv.attrs["continuous_discount_rate"]
    expected_spend = spend.expected_spend(summary, customers=customers)
    picks = [summary.index[i] for i in (0, 1, 2, 5, 8)]
    picks += list(customers.index[customers["channel"] == "referral"][:2])
    for customer_id in picks:
        row = summary.loc[[customer_id]]
        value = _discounted_integral(transaction, row, customers.loc[[customer_id]], 52.0, rate)
        reference = 0.5 * float(expected_spend[customer_id]) * value
        assert clv[customer_id] == pytest.approx(reference, rel=1e-9, abs=1e-12)


def test_covariates_may_be_columns_of_the_summary(simulated, fitted):
    summary, customers = simulated
    bg, gg = fitted
    separate = customer_lifetime_value(bg, gg, summary, customers=customers)
    joined = summary.join(customers)
    joined.attrs = summary.attrs
    np.testing.assert_array_equal(customer_lifetime_value(bg, gg, joined), separate)
    table = customer_value_table(bg, gg, summary, customers=customers, n_draws=0)
    np.testing.assert_allclose(table["clv"], separate, rtol=1e-12)
    np.testing.assert_allclose(
        table["p_alive"], bg.probability_alive(summary, customers=customers), rtol=1e-12
    )
    np.testing.assert_allclose(
        table["expected_purchases"],
        bg.expected_purchases(summary, "12M", customers=customers),
        rtol=1e-12,
    )


def test_covariate_refusals(simulated, fitted):
    summary, customers = simulated
    bg, gg = fitted
    plain = BetaGeoModel.from_params(**BASE, freq="W")
    with pytest.raises(DataError, match="neither model was fitted with covariates"):
        customer_lifetime_value(plain, 20.0, summary, customers=customers)
    with pytest.raises(DataError, match=r"covariate column\(s\) \['x_num', 'channel'\]"):
        customer_lifetime_value(bg, gg, summary)
    with pytest.raises(DataError, match="have no row in customers"):
        customer_lifetime_value(bg, gg, summary, customers=customers.iloc[10:])


@pytest.mark.slow
def test_intervals_cover_the_true_value_at_their_nominal_rate():
    """True value: CLV under the true coefficients given each simulated history; averaged
    over data sets (customers of one data set share one estimate)."""
    true_params = {
        **BASE,
        "purchase:x_num": PURCHASE["x_num"],
        "purchase:channel[referral]": PURCHASE["channel[referral]"],
        "dropout:channel[referral]": DROPOUT["channel[referral]"],
    }
    true_bg = BetaGeoModel.from_params(**true_params, freq="W")
    true_gg = GammaGammaModel.from_params(**SPEND, **{"spend:channel[referral]": 0.4}, freq="W")
    coverage = []
    for seed in range(6):
        summary, customers = _simulated(1500, 100 + seed, spend_effect=0.4)
        design = customers.assign(
            **{"channel[referral]": (customers["channel"] == "referral").astype(float)}
        )
        truth = customer_lifetime_value(true_bg, true_gg, summary, customers=design)
        bg = BetaGeoModel().fit(
            summary,
            customers=design,
            purchase_covariates=["x_num", "channel[referral]"],
            dropout_covariates=["channel[referral]"],
        )
        gg = GammaGammaModel().fit(
            summary, customers=design, spend_covariates=["channel[referral]"]
        )
        band = clv_interval(
            bg, gg, summary, customers=design, n_draws=100, random_state=seed, progress=False
        )
        covered = (band["clv_lower"] <= truth) & (truth <= band["clv_upper"])
        coverage.append(float(covered.mean()))
    assert 0.70 <= np.mean(coverage) <= 0.90, coverage


def test_compare_models_takes_covariate_models_and_counts_their_coefficients(simulated):
    summary, customers = simulated
    split = summary.assign(frequency_holdout=0.0, duration_holdout=26.0)
    future = BetaGeoModel.from_params(**BASE, freq="W")  # any holdout will do
    split["frequency_holdout"] = np.round(future.expected_purchases(split, 26.0))
    plain = BetaGeoModel().fit(split)
    covariate = BetaGeoModel().fit(
        split, customers=customers, purchase_covariates=["x_num", "channel"]
    )
    table = evaluation.compare_models(
        {"BG/NBD": plain, "BG/NBD + covariates": covariate},
        split,
        metric="aic",
        customers=customers,
    )
    assert table.loc["BG/NBD", "n_params"] == 4
    assert table.loc["BG/NBD + covariates", "n_params"] == 4 + 3  # x_num, 2 channel levels
    for _, row in table.iterrows():
        assert row["aic"] == pytest.approx(2 * row["n_params"] - 2 * row["log_likelihood"])
    assert table.attrs["best_model"] == "BG/NBD + covariates"  # the true model has effects
    with pytest.raises(DataError, match="have no row in customers"):
        evaluation.compare_models({"cov": covariate}, split, customers=customers.iloc[5:])
