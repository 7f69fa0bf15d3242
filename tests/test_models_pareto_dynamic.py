"""Pareto/NBD with time-varying covariates (Bachmann, Meierer & Näf 2021; CLVTools' dyncov)."""

from __future__ import annotations

import itertools
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import gammaln

from _simulate_models import simulate_pareto_dynamic
from custval import (
    CustvalWarning,
    DataError,
    ParetoNBDDynamicModel,
    ParetoNBDModel,
    load_model,
    rfm_summary,
)
from custval.models.pareto_nbd_dynamic import _loglik_parts

README = Path(__file__).resolve().parents[1] / "README.md"
BASE = {"r": 0.6, "alpha": 8.0, "s": 0.7, "beta": 10.0}
TRUE = {"purchase:season": 0.4, "purchase:mail": 0.5, "dropout:mail": 1.0}


def _weekly_summary(transactions: pd.DataFrame, end: str) -> pd.DataFrame:
    """The daily summary in weeks: the time scale of the dynamic model with freq="W"."""
    summary = rfm_summary(transactions, amount=None, freq="D", observation_end=end)
    summary[["recency", "T"]] = summary[["recency", "T"]] / 7.0
    return summary


@pytest.fixture(scope="module")
def constant():
    """Customers whose ``mail`` covariate is the same in every week (``season`` is 0)."""
    return simulate_pareto_dynamic(
        **BASE,
        purchase={"mail": 0.5},
        dropout={"mail": -0.6},
        n=600,
        constant=True,
        random_state=1,
    )


@pytest.fixture(scope="module")
def varying():
    return simulate_pareto_dynamic(
        **BASE,
        purchase={"mail": 0.5, "season": 0.4},
        dropout={"mail": 1.0},
        n=400,
        horizon=13,
        random_state=2,
    )


