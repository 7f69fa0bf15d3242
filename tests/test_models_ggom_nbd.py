"""GGom/NBD: CDNOW (Bemmaor & Glady 2012 as quoted by CLVTools), the Pareto/NBD limit, a second
integration method, simulation identities, gradients, recovery, save/load and CLV."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.optimize import check_grad
from scipy.special import gammaln

import custval
from conftest import shared_file
from custval import CustvalWarning, DataError, GammaGompertzNBDModel, ParetoNBDModel, load_model
from custval import evaluation as ev
from custval.models import gamma_gompertz_nbd as ggom
from custval.models import pareto_nbd

# Bemmaor & Glady (2012), Table 2 (CDNOW, weeks), as quoted in CLVTools'
# tests/testthat/test_correctness_ggomnbd.R, and CLVTools' own estimate in the same file
PUBLISHED = {"r": 0.553, "alpha": 10.578, "b": 0.0002, "s": 0.603, "beta": 0.0026}
PUBLISHED_LL = -9594.98
CLVTOOLS = {"r": 0.55313, "alpha": 10.5758, "b": 0.0000011, "s": 0.60682, "beta": 0.000013}
CLVTOOLS_LL = -9594.9762
PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}  # FHL 2005, CDNOW weeks
COLUMNS = ("frequency", "recency", "T")


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    frame = pd.read_csv(shared_file("cdnow", "cdnow_customers_summary.csv"), index_col="ID")
    frame.attrs["freq"] = "W"
    return frame


@pytest.fixture(scope="module")
def cdnow_fit(cdnow: pd.DataFrame) -> GammaGompertzNBDModel:
    # the maximum is on the Pareto/NBD edge (b -> 0), where the Hessian may be singular
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "GGom/NBD model: the Hessian", CustvalWarning)
        return GammaGompertzNBDModel().fit(cdnow)


def _arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy(float) for c in COLUMNS}


def _simulate(n: int, params: dict[str, float], seed: int, holdout: float = 0.0) -> pd.DataFrame:
    """GGom/NBD customers observed for T in [26, 78] periods, with the truth: alive at T and
    the purchases in (T, T + holdout]."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    eta = rng.gamma(params["s"], 1.0 / params["beta"], n)
    # Gompertz lifetimes by inversion: P(tau > t | eta) = exp(-eta (e^(b t) - 1))
    tau = np.log1p(rng.exponential(size=n) / eta) / params["b"]
    big_t = rng.uniform(26.0, 78.0, n)
    observed = np.minimum(tau, big_t)
    x = rng.poisson(lam * observed)
    last = observed * rng.random(n) ** (1.0 / np.maximum(x, 1))  # max of x uniforms
    future = rng.poisson(lam * np.clip(np.minimum(tau, big_t + holdout) - big_t, 0.0, None))
    frame = pd.DataFrame(
        {
            "frequency": x,
            "recency": np.where(x > 0, last, 0.0),
            "T": big_t,
            "alive": tau > big_t,
            "future": future,
        }
    )
    frame.attrs["freq"] = "W"
    return frame


def _loglik_by_quad(params: np.ndarray, x: float, t_x: float, big_t: float) -> float:
    """BG12 eq. 5 with the integral by scipy's adaptive quadrature (the second method)."""
    r, alpha, b, s, beta = params

    def integrand(tau: float) -> float:
        return np.exp(b * tau) * (beta + np.expm1(b * tau)) ** -(s + 1) * (alpha + tau) ** -(r + x)

    j = integrate.quad(integrand, t_x, big_t, epsabs=0.0, epsrel=1e-12, limit=200)[0]
    alive = (beta / (beta + np.expm1(b * big_t))) ** s * (alpha + big_t) ** -(r + x)
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + np.log(alive + b * s * beta**s * j)


