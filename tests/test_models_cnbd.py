"""BG/CNBD-k and MBG/CNBD-k: published BTYDplus numbers (grocery, CDNOW), k = 1 equals
BG/NBD and MBG/NBD, gradients, likelihood by numerical integration, simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

from conftest import shared_file
from custval import (
    BetaGeoCNBDModel,
    BetaGeoModel,
    ConvergenceError,
    CustvalWarning,
    DataError,
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
    calibration_holdout_split,
    customer_lifetime_value,
    estimate_regularity,
    evaluation,
    load_cdnow,
    load_model,
    rfm_summary,
)
from custval.datasets import simulate_cnbd
from custval.models import bg_cnbd
from custval.models._base import BaseModel

MODELS = [BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel]
CLASSIC = {BetaGeoCNBDModel: BetaGeoModel, ModifiedBetaGeoCNBDModel: ModifiedBetaGeoModel}
TRUTH = {"r": 0.85, "alpha": 1.45, "a": 0.79, "b": 2.42}  # BTYDplus' tests and demos


def in_weeks(split: pd.DataFrame) -> pd.DataFrame:
    """A daily summary in BTYDplus' ``elog2cbs`` unit: weeks of 7 days, not rounded."""
    return pd.DataFrame(
        {
            "frequency": split["frequency"],
            "recency": split["recency"] / 7.0,
            "T": split["T"] / 7.0,
            "litt": split["litt"] - split["frequency"] * np.log(7.0),
        }
    )


def grocery_split(freq: str) -> pd.DataFrame:
    """BTYDplus' grocery log split after 52 weeks (``elog2cbs(groceryElog, T.cal =
    "2006-12-31")``, as in the BTYDplus vignette and the RPS analysis), with ``litt``."""
    log = pd.read_csv(shared_file("grocery", "groceryElog.csv"), parse_dates=["date"])
    return calibration_holdout_split(
        log,
        calibration_end="2006-12-31",
        customer_id="cust",
        timestamp="date",
        amount=None,
        freq=freq,
        include_litt=True,
    )


@pytest.fixture(scope="module")
def grocery() -> pd.DataFrame:
    return in_weeks(grocery_split("D"))


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    log = load_cdnow(shared_file("cdnow", "CDNOW_sample.txt"), which="sample")
    split = calibration_holdout_split(
        log, calibration_end="1997-09-30", freq="D", include_litt=True
    )
    return in_weeks(split)


# --------------------------------------------------------------------------------- published
# BTYDplus on the grocery data (1,525 customers, 52 weeks): the log-likelihoods of the RPS
# paper's analysis script (mplatzer's paper repository, emp-stats: "grocery-draws.rdata"),
# with k = 2 chosen for both regularity models.
GROCERY_LL = {
    (BetaGeoCNBDModel, 1): -15836.566,
    (BetaGeoCNBDModel, 2): -15054.173,
    (ModifiedBetaGeoCNBDModel, 1): -15781.939,
    (ModifiedBetaGeoCNBDModel, 2): -14978.211,
}
# ... and on CDNOW (2,357 customers, 39 weeks), where k = 1 is chosen
CDNOW_LL = {BetaGeoCNBDModel: -9582.429, ModifiedBetaGeoCNBDModel: -9582.136}


@pytest.mark.parametrize("model_class", MODELS)
def test_grocery_chooses_k2_with_btydplus_likelihood(grocery, model_class):
    model = model_class().fit(grocery)
    assert model.k_ == 2
    assert model.log_likelihood_ == pytest.approx(GROCERY_LL[model_class, 2], abs=2e-3)
    lls = model.k_log_likelihoods_
    assert lls[1] == pytest.approx(GROCERY_LL[model_class, 1], abs=2e-3)
    assert lls.idxmax() == 2 and lls[2] > lls[3] > lls[4]  # searched past the optimum
    assert model.n_customers_ == 1525 and model.converged_
    # the fixed-k fit is the same fit
    fixed = model_class(k=2).fit(grocery)
    np.testing.assert_allclose(fixed.params_, model.params_, rtol=1e-6)
    assert fixed.aic == pytest.approx(model.aic - 2)  # the chosen k counts as a parameter
    se = model.summary["std_error"]
    assert np.all(np.isfinite(se)) and np.all(se > 0)