def _static_loglik(model: ParetoNBDModel, summary: pd.DataFrame, customers: pd.DataFrame):
    data = {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    data.update(model.covariates_.design(customers.loc[summary.index]))
    return model._loglik(model.params_.to_numpy(), model._prepare_patterns(data))


def _assert_equals_static(params, coef, transactions, covariates, end, customers, rtol):
    """Per-customer likelihood and P(alive) of the dynamic model equal the static model's."""
    summary = _weekly_summary(transactions, end)
    dynamic = ParetoNBDDynamicModel.from_params(**params, freq="W", **coef)
    static = ParetoNBDModel.from_params(**params, **coef)
    ll = dynamic.log_likelihood(transactions, covariates, end).loc[summary.index]
    np.testing.assert_allclose(ll, _static_loglik(static, summary, customers), rtol=rtol)
    np.testing.assert_allclose(
        dynamic.probability_alive(transactions, covariates, end).loc[summary.index],
        static.probability_alive(summary, customers=customers),
        rtol=rtol,
        atol=1e-13,
    )
    return summary, dynamic, static


def test_constant_covariates_equal_the_static_covariate_model(constant):
    transactions, covariates, end = constant
    customers = covariates.groupby("customer_id")[["mail"]].first()
    coef = {"purchase:mail": 0.5, "dropout:mail": -0.6}
    summary, dynamic, static = _assert_equals_static(
        BASE, coef, transactions, covariates, end, customers, rtol=1e-8
    )
    # 12.5 weeks ahead: the constant covariates continue over the horizon
    last = covariates[covariates["period"] == covariates["period"].max()]
    extra = [last.assign(period=last["period"] + pd.Timedelta(days=7 * k)) for k in range(1, 13)]
    future = pd.concat([covariates, *extra])
    np.testing.assert_allclose(
        dynamic.expected_purchases(transactions, future, "87.5D", end).loc[summary.index],
        static.expected_purchases(summary, 12.5, customers=customers),
        rtol=1e-8,
    )
    # and the fits: the same maximum
    fit_dynamic = ParetoNBDDynamicModel().fit(
        transactions,
        covariates,
        purchase_covariates=["mail"],
        dropout_covariates=["mail"],
        observation_end=end,
    )
    fit_static = ParetoNBDModel().fit(
        summary, customers=customers, purchase_covariates=["mail"], dropout_covariates=["mail"]
    )
    assert fit_dynamic.log_likelihood_ == pytest.approx(fit_static.log_likelihood_, rel=1e-8)
    np.testing.assert_allclose(fit_dynamic.params_, fit_static.params_, rtol=2e-4)
    np.testing.assert_allclose(
        fit_dynamic.summary["std_error"], fit_static.summary["std_error"], rtol=2e-3
    )


def test_zero_coefficients_equal_the_plain_pareto_nbd(varying):
    transactions, covariates, end = varying
    summary = _weekly_summary(transactions, end)
    zero = {"purchase:season": 0.0, "purchase:mail": 0.0, "dropout:mail": 0.0}
    dynamic = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **zero)
    plain = ParetoNBDModel.from_params(**BASE)
    hist = dynamic._history(transactions, covariates, end)
    parts = _loglik_parts(dynamic._params(), hist, gradient=True)
    order = pd.Index(hist["ids"]).get_indexer(summary.index)
    data = plain._prepare_patterns(
        {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    )
    ll0, grad0 = plain._loglik_grad(plain.params_.to_numpy(), data)
    np.testing.assert_allclose(parts["ll"][order], ll0, rtol=1e-8)
    np.testing.assert_allclose(parts["grad"][order, :4], grad0, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(
        dynamic.expected_purchases(transactions, covariates, 10, end).loc[summary.index],
        plain.expected_purchases(summary, 10),
        rtol=1e-8,
    )


def test_gradient_matches_central_differences(varying):
    transactions, covariates, end = varying
    model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE)
    hist = model._history(transactions, covariates, end)
    params = model._params()
    grad = _loglik_parts(params, hist, gradient=True)["grad"].sum(axis=0)
    for j in range(params.size):
        step = 1e-5 * max(abs(params[j]), 1.0)
        up, down = params.copy(), params.copy()
        up[j] += step
        down[j] -= step
        numeric = (
            _loglik_parts(up, hist, gradient=False)["ll"].sum()
            - _loglik_parts(down, hist, gradient=False)["ll"].sum()
        ) / (2 * step)
        assert grad[j] == pytest.approx(numeric, rel=1e-6, abs=1e-6), model._param_names[j]


def _reference_likelihood(params, coef, days, weeks, origin, end_day):
    """One customer's likelihood by adaptive quadrature over the dropout time, with the
    exposures summed week by week in plain Python (no code shared with the model)."""
    r, alpha, s, beta = params
    first, repeats = days[0], days[1:]

    def rates(tau):  # a(tau), b(tau) in customer weeks
        week = int(np.floor((first + 7.0 * tau - origin) / 7.0))
        season, mail = weeks[week]
        a = np.exp(coef["purchase:season"] * season + coef["purchase:mail"] * mail)
        return a, np.exp(coef["dropout:mail"] * mail)

    edges = [0.0]
    boundary = origin + 7 * (np.floor((first - origin) / 7.0) + 1)
    while boundary < end_day:
        edges.append((boundary - first) / 7.0)
        boundary += 7
    big_t = (end_day - first) / 7.0
    edges.append(big_t)

    def exposure(tau):
        big_a = big_b = 0.0
        for lo, hi in itertools.pairwise(edges):
            if lo >= tau:
                break
            a, b = rates(lo)
            big_a += a * (min(hi, tau) - lo)
            big_b += b * (min(hi, tau) - lo)
        return big_a, big_b

    x = len(repeats)
    t_x = (repeats[-1] - first) / 7.0 if x else 0.0
    log_prod = sum(np.log(rates((d - first) / 7.0)[0]) for d in repeats)
    a_t, b_t = exposure(big_t)
    alive = (alpha / (alpha + a_t)) ** r * (alpha + a_t) ** -x * (beta / (beta + b_t)) ** s

    def density(tau):
        a_tau, b_tau = exposure(tau)
        return (
            rates(tau)[1]
            * (alpha / (alpha + a_tau)) ** r
            * (alpha + a_tau) ** -x
            * (beta / (beta + b_tau)) ** s
            / (beta + b_tau)
        )

    inner = [e for e in edges if t_x < e < big_t]
    pieces = zip([t_x, *inner], [*inner, big_t], strict=True)
    died = sum(
        integrate.quad(density, lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]
        for lo, hi in pieces
        if hi > lo
    )
    return gammaln(r + x) - gammaln(r) + log_prod + np.log(alive + s * died), alive / (
        alive + s * died
    )


def test_likelihood_and_p_alive_against_adaptive_quadrature(varying):
    transactions, covariates, end = varying
    model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE)
    ll = model.log_likelihood(transactions, covariates, end)
    alive = model.probability_alive(transactions, covariates, end)
    origin = covariates["period"].min()
    end_day = (pd.Timestamp(end) - origin).days
    per_customer = transactions.assign(day=(transactions["timestamp"] - origin).dt.days)
    per_customer = per_customer[per_customer["day"] <= end_day]  # the fixture runs on
    counts = per_customer.groupby("customer_id")["day"].nunique()
    # customers with 0, 1, a few and many repeat purchases
    chosen = [counts.index[counts == c][0] for c in sorted(set(counts))[:4]]
    chosen.append(counts.idxmax())
    for customer in chosen:
        days = np.unique(per_customer.loc[per_customer["customer_id"] == customer, "day"])
        rows = covariates[covariates["customer_id"] == customer]
        weeks = {
            int((p - origin).days // 7): (se, m)
            for p, se, m in zip(rows["period"], rows["season"], rows["mail"], strict=True)
        }
        ref_ll, ref_alive = _reference_likelihood(
            list(BASE.values()), TRUE, days.astype(float), weeks, 0.0, float(end_day)
        )
        assert ll[customer] == pytest.approx(ref_ll, rel=1e-10, abs=1e-10)
        assert alive[customer] == pytest.approx(ref_alive, rel=1e-9, abs=1e-12)


def test_expected_purchases_match_the_simulated_holdout():
    """The law of total expectation: over simulated customers, the mean of E[X(T, T+t) |
    history] equals the mean number of purchases they actually make in (T, T+t]."""
    horizon = 13  # weeks 39-52: the low season
    transactions, covariates, end = simulate_pareto_dynamic(
        **BASE,
        **{"purchase": {"mail": 0.5, "season": 0.4}, "dropout": {"mail": 1.0}},
        n=3000,
        weeks=39,
        horizon=horizon,
        random_state=7,
    )
    model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE)
    expected = model.expected_purchases(transactions, covariates, horizon, end)
    stop = pd.Timestamp(end) + pd.Timedelta(days=7 * horizon)
    later = transactions[(transactions["timestamp"] > end) & (transactions["timestamp"] < stop)]
    actual = (
        later.drop_duplicates().groupby("customer_id").size().reindex(expected.index, fill_value=0)
    )
    gap = float(actual.mean() - expected.mean())
    se = float((actual - expected).std() / np.sqrt(len(actual)))
    assert abs(gap) < 4 * se, (actual.mean(), expected.mean(), se)
    # the covariate path matters: without the season the prediction is clearly different
    flat = covariates.assign(season=0.0)
    assert abs(
        model.expected_purchases(transactions, flat, horizon, end).mean() - actual.mean()
    ) > (6 * se)