# ------------------------------------------------------------------ published numbers
def test_cdnow_fit_collapses_to_the_pareto_nbd_as_published(
    cdnow_fit: GammaGompertzNBDModel,
) -> None:
    est = cdnow_fit.params_
    # Bemmaor & Glady's maximum: the Pareto/NBD's likelihood, b and beta near 0 (their b =
    # 0.0002, CLVTools' 1.1e-6), the other parameters the Pareto/NBD's
    assert cdnow_fit.log_likelihood_ >= PUBLISHED_LL - 0.005
    assert cdnow_fit.log_likelihood_ == pytest.approx(-9594.974, abs=0.002)
    assert est["r"] == pytest.approx(PUBLISHED["r"], abs=1.5e-3)
    assert est["alpha"] == pytest.approx(PUBLISHED["alpha"], abs=1.5e-3)
    assert est["s"] == pytest.approx(CLVTOOLS["s"], abs=1.5e-3)
    assert est["b"] < 1e-4
    # b is not determined by these data: no standard error, or one larger than b itself
    se_b = cdnow_fit.summary.loc["b", "std_error"]
    assert not se_b < est["b"]
    assert est["beta"] / est["b"] == pytest.approx(PARETO["beta"], abs=0.01)
    assert cdnow_fit.aic == pytest.approx(2 * 5 - 2 * cdnow_fit.log_likelihood_)
    assert cdnow_fit.n_customers_ == 2357


def test_loglik_at_the_published_estimates(cdnow: pd.DataFrame) -> None:
    data = _arrays(cdnow)
    at_clvtools = ggom._loglik_core(np.array(list(CLVTOOLS.values())), data, gradient=False)[0]
    # CLVTools prints b and beta to two significant digits, which moves beta/b by 1%
    assert at_clvtools.sum() == pytest.approx(CLVTOOLS_LL, abs=0.01)
    at_paper = ggom._loglik_core(np.array(list(PUBLISHED.values())), data, gradient=False)[0]
    # the paper's b and beta are rounded more coarsely (beta/b = 13 instead of 11.67)
    assert PUBLISHED_LL - 1.0 < at_paper.sum() < PUBLISHED_LL


# ------------------------------------------------------------------ two computations
@pytest.mark.parametrize(
    "params",
    [
        [0.553, 10.578, 0.0002, 0.603, 0.0026],
        [0.8, 5.0, 0.05, 1.5, 3.0],
        [2.0, 1.0, 0.3, 0.5, 0.1],  # alpha << the Gompertz singularity shift
        [0.3, 50.0, 0.01, 3.0, 20.0],  # beta > 1: no real singularity
        [1.0, 2.0, 1.0, 2.0, 5.0],  # steep hazard
    ],
)
def test_likelihood_equals_adaptive_quadrature(params: list[float], cdnow: pd.DataFrame) -> None:
    rows = cdnow.iloc[::61]
    data = _arrays(rows)
    p = np.array(params)
    ll = ggom._loglik_core(p, data, gradient=False)[0]
    reference = [_loglik_by_quad(p, *row) for row in zip(*data.values(), strict=True)]
    np.testing.assert_allclose(ll, reference, rtol=1e-12)


def test_heavy_buyers_are_finite_and_exact() -> None:
    data = {
        "frequency": np.array([10_000.0, 5_000.0, 300.0]),
        "recency": np.array([9_000.0, 2_000.0, 50.0]),
        "T": np.array([10_000.0, 9_000.0, 60.0]),
    }
    p = np.array([0.8, 3.0, 0.001, 0.7, 0.5])
    ll, grad = ggom._loglik_core(p, data, gradient=True)
    assert np.all(np.isfinite(ll)) and np.all(np.isfinite(grad))
    # the narrowed quadrature agrees with the direct evaluation of the integral's log
    # (scipy's quad underflows here, so the reference is taken around the peak by hand)
    r, alpha, b, s, beta = p
    x, t_x, big_t = (data[c][2] for c in COLUMNS)

    def integrand(tau: float) -> float:
        log_f = b * tau - (s + 1) * np.log(beta + np.expm1(b * tau))
        return np.exp(log_f - (r + x) * (np.log(alpha + tau) - np.log(alpha + t_x)))

    j = integrate.quad(integrand, t_x, big_t, epsabs=0.0, epsrel=1e-12, limit=200)[0]
    # J carries the factors alpha^r beta^s (see _log_death_integral)
    log_j_ref = np.log(j) - (r + x) * np.log(alpha + t_x) + r * np.log(alpha) + s * np.log(beta)
    log_j, _ = ggom._log_death_integral(
        p, np.array([x]), np.array([t_x]), np.array([big_t]), gradient=False
    )
    assert log_j[0] == pytest.approx(log_j_ref, rel=1e-12)


