"""Pareto/NBD: published CDNOW estimates, lifetimes agreement, gradients, recovery, extremes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.optimize import check_grad

from conftest import shared_file
from custval import DataError, ParetoNBDModel, load_model
from custval._rows import compress_rows
from custval.models import pareto_nbd

PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}  # FHL 2005, CDNOW weeks


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    frame = pd.read_csv(shared_file("cdnow", "cdnow_customers_summary.csv"), index_col="ID")
    frame.attrs["freq"] = "W"
    return frame


@pytest.fixture(scope="module")
def cdnow_fit(cdnow: pd.DataFrame) -> ParetoNBDModel:
    return ParetoNBDModel().fit(cdnow)


@pytest.fixture(scope="module")
def oracle():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import ParetoNBDFitter
    fitter = ParetoNBDFitter()
    fitter.params_ = pd.Series(PUBLISHED)
    return fitter


def _simulate(n: int, params: dict[str, float], seed: int) -> pd.DataFrame:
    """Pareto/NBD customers observed for T in [26, 78] weeks (continuous time)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    mu = rng.gamma(params["s"], 1.0 / params["beta"], n)
    big_t = rng.uniform(26.0, 78.0, n)
    observed = np.minimum(rng.exponential(1.0 / mu), big_t)
    x = rng.poisson(lam * observed)
    last = observed * rng.random(n) ** (1.0 / np.maximum(x, 1))  # max of x uniforms
    return pd.DataFrame({"frequency": x, "recency": np.where(x > 0, last, 0.0), "T": big_t})


# ------------------------------------------------------------------ published numbers
def test_cdnow_estimates_match_fader_hardie_lee(cdnow_fit: ParetoNBDModel) -> None:
    est = cdnow_fit.params_
    for name, value in PUBLISHED.items():
        assert est[name] == pytest.approx(value, abs=1.5e-3), name  # published to 3 decimals
    assert cdnow_fit.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)
    summary = cdnow_fit.summary
    assert np.all(np.isfinite(summary["std_error"])) and np.all(summary["std_error"] > 0)
    # the standard errors of the fit (lifetimes offers none; reference: BTYD / our Hessian)
    assert summary.loc["r", "std_error"] == pytest.approx(0.0476, rel=0.02)
    assert summary.loc["beta", "std_error"] == pytest.approx(6.21, rel=0.02)
    assert cdnow_fit.aic == pytest.approx(2 * 4 + 2 * 9594.974, abs=0.01)


