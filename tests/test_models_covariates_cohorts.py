"""sBG and BdW with cohort-level covariates on the churn probability's Beta parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad

from _simulate_models import simulate_cohort_covariates
from custval import (
    BetaDiscreteWeibullModel,
    DataError,
    ShiftedBetaGeoModel,
    covariate_effects,
    load_model,
)

# Fader & Hardie (2007), Table 1 (active customers at the start of years 0..7)
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]
PLANS = pd.DataFrame({"plan": ["regular", "high end"]}, index=["regular", "high end"])
MODELS = [ShiftedBetaGeoModel, BetaDiscreteWeibullModel]
SHAPES = {ShiftedBetaGeoModel: {"alpha": 0.7, "beta": 1.5}, BetaDiscreteWeibullModel: {}}
SHAPES[BetaDiscreteWeibullModel] = {"alpha": 0.7, "beta": 1.5, "c": 1.3}


@pytest.fixture(scope="module")
def simulated():
    return simulate_cohort_covariates(
        0.7, 1.5, 1.0, {"price": 0.4}, {"region[US]": -0.5}, 40, 1500, random_state=2
    )


def _data(model, counts, cohorts):
    data, _ = model._prepare_fit(counts, None)
    spec = model.covariates_
    matrix = spec.encoding.matrix(cohorts.loc[list(counts)], spec.covariates)
    data.update({f"cov:{j}": matrix[model._row_cohort, j] for j in range(matrix.shape[1])})
    return model._prepare_patterns(data)


def test_saturated_plan_model_reproduces_the_published_cohort_fits():
    """With a covariate on both parameters for the two plans, the fit is the two separate
    fits of Fader & Hardie (2007): Regular 0.704, 1.182; High End 0.668, 3.806."""
    model = ShiftedBetaGeoModel().fit(
        {"regular": REGULAR, "high end": HIGH_END},
        cohorts=PLANS,
        alpha_covariates=["plan"],
        beta_covariates=["plan"],
    )
    assert model.convergence_ == "optimum"
    assert list(model.params_.index[2:]) == ["alpha:plan[regular]", "beta:plan[regular]"]
    regular = model.for_cohort(PLANS.loc["regular"])
    high_end = model.for_cohort(PLANS.loc["high end"])
    np.testing.assert_allclose(regular.params_, [0.704, 1.182], atol=6e-4)
    np.testing.assert_allclose(high_end.params_, [0.668, 3.806], atol=6e-4)
    separate = ShiftedBetaGeoModel().fit(REGULAR).log_likelihood_
    separate += ShiftedBetaGeoModel().fit(HIGH_END).log_likelihood_
    assert model.log_likelihood_ == pytest.approx(separate, abs=1e-6)
    pd.testing.assert_series_equal(
        regular.survival(range(8)),
        ShiftedBetaGeoModel().fit(REGULAR).survival(range(8)),
        rtol=1e-5,
    )


@pytest.mark.parametrize("cls", MODELS)
def test_zero_coefficients_equal_the_model_without_covariates(cls, simulated):
    counts, cohorts = simulated
    zero = {"alpha:price": 0.0, "beta:price": 0.0, "both:us": 0.0}
    numeric = cohorts.assign(us=(cohorts["region"] == "US").astype(float))
    with_cov = cls.from_params(**SHAPES[cls], **zero)
    plain = cls.from_params(**SHAPES[cls])
    data = _data(with_cov, counts, numeric)
    ll, grad = with_cov._loglik_grad(with_cov.params_.to_numpy(), data)
    plain_data, _ = plain._prepare_fit(counts, None)
    ll0, grad0 = plain._loglik_grad(plain.params_.to_numpy(), plain_data)
    k = len(SHAPES[cls])
    np.testing.assert_allclose(ll, ll0, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(grad[:, :k], grad0, rtol=1e-8, atol=1e-12)
    own = with_cov.for_cohort(numeric.iloc[3])
    np.testing.assert_allclose(own.params_, plain.params_, rtol=1e-12)
    pd.testing.assert_series_equal(own.survival(range(10)), plain.survival(range(10)))


@pytest.mark.parametrize("cls", MODELS)
def test_gradient_matches_finite_differences(cls, simulated):
    counts, cohorts = simulated
    model = cls.from_params(
        **SHAPES[cls], **{"alpha:price": 0.3, "beta:price": -0.2, "beta:us": -0.4}
    )
    data = _data(model, counts, cohorts.assign(us=(cohorts["region"] == "US").astype(float)))
    weights = np.random.default_rng(0).uniform(1.0, 50.0, len(data["period"]))
    start = model.params_.to_numpy()

    def total(p):
        return weights @ model._loglik_grad(p, data)[0]

    def gradient(p):
        return weights @ model._loglik_grad(p, data)[1]

    assert check_grad(total, gradient, start, epsilon=1e-7) < 1e-5 * np.abs(gradient(start)).max()


@pytest.mark.parametrize(
    ("cls", "c"), [(ShiftedBetaGeoModel, 1.0), (BetaDiscreteWeibullModel, 1.4)]
)
def test_fit_recovers_cohort_effects_with_intervals_at_their_nominal_rate(cls, c, tmp_path):
    """20 seeds of 40 cohorts x 1,500 subscribers: every parameter's 95% interval covers the
    truth in at least 16 of 20 fits (nominal 19; P(<= 15 | 95%) < 2%), and the errors in
    standard errors average near 0 (no bias)."""
    truth = {"alpha": 0.7, "beta": 1.5, "alpha:price": 0.4, "beta:region[US]": -0.5}
    if cls is BetaDiscreteWeibullModel:
        truth["c"] = c
    z, covered = [], []
    for seed in range(20):
        counts, cohorts = simulate_cohort_covariates(
            0.7, 1.5, c, {"price": 0.4}, {"region[US]": -0.5}, 40, 1500, random_state=100 + seed
        )
        model = cls().fit(
            counts, cohorts=cohorts, alpha_covariates=["price"], beta_covariates=["region"]
        )
        assert model.convergence_ == "optimum"
        table = model.summary
        z.append(
            [(table.at[k, "estimate"] - v) / table.at[k, "std_error"] for k, v in truth.items()]
        )
        covered.append(
            [table.at[k, "lower_95"] < v < table.at[k, "upper_95"] for k, v in truth.items()]
        )
    assert np.all(np.sum(covered, axis=0) >= 16), np.sum(covered, axis=0)
    assert np.all(np.abs(np.mean(z, axis=0)) < 0.6), np.mean(z, axis=0)
    # the last fit: the effect is real, the statements and save/load hold
    assert model.n_cohorts_ == 40
    assert table.at["alpha:price", "p_value"] < 1e-6
    plain = cls().fit(counts)
    assert model.log_likelihood_ > plain.log_likelihood_ + 20
    effects = covariate_effects(model)
    assert effects.at["beta:region[US]", "statement"].startswith("customers with region = US ")
    assert "less churn" in effects.at["beta:region[US]", "statement"]
    loaded = load_model(model.save(tmp_path / "cohorts.json"))
    row = cohorts.loc["cohort 07"]
    pd.testing.assert_series_equal(
        loaded.for_cohort(row).retention_rate(range(1, 6)),
        model.for_cohort(row).retention_rate(range(1, 6)),
    )


def test_cohort_covariates_errors_name_the_fix(simulated):
    counts, cohorts = simulated
    model = ShiftedBetaGeoModel().fit(counts, cohorts=cohorts, beta_covariates=["region"])
    with pytest.raises(DataError, match="for_cohort"):
        model.survival(3)
    with pytest.raises(DataError, match="no row in customers"):
        ShiftedBetaGeoModel().fit(counts, cohorts=cohorts.iloc[1:], beta_covariates=["region"])
    with pytest.raises(DataError, match="are columns of cohorts=<DataFrame with one row per"):
        ShiftedBetaGeoModel().fit(counts, beta_covariates=["region"])
    with pytest.raises(DataError, match="must be a DataFrame indexed by the cohorts' names"):
        ShiftedBetaGeoModel().fit(counts, cohorts=[1, 2], beta_covariates=["region"])
