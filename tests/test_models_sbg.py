"""sBG: Fader & Hardie (2007) cohorts, curves, DERL, multi-cohort fits, recovery, errors."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from scipy.special import betaln

from custval import CustvalWarning, DataError, ShiftedBetaGeoModel, load_model
from custval.models import shifted_beta_geo as sbg

# Fader & Hardie (2007), "How to project customer retention": customers active at the start
# of years 0-7 of a cohort of 1,000, and their maximum-likelihood estimates
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


@pytest.mark.parametrize(
    ("counts", "alpha", "beta"), [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)]
)
def test_fader_hardie_2007_estimates(counts: list[int], alpha: float, beta: float) -> None:
    model = ShiftedBetaGeoModel().fit(counts)
    assert model.params_["alpha"] == pytest.approx(alpha, abs=6e-4)
    assert model.params_["beta"] == pytest.approx(beta, abs=6e-4)
    assert model.n_customers_ == 1000 and model.n_cohorts_ == 1
    assert np.all(np.isfinite(model.summary["std_error"]))
    # the fitted survival curve reproduces the observed survivors closely
    survival = model.survival(np.arange(8)) * 1000
    assert np.max(np.abs(survival.to_numpy() - counts)) < 20


def test_log_likelihood_by_hand() -> None:
    alpha, beta = 0.704, 1.182
    lost = -np.diff(REGULAR)
    t = np.arange(1, 8)
    expected = np.sum(lost * (betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)))
    expected += REGULAR[-1] * (betaln(alpha, beta + 7) - betaln(alpha, beta))
    model = ShiftedBetaGeoModel().fit(REGULAR)
    data, weights = model._prepare_fit(REGULAR, None)
    ll = sbg._loglik_grad(np.array([alpha, beta]), data)[0]
    assert float(weights @ ll) == pytest.approx(expected, rel=1e-12)
    assert model.log_likelihood_ == pytest.approx(-1680.27, abs=0.01)


def test_curves_and_their_identities() -> None:
    model = ShiftedBetaGeoModel.from_params(alpha=0.704, beta=1.182)
    t = np.arange(1, 30)
    survival = model.survival(np.arange(0, 30)).to_numpy()
    retention = model.retention_rate(t)
    churn = model.churn_probability(t)
    assert retention.index.name == "period" and list(retention.index) == list(t)
    np.testing.assert_allclose(retention, survival[1:] / survival[:-1], rtol=1e-12)
    np.testing.assert_allclose(churn, survival[:-1] - survival[1:], rtol=1e-10)
    assert np.all(np.diff(retention) > 0)  # retention rises: the churn-prone leave first
    assert model.survival(0).iloc[0] == 1.0


def test_derl_and_del_equal_their_sums() -> None:
    alpha, beta = 0.704, 1.182
    model = ShiftedBetaGeoModel.from_params(alpha=alpha, beta=beta)
    d = 0.1
    t = np.arange(0, 5_000)

    def survival(k: np.ndarray) -> np.ndarray:
        return np.exp(betaln(alpha, beta + k) - betaln(alpha, beta))

    assert model.discounted_expected_lifetime(d) == pytest.approx(
        np.sum(survival(t) / (1 + d) ** t), rel=1e-10
    )
    derl = model.discounted_expected_residual_lifetime(d, renewals_so_far=[0, 4, 10])
    for renewals, value in derl.items():
        n = renewals + 1
        future = np.arange(n, 5_000)
        reference = np.sum(survival(future) / survival(n - 1) / (1 + d) ** (future - n))
        assert value == pytest.approx(reference, rel=1e-10)
    assert derl.is_monotonic_increasing  # survivors are the loyal ones
    # with the Regular cohort's estimates, a customer after 4 renewals is worth 5.89 payments
    assert model.discounted_expected_residual_lifetime(d, renewals_so_far=4) == pytest.approx(
        5.894, abs=1e-3
    )


def test_expected_lifetime() -> None:
    assert ShiftedBetaGeoModel.from_params(alpha=1.5, beta=3.0).expected_lifetime() == 7.0
    model = ShiftedBetaGeoModel.from_params(alpha=3.0, beta=4.0)
    t = np.arange(0, 20_000)
    series = np.sum(np.exp(betaln(3.0, 4.0 + t) - betaln(3.0, 4.0)))
    assert model.expected_lifetime() == pytest.approx(series, rel=1e-6)  # truncated sum
    assert model.expected_lifetime([0, 2]).tolist() == [2.0, 3.0]
    assert ShiftedBetaGeoModel.from_params(alpha=0.7, beta=1.2).expected_lifetime() == np.inf


def test_several_cohorts_share_the_parameters() -> None:
    one = ShiftedBetaGeoModel().fit(REGULAR)
    frame = pd.DataFrame({"2001": REGULAR, "2002": REGULAR[:5] + [np.nan] * 3})
    both = ShiftedBetaGeoModel().fit(frame)
    ragged = ShiftedBetaGeoModel().fit([REGULAR, REGULAR[:5]])
    assert both.n_cohorts_ == 2 and both.n_customers_ == 2000
    pd.testing.assert_series_equal(both.params_, ragged.params_)
    as_dict = ShiftedBetaGeoModel().fit({"a": REGULAR, "b": REGULAR[:5]})
    pd.testing.assert_series_equal(both.params_, as_dict.params_, rtol=1e-9)
    doubled = ShiftedBetaGeoModel().fit(np.array([REGULAR, REGULAR]))
    pd.testing.assert_series_equal(doubled.params_, one.params_, rtol=1e-6)
    series = ShiftedBetaGeoModel().fit(pd.Series(REGULAR, name="regular"))
    pd.testing.assert_series_equal(series.params_, one.params_)


@pytest.mark.parametrize("params", [[0.704, 1.182], [5.0, 0.3], [0.05, 20.0]])
def test_gradient_matches_finite_differences(params: list[float]) -> None:
    data, weights = ShiftedBetaGeoModel()._prepare_fit([REGULAR, HIGH_END], None)
    theta = np.log(params)

    def f(th: np.ndarray) -> float:
        return float(weights @ sbg._loglik_grad(np.exp(th), data)[0])

    def g(th: np.ndarray) -> np.ndarray:
        return weights @ sbg._loglik_grad(np.exp(th), data)[1] * np.exp(th)

    assert check_grad(f, g, theta, epsilon=1e-7) / (np.abs(g(theta)).max() + 1) < 1e-5


def test_parameter_recovery_on_simulated_cohorts() -> None:
    rng = np.random.default_rng(17)
    alpha, beta = 0.9, 2.5
    churn = rng.beta(alpha, beta, 60_000)
    lifetime = rng.geometric(churn)  # periods until churn, >= 1
    counts = [(lifetime > t).sum() for t in range(13)]
    model = ShiftedBetaGeoModel().fit(counts)
    for name, value in (("alpha", alpha), ("beta", beta)):
        estimate, se = model.summary.loc[name, ["estimate", "std_error"]]
        assert abs(estimate - value) < 4 * se and estimate == pytest.approx(value, rel=0.1)


def test_extreme_cohorts() -> None:
    everyone_stays = ShiftedBetaGeoModel(penalizer_coef=0.001).fit([100, 100, 100, 99])
    assert everyone_stays.survival(3).iloc[0] > 0.95
    # halving every period: no heterogeneity, so the supremum of the likelihood is the geometric
    # model's, reached as alpha and beta run off together along a ridge. What holds on every
    # CPU: the fitted curve and log-likelihood are the geometric MLE's, and any warning is the
    # documented ridge/boundary one (whether the last Hessian is numerically definite is not).
    active = [100, 50, 25, 12, 6, 3, 0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        all_gone = ShiftedBetaGeoModel().fit(active)
    churned = -np.diff(active)
    periods = np.arange(1, len(active))
    churn = churned.sum() / (churned @ periods)  # geometric MLE of the churn probability
    geometric_ll = churned.sum() * np.log(churn) + churned @ (periods - 1) * np.log1p(-churn)
    assert np.all(np.isfinite(all_gone.params_))
    assert all_gone.log_likelihood_ == pytest.approx(geometric_ll, rel=1e-9)
    assert all_gone.retention_rate([1, 4]).to_numpy() == pytest.approx(1 - churn, abs=1e-6)
    assert all_gone.convergence_ in {"optimum", "ridge", "boundary"}
    for warning in caught:
        assert issubclass(warning.category, CustvalWarning)
        assert re.search(
            r"flat along a ridge|edge of the search|not positive definite", str(warning.message)
        )
    big = ShiftedBetaGeoModel().fit(np.round(1e9 * np.array(REGULAR) / 1000))
    assert big.params_["alpha"] == pytest.approx(0.704, abs=6e-4)
    assert np.isfinite(big.discounted_expected_residual_lifetime(1e-4, renewals_so_far=1000))


def test_save_load_round_trip(tmp_path) -> None:
    model = ShiftedBetaGeoModel().fit([REGULAR, HIGH_END])
    loaded = load_model(model.save(tmp_path / "sbg.json"))
    assert isinstance(loaded, ShiftedBetaGeoModel) and loaded.n_cohorts_ == 2
    pd.testing.assert_frame_equal(loaded.summary, model.summary)
    pd.testing.assert_series_equal(loaded.survival([1, 5]), model.survival([1, 5]))


def test_errors_name_the_problem() -> None:
    with pytest.raises(DataError, match="cohort 0 increases at period 2 \\(631 -> 700\\)"):
        ShiftedBetaGeoModel().fit([1000, 631, 700])
    with pytest.raises(DataError, match="needs at least 2 counts"):
        ShiftedBetaGeoModel().fit([1000])
    with pytest.raises(DataError, match="active_counts is empty"):
        ShiftedBetaGeoModel().fit({})
    with pytest.raises(DataError, match="1 missing, infinite or negative values"):
        ShiftedBetaGeoModel().fit([1000, np.nan, 300])
    with pytest.raises(DataError, match="must be numbers of active customers"):
        ShiftedBetaGeoModel().fit(["a", "b"])
    with pytest.raises(DataError, match="pass weights=None"):
        ShiftedBetaGeoModel().fit(REGULAR, weights=[1] * 8)
    model = ShiftedBetaGeoModel.from_params(alpha=0.704, beta=1.182)
    with pytest.raises(DataError, match="discount_rate must be a finite rate per period > 0"):
        model.discounted_expected_residual_lifetime(0)
    with pytest.raises(DataError, match="t must be whole numbers of periods >= 1"):
        model.retention_rate(0)
    with pytest.raises(DataError, match="renewals_so_far must be whole numbers of periods >= 0"):
        model.expected_lifetime(-1)
