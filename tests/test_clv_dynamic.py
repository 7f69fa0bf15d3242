"""Valuing the Pareto/NBD with time-varying covariates (``ParetoNBDDynamicModel.bind``).

Evidence: with covariates constant over time the bound model values customers as the
static-covariate Pareto/NBD, and with all coefficients zero as the plain Pareto/NBD (whose
kernels are closed forms, independent of the per-period quadrature); with time-varying
covariates the discounted CLV equals an adaptive quadrature (scipy) of the discounted purchase
rate built here from the covariate table; the undiscounted limit is expected purchases times
spend; holdout predictions along the covariate path match simulated holdout purchases. New
customers' expectations (the tracking plot): the plain and static-covariate closed forms where
the covariates allow, adaptive quadrature otherwise, and simulated purchases per customer.
Intervals: 80% bands cover the value under the true parameters at about their nominal rate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from _simulate_models import simulate_pareto_dynamic
from custval import (
    DataError,
    GammaGammaModel,
    ParetoNBDDynamicModel,
    ParetoNBDModel,
    clv_interval,
    customer_lifetime_value,
    customer_value_table,
    evaluation,
)

BASE = {"r": 0.6, "alpha": 8.0, "s": 0.7, "beta": 10.0}
TRUE = {"purchase:season": 0.4, "purchase:mail": 0.5, "dropout:mail": 1.0}
ORIGIN = pd.Timestamp("2024-01-01")


def _with_amounts(transactions: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Gamma-Gamma spend: per customer ``nu ~ Gamma(4, 15)``, per purchase ``Gamma(6, nu)``."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(4.0, 1 / 15.0, transactions["customer_id"].max() + 1)
    return transactions.assign(amount=rng.gamma(6.0, 1.0 / nu[transactions["customer_id"]]))


def _extended(covariates: pd.DataFrame, weeks: int) -> pd.DataFrame:
    """The last week's covariates repeated ``weeks`` more weeks (constant paths continue)."""
    last = covariates[covariates["period"] == covariates["period"].max()]
    extra = [last.assign(period=last["period"] + pd.Timedelta(days=7 * k)) for k in range(1, weeks)]
    return pd.concat([covariates, *extra], ignore_index=True)


@pytest.fixture(scope="module")
def constant():
    transactions, covariates, end = simulate_pareto_dynamic(
        **BASE, purchase={"mail": 0.5}, dropout={"mail": -0.6}, n=400, constant=True,
        random_state=1,
    )  # fmt: skip
    return _with_amounts(transactions, 1), _extended(covariates, 60), end


@pytest.fixture(scope="module")
def varying():
    transactions, covariates, end = simulate_pareto_dynamic(
        **BASE, purchase={"mail": 0.5, "season": 0.4}, dropout={"mail": 1.0}, n=300,
        horizon=110, random_state=2,
    )  # fmt: skip
    return _with_amounts(transactions, 2), covariates, end


@pytest.mark.parametrize(
    ("horizon", "rate", "step"),
    [("26W", 0.10, None), ("12M", 0.25, None), ("52W", 0.0, None), ("26W", 0.10, "1W")],
)
def test_constant_covariates_value_as_the_static_covariate_model(constant, horizon, rate, step):
    transactions, covariates, end = constant
    coef = {"purchase:mail": 0.5, "dropout:mail": -0.6}
    dynamic = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **coef)
    static = ParetoNBDModel.from_params(**BASE, freq="W", **coef)
    bound = dynamic.bind(transactions, covariates, observation_end=end)
    summary = bound.summary_
    customers = covariates.groupby("customer_id")[["mail"]].first().loc[summary.index]
    terms = {"horizon": horizon, "annual_discount_rate": rate, "step": step}
    got = customer_lifetime_value(bound, 30.0, summary, **terms)
    want = customer_lifetime_value(static, 30.0, summary, customers=customers, **terms)
    np.testing.assert_allclose(got, want, rtol=1e-8)
    np.testing.assert_allclose(
        bound.expected_purchases(summary, 20.5),
        static.expected_purchases(summary, 20.5, customers=customers),
        rtol=1e-8,
    )
    assert got.attrs["transaction_model"] == "Pareto/NBD with time-varying covariates"