@pytest.mark.parametrize("model_class", MODELS)
def test_cdnow_chooses_k1_with_btydplus_likelihood(cdnow, model_class):
    model = model_class().fit(cdnow)
    assert model.k_ == 1
    assert model.log_likelihood_ == pytest.approx(CDNOW_LL[model_class], abs=2e-3)
    assert model.k_log_likelihoods_.idxmax() == 1


# holdout errors on grocery over the 52 weeks and 1 day to T.tot = 2007-12-31, from the same
# analysis (bias = sum(predicted - actual) / sum(actual), RMSE per customer). At k = 1 BTYDplus'
# conditional expectations are exact; at k = 2 they are its approximation (module docstring).
GROCERY_HOLDOUT = {
    (BetaGeoCNBDModel, 1): (0.182, 3.153),
    (BetaGeoCNBDModel, 2): (0.133, 3.101),
    (ModifiedBetaGeoCNBDModel, 1): (0.191, 3.212),
    (ModifiedBetaGeoCNBDModel, 2): (0.174, 3.192),
}


@pytest.mark.parametrize("model_class", MODELS)
def test_grocery_holdout_errors_match_btydplus(grocery, model_class):
    actual = grocery_split("D")["frequency_holdout"]
    for k in (1, 2):
        model = model_class(k=k).fit(grocery)
        predicted = model.expected_purchases(grocery, 52.0 + 1.0 / 7.0)
        bias = (predicted.sum() - actual.sum()) / actual.sum()
        rmse = np.sqrt(np.mean((predicted - actual) ** 2))
        published_bias, published_rmse = GROCERY_HOLDOUT[model_class, k]
        if k == 1:  # the same exact expectation: the published numbers to their 3 decimals
            assert (bias, rmse) == pytest.approx((published_bias, published_rmse), abs=6e-4)
        else:  # the exact expectation is at least as close to the holdout as the approximation
            assert bias < published_bias + 1e-3 and rmse < published_rmse + 1e-3
            assert (bias, rmse) == pytest.approx((published_bias, published_rmse), abs=0.05)


# --------------------------------------------------------------------------------- k = 1
@pytest.mark.parametrize("model_class", MODELS)
def test_k1_equals_bgnbd_and_mbgnbd(cdnow, model_class):
    """Two independent computations: the CNBD-k series at k = 1 and the BG/NBD (MBG/NBD)
    closed forms with hypergeometric functions."""
    summary = cdnow[["frequency", "recency", "T"]]
    classic = CLASSIC[model_class]().fit(summary)
    model = model_class(k=1).fit(summary)
    assert model.log_likelihood_ == pytest.approx(classic.log_likelihood_, abs=1e-8)
    np.testing.assert_allclose(model.params_, classic.params_, rtol=1e-8)
    np.testing.assert_allclose(model.variance_matrix_, classic.variance_matrix_, rtol=1e-5)
    # predictions at the same parameters
    same = model_class.from_params(k=1, **classic.params_)
    for t in (0.0, 10.0, 39.0, 200.0):
        np.testing.assert_allclose(
            same.expected_purchases(summary, t),
            classic.expected_purchases(summary, t),
            rtol=1e-9,
            atol=1e-12,
        )
        np.testing.assert_allclose(
            same.probability_alive(summary, t), classic.probability_alive(summary, t), rtol=1e-9
        )
    np.testing.assert_allclose(same.probability_alive(summary), classic.probability_alive(summary))
    ts = [1.0, 39.0, 78.0, 500.0]
    np.testing.assert_allclose(
        same.expected_purchases_new_customer(ts), classic.expected_purchases_new_customer(ts)
    )
    np.testing.assert_allclose(
        same.probability_of_purchases_new_customer(np.arange(15), 39.0),
        classic.probability_of_purchases_new_customer(np.arange(15), 39.0),
        rtol=1e-9,
        atol=1e-14,
    )


# --------------------------------------------------------------------------------- likelihood
def small_data(seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 12, 40).astype(float)
    big_t = rng.uniform(5, 60, 40)
    t_x = np.where(x > 0, big_t * rng.uniform(0.05, 1.0, 40), 0.0)
    t_x[:3] = np.where(x[:3] > 0, big_t[:3], 0.0)  # last purchase at T
    return {"frequency": x, "recency": t_x, "T": big_t}