@pytest.mark.parametrize(
    "params",
    [
        {"r": 0.8, "alpha": 3.0, "b": 0.001, "s": 0.7, "beta": 0.5},
        {"r": 0.8, "alpha": 3.0, "b": 1e-8, "s": 0.7, "beta": 1e-7},
        {"r": 2.0, "alpha": 50.0, "b": 0.5, "s": 3.0, "beta": 100.0},  # e^(b t) overflows
    ],
)
def test_predictions_are_finite_for_heavy_buyers_and_long_horizons(params) -> None:
    model = GammaGompertzNBDModel.from_params(**params)
    customers = pd.DataFrame(
        {
            "frequency": [10_000, 5_000, 0, 300, 1],
            "recency": [9_000, 2_000, 0, 50, 0.5],
            "T": [10_000, 9_000, 10_000, 60, 1.0],
        }
    )
    values = [
        model.probability_alive(customers),
        model.expected_purchases(customers, 365),
        model.discounted_expected_residual_transactions(customers, 0.001),
        model.expected_purchases_new_customer([1.0, 1e4]),
        model.probability_of_purchases_new_customer([0, 10, 1000], 1e4),
        model.survival([0.0, 1e4]),
    ]
    for series in values:
        assert np.all(np.isfinite(series)) and np.all(series.to_numpy() >= 0)
    assert model.probability_alive(customers).between(0, 1).all()
    # more purchases expected over a longer horizon
    assert np.all(
        model.expected_purchases(customers, 730) >= model.expected_purchases(customers, 365)
    )


def test_small_b_limit_is_the_pareto_nbd(cdnow: pd.DataFrame) -> None:
    """b -> 0 with beta / b fixed: every quantity equals the Pareto/NBD's (series or its own
    quadrature there, Gauss-Legendre in the Gompertz variable here)."""
    b = 1e-10
    values = dict(PARETO)
    values.update(b=b, beta=PARETO["beta"] * b)
    gg = GammaGompertzNBDModel.from_params(**values, freq="W")
    pn = ParetoNBDModel.from_params(**PARETO, freq="W")
    pareto_params = np.array(list(PARETO.values()))
    data = _arrays(cdnow)
    np.testing.assert_allclose(
        ggom._loglik_core(gg._params(), data, gradient=False)[0],
        pareto_nbd._loglik_core(pareto_params, data)["ll"],
        rtol=1e-8,
    )
    np.testing.assert_allclose(gg.probability_alive(cdnow), pn.probability_alive(cdnow), rtol=1e-7)
    for t in (1.0, 39.0, 520.0):
        np.testing.assert_allclose(
            gg.expected_purchases(cdnow, t), pn.expected_purchases(cdnow, t), rtol=1e-7
        )
    horizons = [0.0, 0.5, 39.0, 78.0, 1000.0]
    np.testing.assert_allclose(
        gg.expected_purchases_new_customer(horizons),
        pn.expected_purchases_new_customer(horizons),
        rtol=1e-7,
    )
    np.testing.assert_allclose(
        gg.probability_of_purchases_new_customer(np.arange(0, 40), 39.0),
        pn.probability_of_purchases_new_customer(np.arange(0, 40), 39.0),
        rtol=1e-7,
        atol=1e-15,
    )


