"""The model contract: clv reaches every model through ``model._value_kernel(terms)`` and
``spend_model._affine_spend()`` only (README "Design notes").

Each model's kernel is checked against the generic exact path (the quadrature of its public
``expected_purchases``, :class:`custval._quadrature.ExpectedPurchasesKernel`), an independent
computation of the same integral.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import custval
from _models import PARETO, TRANSACTION_MODELS
from custval import (
    BetaDiscreteWeibullModel,
    BetaGeoBetaBinomModel,
    BetaGeoCNBDModel,
    BetaGeoModel,
    GammaGammaModel,
    GammaGompertzNBDModel,
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    ShiftedBetaGeoModel,
)
from custval._quadrature import ExpectedPurchasesKernel
from custval.clv import _resolve_terms
from custval.errors import DataError

SRC = Path(custval.__file__).parent


def _customers(n: int = 300, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    big_t = rng.uniform(5.0, 78.0, n)
    x = rng.poisson(2.0, n).astype(float)
    t_x = np.where(x > 0, big_t * rng.uniform(0.05, 1.0, n), 0.0)
    summary = pd.DataFrame(
        {"frequency": x, "recency": t_x, "T": big_t, "monetary_value": rng.gamma(3.0, 10.0, n)}
    )
    summary.attrs["freq"] = "W"
    return summary


def test_clv_imports_no_model_module_and_dispatches_on_no_name() -> None:
    tree = ast.parse((SRC / "clv.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    models = {name for name in imported if name.startswith("custval.models")}
    assert models <= {"custval.models._base"}, models
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert "__module__" not in attributes
    strings = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert not [s for s in strings if s.startswith("custval.models.")]


@pytest.mark.parametrize("name", list(TRANSACTION_MODELS))
@pytest.mark.parametrize(("horizon", "rate"), [("4W", 0.1), ("52W", 0.1), ("52W", 0.0)])
def test_every_kernel_equals_the_generic_quadrature_of_expected_purchases(
    name: str, horizon: str, rate: float
) -> None:
    model = TRANSACTION_MODELS[name]()
    summary = _customers()
    terms = _resolve_terms(model, None, summary, horizon, rate, None)
    kernel = model._value_kernel(terms)
    assert kernel is not None  # every transaction model of custval has its own kernel
    rows = {c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    theta = model.params_.to_numpy(dtype=float)
    generic = ExpectedPurchasesKernel(model, terms).values(theta, rows)
    assert np.all(generic >= 0) and generic.max() > 0.1
    np.testing.assert_allclose(kernel.values(theta, rows), generic, rtol=1e-9, atol=1e-14)


def test_ggom_infinite_horizon_equals_the_pareto_nbd_closed_form_in_its_limit() -> None:
    """As b -> 0 with beta / b fixed, GGom/NBD is the Pareto/NBD, whose DERT to infinity has a
    closed form (Fader, Hardie & Lee 2005, "RFM and CLV", eq. 2)."""
    b = 1e-10
    values = dict(PARETO, b=b, beta=PARETO["beta"] * b)
    ggom = GammaGompertzNBDModel.from_params(**values, freq="W")
    pareto = ParetoNBDModel.from_params(**PARETO, freq="W")
    summary = _customers(200)
    clv_ggom = custval.customer_lifetime_value(ggom, 1.0, summary, horizon="inf")
    clv_pareto = custval.customer_lifetime_value(pareto, 1.0, summary, horizon="inf")
    np.testing.assert_allclose(clv_ggom, clv_pareto, rtol=1e-6)
    dert = pareto.discounted_expected_residual_transactions(summary, annual_discount_rate=0.1)
    np.testing.assert_allclose(clv_pareto, dert, rtol=1e-9)


def test_ggom_and_cnbd_intervals_bracket_the_point_value() -> None:
    summary = _customers(120)
    for name in ("GGom/NBD", "BG/CNBD-2"):
        model = TRANSACTION_MODELS[name]()
        theta = model.params_.to_numpy(dtype=float)
        model.variance_matrix_ = np.diag((0.05 * theta) ** 2)
        point = custval.customer_lifetime_value(model, 1.0, summary, horizon="52W")
        interval = custval.clv_interval(
            model, 1.0, summary, horizon="52W", n_draws=40, random_state=0, progress=False
        )
        assert np.all(interval["clv_lower"] <= point * (1 + 1e-6))
        assert np.all(interval["clv_upper"] >= point * (1 - 1e-6))
        np.testing.assert_allclose(interval["clv_median"], point, rtol=0.05)


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (ShiftedBetaGeoModel.from_params(alpha=0.7, beta=1.2, freq="M"), "model of subscriptions"),
        (
            BetaDiscreteWeibullModel.from_params(alpha=0.7, beta=1.2, c=1.3, freq="M"),
            "BdW model has no expected_purchases.*subscriptions",
        ),
        (
            BetaGeoBetaBinomModel.from_params(
                alpha=1.2, beta=0.75, gamma=0.66, delta=2.78, freq="M"
            ),
            "discrete opportunities",
        ),
    ],
)
def test_models_that_value_no_purchases_refuse_with_the_reason(model, reason) -> None:
    summary = pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0], "monetary_value": [5]})
    summary.attrs["freq"] = "M"
    with pytest.raises(DataError, match=reason):
        custval.customer_lifetime_value(model, 1.0, summary, horizon="12M")


def test_gamma_gamma_affine_form_equals_its_expected_spend() -> None:
    model = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)
    summary = _customers(50)
    theta = model.params_.to_numpy(dtype=float)
    x = summary["frequency"].to_numpy()
    coef_a, coef_b = model._affine_spend().coefficients(theta, x)
    expected = model.expected_spend(summary).to_numpy()
    np.testing.assert_allclose(coef_a + coef_b * summary["monetary_value"], expected, rtol=1e-12)
    mean = 6.25 * 15.44 / (3.74 - 1.0)  # x = 0: the population mean, which ignores m
    np.testing.assert_allclose(coef_a[x == 0], mean, rtol=1e-12)
    np.testing.assert_array_equal(coef_b[x == 0], 0.0)
    draws = np.array([theta, [6.0, 0.9, 15.0]])
    np.testing.assert_array_equal(model._affine_spend().admissible(draws), [True, False])


@pytest.mark.parametrize("model_class", [BetaGeoModel, ModifiedBetaGeoModel])
def test_conditional_probability_of_purchases_sums_to_one_with_the_expected_mean(model_class):
    """Two closed-form checks: the pmf sums to one and its mean is expected_purchases (the
    Gaussian hypergeometric formula, computed independently)."""
    model = model_class.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, freq="W")
    summary = _customers(40)
    pmf = model.probability_of_purchases(summary, np.arange(600), "52W")
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, rtol=1e-10)
    mean = pmf.to_numpy() @ np.arange(600)
    np.testing.assert_allclose(mean, model.expected_purchases(summary, "52W"), rtol=1e-9)
    one = model.probability_of_purchases(summary, 2, 52.0)
    np.testing.assert_allclose(one, pmf[2], rtol=1e-12)
    assert one.name == "probability" and one.index.equals(summary.index)


def test_conditional_probability_of_purchases_matches_simulation_of_the_posterior():
    """BG/NBD: alive with P(alive); then lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x), and
    the count is min(Poisson(lambda t), Geometric(p)) (the customer drops out after a
    purchase with probability p)."""
    params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    model = BetaGeoModel.from_params(**params, freq="W")
    customers = pd.DataFrame({"frequency": [0, 2, 7], "recency": [0.0, 30.0, 20.0], "T": 39.0})
    customers.attrs["freq"] = "W"
    pmf = model.probability_of_purchases(customers, np.arange(4), 26.0).to_numpy()
    alive = model.probability_alive(customers).to_numpy()
    rng = np.random.default_rng(11)
    draws = 400_000
    for i, row in enumerate(customers.itertuples()):
        lam = rng.gamma(params["r"] + row.frequency, 1.0 / (params["alpha"] + row.T), draws)
        p = rng.beta(params["a"], params["b"] + row.frequency, draws)
        count = np.minimum(rng.poisson(lam * 26.0), rng.geometric(p))
        count = np.where(rng.random(draws) < alive[i], count, 0)
        simulated = np.array([(count == n).mean() for n in range(4)])
        se = np.sqrt(pmf[i] * (1 - pmf[i]) / draws)
        assert np.all(np.abs(simulated - pmf[i]) < 5 * se + 1e-4), (simulated, pmf[i])


def test_new_customer_probability_of_purchases_keeps_the_published_value():
    # the deprecated call probability_of_purchases(n, t) is tested once, for every model, in
    # test_models_vocabulary.test_old_new_customer_call_warns_and_keeps_its_value
    model = BetaGeoModel.from_params(r=0.2426, alpha=4.4135, a=0.7929, b=2.4258, freq="W")
    assert round(model.probability_of_purchases_new_customer(0, "39W"), 4) == 0.5743


def test_log_likelihood_per_customer_equals_lifetimes_and_sums_to_the_fit():
    from lifetimes import BetaGeoFitter, ParetoNBDFitter

    summary = _customers(300)
    x, t_x, big_t = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    bg = BetaGeoModel().fit(summary)
    ours = bg.log_likelihood(summary)
    assert ours.name == "log_likelihood" and ours.index.equals(summary.index)
    assert ours.sum() == pytest.approx(bg.log_likelihood_, rel=1e-12)
    # lifetimes at published parameters (at the fit's ridge, a and b ~1e8, its gammaln
    # differences lose digits to cancellation)
    published = TRANSACTION_MODELS["BG/NBD"]()
    log_params = np.log(published.params_.to_numpy())
    theirs = [
        -BetaGeoFitter._negative_log_likelihood(
            log_params, x[i : i + 1], t_x[i : i + 1], big_t[i : i + 1], np.ones(1), 0.0
        )
        for i in range(25)
    ]
    np.testing.assert_allclose(published.log_likelihood(summary).iloc[:25], theirs, rtol=1e-10)
    pareto = ParetoNBDModel.from_params(**PARETO, freq="W")
    theirs = ParetoNBDFitter._conditional_log_likelihood(list(PARETO.values()), x, t_x, big_t)
    np.testing.assert_allclose(pareto.log_likelihood(summary), theirs, rtol=1e-9)


def test_gamma_gamma_log_likelihood_covers_repeat_buyers_only():
    summary = _customers(300)
    model = GammaGammaModel().fit(summary)
    ll = model.log_likelihood(summary)
    repeat = summary["frequency"] > 0
    assert ll[~repeat].isna().all() and ll[repeat].notna().all()
    assert ll[repeat].sum() == pytest.approx(model.log_likelihood_, rel=1e-12)


def test_cnbd_log_likelihood_at_k_1_is_the_bg_nbd_one_and_sums_to_the_fit():
    summary = _customers(300)
    published = TRANSACTION_MODELS["BG/NBD"]()
    cnbd = BetaGeoCNBDModel.from_params(k=1, **published.params_.to_dict(), freq="W")
    np.testing.assert_allclose(
        cnbd.log_likelihood(summary), published.log_likelihood(summary), rtol=1e-12
    )
    fitted = BetaGeoCNBDModel(k=1, penalizer_coef=0.001).fit(summary)
    assert fitted.log_likelihood(summary).sum() == pytest.approx(fitted.log_likelihood_, rel=1e-12)
    with pytest.raises(DataError, match="needs 'litt'"):
        TRANSACTION_MODELS["BG/CNBD-2"]().log_likelihood(summary)
    with pytest.raises(DataError, match="no per-customer log-likelihood"):
        ShiftedBetaGeoModel.from_params(alpha=0.7, beta=1.2).log_likelihood(summary)


@pytest.mark.parametrize(
    "model",
    [
        ShiftedBetaGeoModel.from_params(alpha=0.704, beta=1.182, freq="M"),
        BetaDiscreteWeibullModel.from_params(alpha=0.7, beta=1.2, c=1.3, freq="M"),
    ],
)
def test_subscription_discount_rates_take_the_shared_names(model):
    """The per-period rate is period_discount_rate (old name: discount_rate, with a
    FutureWarning); annual_discount_rate converts as customer_lifetime_value does."""
    per_period = 1.10 ** (1 / 12) - 1.0  # 10% a year in months (Gregorian year, 12 months)
    by_annual = model.discounted_expected_residual_lifetime(
        annual_discount_rate=0.10, renewals_so_far=3
    )
    assert by_annual == pytest.approx(
        model.discounted_expected_residual_lifetime(per_period, renewals_so_far=3), rel=1e-12
    )
    with pytest.warns(FutureWarning, match="period_discount_rate"):
        old = model.discounted_expected_lifetime(discount_rate=0.1)
    assert old == model.discounted_expected_lifetime(period_discount_rate=0.1)
    assert old == model.discounted_expected_lifetime(0.1)
    with pytest.raises(DataError, match="exactly one of period_discount_rate"):
        model.discounted_expected_lifetime(0.1, annual_discount_rate=0.1)


def test_ggom_probability_alive_later_integrates_to_expected_purchases():
    """Given the history, the purchase rate u after T is (r+x)/(alpha+T) P(alive at T+u), so
    the quadrature of probability_alive(summary, u) is expected_purchases (an independent
    computation); in the b -> 0 limit it is the Pareto/NBD's ((beta+T)/(beta+T+t))^s P(alive)."""
    model = TRANSACTION_MODELS["GGom/NBD"]()
    summary = _customers(30)
    assert model.probability_alive(summary, 0.0).equals(model.probability_alive(summary))
    nodes, weights = np.polynomial.legendre.leggauss(40)
    horizon = 26.0
    u = (nodes + 1.0) * horizon / 2.0
    alive = np.column_stack([model.probability_alive(summary, float(v)) for v in u])
    r, alpha = model.params_["r"], model.params_["alpha"]
    rate = (r + summary["frequency"].to_numpy()) / (alpha + summary["T"].to_numpy())
    integral = rate * (alive @ weights) * horizon / 2.0
    np.testing.assert_allclose(integral, model.expected_purchases(summary, horizon), rtol=1e-8)
    b = 1e-10
    limit = GammaGompertzNBDModel.from_params(
        **dict(PARETO, b=b, beta=PARETO["beta"] * b), freq="W"
    )
    pareto = ParetoNBDModel.from_params(**PARETO, freq="W")
    survive = ((PARETO["beta"] + summary["T"]) / (PARETO["beta"] + summary["T"] + 20.0)) ** (
        PARETO["s"]
    )
    np.testing.assert_allclose(
        limit.probability_alive(summary, "20W"),
        pareto.probability_alive(summary) * survive,
        rtol=1e-6,
    )