@pytest.mark.parametrize("modified", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3, 6])
@pytest.mark.parametrize("params", [(0.85, 1.45, 0.79, 2.42), (2.3, 8.0, 1.7, 0.6)])
def test_gradient_matches_finite_differences(modified, k, params):
    data = small_data()

    def total(theta):
        return bg_cnbd._loglik_grad(np.exp(theta), data, k, modified=modified)[0].sum()

    def gradient(theta):
        grad = bg_cnbd._loglik_grad(np.exp(theta), data, k, modified=modified)[1]
        return grad.sum(axis=0) * np.exp(theta)

    theta = np.log(params)
    error = optimize.check_grad(total, gradient, theta, epsilon=1e-7)
    assert error < 2e-6 * max(1.0, np.linalg.norm(gradient(theta)))


def likelihood_by_integration(params, k, itts, big_t, modified):
    """The (M)BG/CNBD-k likelihood of one customer's purchase times by numerical integration
    over lambda and p of the renewal process: Erlang-k densities of the observed
    inter-purchase times times (alive after them and no purchase since) + (dropped out after
    the last); a computation independent of the closed form."""
    r, alpha, a, b = params
    m = 1 if modified else 0
    x = len(itts)
    gap = big_t - np.sum(itts)
    e_alive = integrate.quad(lambda p: (1 - p) ** (x + m) * stats.beta.pdf(p, a, b), 0, 1)[0]
    e_dead = 0.0
    if x > 0 or modified:
        e_dead = integrate.quad(
            lambda p: p * (1 - p) ** (x + m - 1) * stats.beta.pdf(p, a, b), 0, 1
        )[0]

    def given_rate(lam):
        times = np.prod(stats.gamma.pdf(itts, k, scale=1 / lam)) if x else 1.0
        survive = stats.gamma.sf(gap, k, scale=1 / lam)
        return times * (e_alive * survive + e_dead) * stats.gamma.pdf(lam, r, scale=1 / alpha)

    return integrate.quad(given_rate, 0, np.inf, limit=200, epsabs=0, epsrel=1e-11)[0]


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("k", [2, 4])
def test_likelihood_equals_numerical_integration(model_class, k):
    params = (1.3, 2.8, 0.42, 0.79)
    customers = [([], 30.0), ([3.0], 20.0), ([2.5, 4.0, 1.5], 8.5), ([6.0, 5.0], 11.0)]
    for itts, big_t in customers:
        itts = np.array(itts)
        frame = pd.DataFrame(
            {
                "frequency": [float(len(itts))],
                "recency": [float(itts.sum())],
                "T": [big_t],
                "litt": [float(np.log(itts).sum())],
            }
        )
        data = {c: frame[c].to_numpy() for c in ("frequency", "recency", "T")}
        closed = bg_cnbd._loglik_grad(np.array(params), data, k, modified=model_class._modified)
        closed = closed[0] + bg_cnbd._timing_loglik(data["frequency"], frame["litt"].to_numpy(), k)
        numeric = likelihood_by_integration(params, k, itts, big_t, model_class._modified)
        assert closed[0] == pytest.approx(np.log(numeric), abs=1e-8)


# --------------------------------------------------------------------------------- simulation
@pytest.fixture(scope="module")
def simulated():
    """BTYDplus' test design: k = 3, T from 24 to 96 weeks in steps of 12, 32 weeks ahead."""
    rng = np.random.default_rng(1)
    big_t = np.round(rng.uniform(24, 96, 6000) / 12) * 12
    return {
        model_class: simulate_cnbd(
            **TRUTH, k=3, T=big_t, future=32.0, modified=model_class._modified, random_state=7
        )
        for model_class in MODELS
    }


@pytest.mark.parametrize("model_class", MODELS)
def test_recovers_k_and_parameters_from_simulation(simulated, model_class):
    summary, _ = simulated[model_class]
    model = model_class().fit(summary)
    assert model.k_ == 3
    table = model.summary
    # every true parameter inside a 99.9% interval (a 95% one would fail 1 in 5 of such tests)
    z = stats.norm.ppf(0.9995)
    log_se = table["std_error"] / table["estimate"]
    low = table["estimate"] * np.exp(-z * log_se)
    high = table["estimate"] * np.exp(z * log_se)
    truth = pd.Series(TRUTH)
    assert ((low < truth) & (truth < high)).all(), table
    np.testing.assert_allclose(table["estimate"], truth, rtol=0.2)