# ------------------------------------------------------------------ simulation identities
SIM = {"r": 0.8, "alpha": 5.0, "b": 0.05, "s": 1.5, "beta": 3.0}


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return _simulate(20_000, SIM, seed=12, holdout=26.0)


def _within(sample: np.ndarray, expected: float, z: float = 4.0) -> None:
    se = sample.std(ddof=1) / np.sqrt(len(sample))
    assert abs(sample.mean() - expected) < z * se, (sample.mean(), expected, se)


def test_predictions_average_to_what_simulated_customers_do(simulated: pd.DataFrame) -> None:
    """Means over customers drawn from the model: E[P(alive | data)] = P(alive at T) and
    E[E[X(T, T+t) | data]] = E[X(T, T+t)], which checks the posterior of the lifetime,
    including the e^(bT) in P(tau > T+u | alive at T) (e^(bT) is 4 to 50 here)."""
    model = GammaGompertzNBDModel.from_params(**SIM, freq="W")
    p_alive = model.probability_alive(simulated).to_numpy()
    # the model's P(alive) against the simulated truth (a paired comparison)
    _within(p_alive - simulated["alive"].to_numpy(float), 0.0)
    expected = model.expected_purchases(simulated, 26.0).to_numpy()
    _within(expected - simulated["future"].to_numpy(float), 0.0)


def test_new_customer_counts_match_simulation() -> None:
    model = GammaGompertzNBDModel.from_params(**SIM)
    rng = np.random.default_rng(5)
    n, t = 200_000, 30.0
    lam = rng.gamma(SIM["r"], 1.0 / SIM["alpha"], n)
    eta = rng.gamma(SIM["s"], 1.0 / SIM["beta"], n)
    tau = np.log1p(rng.exponential(size=n) / eta) / SIM["b"]
    counts = rng.poisson(lam * np.minimum(tau, t))
    _within(counts.astype(float), model.expected_purchases_new_customer(t))
    pmf = model.probability_of_purchases_new_customer(np.arange(0, 6), t)
    for k, p in pmf.items():
        _within((counts == k).astype(float), p)
    total = model.probability_of_purchases_new_customer(np.arange(0, 400), t).sum()
    assert total == pytest.approx(1, 1e-10)
    _within((tau > t).astype(float), model.survival(t))


def test_conditional_expectation_integrates_the_posterior_survival() -> None:
    """E[X(T, T+t) | data] = P(alive) (r+x)/(alpha+T) integral_0^t S(T+u | alive) du, with
    the integral by scipy's quad and P(alive) from the likelihood's two terms by quad."""
    r, alpha, b, s, beta = p = np.array([0.8, 5.0, 0.05, 1.5, 3.0])
    x, t_x, big_t, t = 3.0, 20.0, 40.0, 26.0
    star = beta + np.expm1(b * big_t)
    time_alive = integrate.quad(
        lambda u: (star / (star + np.exp(b * big_t) * np.expm1(b * u))) ** s, 0.0, t
    )[0]
    alive_term = (beta / star) ** s * (alpha + big_t) ** -(r + x)
    lik = np.exp(
        _loglik_by_quad(p, x, t_x, big_t) - gammaln(r + x) + gammaln(r) - r * np.log(alpha)
    )
    expected = alive_term / lik * (r + x) / (alpha + big_t) * time_alive
    model = GammaGompertzNBDModel.from_params(**dict(zip(SIM, p, strict=True)))
    customer = pd.DataFrame({"frequency": [x], "recency": [t_x], "T": [big_t]})
    assert model.probability_alive(customer).iloc[0] == pytest.approx(alive_term / lik, rel=1e-10)
    assert model.expected_purchases(customer, t).iloc[0] == pytest.approx(expected, rel=1e-10)


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize(
    "params",
    [
        [0.553, 10.578, 0.0002, 0.603, 0.0026],
        [0.8, 5.0, 0.05, 1.5, 3.0],
        [2.0, 1.0, 0.3, 0.5, 0.1],
        [0.3, 50.0, 0.01, 3.0, 20.0],
        [1.0, 2.0, 1.0, 2.0, 5.0],
    ],
)
def test_gradient_matches_finite_differences(params: list[float], cdnow: pd.DataFrame) -> None:
    data = _arrays(cdnow.iloc[::25])
    theta = np.log(params)

    def f(th: np.ndarray) -> float:
        return float(ggom._loglik_core(np.exp(th), data, gradient=False)[0].sum())

    def g(th: np.ndarray) -> np.ndarray:
        return ggom._loglik_core(np.exp(th), data, gradient=True)[1].sum(axis=1) * np.exp(th)

    scale = np.abs(g(theta)).max() + 1.0
    assert check_grad(f, g, theta, epsilon=1e-6) / scale < 1e-5
    # the weighted total used by the optimiser agrees with the per-row gradient
    model = GammaGompertzNBDModel()
    weights = np.linspace(0.5, 2.0, len(data["T"]))
    total, grad = model._weighted_loglik_grad(np.exp(theta), data, weights)
    ll, per_row = model._loglik_grad(np.exp(theta), data)
    assert total == pytest.approx(float(weights @ ll), rel=1e-12)
    np.testing.assert_allclose(grad, weights @ per_row, rtol=1e-10)


