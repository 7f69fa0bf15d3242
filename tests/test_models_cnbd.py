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
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
    calibration_holdout_split,
    load_cdnow,
)
from custval.models import bg_cnbd

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


@pytest.fixture(scope="module")
def grocery() -> pd.DataFrame:
    """BTYDplus' grocery log, 52 weeks of calibration (elog2cbs(groceryElog, T.cal =
    "2006-12-31")), as in the BTYDplus vignette and the RPS analysis."""
    log = pd.read_csv(shared_file("grocery", "groceryElog.csv"), parse_dates=["date"])
    split = calibration_holdout_split(
        log,
        calibration_end="2006-12-31",
        customer_id="cust",
        timestamp="date",
        amount=None,
        freq="D",
        include_litt=True,
    )
    return in_weeks(split)


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
        same.probability_of_purchases(np.arange(15), 39.0),
        classic.probability_of_purchases(np.arange(15), 39.0),
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