@pytest.mark.parametrize("model_class", MODELS)
def test_predictions_match_simulation(simulated, model_class):
    """Closed forms at the true parameters against what the simulated customers did: totals
    within 3 standard errors, by frequency within 10% where groups are large."""
    summary, _ = simulated[model_class]
    model = model_class.from_params(k=3, **TRUTH, freq="W")
    expected = model.expected_purchases(summary, 32.0)
    actual = summary["purchases_future"]
    # sd of the total: the posterior spread of purchases is at least Poisson-like
    assert abs(expected.sum() - actual.sum()) < 3.0 * np.sqrt(actual.var() * len(actual))
    groups = pd.DataFrame({"x": summary["frequency"].clip(upper=8), "e": expected, "a": actual})
    by_x = groups.groupby("x").agg(e=("e", "mean"), a=("a", "mean"), n=("a", "size"))
    large = by_x[(by_x["n"] >= 300) & (by_x["a"] > 0.2)]
    np.testing.assert_allclose(large["e"], large["a"], rtol=0.12)
    alive = model.probability_alive(summary)
    se = np.sqrt(np.sum(alive * (1 - alive)))
    assert abs(alive.sum() - summary["alive_T"].sum()) < 3.5 * se
    later = model.probability_alive(summary, 32.0)
    se = np.sqrt(np.sum(later * (1 - later)))
    assert abs(later.sum() - summary["alive_future"].sum()) < 3.5 * se
    assert np.all(later <= alive + 1e-12)


@pytest.mark.parametrize("model_class", MODELS)
def test_new_customer_distribution_matches_simulation(model_class):
    big_t = np.full(20000, 40.0)
    summary, _ = simulate_cnbd(
        **TRUTH, k=4, T=big_t, modified=model_class._modified, random_state=11
    )
    model = model_class.from_params(k=4, **TRUTH)
    pmf = model.probability_of_purchases_new_customer(np.arange(400), 40.0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    # mean of the distribution = the expectation (two computations of the same series)
    assert (pmf.index.to_numpy() * pmf).sum() == pytest.approx(
        model.expected_purchases_new_customer(40.0), rel=1e-8
    )
    observed = summary["frequency"].value_counts(normalize=True).reindex(range(6), fill_value=0)
    se = np.sqrt(pmf.iloc[:6] * (1 - pmf.iloc[:6]) / len(big_t))
    assert np.all(np.abs(observed.to_numpy() - pmf.iloc[:6].to_numpy()) < 4 * se.to_numpy())
    mean = summary["frequency"].mean()
    assert mean == pytest.approx(
        model.expected_purchases_new_customer(40.0), abs=4 * summary["frequency"].sem()
    )


def test_expected_purchases_new_customer_is_the_conditional_one_at_zero():
    """A customer with x = 0 observed for T = 0 is a new customer: the conditional series and
    the new-customer series agree (BG/CNBD-k; for MBG/CNBD-k the first purchase's drop-out
    makes them differ by exactly the factor 1 - E[p])."""
    model = BetaGeoCNBDModel.from_params(k=3, **TRUTH)
    zero = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [0.0]})
    for t in (5.0, 50.0):
        assert model.expected_purchases(zero, t).iloc[0] == pytest.approx(
            model.expected_purchases_new_customer(t), rel=1e-10
        )


# --------------------------------------------------------------------------------- regularity
@pytest.mark.parametrize("k", [1, 2, 4])
def test_regularity_diagnostic_recovers_k(k):
    """Erlang-k inter-purchase times with gamma heterogeneity in the rate (no drop-out)."""
    _, log = simulate_cnbd(1.5, 3.0, 0.2, 30.0, k, np.full(3000, 200.0), random_state=k)
    assert estimate_regularity(log, timestamp="t") == pytest.approx(k, rel=0.12)
    for method in ("mle", "mle-minka", "mle-thom", "cv"):
        # per-customer estimates from about 10 to 60 gaps: biased up by a few percent
        assert estimate_regularity(log, timestamp="t", method=method) == pytest.approx(k, rel=0.15)


def test_regularity_of_grocery_is_about_two():
    """The BTYDplus vignette: on the grocery log the Wheat & Morrison estimator is close to 2
    (Erlang-2 rather than exponential), the per-customer estimates higher (heavy buyers)."""
    log = pd.read_csv(shared_file("grocery", "groceryElog.csv"), parse_dates=["date"])
    k_wheat = estimate_regularity(log, customer_id="cust", timestamp="date")
    assert 1.6 < k_wheat < 2.2
    k_mle = estimate_regularity(log, customer_id="cust", timestamp="date", method="mle")
    assert k_mle > k_wheat