def test_gradient_at_random_points_with_heavy_buyers() -> None:
    rng = np.random.default_rng(3)
    frame = _simulate(200, SIM, seed=4)
    frame.loc[:2, list(COLUMNS)] = [[10_000, 9_000, 10_000]] * 3
    data = _arrays(frame)
    for _ in range(15):
        params = np.exp(rng.normal(0.0, 1.2, 5))
        theta = np.log(params)

        def f(th: np.ndarray) -> float:
            return float(ggom._loglik_core(np.exp(th), data, gradient=False)[0].sum())

        def g(th: np.ndarray) -> np.ndarray:
            return ggom._loglik_core(np.exp(th), data, gradient=True)[1].sum(axis=1) * np.exp(th)

        assert np.isfinite(f(theta)) and np.all(np.isfinite(g(theta)))
        assert check_grad(f, g, theta, epsilon=1e-6) / (np.abs(g(theta)).max() + 1.0) < 1e-5


# ------------------------------------------------------------------ recovery
@pytest.mark.slow
@pytest.mark.parametrize(
    ("truth", "seed"),
    [
        ({"r": 2.0, "alpha": 4.0, "b": 0.1, "s": 2.0, "beta": 10.0}, 21),
        (SIM, 22),  # less information on lifetimes: purchases are rarer
    ],
)
def test_parameter_recovery_with_intervals_covering_the_truth(
    truth: dict[str, float], seed: int
) -> None:
    frame = _simulate(6_000, truth, seed=seed)
    model = GammaGompertzNBDModel().fit(frame)
    summary = model.summary
    for name, value in truth.items():
        assert summary.loc[name, "lower_95"] < value < summary.loc[name, "upper_95"], name
    assert np.all(summary["std_error"] / summary["estimate"] < 1.0)
    assert model.n_patterns_ == len(frame)  # continuous recency: no two patterns alike
    # the maximum: at least the likelihood of the truth
    truth_ll = ggom._loglik_core(np.array(list(truth.values())), _arrays(frame), gradient=False)
    assert model.log_likelihood_ >= truth_ll[0].sum()


# ------------------------------------------------------------------ persistence, CLV, evaluation
def test_save_load_round_trip(tmp_path, cdnow_fit: GammaGompertzNBDModel) -> None:
    path = cdnow_fit.save(tmp_path / "ggom.json")
    loaded = load_model(path)
    assert isinstance(loaded, GammaGompertzNBDModel)
    pd.testing.assert_series_equal(loaded.params_, cdnow_fit.params_)
    assert loaded.log_likelihood_ == cdnow_fit.log_likelihood_ and loaded.freq_ == "W"
    pd.testing.assert_frame_equal(loaded.variance_matrix_, cdnow_fit.variance_matrix_)
    customers = pd.DataFrame({"frequency": [0, 2, 7], "recency": [0, 30.4, 35], "T": [39.0] * 3})
    pd.testing.assert_series_equal(
        loaded.expected_purchases(customers, "52W"), cdnow_fit.expected_purchases(customers, 52)
    )
    assert GammaGompertzNBDModel.load(path).n_patterns_ == cdnow_fit.n_patterns_