def test_zero_coefficients_value_as_the_plain_pareto_nbd(varying):
    transactions, covariates, end = varying
    zero = dict.fromkeys(TRUE, 0.0)
    bound = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **zero).bind(
        transactions, covariates, observation_end=end
    )
    plain = ParetoNBDModel.from_params(**BASE, freq="W")
    summary = bound.summary_
    for horizon, rate in (("52W", 0.10), ("12M", 0.0)):
        np.testing.assert_allclose(
            customer_lifetime_value(
                bound, 30.0, summary, horizon=horizon, annual_discount_rate=rate
            ),
            customer_lifetime_value(
                plain, 30.0, summary, horizon=horizon, annual_discount_rate=rate
            ),
            rtol=1e-8,
        )
    np.testing.assert_allclose(
        bound.probability_alive(summary), plain.probability_alive(summary), rtol=1e-8
    )


def _reference_clv(params, coef, covariates, customer, first_day, end_day, x, horizon, delta):
    """``P(alive) (r+x)/(alpha+A(T)) integral_0^H e^(-delta u) a(u) ((beta+B(T)) /
    (beta+B(T+u)))^s du`` by adaptive quadrature (``scipy.integrate.quad``, breakpoints at the
    weeks), with ``a``, ``b`` and the exposures read from the covariate table here."""
    r, alpha, s, beta = params
    rows = covariates[covariates["customer_id"] == customer].sort_values("period")
    start = ((rows["period"] - ORIGIN).dt.days).to_numpy(dtype=float)
    z_p = coef["purchase:season"] * rows["season"] + coef["purchase:mail"] * rows["mail"]
    a_k = np.exp(z_p.to_numpy())
    b_k = np.exp(coef["dropout:mail"] * rows["mail"].to_numpy())

    def exposure(rate, d0, d1):  # integral of the weekly rate over days [d0, d1], in weeks
        overlap = np.clip(np.minimum(start + 7, d1) - np.maximum(start, d0), 0, None)
        return float(rate @ overlap) / 7.0

    a_t = exposure(a_k, first_day, end_day)
    b_t = exposure(b_k, first_day, end_day)

    def integrand(u):
        day = end_day + 7.0 * u
        k = np.searchsorted(start, day, side="right") - 1
        survival = ((beta + b_t) / (beta + b_t + exposure(b_k, end_day, day))) ** s
        return a_k[k] * survival * math.exp(-delta * u)

    weeks = (start[(start > end_day) & (start < end_day + 7 * horizon)] - end_day) / 7.0
    value, _ = integrate.quad(
        integrand, 0.0, horizon, points=weeks, limit=500, epsabs=0.0, epsrel=1e-12
    )
    return (r + x) / (alpha + a_t) * value


@pytest.mark.parametrize(
    ("params", "horizon", "rate"),
    [
        ((0.6, 8.0, 0.7, 10.0), "26W", 0.10),
        ((1.5, 3.0, 2.5, 4.0), "104W", 0.40),  # s > 1, a long horizon at a high rate
    ],
)
def test_discounted_value_matches_adaptive_quadrature(varying, params, horizon, rate):
    transactions, covariates, end = varying
    names = ("r", "alpha", "s", "beta")
    model = ParetoNBDDynamicModel.from_params(
        **dict(zip(names, params, strict=True)), freq="W", **TRUE
    )
    bound = model.bind(transactions, covariates, observation_end=end)
    summary = bound.summary_
    clv = customer_lifetime_value(bound, 1.0, summary, horizon=horizon, annual_discount_rate=rate)
    alive = bound.probability_alive(summary)
    delta = clv.attrs["continuous_discount_rate"]
    periods = clv.attrs["horizon_periods"]
    days = transactions.assign(day=(transactions["timestamp"] - ORIGIN).dt.days)
    end_day = float((pd.Timestamp(end) - ORIGIN).days)
    picks = [summary.index[0], *summary.index[summary["frequency"] >= 3][:3]]
    for customer in picks:
        first = float(days.loc[days["customer_id"] == customer, "day"].min())
        x = summary.loc[customer, "frequency"]
        reference = alive[customer] * _reference_clv(
            params, TRUE, covariates, customer, first, end_day, x, periods, delta
        )
        assert clv[customer] == pytest.approx(reference, rel=1e-7)


def test_undiscounted_limit_is_expected_purchases_times_spend(varying):
    transactions, covariates, end = varying
    bound = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE).bind(
        transactions, covariates, observation_end=end
    )
    summary = bound.summary_
    purchases = bound.expected_purchases(summary, 39)
    # a vanishing rate takes the quadrature path; its result tends to the closed form
    tiny = customer_lifetime_value(bound, 25.0, summary, horizon="39W", annual_discount_rate=1e-9)
    np.testing.assert_allclose(tiny, 25.0 * purchases, rtol=1e-9)
    zero = customer_lifetime_value(bound, 25.0, summary, horizon="39W", annual_discount_rate=0.0)
    np.testing.assert_allclose(zero, 25.0 * purchases, rtol=1e-12)
    discounted = customer_lifetime_value(bound, 25.0, summary, horizon="39W")
    assert np.all(discounted < zero) and np.all(discounted > 0.95 * zero)