# --- the unit of a fit: fit(..., freq=) first, summary.attrs["freq"] the fallback ------------

FITTABLE = [
    BetaGeoModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    GammaGompertzNBDModel,
    BetaGeoCNBDModel,
    ModifiedBetaGeoCNBDModel,
    BetaGeoBetaBinomModel,
    GammaGammaModel,
]


@pytest.mark.parametrize(
    ("model_class", "covariates"),
    [(model, False) for model in FITTABLE]
    + [(model, True) for model in FITTABLE if hasattr(model, "_covariate_groups")],
)
def test_every_fit_refuses_a_freq_that_disagrees_with_the_summary(model_class, covariates):
    summary = _customers(40)
    summary["channel"] = np.where(np.arange(40) % 2, "web", "shop")
    kwargs = {}
    if covariates:  # the covariate path of fit checks the unit too
        kwargs = {f"{model_class._covariate_groups[0]}_covariates": ["channel"]}
    with pytest.raises(DataError, match=r"freq='M' disagrees with the summary's recorded unit"):
        model_class().fit(summary, freq="M", **kwargs)


def test_covariate_and_subscription_fits_record_the_explicit_unit() -> None:
    summary = _customers()
    channels = pd.DataFrame({"channel": np.where(np.arange(len(summary)) % 2, "web", "shop")})
    merged = summary.merge(channels, left_index=True, right_index=True)
    assert "freq" not in merged.attrs
    spend = GammaGammaModel().fit(merged, spend_covariates=["channel"], freq="W")
    assert spend.freq_ == "W"
    assert GammaGammaModel().fit(merged, spend_covariates=["channel"]).freq_ is None
    months = ShiftedBetaGeoModel().fit([1000, 631, 468, 382, 326, 289, 262, 241], freq="M")
    assert months.freq_ == "M"
    # the period drives the annual rate: 10% a year is 0.797% a month
    np.testing.assert_allclose(
        months.discounted_expected_residual_lifetime(annual_discount_rate=0.10),
        months.discounted_expected_residual_lifetime(period_discount_rate=1.10 ** (1 / 12) - 1),
        rtol=1e-12,
    )
    with pytest.raises(DataError, match=r"fit it with fit\(\.\.\., freq='M'\)"):
        ShiftedBetaGeoModel().fit([1000, 631, 468]).discounted_expected_residual_lifetime(
            annual_discount_rate=0.10
        )