def test_clv_equals_the_pareto_limit(cdnow: pd.DataFrame) -> None:
    b = 1e-10
    values = dict(PARETO)
    values.update(b=b, beta=PARETO["beta"] * b)
    gg = GammaGompertzNBDModel.from_params(**values, freq="W")
    pn = ParetoNBDModel.from_params(**PARETO, freq="W")
    customers = cdnow.iloc[::50].assign(monetary_value=1.0)
    clv_gg = custval.customer_lifetime_value(gg, 1.0, customers, horizon="52W")
    clv_pn = custval.customer_lifetime_value(pn, 1.0, customers, horizon="52W")
    np.testing.assert_allclose(clv_gg, clv_pn, rtol=1e-6)
    table = custval.customer_value_table(gg, 1.0, customers, horizon="52W", n_draws=0)
    np.testing.assert_allclose(table["p_alive"], gg.probability_alive(customers))
    np.testing.assert_allclose(table["clv"], clv_gg)
    # horizon="inf" through the model's value kernel: its DERT to infinity
    forever = custval.customer_lifetime_value(gg, 1.0, customers, horizon="inf")
    np.testing.assert_allclose(
        forever, gg.discounted_expected_residual_transactions(customers, annual_discount_rate=0.1)
    )


def test_dert_equals_the_value_table_and_the_pareto_limit(cdnow: pd.DataFrame) -> None:
    """DERT by one quadrature against the CLV's integral of expected_purchases over time
    (clv.py's generic exact path), against the Pareto/NBD's DERT (U(s, s; z)) as b -> 0, and
    undiscounted to infinity against expected_purchases over a horizon long enough."""
    model = GammaGompertzNBDModel.from_params(**SIM, freq="W")
    customers = cdnow.iloc[::20].assign(monetary_value=1.0)
    dert = model.discounted_expected_residual_transactions(
        customers, annual_discount_rate=0.1, t="52W"
    )
    clv = custval.customer_lifetime_value(
        model, 1.0, customers, horizon="52W", annual_discount_rate=0.1
    )
    np.testing.assert_allclose(dert, clv, rtol=1e-9)
    np.testing.assert_allclose(
        model.discounted_expected_residual_transactions(customers, 0.0),
        model.expected_purchases(customers, 5_000.0),
        rtol=1e-10,
    )
    b = 1e-10
    values = dict(PARETO)
    values.update(b=b, beta=PARETO["beta"] * b)
    limit = GammaGompertzNBDModel.from_params(**values, freq="W")
    pareto = ParetoNBDModel.from_params(**PARETO, freq="W")
    np.testing.assert_allclose(
        limit.discounted_expected_residual_transactions(customers, 0.0027),
        pareto.discounted_expected_residual_transactions(customers, 0.0027),
        rtol=1e-7,
    )
    with pytest.raises(DataError, match="give exactly one of"):
        model.discounted_expected_residual_transactions(customers)
    with pytest.raises(DataError, match="must be finite and >= 0"):
        model.discounted_expected_residual_transactions(customers, -0.1)


@pytest.mark.filterwarnings("ignore:GGom/NBD model. the Hessian")
def test_compare_models_takes_the_ggom(cdnow_sample_path) -> None:
    log = custval.datasets.load_cdnow(cdnow_sample_path, which="sample")
    split = custval.calibration_holdout_split(
        log, calibration_end="1997-09-30", observation_end="1998-06-30", freq="W"
    )
    models = {
        "GGom/NBD": GammaGompertzNBDModel().fit(split),
        "Pareto/NBD": ParetoNBDModel().fit(split),
    }
    table = ev.compare_models(models, split, metric="log_likelihood")
    assert set(table.index) == set(models)
    # nested models: the GGom/NBD's likelihood is at least the Pareto/NBD's
    assert (
        table.loc["GGom/NBD", "log_likelihood"] >= table.loc["Pareto/NBD", "log_likelihood"] - 1e-3
    )
    assert np.isfinite(table.loc["GGom/NBD", "rmse"])