def test_value_table_and_intervals_follow_each_customers_path(varying):
    transactions, covariates, end = varying
    model = ParetoNBDDynamicModel().fit(
        transactions,
        covariates,
        purchase_covariates=["season", "mail"],
        dropout_covariates=["mail"],
        observation_end=end,
    )
    bound = model.bind(transactions, covariates)
    summary = bound.summary_
    spend = GammaGammaModel().fit(summary[summary["frequency"] > 0])
    table = customer_value_table(bound, spend, summary, horizon="26W", n_draws=60, progress=False)
    np.testing.assert_allclose(table["p_alive"], bound.probability_alive(summary), rtol=1e-12)
    np.testing.assert_allclose(
        table["expected_purchases"], bound.expected_purchases(summary, "26W"), rtol=1e-12
    )
    np.testing.assert_allclose(
        table["clv"], customer_lifetime_value(bound, spend, summary, horizon="26W"), rtol=1e-12
    )
    assert (table["clv_lower"] < table["clv_median"]).all()
    assert (table["clv_median"] < table["clv_upper"]).all()
    # an 80% band of the parameter uncertainty holds the point value for nearly everyone
    inside = (table["clv_lower"] <= table["clv"]) & (table["clv"] <= table["clv_upper"])
    assert inside.mean() > 0.9
    # customers with the same (frequency, recency, T) but different mail weeks differ
    zeros = summary[summary["frequency"] == 0]
    pair = zeros[zeros["T"].duplicated(keep=False)].sort_values("T").index[:2]
    assert summary.loc[pair[0], "T"] == summary.loc[pair[1], "T"]
    assert table.loc[pair[0], "clv"] != pytest.approx(table.loc[pair[1], "clv"], rel=1e-6)
    assert table.loc[pair[0], "clv_median"] != pytest.approx(
        table.loc[pair[1], "clv_median"], rel=1e-6
    )
    # the bands are reproducible and a subset is valued as in the whole
    bands = clv_interval(bound, spend, summary.iloc[::3], horizon="26W", n_draws=60, progress=False)
    np.testing.assert_allclose(bands, table.iloc[::3][list(bands.columns)], rtol=1e-6)


def test_holdout_predictions_follow_the_covariate_path():
    """``compare_models`` on the bound model's holdout split: the mean prediction along the
    covariate path equals the mean simulated holdout purchases (law of total expectation)."""
    transactions, covariates, end = simulate_pareto_dynamic(
        **BASE, purchase={"mail": 0.5, "season": 0.4}, dropout={"mail": 1.0}, n=2500,
        weeks=39, horizon=13, random_state=7,
    )  # fmt: skip
    model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE)
    holdout_end = pd.Timestamp(end) + pd.Timedelta(days=7 * 13 - 1)
    bound = model.bind(transactions, covariates, observation_end=end, holdout_end=holdout_end)
    split = bound.summary_
    assert split["duration_holdout"].iloc[0] == pytest.approx(13 - 1 / 7)
    plain = ParetoNBDModel().fit(split)
    table = evaluation.compare_models({"dynamic": bound, "plain": plain}, split, metric="bias")
    assert table.loc["dynamic", "n_params"] == 7
    predicted = bound.expected_purchases(split, split["duration_holdout"].to_numpy())
    actual = split["frequency_holdout"]
    se = float((actual - predicted).std() / np.sqrt(len(split)))
    bias = table.loc["dynamic", "bias"]
    assert bias == pytest.approx(float((predicted - actual).mean()), abs=1e-12)
    assert abs(bias) < 4 * se, (bias, se)


def test_errors_name_the_customer_period_and_fix(varying):
    transactions, covariates, end = varying
    model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE)
    short = covariates[covariates["period"] <= pd.Timestamp(end) + pd.Timedelta(days=7 * 4)]
    bound = model.bind(transactions, short, observation_end=end)
    summary = bound.summary_
    with pytest.raises(DataError, match=r"no row for customer 0 in the period starting 2025-02-03"):
        customer_lifetime_value(bound, 10.0, summary, horizon="26W")
    customer_lifetime_value(bound, 10.0, summary, horizon="4W")  # covered
    with pytest.raises(DataError, match="horizon='inf' needs covariates for every future"):
        customer_lifetime_value(bound, 10.0, summary, horizon="inf")
    moved = summary.assign(frequency=summary["frequency"] + 1)
    with pytest.raises(DataError, match="the summary's frequency of customer 0 is"):
        customer_lifetime_value(bound, 10.0, moved, horizon="4W")
    stranger = summary.rename(index={summary.index[0]: "nobody"})
    with pytest.raises(DataError, match=r"\['nobody'\]\) have no purchase in the bound"):
        bound.probability_alive(stranger)