def _fit_simulated(n: int, seed: int):
    transactions, covariates, end = simulate_pareto_dynamic(
        **BASE,
        purchase={"mail": 0.5, "season": 0.4},
        dropout={"mail": 1.0},
        n=n,
        random_state=seed,
    )
    model = ParetoNBDDynamicModel().fit(
        transactions,
        covariates,
        purchase_covariates=["season", "mail"],
        dropout_covariates=["mail"],
        observation_end=end,
    )
    return model, transactions, covariates, end


@pytest.mark.slow
def test_fit_recovers_time_varying_effects(tmp_path):
    model, transactions, covariates, end = _fit_simulated(2000, seed=5)
    summary = model.summary
    truth = pd.Series({**BASE, **TRUE})
    # every 95% interval covers the truth on this seed; estimates within 3 standard errors
    assert ((summary["lower_95"] <= truth) & (truth <= summary["upper_95"])).all(), summary
    assert (np.abs(summary["estimate"] - truth) < 3 * summary["std_error"]).all()
    assert summary.loc["purchase:season", "p_value"] < 1e-6
    assert model.aic == pytest.approx(2 * 7 - 2 * model.log_likelihood_)
    assert model.bic == pytest.approx(7 * np.log(model.n_customers_) - 2 * model.log_likelihood_)
    assert model.log_likelihood(transactions, covariates).sum() == pytest.approx(
        model.log_likelihood_, rel=1e-10
    )
    loaded = load_model(model.save(tmp_path / "dyncov.json"))
    assert isinstance(loaded, ParetoNBDDynamicModel)
    assert loaded.observation_end_ == end
    pd.testing.assert_series_equal(
        loaded.probability_alive(transactions, covariates),
        model.probability_alive(transactions, covariates),
    )


@pytest.mark.slow
def test_intervals_cover_the_truth_at_about_their_nominal_rate():
    """42 intervals (7 parameters, 6 seeds of 1,500 customers): at 95% nominal, fewer than
    80% covering has probability below 0.1% for a correct model and standard errors."""
    truth = pd.Series({**BASE, **TRUE})
    covered = []
    for seed in range(10, 16):
        summary = _fit_simulated(1500, seed)[0].summary
        covered.append((summary["lower_95"] <= truth) & (truth <= summary["upper_95"]))
    rate = float(pd.concat(covered).mean())
    assert rate >= 0.8, rate