# ------------------------------------------------------------------ errors
def test_errors_name_the_problem() -> None:
    with pytest.raises(DataError, match=r"missing \['beta'\]"):
        GammaGompertzNBDModel.from_params(r=1, alpha=1, b=1, s=1)
    model = GammaGompertzNBDModel.from_params(**SIM)
    with pytest.raises(DataError, match="n must be whole numbers"):
        model.probability_of_purchases_new_customer(1.5, 10)
    bad = pd.DataFrame({"frequency": [1], "recency": [50.0], "T": [40.0]})
    with pytest.raises(DataError, match="recency"):
        model.probability_alive(bad)
    with pytest.raises(DataError, match="t must be finite and >= 0"):
        model.expected_purchases_new_customer(-1)


# ------------------------------------------------------------------ numerics at the edges
def test_death_integral_with_a_fast_hazard_after_a_delay_is_exact() -> None:
    # b large against the interval: the Gompertz factor turns from growth into decay within
    # ~1/b of d = log(beta - 1) / b (complex singularities at d +- i pi / b), where a fit's
    # best point can lie (nobody dies before d); the graded pieces keep the rule exact
    p = np.array([0.85, 16.0, 6.0, 0.005, np.exp(30.0)])
    r, alpha, b, s, beta = p
    d = np.log(beta - 1.0) / b
    for x, t_x, big_t in [(0, 0.0, 40.0), (2, 3.0, 50.0), (3, 4.8, 20.0), (1, 10.0, 30.0)]:

        def integrand(tau: float, x: float = x) -> float:
            log_f = b * tau - (s + 1) * np.log(beta + np.expm1(b * tau))
            return np.exp(log_f - (r + x) * np.log(alpha + tau) + r * np.log(alpha))

        points = [q for q in (d - 1.0, d - 0.2, d, d + 0.2, d + 1.0) if t_x < q < big_t]
        j = integrate.quad(
            integrand, t_x, big_t, points=points or None, epsabs=0.0, epsrel=1e-13, limit=500
        )[0]
        log_j, _ = ggom._log_death_integral(
            p, np.array([float(x)]), np.array([t_x]), np.array([big_t]), gradient=False
        )
        # J carries beta^s (see _log_death_integral)
        assert log_j[0] == pytest.approx(np.log(j) + s * np.log(beta), rel=1e-12, abs=1e-12)


def test_loglik_and_gradient_are_exact_far_along_the_ridges() -> None:
    # r, alpha -> inf with r / alpha fixed (one purchase rate for all) and s, beta -> inf
    # with s / beta fixed (one Gompertz eta for all): the log-likelihood converges at rate
    # 1/alpha. Written as differences of gammaln and of logs it would carry errors of ~1e-4
    # per customer at 1e11, and the optimiser would follow that noise on such a ridge.
    data = _arrays(_simulate(200, SIM, seed=5))
    lls, grads = [], []
    for scale in (1e9, 1e11, 1e13):
        theta = np.log([0.15 * scale, scale, 0.05, 0.4 * scale, scale])
        ll, grad = ggom._loglik_core(np.exp(theta), data, gradient=True)
        lls.append(ll.sum())
        grads.append(grad.sum(axis=1) * np.exp(theta))
    assert lls[1] == pytest.approx(lls[2], rel=1e-10)
    assert lls[0] == pytest.approx(lls[2], rel=1e-8)
    # along the ridge (r, alpha up together; s, beta up together) the slope vanishes
    for grad in grads[1:]:
        assert abs(grad[0] + grad[1]) < 1e-6 and abs(grad[3] + grad[4]) < 1e-6