def test_regularity_errors():
    log = pd.DataFrame({"customer_id": [1, 1, 2], "timestamp": [0.0, 1.0, 0.0]})
    with pytest.raises(DataError, match="more than 2 distinct purchase times"):
        estimate_regularity(log)
    with pytest.raises(DataError, match="method must be one of"):
        estimate_regularity(log, method="moments")
    with pytest.raises(DataError, match=r"missing required column.*'when'"):
        estimate_regularity(log, timestamp="when")
    log.loc[1, "timestamp"] = np.nan
    with pytest.raises(DataError, match=r"timestamp.*missing times"):
        estimate_regularity(log)


# --------------------------------------------------------------------------------- interface
def test_fitting_k_above_one_needs_litt(cdnow):
    plain = cdnow[["frequency", "recency", "T"]]
    with pytest.raises(DataError, match=r"'litt'.*include_litt=True"):
        ModifiedBetaGeoCNBDModel().fit(plain)
    with pytest.raises(DataError, match="'litt'"):
        BetaGeoCNBDModel(k=2).fit(plain)
    assert BetaGeoCNBDModel(k=1).fit(plain).k_ == 1  # k = 1 does not need it
    days = cdnow.assign(litt=cdnow["litt"] + cdnow["frequency"] * np.log(7.0))
    with pytest.raises(DataError, match=r"column 'litt' has \d+ values impossible.*unit"):
        BetaGeoCNBDModel().fit(days)  # litt in days, recency in weeks
    with pytest.raises(DataError, match="k must be a whole number"):
        BetaGeoCNBDModel(k=0).fit(cdnow)
    with pytest.raises(DataError, match="k must be a whole number"):
        BetaGeoCNBDModel(k="best").fit(cdnow)
    with pytest.raises(DataError, match="k_max"):
        BetaGeoCNBDModel(k_max=0).fit(cdnow)
    with pytest.raises(DataError, match="from_params needs a whole number k"):
        BetaGeoCNBDModel.from_params(k="auto", **TRUTH)
    with pytest.raises(DataError, match=r"missing.*'b'"):
        BetaGeoCNBDModel.from_params(k=2, r=1.0, alpha=1.0, a=1.0)


def test_search_stops_where_a_k_does_not_converge(grocery, monkeypatch):
    """As BTYDplus: the best k fitted so far is kept, with a warning."""
    fit_arrays = BaseModel._fit_arrays

    def failing_at_3(self, data, weights):
        if self._k_fit == 3:
            raise ConvergenceError("no optimum")
        return fit_arrays(self, data, weights)

    monkeypatch.setattr(BaseModel, "_fit_arrays", failing_at_3)
    with pytest.warns(CustvalWarning, match=r"k=3 did not converge.*k=1\.\.2"):
        model = ModifiedBetaGeoCNBDModel().fit(grocery)
    assert model.k_ == 2 and list(model.k_log_likelihoods_.index) == [1, 2]
    assert model.log_likelihood_ == pytest.approx(GROCERY_LL[ModifiedBetaGeoCNBDModel, 2], abs=2e-3)


@pytest.mark.parametrize("model_class", MODELS)
def test_save_load_roundtrip(tmp_path, grocery, model_class):
    model = model_class(k_max=4).fit(grocery)
    path = model.save(tmp_path / "model.json")
    loaded = load_model(path)
    assert type(loaded) is model_class and loaded.k_ == model.k_ and loaded.k == "auto"
    assert loaded.get_params() == model.get_params()
    pd.testing.assert_series_equal(loaded.k_log_likelihoods_, model.k_log_likelihoods_)
    assert loaded.aic == pytest.approx(model.aic)
    pd.testing.assert_series_equal(
        loaded.expected_purchases(grocery, 52.0), model.expected_purchases(grocery, 52.0)
    )
    published = model_class.from_params(k=3, **TRUTH)
    again = load_model(published.save(tmp_path / "published.json"))
    assert again.k_ == 3 and again.k == 3
    before = published.probability_of_purchases_new_customer(2, 10.0)
    assert again.probability_of_purchases_new_customer(2, 10.0) == before