def test_save_load_keeps_the_predictions(varying, tmp_path):
    transactions, covariates, end = varying
    model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE)
    loaded = load_model(model.save(tmp_path / "m.json"))
    assert loaded.params_.equals(model.params_)
    pd.testing.assert_series_equal(
        loaded.expected_purchases(transactions, covariates, 5, end),
        model.expected_purchases(transactions, covariates, 5, end),
    )


def test_missing_periods_are_named(varying):
    transactions, covariates, end = varying
    model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE)
    first = transactions.groupby("customer_id")["timestamp"].min()
    customer = int(first.idxmin())
    week = pd.Timestamp("2024-03-04")
    holes = covariates[~((covariates["customer_id"] == customer) & (covariates["period"] == week))]
    with pytest.raises(
        DataError,
        match=rf"no row for customer {customer} in the period starting "
        r"2024-03-04, which the history needs",
    ):
        model.log_likelihood(transactions, holes, end)
    with pytest.raises(DataError, match="which the prediction horizon needs"):
        model.expected_purchases(transactions, covariates, 30, end)
    shifted = covariates.assign(
        period=covariates["period"].where(covariates["period"] != week, week + pd.Timedelta(days=2))
    )
    with pytest.raises(DataError, match="the period starting 2024-03-06 is not on the grid"):
        model.log_likelihood(transactions, shifted, end)
    with pytest.raises(DataError, match="more than one row for customer 0, period 2024-01-01"):
        model.log_likelihood(transactions, pd.concat([covariates, covariates.iloc[:1]]), end)
    with pytest.raises(DataError, match="none of the customers of the transactions is in"):
        model.log_likelihood(
            transactions,
            covariates.assign(customer_id=lambda f: "c" + f["customer_id"].astype(str)),
            end,
        )
    with pytest.raises(DataError, match="name the time-varying covariates"):
        ParetoNBDDynamicModel().fit(transactions, covariates)
    with pytest.raises(DataError, match=r"freq must be one of \['D', 'W'\]"):
        ParetoNBDDynamicModel().fit(
            transactions, covariates, purchase_covariates=["mail"], freq="M"
        )
    with pytest.raises(DataError, match=r"covariate column\(s\) \['promo'\] are not in"):
        ParetoNBDDynamicModel().fit(transactions, covariates, purchase_covariates=["promo"])


def test_common_path_without_customer_id(varying):
    """A table without customer_id is the same path for everyone (e.g. seasonality)."""
    transactions, covariates, end = varying
    calendar = covariates[covariates["customer_id"] == 0][["period", "season"]]
    per_customer = covariates.assign(mail=0.0)
    model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **{"purchase:season": 0.4})
    pd.testing.assert_series_equal(
        model.log_likelihood(transactions, calendar, end),
        model.log_likelihood(transactions, per_customer, end),
        rtol=1e-12,
    )