# --- new customers along their path: the tracking plot ------------------------------------------


def _ages(bound, weeks) -> np.ndarray:
    """Every customer at each of ``weeks`` (rows) and at a fraction of a week (the last row)."""
    n = len(bound.summary_)
    grid = np.repeat(np.asarray(weeks, dtype=float)[:, None], n, axis=1)
    return np.vstack([grid, np.linspace(0.0, 30.3, n)[None, :]])


def test_new_customers_with_zero_or_constant_coefficients_are_the_closed_forms(varying, constant):
    transactions, covariates, end = varying
    zero = dict.fromkeys(TRUE, 0.0)
    bound = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **zero).bind(
        transactions, covariates, observation_end=end
    )
    ages = _ages(bound, [0.5, 13, 52])
    plain = ParetoNBDModel.from_params(**BASE, freq="W")
    want = np.vectorize(plain.expected_purchases_new_customer)(ages)
    np.testing.assert_allclose(bound.expected_purchases_new_customer(ages), want, rtol=1e-10)
    assert bound.expected_purchases_new_customer(0.0).eq(0.0).all()

    transactions, covariates, end = constant
    coef = {"purchase:mail": 0.5, "dropout:mail": -0.6}
    bound = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **coef).bind(
        transactions, covariates, observation_end=end
    )
    summary = bound.summary_
    mail = covariates.groupby("customer_id")["mail"].first().loc[summary.index].to_numpy()
    got = bound.expected_purchases_new_customer("26W")
    # constant covariates scale the gamma rates: alpha exp(-x'gamma_p), beta exp(-x'gamma_d)
    scaled = {
        m: ParetoNBDModel.from_params(
            r=BASE["r"], alpha=BASE["alpha"] * math.exp(-0.5 * m), s=BASE["s"],
            beta=BASE["beta"] * math.exp(0.6 * m), freq="W",
        ).expected_purchases_new_customer(26.0)
        for m in (0.0, 1.0)
    }  # fmt: skip
    np.testing.assert_allclose(got, np.where(mail > 0, scaled[1.0], scaled[0.0]), rtol=1e-10)
    assert got.index.equals(summary.index)


def test_new_customers_along_a_varying_path_match_adaptive_quadrature(varying):
    transactions, covariates, end = varying
    params = (1.5, 3.0, 2.5, 4.0)  # s > 1 as well as the fixture's s < 1 below
    for values in (params, tuple(BASE.values())):
        model = ParetoNBDDynamicModel.from_params(
            **dict(zip(BASE, values, strict=True)), freq="W", **TRUE
        )
        bound = model.bind(transactions, covariates, observation_end=end)
        days = transactions.assign(day=(transactions["timestamp"] - ORIGIN).dt.days)
        for customer, age in zip(bound.summary_.index[:4], (0.3, 7.0, 26.5, 61.9), strict=True):
            first = float(days.loc[days["customer_id"] == customer, "day"].min())
            # a new customer is the history-free case of the conditional reference: x = 0,
            # alive at T = 0 (its first purchase), no discounting
            reference = _reference_clv(
                values, TRUE, covariates, customer, first, first, 0.0, age, 0.0
            )
            got = bound.expected_purchases_new_customer(age)[customer]
            assert got == pytest.approx(reference, rel=1e-9), (customer, age)


def test_new_customer_expectations_match_simulated_purchases():
    """Per customer, the repeat purchases in the first 39 weeks after the first purchase
    (every simulated purchase, same-day ones included) against the expectation along the
    customer's path: the mean difference is within 4 standard errors of zero."""
    transactions, covariates, end = simulate_pareto_dynamic(
        **BASE, purchase={"mail": 0.5, "season": 0.4}, dropout={"mail": 1.0}, n=6000,
        weeks=39, horizon=8, random_state=11,
    )  # fmt: skip
    bound = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE).bind(
        transactions, covariates, observation_end=end
    )
    days = (transactions["timestamp"] - ORIGIN).dt.days
    first = days.groupby(transactions["customer_id"]).transform("min")
    within = (days - first < 7 * 39).groupby(transactions["customer_id"]).sum() - 1
    actual = within.loc[bound.summary_.index]
    predicted = bound.expected_purchases_new_customer(39)
    gap = predicted - actual
    se = float(gap.std() / np.sqrt(len(gap)))
    assert abs(float(gap.mean())) < 4 * se, (float(gap.mean()), se)
    # ignoring the covariates misses the extra purchases of the mail weeks
    zero = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **dict.fromkeys(TRUE, 0.0))
    plain = zero.bind(transactions, covariates, observation_end=end)
    assert float((plain.expected_purchases_new_customer(39) - actual).mean()) < -4 * se


