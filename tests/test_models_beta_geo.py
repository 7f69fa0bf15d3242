"""BG/NBD and MBG/NBD: published CDNOW numbers, lifetimes agreement, gradients, simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats
from scipy.special import betaln
from sklearn.exceptions import NotFittedError

from conftest import shared_file
from custval import BetaGeoModel, CustvalWarning, DataError, ModifiedBetaGeoModel, load_model
from custval.datasets import simulate_beta_geo
from custval.models import beta_geo, modified_beta_geo

# FHL (2005), section 5 / Hardie's note 004: MLE on the 2,357 CDNOW customers (weeks)
CDNOW_PARAMS = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}
MODELS = [BetaGeoModel, ModifiedBetaGeoModel]


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    summary = pd.read_csv(
        shared_file("cdnow", "cdnow_customers_summary.csv"), index_col="ID"
    ).astype(float)
    summary.attrs["freq"] = "W"
    return summary


@pytest.fixture(scope="module")
def lifetimes_module():
    return pytest.importorskip("lifetimes")


def lifetimes_fitter(lifetimes, model_class, params):
    """A lifetimes fitter with injected parameters (its predictions only read ``params_``)."""
    cls = (
        lifetimes.BetaGeoFitter if model_class is BetaGeoModel else lifetimes.ModifiedBetaGeoFitter
    )
    fitter = cls()
    fitter.params_ = pd.Series(params)[["r", "alpha", "a", "b"]]
    return fitter


# --------------------------------------------------------------------------------- fits
def test_bgnbd_reproduces_published_cdnow_estimates(cdnow):
    model = BetaGeoModel().fit(cdnow)
    assert model.params_.to_numpy() == pytest.approx([0.243, 4.414, 0.793, 2.426], abs=6e-4)
    assert model.params_.to_numpy() == pytest.approx(list(CDNOW_PARAMS.values()), rel=2e-4)
    assert model.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)
    assert model.n_customers_ == 2357
    assert model.freq_ == "W"
    assert model.converged_
    se = model.summary["std_error"]
    assert np.all(np.isfinite(se)) and np.all(se > 0)


@pytest.mark.parametrize("model_class", MODELS)
def test_fit_agrees_with_lifetimes(cdnow, lifetimes_module, model_class):
    fitter_class = (
        lifetimes_module.BetaGeoFitter
        if model_class is BetaGeoModel
        else lifetimes_module.ModifiedBetaGeoFitter
    )
    reference = fitter_class().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    model = model_class().fit(cdnow)
    np.testing.assert_allclose(model.params_.to_numpy(), reference.params_.to_numpy(), rtol=1e-4)
    # custval's optimum is at least as high as lifetimes' (tighter tolerance), and close
    ll_reference = model._loglik(reference.params_.to_numpy(), model._extract(cdnow)).sum()
    assert ll_reference - 1e-9 <= model.log_likelihood_ < ll_reference + 1e-3


def test_mbgnbd_cdnow_estimates(cdnow):
    # lifetimes' ModifiedBetaGeoFitter on the same data (0.11.3): 0.5248, 6.1830, 0.8914, 1.6140
    model = ModifiedBetaGeoModel().fit(cdnow)
    assert model.params_.to_numpy() == pytest.approx([0.5248, 6.1830, 0.8914, 1.6140], rel=2e-4)
    assert model.log_likelihood_ == pytest.approx(-9582.13, abs=0.01)


# --------------------------------------------------------------------------------- predictions
def test_published_conditional_expectation_and_new_customer():
    model = BetaGeoModel.from_params(**CDNOW_PARAMS, freq="W")
    customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]}, index=["c1"])
    # FHL 2005, section 5: the customer with x=2, t_x=30.43, T=38.86 expects 1.226 purchases
    expected = model.expected_purchases(customer, "39W")
    assert expected.index.tolist() == ["c1"] and expected.name == "expected_purchases"
    assert expected.iloc[0] == pytest.approx(1.226, abs=5e-4)
    assert model.expected_purchases(customer, 39).iloc[0] == expected.iloc[0]
    # eq. (9) at t = 78 weeks with these parameters (lifetimes gives the same 1.85802)
    assert model.expected_purchases_new_customer("78W") == pytest.approx(1.8580, abs=1e-4)
    assert model.expected_purchases_new_customer(0) == 0.0


@pytest.mark.parametrize("model_class", MODELS)
def test_predictions_equal_lifetimes_with_injected_parameters(cdnow, lifetimes_module, model_class):
    model = model_class.from_params(**CDNOW_PARAMS, freq="W")
    reference = lifetimes_fitter(lifetimes_module, model_class, CDNOW_PARAMS)
    x, t_x, big_t = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    for t in (0.5, 39.0, 52.0, 104.0):
        ours = model.expected_purchases(cdnow, t)
        theirs = reference.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, big_t)
        np.testing.assert_allclose(ours.to_numpy(), theirs, rtol=1e-6)
        assert ours.index.equals(cdnow.index)
    alive = model.probability_alive(cdnow)
    np.testing.assert_allclose(
        alive.to_numpy(), reference.conditional_probability_alive(x, t_x, big_t), rtol=1e-6
    )
    horizons = np.array([0.1, 1.0, 39.0, 78.0, 520.0])
    np.testing.assert_allclose(
        model.expected_purchases_new_customer(horizons).to_numpy(),
        reference.expected_number_of_purchases_up_to_time(horizons),
        rtol=1e-6,
    )
    counts = np.arange(0, 30)
    for t in (1.0, 39.0, 200.0):
        theirs = [reference.probability_of_n_purchases_up_to_time(t, int(n)) for n in counts]
        ours = model.probability_of_purchases_new_customer(counts, t)
        # atol: lifetimes computes the tail as 1 - (finite sum), which cancels below ~1e-13
        np.testing.assert_allclose(ours.to_numpy(), theirs, rtol=1e-6, atol=1e-12)
        assert ours.index.tolist() == counts.tolist()


@pytest.mark.parametrize("model_class", MODELS)
def test_probability_of_purchases_is_a_distribution_with_the_right_mean(model_class):
    model = model_class.from_params(**CDNOW_PARAMS)
    probabilities = model.probability_of_purchases_new_customer(np.arange(0, 2000), 52)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-9)
    mean = float(np.dot(probabilities.index, probabilities))
    assert mean == pytest.approx(model.expected_purchases_new_customer(52), rel=1e-8)
    # far tail (where "1 - finite sum" cancels): against the negative binomial tail summed
    # term by term
    r, alpha, a, b = CDNOW_PARAMS.values()
    m = 1 if model_class is ModifiedBetaGeoModel else 0
    n, t = 40, 1.0
    j = np.arange(n, n + 400)
    tail = stats.nbinom.pmf(j, r, alpha / (alpha + t)).sum()
    first = np.exp(
        betaln(a, b + n + m) - betaln(a, b) + stats.nbinom.logpmf(n, r, alpha / (alpha + t))
    )
    second = np.exp(betaln(a + 1, b + n + m - 1) - betaln(a, b)) * tail
    assert model.probability_of_purchases_new_customer(n, t) == pytest.approx(
        first + second, rel=1e-10
    )


@pytest.mark.parametrize("model_class", MODELS)
def test_future_probability_alive_is_continuous_and_decreasing(model_class):
    """P(alive at T+t) starts at P(alive at T) and decreases with t (its value is checked
    against quadrature in test_conditional_expectations_against_quadrature)."""
    model = model_class.from_params(**CDNOW_PARAMS)
    customers = pd.DataFrame(
        {"frequency": [0, 2, 7, 40], "recency": [0, 30.43, 20.0, 50.0], "T": [38.86, 38.86, 52, 60]}
    )
    now = model.probability_alive(customers)
    assert model.probability_alive(customers, 0).equals(now)
    assert model.probability_alive(customers, 1e-9).to_numpy() == pytest.approx(now, rel=1e-8)
    previous = now.to_numpy()
    for t in (1.0, 26.0, 300.0, 1e5):
        future = model.probability_alive(customers, t).to_numpy()
        assert np.all(future < previous)
        previous = future


@pytest.mark.parametrize("model_class", MODELS)
def test_predictions_match_simulation_on_average(model_class):
    """Law of total probability: the mean prediction over simulated histories equals the
    simulated share alive (now and 52 weeks later) and the simulated future purchases."""
    model = model_class.from_params(**CDNOW_PARAMS)
    rng = np.random.default_rng(1)
    sim = simulate_beta_geo(
        **CDNOW_PARAMS,
        T=rng.uniform(10, 60, 200_000),
        future=52.0,
        modified=model_class is ModifiedBetaGeoModel,
        random_state=2,
    )
    checks = [
        (model.probability_alive(sim), sim["alive_T"]),
        (model.probability_alive(sim, 52), sim["alive_future"]),
        (model.expected_purchases(sim, 52), sim["purchases_future"]),
    ]
    for predicted, simulated in checks:
        standard_error = simulated.std() / np.sqrt(len(sim))
        assert abs(predicted.mean() - simulated.mean()) < 4 * standard_error


def beta_expectation_by_quad(function, shape_a, shape_b):
    """E[function(p)] for p ~ Beta(shape_a, shape_b) by adaptive quadrature over y = logit(p),
    where the density is smooth for any shapes (an independent check of the closed forms)."""
    mode = np.log(shape_a / shape_b)
    spread = np.sqrt(1 / shape_a + 1 / shape_b)
    low = mode - max(40 * spread, 40 / shape_a)
    high = mode + max(40 * spread, 40 / shape_b)

    def integrand(y):
        log_density = (
            shape_a * y - (shape_a + shape_b) * np.logaddexp(0, y) - betaln(shape_a, shape_b)
        )
        return np.exp(log_density) * function(1 / (1 + np.exp(-y)))

    return integrate.quad(integrand, low, high, points=[mode], epsabs=0, epsrel=1e-12, limit=400)[0]


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("a, b", [(0.7929, 2.4258), (40.0, 120.0), (3000.0, 10000.0)])
def test_conditional_expectations_against_quadrature(model_class, a, b):
    """E[purchases in (T, T+t] | alive at T] = E_p[(1 - (1 + p u)^-(r+x)) / p] and
    P(alive at T+t | alive at T) = E_p[(1 + p u)^-(r+x)], u = t/(alpha+T), over the posterior
    p ~ Beta(a, b+x+m): checks the hypergeometric forms and, for large a and b where they
    overflow, the quadrature fallback."""
    r, alpha = 0.5, 10.0
    m = 1 if model_class is ModifiedBetaGeoModel else 0
    model = model_class.from_params(r=r, alpha=alpha, a=a, b=b)
    customers = pd.DataFrame(
        {"frequency": [0, 3, 50], "recency": [0.0, 20.0, 90.0], "T": [30.0, 40.0, 100.0]}
    )
    alive = model.probability_alive(customers).to_numpy()
    for t in (5.0, 2000.0):
        expected = model.expected_purchases(customers, t).to_numpy() / alive
        survival = model.probability_alive(customers, t).to_numpy() / alive
        for i, (x, _, big_t) in enumerate(customers.itertuples(index=False)):
            u, shape = t / (alpha + big_t), r + x
            reference = beta_expectation_by_quad(
                lambda p, u=u, shape=shape: -np.expm1(-shape * np.log1p(p * u)) / p, a, b + x + m
            )
            assert expected[i] == pytest.approx(reference, rel=1e-7)
            reference = beta_expectation_by_quad(
                lambda p, u=u, shape=shape: np.exp(-shape * np.log1p(p * u)), a, b + x + m
            )
            # (the quadrature fallback is accurate to ~1e-5 relative where the survival
            # probability is below 1e-20)
            assert survival[i] == pytest.approx(reference, rel=1e-7 if reference > 1e-20 else 1e-4)


def test_degenerate_fit_still_predicts():
    """Six customers: a and b run off to ~1e6 (no heterogeneity in p); predictions stay finite."""
    summary = pd.DataFrame(
        {
            "frequency": [0, 1, 2, 5, 0, 3],
            "recency": [0, 10, 25, 30, 0, 12],
            "T": [40, 38, 40, 35, 30, 39],
        }
    )
    with pytest.warns(CustvalWarning, match="flat along a ridge on which a and b move together"):
        model = BetaGeoModel().fit(summary)
    assert model.convergence_ == "ridge" and model.params_["a"] > 1e4
    assert model.summary["std_error"].isna().all()  # not identified: no standard errors
    for values in (
        model.expected_purchases(summary, 52),
        model.probability_alive(summary, 52),
        model.expected_purchases_new_customer([1, 52, 1000]),
    ):
        assert np.all(np.isfinite(values)) and np.all(values >= 0)


def test_removable_singularity_at_a_equal_one():
    customers = pd.DataFrame({"frequency": [0, 3], "recency": [0, 20.0], "T": [30.0, 40.0]})
    values = {
        a: BetaGeoModel.from_params(r=0.5, alpha=5.0, a=a, b=2.0)
        .expected_purchases(customers, 52)
        .to_numpy()
        for a in (1.0 - 1e-4, 1.0, 1.0 + 1e-4)
    }
    assert np.all(np.isfinite(values[1.0]))
    np.testing.assert_allclose(values[1.0], 0.5 * (values[1 - 1e-4] + values[1 + 1e-4]), rtol=1e-7)


# --------------------------------------------------------------------------------- numerics
def extreme_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "frequency": [10_000, 10_000, 10_000, 0, 1, 5_000, 10_000],
            "recency": [10_000, 1, 5_000, 0, 1, 9_999, 9_000.5],
            "T": [10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 9_000.5],
        }
    ).astype(float)


@pytest.mark.parametrize("model_class", MODELS)
def test_extreme_inputs_are_finite(model_class, lifetimes_module):
    data = extreme_summary()
    daily = {**CDNOW_PARAMS, "alpha": CDNOW_PARAMS["alpha"] * 7}
    model = model_class.from_params(**daily, freq="D")
    ll, grad = model._loglik_grad(model.params_.to_numpy(), model._extract(data))
    assert np.all(np.isfinite(ll)) and np.all(np.isfinite(grad))
    for t in (1.0, 365.0, 10_000.0, 1e6):
        for values in (
            model.expected_purchases(data, t),
            model.probability_alive(data, t),
            model.probability_alive(data),
        ):
            assert np.all(np.isfinite(values)) and np.all(values >= 0)
        assert np.isfinite(model.expected_purchases_new_customer(t))
        probabilities = model.probability_of_purchases_new_customer([0, 1, 10_000], t)
        assert np.all(np.isfinite(probabilities)) and np.all(probabilities >= 0)
    assert model.probability_alive(data, 365).le(model.probability_alive(data) + 1e-15).all()
    # where lifetimes' untransformed hypergeometric is still finite, the two agree
    reference = lifetimes_fitter(lifetimes_module, model_class, daily)
    with np.errstate(all="ignore"):
        theirs = reference.conditional_expected_number_of_purchases_up_to_time(
            30.0, data["frequency"], data["recency"], data["T"]
        )
    ours = model.expected_purchases(data, 30.0).to_numpy()
    usable = np.isfinite(theirs.to_numpy())
    np.testing.assert_allclose(ours[usable], theirs[usable], rtol=1e-6, atol=1e-300)


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize(
    "params", [list(CDNOW_PARAMS.values()), [2.5, 0.3, 4.0, 0.6], [0.05, 40.0, 0.2, 9.0]]
)
def test_gradient_matches_finite_differences(cdnow, model_class, params):
    model = model_class()
    for data in (model._extract(cdnow), model._extract(extreme_summary())):
        prepared = model._prepare_patterns(data)

        # mean log-likelihood per customer as a function of the log-parameters (the scale the
        # optimiser works on); forward differences are accurate to ~1e-7 relative
        def total(theta, prepared=prepared):
            return model._loglik(np.exp(theta), prepared).mean()

        def gradient(theta, prepared=prepared):
            return model._loglik_grad(np.exp(theta), prepared)[1].mean(axis=0) * np.exp(theta)

        theta = np.log(params)
        error = optimize.check_grad(total, gradient, theta, epsilon=1e-7)
        assert error < 1e-6 * max(1.0, np.linalg.norm(gradient(theta)))
        p0 = np.array(params)
        # the weighted sums the optimiser evaluates equal the per-row computation
        weights = np.linspace(0.5, 3.0, len(data["frequency"]))
        ll_rows, grad_rows = model._loglik_grad(np.array(params), prepared)
        total_ll, total_grad = model._weighted_loglik_grad(np.array(params), prepared, weights)
        assert total_ll == pytest.approx(weights @ ll_rows, rel=1e-12)
        np.testing.assert_allclose(total_grad, weights @ grad_rows, rtol=1e-9, atol=1e-9)
        # the unprepared data (plain columns) gives the same values
        np.testing.assert_allclose(model._loglik(p0, data), model._loglik(p0, prepared))


def test_private_functions_take_parameter_vectors(cdnow):
    """The customer-value code calls the (params, arrays) functions with sampled parameters."""
    params = np.array(list(CDNOW_PARAMS.values()))
    x, t_x, big_t = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    model = ModifiedBetaGeoModel.from_params(**CDNOW_PARAMS)
    # scalars work too (a single customer)
    assert beta_geo._expected_purchases(params, 2, 30.43, 38.86, 39) == pytest.approx(
        1.2259, rel=1e-4
    )
    assert beta_geo._probability_alive(params, 2, 30.43, 38.86, 39).shape == ()
    np.testing.assert_array_equal(
        modified_beta_geo._expected_purchases(params, x, t_x, big_t, 39.0),
        model.expected_purchases(cdnow, 39),
    )
    # per-customer horizons broadcast
    horizons = np.where(x > 0, 10.0, 20.0)
    per_customer = beta_geo._expected_purchases(params, x, t_x, big_t, horizons)
    single = beta_geo._expected_purchases(params, x[:1], t_x[:1], big_t[:1], horizons[0])
    assert per_customer[0] == pytest.approx(single[0], rel=1e-14)
    assert beta_geo._probability_alive(params, x, t_x, big_t, horizons).shape == x.shape


# --------------------------------------------------------------------------------- recovery
@pytest.mark.slow
@pytest.mark.parametrize("model_class", MODELS)
def test_parameter_recovery_on_simulated_customers(model_class):
    truth = {"r": 0.5, "alpha": 8.0, "a": 0.7, "b": 2.5}
    rng = np.random.default_rng(7)
    sim = simulate_beta_geo(
        **truth,
        T=rng.uniform(30, 100, 200_000),
        modified=model_class is ModifiedBetaGeoModel,
        random_state=8,
    )
    model = model_class().fit(sim)
    estimate, se = model.summary["estimate"], model.summary["std_error"]
    for name, value in truth.items():
        assert estimate[name] == pytest.approx(value, rel=0.05), name
        assert abs(estimate[name] - value) < 4 * se[name], name


# --------------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("model_class", MODELS)
def test_save_load_round_trip_predicts_the_same(cdnow, tmp_path, model_class):
    model = model_class(penalizer_coef=0.0).fit(cdnow)
    path = model.save(tmp_path / "model.json")
    loaded = load_model(path)
    assert type(loaded) is model_class
    pd.testing.assert_series_equal(loaded.params_, model.params_)
    pd.testing.assert_frame_equal(loaded.variance_matrix_, model.variance_matrix_)
    pd.testing.assert_series_equal(
        loaded.expected_purchases(cdnow, "52W"), model.expected_purchases(cdnow, "52W")
    )
    with pytest.raises(DataError, match="holds a"):
        (BetaGeoModel if model_class is ModifiedBetaGeoModel else ModifiedBetaGeoModel).load(path)


# --------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("model_class", MODELS)
def test_input_errors_name_the_column_and_the_fix(model_class):
    model = model_class.from_params(**CDNOW_PARAMS, freq="W")
    good = pd.DataFrame({"frequency": [1, 0], "recency": [5.0, 0.0], "T": [10.0, 10.0]})
    cases = [
        (good.drop(columns="T"), r"missing required column\(s\) 'T'.*rfm_summary"),
        (good.assign(recency=[12.0, 0.0]), r"'recency' has 1 values greater than 'T'"),
        (good.assign(frequency=[1.5, 0]), r"'frequency' has 1 non-integer frequencies"),
        (good.assign(recency=[5.0, 2.0]), r"non-zero values where frequency is 0"),
        (good.assign(recency=[0.0, 0.0]), r"zero values where frequency is positive"),
        (good.assign(T=[10.0, np.nan]), r"'T' has 1 missing or infinite values"),
        (good.assign(frequency=[-1, 0]), r"'frequency' has 1 negative values"),
    ]
    for frame, message in cases:
        with pytest.raises(DataError, match=message):
            model.expected_purchases(frame, 10)
        with pytest.raises(DataError, match=message):
            model_class().fit(frame)
    with pytest.raises(DataError, match=r"t must be finite and >= 0"):
        model.expected_purchases(good, -1)
    with pytest.raises(DataError, match=r"cannot read duration 'ten weeks'"):
        model.expected_purchases(good, "ten weeks")
    with pytest.raises(DataError, match=r"n must be whole numbers of purchases >= 0"):
        model.probability_of_purchases_new_customer([0, -1], 10)
    with pytest.raises(DataError, match=r"n must be whole numbers of purchases >= 0"):
        model.probability_of_purchases_new_customer(1.5, 10)
    unitless = model_class.from_params(**CDNOW_PARAMS)
    with pytest.raises(DataError, match=r"t='52W' has a unit, but this .* does not know"):
        unitless.expected_purchases(good, "52W")
    daily = good.copy()
    daily.attrs["freq"] = "D"
    with pytest.raises(DataError, match=r"fitted on a summary in unit 'W'.*unit 'D'"):
        model.probability_alive(daily)
    with pytest.raises(NotFittedError):
        model_class().expected_purchases(good, 10)
    with pytest.raises(NotFittedError):
        model_class().expected_purchases_new_customer(10)


def test_durations_convert_to_the_model_unit():
    weekly = BetaGeoModel.from_params(**CDNOW_PARAMS, freq="W")
    daily = BetaGeoModel.from_params(**{**CDNOW_PARAMS, "alpha": 7 * 4.4135}, freq="D")
    assert weekly.expected_purchases_new_customer("364D") == pytest.approx(
        daily.expected_purchases_new_customer("52W"), rel=1e-12
    )
    assert daily.expected_purchases_new_customer(364) == pytest.approx(
        weekly.expected_purchases_new_customer(52), rel=1e-12
    )