def test_customer_value_and_model_comparison():
    """The regularity models plug into custval's value table and holdout comparison through
    their public methods."""
    split = grocery_split("W")
    split["monetary_value"] = 10.0
    model = ModifiedBetaGeoCNBDModel(k_max=4).fit(split)
    undiscounted = customer_lifetime_value(
        model, 10.0, split, horizon="52W", annual_discount_rate=0.0
    )
    np.testing.assert_allclose(undiscounted, 10.0 * model.expected_purchases(split, 52.0))
    discounted = customer_lifetime_value(model, 10.0, split, horizon="52W")
    assert np.all(discounted <= undiscounted + 1e-9) and discounted.sum() > 0.9 * undiscounted.sum()
    models = {"MBG/NBD": ModifiedBetaGeoModel().fit(split), "MBG/CNBD-k": model}
    table = evaluation.compare_models(models, split, metric="mae")
    # regular buyers: the regularity model fits and predicts the grocery holdout better
    assert table.attrs["best_model"] == "MBG/CNBD-k"
    assert table.loc["MBG/CNBD-k", "log_likelihood"] > table.loc["MBG/NBD", "log_likelihood"]
    # k was chosen by likelihood: it counts as a fifth parameter, as in the model's own AIC
    assert model.k_selected_
    assert table.loc["MBG/CNBD-k", "n_params"] == 5 and table.loc["MBG/NBD", "n_params"] == 4
    for name, fitted in models.items():
        assert table.loc[name, "aic"] == pytest.approx(
            2 * table.loc[name, "n_params"] - 2 * fitted.log_likelihood_
        )
        assert table.loc[name, "aic"] == pytest.approx(fitted.aic)


def conditional_by_monte_carlo(params, k, x, t_x, big_t, t, modified, n=400_000, seed=0):
    """E[purchases in (T, T+t)] and P(alive at T) for one history, by importance sampling
    from the prior and simulating the generative process forward: the Poisson events of rate
    lambda since the last purchase are fewer than k (else there would have been a purchase),
    every k-th event after T is a purchase, and each purchase is followed by drop-out with
    probability p. Independent of the series in custval.models.bg_cnbd."""
    r, alpha, a, b = params
    m = 1 if modified else 0
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    gap = big_t - t_x
    # likelihood of the history (up to constants) if alive at T, and if dropped out after t_x
    timing = lam ** (k * x) * np.exp(-lam * t_x)  # the x Erlang-k gaps up to t_x
    alive = timing * (1 - p) ** (x + m) * stats.poisson.cdf(k - 1, lam * gap)  # < k events
    dead = timing * p * (1 - p) ** (x + m - 1)
    if x == 0 and not modified:
        dead = np.zeros(n)
    weight = alive + dead
    is_alive = rng.uniform(size=n) * weight < alive
    # events in the gap: Poisson(lam gap) given < k, by inversion of its truncated cdf
    cdf = stats.poisson.cdf(np.arange(k)[None, :], (lam * gap)[:, None])
    cdf /= cdf[:, -1:]
    phase = (rng.uniform(size=n)[:, None] > cdf).sum(axis=1)
    purchases = (phase + rng.poisson(lam * t)) // k
    survived = rng.geometric(p)  # the future purchase after which the customer drops out
    future = np.where(is_alive, np.minimum(purchases, survived), 0)
    w = weight / weight.sum()
    mean = np.sum(w * future)
    se = np.sqrt(np.sum(w**2 * (future - mean) ** 2))
    return mean, se, np.sum(w * is_alive)


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize(
    "history", [(0, 0.0, 20.0), (3, 10.0, 30.0), (6, 29.0, 30.0), (6, 12.0, 30.0)]
)
def test_conditional_expectation_equals_posterior_simulation(model_class, history):
    """Customer by customer, including how far into the next inter-purchase time each is."""
    x, t_x, big_t = history
    params, k, t = (0.85, 1.45, 0.79, 2.42), 3, 25.0
    mean, se, alive = conditional_by_monte_carlo(params, k, x, t_x, big_t, t, model_class._modified)
    model = model_class.from_params(k=k, **dict(zip(TRUTH, params, strict=True)))
    customer = pd.DataFrame({"frequency": [x], "recency": [t_x], "T": [big_t]})
    assert model.expected_purchases(customer, t).iloc[0] == pytest.approx(mean, abs=4 * se + 1e-3)
    assert model.probability_alive(customer).iloc[0] == pytest.approx(alive, abs=0.01)