def test_tracking_follows_the_seasons_of_the_covariate_path():
    transactions, covariates, end = simulate_pareto_dynamic(
        **BASE, purchase={"mail": 0.5, "season": 0.4}, dropout={"mail": 1.0}, n=4000,
        horizon=26, random_state=3,
    )  # fmt: skip
    holdout_end = pd.Timestamp(end) + pd.Timedelta(days=7 * 26 - 1)
    bounds, tables = {}, {}
    for name, coef in (("dynamic", TRUE), ("zero", dict.fromkeys(TRUE, 0.0))):
        model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **coef)
        bounds[name] = model.bind(
            transactions, covariates, observation_end=end, holdout_end=holdout_end
        )
        split = bounds[name].summary_
        tables[name] = evaluation.tracking(bounds[name], transactions, split, purchase_unit="D")
    table = tables["dynamic"]
    assert table.attrs["calibration_periods"] == 53
    assert table["holdout"].sum() == len(table) - 53
    assert table["period_end"].iloc[-1] == holdout_end
    assert table.attrs["model"] == "Pareto/NBD with time-varying covariates"
    # the cumulative prediction is the cohort's sum of new-customer expectations, each at its
    # age at the end of the holdout
    ages = (split["T"] + split["duration_holdout"]).to_numpy()
    total = bounds["dynamic"].expected_purchases_new_customer(ages).sum()
    assert table["predicted_cumulative"].iloc[-1] == pytest.approx(total, rel=1e-12)
    # the weekly counts rise and fall with the season and the mail weeks: the prediction along
    # the path follows them, the one without covariates does not
    follows = {k: np.corrcoef(t["actual"], t["predicted"])[0, 1] for k, t in tables.items()}
    assert follows["dynamic"] > 0.99 > 0.97 > follows["zero"], follows


def test_new_customer_refusals_name_the_shape_age_or_period(varying):
    transactions, covariates, _end = varying
    model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE)
    short = covariates[covariates["period"] <= pd.Timestamp("2024-06-30")]
    bound = model.bind(transactions, short, observation_end="2024-06-30")
    n = len(bound.summary_)
    with pytest.raises(DataError, match=rf"t has shape \(3,\) for a summary of {n} customers"):
        bound.expected_purchases_new_customer(np.ones(3))
    with pytest.raises(DataError, match="t must be finite and >= 0"):
        bound.expected_purchases_new_customer(np.array([[1.0], [-1.0]]) + np.zeros(n))
    with pytest.raises(DataError, match="in the period starting 2024-07-01, which the tracking"):
        bound.expected_purchases_new_customer(40.0)
    assert bound.expected_purchases_new_customer(np.full(n, 2.0)).gt(0).all()


@pytest.mark.slow
def test_intervals_cover_the_true_value_at_their_nominal_rate():
    """The 80% band of each customer's 26-week value against the value under the true
    parameters given the same history, over 24 simulated data sets of 400 customers (the
    customers of one data set share one estimate, so the data sets are the replicates: their
    coverages spread with a standard deviation of about 0.3, hence a band of about 2.5
    standard errors around 0.8)."""
    true_model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE)
    coverage = []
    for seed in range(24):
        transactions, covariates, end = simulate_pareto_dynamic(
            **BASE, purchase={"mail": 0.5, "season": 0.4}, dropout={"mail": 1.0}, n=400,
            horizon=30, random_state=10 + seed,
        )  # fmt: skip
        truth_bound = true_model.bind(transactions, covariates, observation_end=end)
        summary = truth_bound.summary_
        truth = customer_lifetime_value(truth_bound, 30.0, summary, horizon="26W")
        fitted = ParetoNBDDynamicModel().fit(
            transactions,
            covariates,
            purchase_covariates=["season", "mail"],
            dropout_covariates=["mail"],
            observation_end=end,
        )
        band = clv_interval(
            fitted.bind(transactions, covariates), 30.0, summary, horizon="26W", n_draws=60,
            random_state=seed, progress=False,
        )  # fmt: skip
        covered = (band["clv_lower"] <= truth) & (truth <= band["clv_upper"])
        coverage.append(float(covered.mean()))
    assert 0.65 <= np.mean(coverage) <= 0.93, coverage