def test_loglik_equals_lifetimes(cdnow: pd.DataFrame, oracle) -> None:
    data = {c: cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T")}
    params = np.array(list(PUBLISHED.values()))
    ll = pareto_nbd._loglik_grad(params, data)[0]
    reference = oracle._conditional_log_likelihood(
        params, data["frequency"], data["recency"], data["T"]
    )
    np.testing.assert_allclose(ll, reference, rtol=1e-12, atol=1e-11)


# ------------------------------------------------------------------ predictions vs lifetimes
def test_predictions_equal_lifetimes(cdnow: pd.DataFrame, oracle) -> None:
    model = ParetoNBDModel.from_params(**PUBLISHED, freq="W")
    x, t_x, big_t = (cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    with np.errstate(all="ignore"):
        alive_ref = oracle.conditional_probability_alive(x, t_x, big_t)
        expected_ref = oracle.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, big_t)
    finite = np.isfinite(alive_ref) & np.isfinite(expected_ref)
    assert finite.mean() > 0.99
    np.testing.assert_allclose(
        model.probability_alive(cdnow).to_numpy()[finite], alive_ref[finite], rtol=1e-6
    )
    np.testing.assert_allclose(
        model.expected_purchases(cdnow, "39W").to_numpy()[finite], expected_ref[finite], rtol=1e-6
    )
    t = np.array([1.0, 10.0, 39.0, 78.0])
    np.testing.assert_allclose(
        model.expected_purchases_new_customer(t).to_numpy(),
        oracle.expected_number_of_purchases_up_to_time(t),
        rtol=1e-10,
    )


def test_probability_of_purchases_is_a_distribution_with_the_right_mean() -> None:
    model = ParetoNBDModel.from_params(**PUBLISHED)
    n = np.arange(0, 400)
    pmf = model.probability_of_purchases_new_customer(n, 39)
    assert pmf.index.name == "n" and np.all(pmf >= 0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    assert float((pmf * n).sum()) == pytest.approx(model.expected_purchases_new_customer(39))
    # note 008 by direct quadrature of its integral for one n
    r, alpha, s, beta = PUBLISHED.values()

    def negbin(k: int, tau: float) -> float:
        from scipy.stats import nbinom

        return nbinom.pmf(k, r, alpha / (alpha + tau))

    for k in (0, 3):
        dead = integrate.quad(
            lambda tau, k=k: negbin(k, tau) * s * beta**s / (beta + tau) ** (s + 1), 0, 39
        )[0]
        reference = negbin(k, 39) * (beta / (beta + 39)) ** s + dead
        ours = model.probability_of_purchases_new_customer(k, 39)
        assert ours == pytest.approx(reference, rel=1e-8)


@pytest.mark.slow
def test_dert_equals_discounted_integral_of_expected_purchases(cdnow: pd.DataFrame) -> None:
    """FHL 2005 eq. 2 against integral_0^inf delta e^(-delta t) E[X(T, T+t)] dt."""
    model = ParetoNBDModel.from_params(**PUBLISHED, freq="W")
    customers = cdnow.iloc[[0, 1, 5, 100, 1500]]
    delta = 0.0027  # 15% a year, weekly (FHL 2005)
    dert = model.discounted_expected_residual_transactions(customers, delta)
    params = np.array(list(PUBLISHED.values()))
    for label, row in customers.iterrows():
        history = (row["frequency"], row["recency"], row["T"])

        def integrand(t: float, history: tuple = history) -> float:
            return delta * np.exp(-delta * t) * pareto_nbd._expected_purchases(params, *history, t)

        reference = integrate.quad(integrand, 0, np.inf, limit=200, epsrel=1e-11)[0]
        assert dert[label] == pytest.approx(reference, rel=1e-8)
    annual = model.discounted_expected_residual_transactions(customers, annual_discount_rate=0.15)
    weekly = np.log(1.15) * 7 / 365.2425
    np.testing.assert_allclose(
        annual, model.discounted_expected_residual_transactions(customers, weekly), rtol=1e-12
    )


def test_dert_confluent_function_matches_scipy_where_scipy_is_accurate() -> None:
    from scipy.special import hyperu

    for s in (0.3, 0.606, 1.0, 2.5):
        z = np.array([1e-4, 0.01, 0.3, 1.0, 5.0])
        np.testing.assert_allclose(
            pareto_nbd._log_h_dert(s, z), s * np.log(z) + np.log(hyperu(s, s, z)), rtol=1e-9
        )
    assert np.all(np.isfinite(pareto_nbd._log_h_dert(10.0, np.array([1e-6, 1e-3, 1e6]))))


# ------------------------------------------------------------------ gradient and numerics
@pytest.mark.parametrize(
    "params",
    [
        [0.553, 10.578, 0.606, 11.669],
        [2.0, 1.0, 0.5, 30.0],  # alpha << beta: z near 1, quadrature branch
        [0.3, 50.0, 3.0, 2.0],  # alpha >> beta
        [1.0, 5.0, 1.0, 5.0],  # alpha == beta: z = 0
        [0.05, 0.2, 0.02, 0.5],
    ],
)
def test_gradient_matches_finite_differences(params: list[float], cdnow: pd.DataFrame) -> None:
    rows = cdnow.iloc[::25]
    data = {c: rows[c].to_numpy(float) for c in ("frequency", "recency", "T")}
    theta = np.log(params)

    def f(th: np.ndarray) -> float:
        return float(pareto_nbd._loglik_grad(np.exp(th), data)[0].sum())

    def g(th: np.ndarray) -> np.ndarray:
        return pareto_nbd._loglik_grad(np.exp(th), data)[1].sum(axis=0) * np.exp(th)

    scale = np.abs(g(theta)).max() + 1.0
    assert check_grad(f, g, theta, epsilon=1e-6) / scale < 1e-5
    # the weighted version used by the optimiser agrees with the per-row gradient
    weights = np.linspace(0.5, 2.0, len(rows))
    total, grad = pareto_nbd._weighted_loglik_grad(np.exp(theta), data, weights)
    ll, per_row = pareto_nbd._loglik_grad(np.exp(theta), data)
    assert total == pytest.approx(float(weights @ ll), rel=1e-12)
    np.testing.assert_allclose(grad, weights @ per_row, rtol=1e-9, atol=1e-9)


def test_gradient_at_random_points_with_heavy_buyers() -> None:
    """Central differences at 30 random parameter points (both branches of log J)."""
    rng = np.random.default_rng(8)
    data = _simulate(300, {"r": 0.8, "alpha": 3.0, "s": 0.7, "beta": 20.0}, seed=4)
    data.loc[:4, ["frequency", "recency", "T"]] = [[10_000, 9_000, 10_000]] * 5
    arrays = {c: data[c].to_numpy(float) for c in ("frequency", "recency", "T")}
    for _ in range(30):
        params = np.exp(rng.normal(0.0, 1.5, 4))
        ll, grad = pareto_nbd._loglik_grad(params, arrays)
        assert np.all(np.isfinite(ll)) and np.all(np.isfinite(grad))
        for i in range(4):
            step = np.zeros(4)
            step[i] = 1e-4 * params[i]
            central = (
                pareto_nbd._loglik_grad(params + step, arrays)[0]
                - pareto_nbd._loglik_grad(params - step, arrays)[0]
            ) / (2 * step[i])
            # round-off of ll (sums of terms ~1e5 for the heavy rows) over the step
            scale = np.abs(grad[:, i]) + 1e-8 * (1.0 + np.abs(ll)) / params[i] + 1e-4
            assert np.max(np.abs(central - grad[:, i]) / scale) < 1e-4, (params, i)


def test_series_and_quadrature_agree() -> None:
    """Both evaluations of log J (and its gradient) where both are valid."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 60, 200).astype(float)
    big_t = rng.uniform(1, 400, 200)
    t_x = np.where(x > 0, big_t * rng.random(200), 0.0)
    for params in ([0.5, 10.0, 0.7, 14.0], [1.3, 30.0, 0.4, 12.0]):
        params = np.array(params)
        keep = t_x < big_t
        series, g_series = pareto_nbd._log_j(params, x[keep], t_x[keep], big_t[keep])
        quad, g_quad = pareto_nbd._log_j_quadrature(params, x[keep], t_x[keep], big_t[keep])
        np.testing.assert_allclose(series, quad, rtol=1e-11, atol=1e-10)
        np.testing.assert_allclose(g_series.T, g_quad, rtol=1e-8, atol=1e-9)


def test_heavy_buyers_are_finite() -> None:
    heavy = pd.DataFrame(
        {
            "frequency": [10_000, 10_000, 5_000, 0, 1, 300],
            "recency": [9_999.0, 2_000.0, 9_000.0, 0.0, 5.0, 10_000.0],
            "T": [10_000.0] * 6,
        }
    )
    for params in (PUBLISHED, {"r": 0.55, "alpha": 74.0, "s": 0.61, "beta": 82.0}):
        model = ParetoNBDModel.from_params(**params)
        for values in (
            model.probability_alive(heavy),
            model.expected_purchases(heavy, 365),
            model.discounted_expected_residual_transactions(heavy, 0.0003),
        ):
            assert np.all(np.isfinite(values)) and np.all(values >= 0)
        data = {c: heavy[c].to_numpy(float) for c in heavy}
        for p in ([0.55, 74.0, 0.61, 82.0], [0.5, 1.0, 2.0, 500.0], [3.0, 900.0, 0.2, 0.5]):
            ll, grad = pareto_nbd._loglik_grad(np.array(p), data)
            assert np.all(np.isfinite(ll)) and np.all(np.isfinite(grad))
    # a buyer at every opportunity is almost surely alive and keeps buying at ~ x/T
    alive = ParetoNBDModel.from_params(**PUBLISHED).probability_alive(heavy.iloc[[0]])
    assert alive.iloc[0] > 0.99


def test_fit_on_a_heavy_buyer_base_converges() -> None:
    data = _simulate(3_000, {"r": 5.0, "alpha": 1.0, "s": 0.5, "beta": 50.0}, seed=5)
    data["T"] = data["T"] * 20
    data["recency"] = data["recency"] * 20
    model = ParetoNBDModel().fit(data)
    assert model.converged_ and data["frequency"].max() > 1_000
    assert np.all(np.isfinite(model.summary["std_error"]))


# ------------------------------------------------------------------ recovery, persistence
@pytest.mark.slow
def test_parameter_recovery_on_simulated_customers() -> None:
    truth = {"r": 0.55, "alpha": 10.6, "s": 0.6, "beta": 11.7}
    data = _simulate(60_000, truth, seed=11)
    model = ParetoNBDModel().fit(data)
    summary = model.summary
    for name, value in truth.items():
        assert abs(summary.loc[name, "estimate"] - value) < 4 * summary.loc[name, "std_error"]
        assert summary.loc[name, "estimate"] == pytest.approx(value, rel=0.15)


def test_save_load_round_trip(tmp_path, cdnow_fit: ParetoNBDModel, cdnow: pd.DataFrame) -> None:
    path = cdnow_fit.save(tmp_path / "pnbd.json")
    loaded = load_model(path)
    assert isinstance(loaded, ParetoNBDModel)
    pd.testing.assert_series_equal(loaded.params_, cdnow_fit.params_)
    pd.testing.assert_frame_equal(loaded.summary, cdnow_fit.summary)
    pd.testing.assert_series_equal(
        loaded.expected_purchases(cdnow, 10), cdnow_fit.expected_purchases(cdnow, 10)
    )


def test_patterns_are_compressed(cdnow: pd.DataFrame) -> None:
    doubled = pd.concat([cdnow, cdnow])
    model = ParetoNBDModel().fit(doubled)
    _, weights, _ = compress_rows({c: cdnow[c].to_numpy() for c in cdnow}, np.ones(len(cdnow)))
    assert model.n_patterns_ == len(weights) and model.n_customers_ == 2 * len(cdnow)
    assert model.params_["r"] == pytest.approx(PUBLISHED["r"], abs=1e-3)


# ------------------------------------------------------------------ errors
def test_errors_name_the_problem(cdnow: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"missing required column.*'T'"):
        ParetoNBDModel().fit(cdnow[["frequency", "recency"]])
    bad = cdnow.copy()
    bad.iloc[3, bad.columns.get_loc("recency")] = 99.0
    with pytest.raises(DataError, match="column 'recency' has 1 values greater than 'T'"):
        ParetoNBDModel().fit(bad)
    model = ParetoNBDModel.from_params(**PUBLISHED)
    with pytest.raises(DataError, match="give exactly one of continuous_discount_rate"):
        model.discounted_expected_residual_transactions(cdnow)
    with pytest.raises(DataError, match="discount rate must be finite and > 0"):
        model.discounted_expected_residual_transactions(cdnow, 0.0)
    with pytest.raises(DataError, match="annual_discount_rate needs the model's time unit"):
        model.discounted_expected_residual_transactions(cdnow, annual_discount_rate=0.1)
    with pytest.raises(DataError, match="n must be whole numbers of purchases >= 0"):
        model.probability_of_purchases_new_customer(-1, 10)
    with pytest.raises(DataError, match="t must be one horizon"):
        model.probability_of_purchases_new_customer(1, [10, 20])
    with pytest.raises(DataError, match="must be finite and >= 0"):
        model.expected_purchases(cdnow, -1)
    with pytest.raises(DataError, match="unit 'W' but the summary given is in unit 'D'"):
        daily = cdnow.copy()
        daily.attrs["freq"] = "D"
        ParetoNBDModel.from_params(**PUBLISHED, freq="W").probability_alive(daily)