# --------------------------------------------------------------------------------- litt
@pytest.mark.parametrize("freq", ["D", "W"])
def test_rfm_litt_equals_a_direct_computation(freq):
    log = pd.read_csv(shared_file("grocery", "groceryElog.csv"), parse_dates=["date"])
    summary = rfm_summary(
        log, customer_id="cust", timestamp="date", amount=None, freq=freq, include_litt=True
    )
    plain = rfm_summary(log, customer_id="cust", timestamp="date", amount=None, freq=freq)
    pd.testing.assert_frame_equal(summary.drop(columns="litt"), plain)
    assert list(plain.columns) == ["frequency", "recency", "T"]  # unchanged by default
    periods = log["date"].dt.to_period(freq)
    direct = (
        pd.DataFrame({"cust": log["cust"], "period": periods})
        .drop_duplicates()
        .sort_values(["cust", "period"])
        .groupby("cust")["period"]
        .apply(lambda p: np.log(np.diff(p.map(lambda v: v.ordinal).to_numpy())).sum())
    )
    np.testing.assert_allclose(summary["litt"], direct.reindex(summary.index), atol=1e-9)


def test_weights_and_clone(grocery):
    """Rows with weights fit as the repeated rows; the estimator clones (sklearn)."""
    from sklearn.base import clone

    head = grocery.iloc[:300]
    weights = np.arange(300) % 3 + 1.0
    repeated = head.loc[head.index.repeat(weights.astype(int))]
    model = ModifiedBetaGeoCNBDModel(k=2).fit(head, weights=weights)
    reference = clone(model).fit(repeated.reset_index(drop=True))
    assert reference.get_params() == model.get_params()
    assert model.log_likelihood_ == pytest.approx(reference.log_likelihood_, rel=1e-10)
    np.testing.assert_allclose(model.params_, reference.params_, rtol=1e-6)


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("k", [1, 4, 12])
def test_finite_for_heavy_buyers_and_long_histories(model_class, k):
    model = model_class.from_params(k=k, **TRUTH)
    customers = pd.DataFrame(
        {
            "frequency": [0.0, 10_000.0, 10_000.0, 300.0],
            "recency": [0.0, 9_999.0, 5_000.0, 20_000.0],
            "T": [10_000.0, 10_000.0, 10_000.0, 20_000.0],
        }
    )
    for values in (
        model.expected_purchases(customers, 1000.0),
        model.probability_alive(customers),
        model.probability_alive(customers, 1000.0),
    ):
        assert np.all(np.isfinite(values)) and np.all(values >= 0)
    # the heavy buyer still buying buys at about their rate; the one silent for 5,000 is gone
    assert model.expected_purchases(customers, 1000.0).iloc[1] == pytest.approx(1000.0, rel=0.1)
    assert model.probability_alive(customers).iloc[2] < 1e-12
    data = {c: customers[c].to_numpy() for c in customers}
    ll, grad = bg_cnbd._loglik_grad(np.array(list(TRUTH.values())), data, k, modified=False)
    assert np.all(np.isfinite(ll)) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("modified", [False, True])
def test_loglik_is_exact_far_along_the_ridges(modified: bool) -> None:
    # r, alpha -> inf with r / alpha fixed (one purchase rate for all) and a, b -> inf with
    # a / (a + b) fixed (one dropout probability): the log-likelihood converges at rate
    # 1/alpha. As differences of gammaln / betaln / logs it would carry errors of ~1e-4 per
    # customer at 1e11 and a gradient of noise (ConvergenceError on such data).
    data = {
        "frequency": np.array([0.0, 1.0, 3.0, 6.0, 10.0]),
        "recency": np.array([0.0, 5.0, 20.0, 30.0, 38.0]),
        "T": np.array([40.0, 40.0, 35.0, 40.0, 40.0]),
    }
    lls, slopes = [], []
    for scale in (1e9, 1e11, 1e13):
        params = np.array([0.2 * scale, scale, 0.1 * scale, 0.9 * scale])
        ll, grad = bg_cnbd._loglik_grad(params, data, 2, modified=modified)
        lls.append(ll.sum())
        g = grad.sum(axis=0) * params  # in log-parameters
        slopes.append((g[0] + g[1], g[2] + g[3]))
    assert lls[1] == pytest.approx(lls[2], rel=1e-10)
    assert lls[0] == pytest.approx(lls[2], rel=1e-7)
    assert np.all(np.abs(slopes[1:]) < 1e-6)