def test_readme_example_runs(varying):
    """The README's time-varying example, on simulated data with its column names."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    block = next(b for b in blocks if "ParetoNBDDynamicModel" in b)
    transactions, covariates, end = varying
    rng = np.random.default_rng(0)  # Gamma-Gamma spend: nu ~ Gamma(4, 15), z ~ Gamma(6, nu)
    nu = rng.gamma(4.0, 1 / 15.0, transactions["customer_id"].max() + 1)
    amounts = rng.gamma(6.0, 1.0 / nu[transactions["customer_id"].to_numpy()])
    namespace = {
        "transactions": transactions.assign(amount=amounts),
        "covariates": covariates,
        "end": end,
        "holdout_end": pd.Timestamp(end) + pd.Timedelta(days=7 * 13 - 1),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustvalWarning)  # 400 customers: a ridge may warn
        exec(compile(block, str(README), "exec"), namespace)
    dynamic = namespace["dynamic"]
    assert list(dynamic.params_.index[4:]) == ["purchase:season", "purchase:mail", "dropout:mail"]
    effects = namespace["custval"].covariate_effects(dynamic)
    assert effects.loc["purchase:season", "multiplier"] > 1.2  # the truth is exp(0.4) = 1.49
    predicted = dynamic.expected_purchases(transactions, covariates, 13)
    assert predicted.index.equals(dynamic.probability_alive(transactions, covariates).index)
    table = namespace["table"]
    np.testing.assert_allclose(table["expected_purchases"], predicted.loc[table.index])
    assert (table["clv"] > 0).all() and table["value_rank"].min() == 1
    assert set(namespace["comparison"].index) == {"dynamic", "Pareto/NBD"}


@pytest.mark.parametrize(
    "base",
    [
        {"r": 2.0, "alpha": 0.5, "s": 0.3, "beta": 50.0},
        {"r": 0.3, "alpha": 50.0, "s": 3.0, "beta": 0.5},
        {"r": 20.0, "alpha": 3.0, "s": 0.05, "beta": 0.01},
        {"r": 0.05, "alpha": 0.01, "s": 20.0, "beta": 200.0},
    ],
)
def test_heavy_buyers_and_extreme_parameters_stay_exact(base):
    """Up to 300 repeat purchases a year and parameters far from the data: still the
    static-covariate Pareto/NBD (its series and quadrature) where the covariates are constant."""
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2024-01-01")
    rows = []
    for i in range(42):
        first = int(rng.integers(0, 20))
        x = [0, 1, 2, 5, 20, 100, 300][i % 7]
        days = np.sort(rng.choice(np.arange(first + 1, 364), size=x, replace=False))
        rows += [(i, start + pd.Timedelta(days=int(d))) for d in [first, *days]]
    transactions = pd.DataFrame(rows, columns=["customer_id", "timestamp"])
    group = (np.arange(42) % 3 == 0).astype(float)
    covariates = pd.DataFrame(
        {
            "customer_id": np.repeat(np.arange(42), 53),
            "period": np.tile(pd.date_range(start, periods=53, freq="7D"), 42),
            "g": np.repeat(group, 53),
        }
    )
    customers = pd.DataFrame({"g": group}, index=pd.RangeIndex(42, name="customer_id"))
    coef = {"purchase:g": 1.5, "dropout:g": -2.0}
    _assert_equals_static(base, coef, transactions, covariates, "2024-12-30", customers, 1e-9)


def test_equal_effects_and_categorical_covariates(varying):
    transactions, covariates, end = varying
    one = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **{"both:mail": 0.7})
    two = ParetoNBDDynamicModel.from_params(
        **BASE, freq="W", **{"purchase:mail": 0.7, "dropout:mail": 0.7}
    )
    pd.testing.assert_series_equal(
        one.log_likelihood(transactions, covariates, end),
        two.log_likelihood(transactions, covariates, end),
    )
    # a text column is one-hot encoded with its first level as the baseline
    few = transactions[transactions["customer_id"] < 150]
    labelled = covariates.assign(contact=np.where(covariates["mail"] > 0, "mailed", "none"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustvalWarning)
        by_label = ParetoNBDDynamicModel().fit(
            few, labelled, purchase_covariates=["contact"], observation_end=end
        )
        by_number = ParetoNBDDynamicModel().fit(
            few, labelled, purchase_covariates=["mail"], observation_end=end
        )
    assert list(by_label.params_.index) == ["r", "alpha", "s", "beta", "purchase:contact[none]"]
    assert by_label.log_likelihood_ == pytest.approx(by_number.log_likelihood_, rel=1e-8)
    assert by_label.params_["purchase:contact[none]"] == pytest.approx(
        -by_number.params_["purchase:mail"], rel=1e-4
    )
    with pytest.raises(DataError, match="has the level 'phoned'"):
        by_label.log_likelihood(few, labelled.assign(contact="phoned"), end)


def test_invariances_stated_by_clvtools_tests(varying):
    """CLVTools' dyncov correctness tests: the likelihood is the same with covariates beyond
    what is needed and with transactions after the end (a holdout); no purchases at t = 0;
    the covariate table's row and column order do not matter."""
    transactions, covariates, end = varying
    model = ParetoNBDDynamicModel.from_params(**BASE, freq="W", **TRUE)
    full = model.log_likelihood(transactions, covariates, end)
    needed = covariates[covariates["period"] <= pd.Timestamp(end)]
    calibration = transactions[transactions["timestamp"] <= pd.Timestamp(end)]
    pd.testing.assert_series_equal(model.log_likelihood(calibration, needed, end), full)
    shuffled = covariates.sample(frac=1.0, random_state=0)[covariates.columns[::-1]]
    pd.testing.assert_series_equal(model.log_likelihood(transactions, shuffled, end), full)
    assert (model.expected_purchases(transactions, covariates, 0, end) == 0).all()
