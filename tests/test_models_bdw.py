"""BdW: equal to the sBG at c = 1, the Fader & Hardie cohorts against a second, brute-force
maximization of the paper's likelihood, gradients, recovery, save/load and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad, minimize
from scipy.special import beta as beta_function

import custval
from custval import BetaDiscreteWeibullModel, DataError, ShiftedBetaGeoModel, load_model
from custval.models import beta_discrete_weibull as bdw
from custval.models import shifted_beta_geo as sbg

# Fader & Hardie (2007): customers active at the start of years 0-7 of two cohorts of 1,000
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


def _brute_force_fit(counts: list[int]) -> tuple[np.ndarray, float]:
    """FHLDS18's likelihood written directly with the beta function (S(t) = B(a, b + t^c) /
    B(a, b), P(T = t) = S(t-1) - S(t)) and maximized by Nelder-Mead: no gradient, no shared
    code with the model."""
    active = np.asarray(counts, dtype=float)
    t = np.arange(len(active))

    def negative_loglik(x: np.ndarray) -> float:
        a, b, c = np.exp(x)
        s = beta_function(a, b + t**c) / beta_function(a, b)
        return -(np.sum(-np.diff(active) * np.log(s[:-1] - s[1:])) + active[-1] * np.log(s[-1]))

    result = minimize(
        negative_loglik,
        np.zeros(3),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000, "maxfev": 40_000},
    )
    return np.exp(result.x), -result.fun


def _simulate_cohort(n: int, alpha: float, beta: float, c: float, periods: int, seed: int):
    """Active customers at the start of periods 0..periods of one simulated cohort."""
    rng = np.random.default_rng(seed)
    theta = rng.beta(alpha, beta, n)
    # discrete-Weibull lifetimes by inversion: P(T > t | theta) = (1 - theta)^(t^c)
    ratio = np.log(rng.random(n)) / np.log1p(-theta)
    lifetime = np.maximum(np.ceil(ratio ** (1.0 / c)), 1.0)
    return [int((lifetime > t).sum()) for t in range(periods + 1)]


# ------------------------------------------------------------------ c = 1 is the sBG
@pytest.mark.parametrize("counts", [REGULAR, HIGH_END])
def test_c_equal_one_is_the_sbg_exactly(counts: list[int]) -> None:
    model = BetaDiscreteWeibullModel()
    data, weights = model._prepare_fit(counts, None)
    for alpha, beta in [(0.704, 1.182), (0.668, 3.806), (5.0, 0.3)]:
        ll, grad = bdw._loglik_grad(np.array([alpha, beta, 1.0]), data)
        ll_sbg, grad_sbg = sbg._loglik_grad(np.array([alpha, beta]), data)
        np.testing.assert_allclose(ll, ll_sbg, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grad[:, :2], grad_sbg, rtol=1e-8, atol=1e-10)
        assert float(weights @ ll) == pytest.approx(float(weights @ ll_sbg), abs=1e-8)
    # the curves and valuations of c = 1 are the sBG's (its closed forms)
    one = BetaDiscreteWeibullModel.from_params(alpha=0.704, beta=1.182, c=1.0)
    ref = ShiftedBetaGeoModel.from_params(alpha=0.704, beta=1.182)
    t = np.arange(1, 40)
    pd.testing.assert_series_equal(one.survival(t), ref.survival(t), rtol=1e-10)
    pd.testing.assert_series_equal(one.retention_rate(t), ref.retention_rate(t), rtol=1e-10)
    pd.testing.assert_series_equal(one.churn_probability(t), ref.churn_probability(t), rtol=1e-9)
    pd.testing.assert_series_equal(
        one.discounted_expected_residual_lifetime(0.1, [0, 4, 20]),
        ref.discounted_expected_residual_lifetime(0.1, [0, 4, 20]),
        rtol=1e-10,
    )
    assert one.discounted_expected_lifetime(0.1) == pytest.approx(
        ref.discounted_expected_lifetime(0.1), rel=1e-10
    )


# ------------------------------------------------------------------ Fader & Hardie cohorts
@pytest.mark.parametrize("counts", [REGULAR, HIGH_END])
def test_cohort_fits_equal_a_brute_force_maximization(counts: list[int]) -> None:
    model = BetaDiscreteWeibullModel().fit(counts)
    params, loglik = _brute_force_fit(counts)
    np.testing.assert_allclose(model.params_.to_numpy(), params, rtol=1e-5)
    assert model.log_likelihood_ == pytest.approx(loglik, abs=1e-6)
    # nested: at least the sBG's likelihood (-1680.27 Regular, -1611.16 High End; FH07)
    sbg_fit = ShiftedBetaGeoModel().fit(counts)
    assert model.log_likelihood_ > sbg_fit.log_likelihood_
    # individual churn probabilities rise with tenure in both segments (c > 1), the finding
    # of FHLDS18 that aggregate retention rises through heterogeneity, not through c < 1;
    # the fit follows the observed retention rates' turns (High End dips in year 2)
    assert model.params_["c"] > 1.0
    observed = np.asarray(counts[1:4], dtype=float) / np.asarray(counts[:3], dtype=float)
    fitted = model.retention_rate([1, 2, 3]).to_numpy()
    np.testing.assert_array_equal(np.sign(np.diff(fitted)), np.sign(np.diff(observed)))
    assert np.all(np.diff(model.retention_rate(np.arange(2, 13))) > 0)
    assert np.all(np.isfinite(model.summary["std_error"]))
    assert model.aic == pytest.approx(6 - 2 * model.log_likelihood_)


def test_multi_cohort_fit_and_a_u_shaped_retention_curve() -> None:
    frame = pd.DataFrame({"2019": REGULAR, "2020": REGULAR[:5] + [np.nan] * 3})
    both = BetaDiscreteWeibullModel().fit(frame)
    assert both.n_cohorts_ == 2 and both.n_customers_ == 2000
    # FHLDS18: with c > 1 retention can first dip and then rise
    curve = BetaDiscreteWeibullModel.from_params(alpha=4.0, beta=40.0, c=2.5)
    rates = curve.retention_rate(np.arange(1, 30)).to_numpy()
    low = int(np.argmin(rates))
    assert 0 < low < len(rates) - 1
    assert np.all(np.diff(rates[: low + 1]) < 0) and np.all(np.diff(rates[low:]) > 0)


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize(
    "params", [[0.4556, 0.7793, 1.2835], [0.2, 1.4, 1.7], [3.0, 0.5, 0.4], [1.0, 8.0, 3.0]]
)
def test_gradient_matches_finite_differences(params: list[float]) -> None:
    model = BetaDiscreteWeibullModel()
    data, weights = model._prepare_fit({"a": REGULAR, "b": HIGH_END[:5]}, None)
    theta = np.log(params)

    def f(th: np.ndarray) -> float:
        return float(weights @ bdw._loglik_grad(np.exp(th), data)[0])

    def g(th: np.ndarray) -> np.ndarray:
        return weights @ bdw._loglik_grad(np.exp(th), data)[1] * np.exp(th)

    scale = np.abs(g(theta)).max() + 1.0
    assert check_grad(f, g, theta, epsilon=1e-7) / scale < 1e-5  # forward differences
    step = 1e-5
    central = [(f(theta + step * e) - f(theta - step * e)) / (2 * step) for e in np.eye(3)]
    np.testing.assert_allclose(g(theta), central, rtol=1e-7)


# ------------------------------------------------------------------ recovery
@pytest.mark.parametrize("truth", [(0.8, 2.0, 1.5), (1.5, 4.0, 0.6)])
def test_parameter_recovery_with_intervals_covering_the_truth(truth: tuple) -> None:
    cohorts = [_simulate_cohort(10_000, *truth, periods=12, seed=seed) for seed in (1, 2)]
    model = BetaDiscreteWeibullModel().fit(cohorts)
    summary = model.summary
    for name, value in zip(("alpha", "beta", "c"), truth, strict=True):
        assert summary.loc[name, "lower_95"] < value < summary.loc[name, "upper_95"], name
    assert summary.loc["c", "std_error"] < 0.1


# ------------------------------------------------------------------ persistence, errors
def test_save_load_round_trip(tmp_path) -> None:
    model = BetaDiscreteWeibullModel().fit(HIGH_END)
    path = model.save(tmp_path / "bdw.json")
    loaded = load_model(path)
    assert type(loaded) is BetaDiscreteWeibullModel and loaded.n_cohorts_ == 1
    pd.testing.assert_series_equal(loaded.params_, model.params_)
    pd.testing.assert_frame_equal(loaded.variance_matrix_, model.variance_matrix_)
    pd.testing.assert_series_equal(loaded.survival(np.arange(20)), model.survival(np.arange(20)))
    assert BetaDiscreteWeibullModel.load(path).log_likelihood_ == model.log_likelihood_


def test_errors_name_the_problem() -> None:
    model = BetaDiscreteWeibullModel.from_params(alpha=0.7, beta=1.2, c=1.3)
    with pytest.raises(DataError, match="mean lifetime has no closed form"):
        model.expected_lifetime()
    with pytest.raises(DataError, match="too small for the BdW's DERL"):
        model.discounted_expected_residual_lifetime(1e-7)
    with pytest.raises(DataError, match="discount_rate must be a finite rate"):
        model.discounted_expected_lifetime(0.0)
    with pytest.raises(DataError, match="increases at period 2"):
        BetaDiscreteWeibullModel().fit([1000, 600, 700])
    with pytest.raises(DataError, match=r"missing \['c'\]"):
        BetaDiscreteWeibullModel.from_params(alpha=1.0, beta=1.0)
    with pytest.raises(DataError, match="t must be whole numbers of periods >= 1"):
        model.retention_rate(0)
    # a subscription model values no purchases: the value table refuses it by name
    summary = pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0], "monetary_value": [5]})
    summary.attrs["freq"] = "M"
    monthly = BetaDiscreteWeibullModel.from_params(alpha=0.7, beta=1.2, c=1.3, freq="M")
    with pytest.raises(DataError, match="BdW model has no expected_purchases"):
        custval.customer_lifetime_value(monthly, 1.0, summary, horizon="12M")


def test_survival_is_exact_far_along_the_no_heterogeneity_ridge() -> None:
    # alpha, beta -> inf with alpha / (alpha + beta) = theta: everyone churns with theta, so
    # S(t) -> (1 - theta)^(t^c), to O(1/alpha). As a difference of betaln values (~1e11 at
    # 1e10) it would carry errors of ~1e-5 and could even exceed 1 (a positive log S).
    theta, c = 0.3, 1.4
    t = np.arange(0.0, 12.0)
    limit = t**c * np.log1p(-theta)
    for scale in (1e8, 1e10, 1e12):
        params = np.array([theta * scale, (1.0 - theta) * scale, c])
        log_s, grad = bdw._log_survival_grad(params, t)
        assert np.all(log_s <= 0.0)
        np.testing.assert_allclose(log_s, limit, rtol=0.0, atol=1e4 / scale + 1e-13)
        # the slope along the ridge (alpha, beta up together) is O(1/scale)
        along = grad[0] * params[0] + grad[1] * params[1]
        assert np.all(np.abs(along) < 1e4 / scale + 1e-12)
    # the likelihood of a cohort: churn terms log(S(t-1) - S(t)) at the limit too
    data = {"period": np.array([1.0, 2.0, 3.0, 3.0]), "censored": np.array([0.0, 0.0, 0.0, 1.0])}
    ll, _ = bdw._loglik_grad(np.array([theta * 1e12, (1.0 - theta) * 1e12, c]), data)
    s = np.exp(np.arange(4.0) ** c * np.log1p(-theta))
    expected = np.log([s[0] - s[1], s[1] - s[2], s[2] - s[3], s[3]])
    np.testing.assert_allclose(ll, expected, rtol=1e-9)
