"""Time-invariant covariates for BG/NBD and MBG/NBD (CLVTools' static covariates)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from scipy.stats import norm

from custval import BetaGeoModel, DataError, ModifiedBetaGeoModel, covariate_effects, load_model
from custval.datasets import simulate_beta_geo_covariates
from custval.models import beta_geo

BASE = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
PURCHASE = {"x_num": 0.3, "channel[referral]": 0.5}
DROPOUT = {"channel[referral]": -0.6}
MODELS = [BetaGeoModel, ModifiedBetaGeoModel]


@pytest.fixture(scope="module")
def simulated():
    return simulate_beta_geo_covariates(**BASE, purchase=PURCHASE, dropout=DROPOUT, n=4000)


def _design(model, summary, customers):
    """The prepared arrays a covariate model's likelihood sees (no compression)."""
    data = {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    spec = model.covariates_
    matrix = spec.encoding.matrix(customers, spec.covariates)
    data.update(model._fit_design(matrix, len(summary)))
    return data


@pytest.mark.parametrize("cls", MODELS)
def test_zero_coefficients_equal_the_model_without_covariates(cls, simulated):
    summary, customers = simulated
    customers = customers.assign(vip=(customers["x_num"] > 1).astype(float))
    zero = {"purchase:x_num": 0.0, "purchase:vip": 0.0, "dropout:vip": 0.0}
    with_cov = cls.from_params(**BASE, **zero, freq="W")
    plain = cls.from_params(**BASE, freq="W")
    params = with_cov.params_.to_numpy()
    ll_cov, grad_cov = beta_geo._loglik_grad_covariates(
        params, _design(with_cov, summary, customers), modified=cls._modified
    )
    ll, grad = beta_geo._loglik_grad(
        plain.params_.to_numpy(),
        {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")},
        modified=cls._modified,
    )
    np.testing.assert_allclose(ll_cov, ll, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(grad_cov[:, :4], grad, rtol=1e-8, atol=1e-10)
    for horizon in (0.0, 10.0, "20W"):
        np.testing.assert_allclose(
            with_cov.expected_purchases(summary, horizon, customers=customers),
            plain.expected_purchases(summary, horizon),
            rtol=1e-8,
            atol=1e-12,
        )
        np.testing.assert_allclose(
            with_cov.probability_alive(summary, horizon, customers=customers),
            plain.probability_alive(summary, horizon),
            rtol=1e-8,
            atol=1e-12,
        )
    profile = customers.head(3)
    np.testing.assert_allclose(
        with_cov.expected_purchases_new_customer(30.0, customers=profile),
        plain.expected_purchases_new_customer(30.0),
        rtol=1e-8,
    )


@pytest.mark.parametrize("cls", MODELS)
def test_covariate_gradient_matches_finite_differences(cls, simulated):
    summary, customers = simulated
    summary, customers = summary.head(300), customers.head(300)
    model = cls.from_params(
        **BASE, **{"purchase:x_num": 0.2, "dropout:x_num": -0.3, "purchase:vip": 0.4}
    )
    customers = customers.assign(vip=(customers["channel"] == "referral").astype(float))
    data = _design(model, summary, customers)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(summary))
    start = model.params_.to_numpy()

    def total(p):
        return beta_geo._loglik_grad_covariates(p, data, modified=cls._modified)[0].sum()

    def gradient(p):
        return beta_geo._loglik_grad_covariates(p, data, modified=cls._modified)[1].sum(axis=0)

    assert check_grad(total, gradient, start, epsilon=1e-7) < 1e-4 * np.abs(gradient(start)).max()
    ll_w, grad_w = beta_geo._loglik_grad_covariates(
        start, data, modified=cls._modified, weights=weights
    )
    ll, grad = beta_geo._loglik_grad_covariates(start, data, modified=cls._modified)
    np.testing.assert_allclose(ll_w, weights @ ll, rtol=1e-12)
    np.testing.assert_allclose(grad_w, weights @ grad, rtol=1e-10)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("shapes", [BASE, {"r": 0.5, "alpha": 5.0, "a": 40.0, "b": 90.0}])
def test_covariate_hessian_matches_differences_of_the_gradient(cls, shapes, simulated):
    summary, customers = simulated
    summary, customers = summary.head(400), customers.head(400)
    # a few heavy buyers: purchase counts past the finite sums (_RISING_LOOP) use the remainder
    heavy = np.arange(len(summary)) % 97 == 0
    summary = summary.assign(
        frequency=np.where(heavy, 60.0, summary["frequency"]),
        recency=np.where(heavy, 25.0, summary["recency"]),
    )
    model = cls.from_params(
        **shapes, **{"purchase:x_num": 0.2, "dropout:x_num": -0.3, "purchase:vip": 0.4}
    )
    customers = customers.assign(vip=(customers["channel"] == "referral").astype(float))
    data = _design(model, summary, customers)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(summary))
    start = model.params_.to_numpy()
    ll, grad, hessian = beta_geo._loglik_hessian_covariates(
        start, data, modified=cls._modified, weights=weights
    )
    ll_g, grad_g = beta_geo._loglik_grad_covariates(
        start, data, modified=cls._modified, weights=weights
    )
    assert ll == pytest.approx(ll_g, rel=1e-12)
    np.testing.assert_allclose(grad, grad_g, rtol=1e-10, atol=1e-10 * np.abs(grad_g).max())
    numeric = np.empty_like(hessian)
    for i in range(len(start)):
        step = 1e-6 * max(abs(start[i]), 1.0)
        up, down = start.copy(), start.copy()
        up[i] += step
        down[i] -= step
        numeric[:, i] = (
            beta_geo._loglik_grad_covariates(up, data, modified=cls._modified, weights=weights)[1]
            - beta_geo._loglik_grad_covariates(down, data, modified=cls._modified, weights=weights)[
                1
            ]
        ) / (2 * step)
    np.testing.assert_allclose(hessian, hessian.T)
    np.testing.assert_allclose(hessian, numeric, atol=1e-6 * np.abs(hessian).max())


def test_beta_rising_sums_equal_the_special_functions():
    rng = np.random.default_rng(3)
    n = rng.integers(0, 80, 3000).astype(float)
    n[:800] = 0.0
    for scale in (0.05, 1.0, 40.0, 1e7):
        a, b = rng.uniform(0.5, 2.0, (2, n.size)) * scale
        special = beta_geo._beta_rising_terms(a, b, n, second=True)
        sums = beta_geo._beta_rising_sums(a, b, n, beta_geo._rising_index(n), second=True)
        for expected, got in zip(special, sums, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)


def test_newton_fit_reaches_the_lbfgs_optimum(simulated, monkeypatch):
    summary, customers = simulated
    kwargs = {
        "customers": customers,
        "purchase_covariates": ["x_num", "channel"],
        "dropout_covariates": ["x_num", "channel"],
    }
    newton = BetaGeoModel().fit(summary, **kwargs)
    # without the exact Hessian: L-BFGS-B from the usual starts, Hessian by differences
    monkeypatch.setattr(BetaGeoModel, "_weighted_loglik_hessian", lambda *args: None)
    lbfgs = BetaGeoModel().fit(summary, **kwargs)
    assert newton.convergence_ == lbfgs.convergence_ == "optimum"
    assert newton.log_likelihood_ >= lbfgs.log_likelihood_ - 1e-7 * abs(lbfgs.log_likelihood_)
    np.testing.assert_allclose(newton.params_, lbfgs.params_, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(newton.summary["std_error"], lbfgs.summary["std_error"], rtol=1e-3)
    # the log-likelihood kept from Newton's last evaluation is the model's at params_
    rows = beta_geo._loglik_grad_covariates(
        newton.params_.to_numpy(), _design(newton, summary, customers), modified=False
    )[0]
    assert newton.log_likelihood_ == pytest.approx(rows.sum(), rel=1e-12)


def test_fit_recovers_coefficients_and_reports_wald_tests(simulated):
    summary, customers = simulated
    model = BetaGeoModel().fit(
        summary.assign(),
        customers=customers,
        purchase_covariates=["x_num", "channel"],
        dropout_covariates=["channel"],
    )
    table = model.summary
    assert model.convergence_ == "optimum"
    assert list(table.index[4:]) == [
        "purchase:x_num",
        "purchase:channel[referral]",
        "purchase:channel[social]",
        "dropout:channel[referral]",
        "dropout:channel[social]",
    ]
    truth = {
        "purchase:x_num": 0.3,
        "purchase:channel[referral]": 0.5,
        "purchase:channel[social]": 0.0,
        "dropout:channel[referral]": -0.6,
        "dropout:channel[social]": 0.0,
    }
    for name, value in truth.items():
        row = table.loc[name]
        assert abs(row["estimate"] - value) < 4 * row["std_error"], name
        np.testing.assert_allclose(row["z"], row["estimate"] / row["std_error"])
        np.testing.assert_allclose(row["p_value"], 2 * norm.sf(abs(row["z"])))
        np.testing.assert_allclose(
            row["upper_95"] - row["estimate"], 1.96 * row["std_error"], rtol=1e-3
        )
    assert table.loc["purchase:x_num", "p_value"] < 1e-6  # a real effect is detected
    assert table.loc[["r", "alpha", "a", "b"], "z"].isna().all()
    assert (table.loc[["r", "alpha", "a", "b"], "lower_95"] > 0).all()
    # more parameters than the plain model, and a better likelihood
    plain = BetaGeoModel().fit(summary)
    assert model.log_likelihood_ > plain.log_likelihood_ + 20
    assert "z" not in plain.summary.columns  # models without covariates: unchanged summary
    assert model.aic == pytest.approx(2 * 9 - 2 * model.log_likelihood_)


def test_covariates_may_be_columns_of_the_summary_and_compress(simulated):
    summary, customers = simulated
    joined = summary.join(customers)
    a = BetaGeoModel().fit(joined, purchase_covariates=["channel"])
    b = BetaGeoModel().fit(summary, customers=customers.iloc[::-1], purchase_covariates=["channel"])
    np.testing.assert_allclose(a.params_, b.params_, rtol=1e-6)
    # (frequency, recency, T, channel) patterns: fewer than customers
    assert a.n_patterns_ < len(summary)
    assert a.n_customers_ == len(summary)


def test_equal_effects_share_one_coefficient(simulated):
    summary, customers = simulated
    free = BetaGeoModel().fit(
        summary, customers=customers, purchase_covariates=["x_num"], dropout_covariates=["x_num"]
    )
    tied = BetaGeoModel().fit(
        summary,
        customers=customers,
        purchase_covariates=["x_num"],
        dropout_covariates=["x_num"],
        equal_effects=["x_num"],
    )
    assert list(tied.params_.index[4:]) == ["both:x_num"]
    assert tied.log_likelihood_ <= free.log_likelihood_ + 1e-6
    with pytest.raises(DataError, match="equal_effects names 'channel'"):
        BetaGeoModel().fit(
            summary,
            customers=customers,
            purchase_covariates=["channel"],
            equal_effects=["channel"],
        )


def test_covariate_penalty_shrinks_only_the_coefficients(simulated):
    summary, customers = simulated
    strong = BetaGeoModel().fit(
        summary, customers=customers, purchase_covariates=["x_num"], covariate_penalty=1e4
    )
    plain = BetaGeoModel().fit(summary)
    assert abs(strong.params_["purchase:x_num"]) < 1e-3
    np.testing.assert_allclose(strong.params_[:4], plain.params_, rtol=1e-2)
    with pytest.raises(DataError, match="covariate_penalty must be >= 0"):
        BetaGeoModel().fit(
            summary, customers=customers, purchase_covariates=["x_num"], covariate_penalty=-1
        )


def test_encoding_is_stored_reapplied_and_saved(simulated, tmp_path):
    summary, customers = simulated
    model = BetaGeoModel().fit(
        summary,
        customers=customers,
        purchase_covariates=["channel"],
        dropout_covariates=["x_num"],
    )
    expected = model.expected_purchases(summary, 10.0, customers=customers)
    loaded = load_model(model.save(tmp_path / "cov.json"))
    pd.testing.assert_series_equal(
        loaded.expected_purchases(summary, 10.0, customers=customers), expected
    )
    pd.testing.assert_frame_equal(loaded.summary, model.summary)
    bad = customers.assign(channel=customers["channel"].replace("social", "tv"))
    with pytest.raises(DataError, match="column 'channel' has the level 'tv'"):
        model.probability_alive(summary, customers=bad)
    with pytest.raises(DataError, match="have no row in customers"):
        model.probability_alive(summary, customers=customers.iloc[10:])
    with pytest.raises(DataError, match=r"covariate column\(s\) \['channel', 'x_num'\] are not in"):
        model.probability_alive(summary)
    with pytest.raises(DataError, match="has covariates"):
        model.probability_of_purchases_new_customer(1, 10.0)
    with pytest.raises(DataError, match="'x_num' has 4000 missing or infinite values"):
        BetaGeoModel().fit(
            summary, customers=customers.assign(x_num=np.nan), purchase_covariates=["x_num"]
        )


def test_new_customer_profiles_follow_the_multiplier():
    model = BetaGeoModel.from_params(**BASE, **{"purchase:vip": np.log(2.0)})
    profiles = pd.DataFrame({"vip": [0.0, 1.0]})
    plain = BetaGeoModel.from_params(**BASE)
    doubled = BetaGeoModel.from_params(**{**BASE, "alpha": BASE["alpha"] / 2})
    values = model.expected_purchases_new_customer(20.0, customers=profiles)
    np.testing.assert_allclose(values.iloc[0], plain.expected_purchases_new_customer(20.0))
    np.testing.assert_allclose(values.iloc[1], doubled.expected_purchases_new_customer(20.0))


def test_effect_table_states_multipliers(simulated):
    summary, customers = simulated
    model = BetaGeoModel().fit(summary, customers=customers, purchase_covariates=["channel"])
    effects = covariate_effects(model)
    row = effects.loc["purchase:channel[referral]"]
    np.testing.assert_allclose(row["multiplier"], np.exp(model.params_.iloc[4]))
    assert row["lower_95"] < row["multiplier"] < row["upper_95"]
    assert row["statement"].startswith("customers with channel = referral buy ")
    assert row["statement"].endswith("compared with channel = direct")
    with pytest.raises(DataError, match="has no covariate coefficients"):
        covariate_effects(BetaGeoModel().fit(summary))


def test_wald_intervals_cover_the_truth_at_the_nominal_rate():
    purchase = {"x_num": 0.3, "channel[referral]": 0.4}
    dropout = {"x_num": -0.5}
    truth = {
        "purchase:x_num": 0.3,
        "purchase:channel[referral]": 0.4,
        "purchase:channel[social]": 0.0,
        "dropout:x_num": -0.5,
    }
    covered = []
    for seed in range(20):
        summary, customers = simulate_beta_geo_covariates(
            **BASE, purchase=purchase, dropout=dropout, n=2000, random_state=10 * seed
        )
        table = (
            BetaGeoModel()
            .fit(
                summary,
                customers=customers,
                purchase_covariates=["x_num", "channel"],
                dropout_covariates=["x_num"],
            )
            .summary
        )
        for name, value in truth.items():
            covered.append(table.at[name, "lower_95"] <= value <= table.at[name, "upper_95"])
    rate = np.mean(covered)
    # 80 intervals at 95%: a binomial 99.9% band is about [0.86, 1.0]
    assert 0.86 <= rate <= 1.0, rate


@pytest.mark.slow
def test_readme_covariates_example_runs():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Covariates: why customers differ", 1)[1]
    block = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    effects = covariate_effects(namespace["bgnbd"])
    assert "purchase:loyalty_member[True]" in effects.index
    # the simulated retailer gives loyalty members a higher purchase rate
    assert effects.at["purchase:loyalty_member[True]", "lower_95"] > 1.0
    assert namespace["spend"].summary.index[3].startswith("spend:region[")
