"""One prediction vocabulary across the transaction models (issue #14).

Every model has ``expected_purchases(summary, t)``, ``probability_alive(summary, t=None)``,
``probability_of_purchases(summary, n, t)`` conditional on each customer's history,
``probability_of_purchases_new_customer(n, t)`` and ``log_likelihood(summary)``. The
conditional pmf is checked against its own model (sums to one, mean = expected_purchases),
against lifetimes (Pareto/NBD; BG/BB's P(alive) later), against another model that computes
the same quantity (CNBD-1 = BG/NBD, GGom/NBD at b -> 0 = Pareto/NBD), and against a
simulation of the BG/BB from its prior conditioned on the history.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from _models import PARETO, TRANSACTION_MODELS
from custval import (
    BetaGeoBetaBinomModel,
    BetaGeoCNBDModel,
    BetaGeoModel,
    GammaGompertzNBDModel,
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)
from custval.errors import DataError

BGBB = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}  # FHS 2010, donations
CONTINUOUS = {
    **TRANSACTION_MODELS,
    "GGom/NBD near 0": lambda: GammaGompertzNBDModel.from_params(
        r=0.553, alpha=10.578, b=0.0002, s=0.603, beta=0.0026, freq="W"
    ),
}
N_MAX = 400  # counts 0 .. 399: the tail beyond is below 1e-12 for these customers


def _customers(n: int = 30, seed: int = 7) -> pd.DataFrame:
    """Varied histories, including heavy buyers and customers without repeat purchases."""
    rng = np.random.default_rng(seed)
    big_t = rng.uniform(5.0, 78.0, n)
    x = np.concatenate([[0.0, 25.0], rng.poisson(2.0, n - 2)])
    t_x = np.where(x > 0, big_t * rng.uniform(0.05, 1.0, n), 0.0)
    summary = pd.DataFrame({"frequency": x, "recency": t_x, "T": big_t})
    summary.attrs["freq"] = "W"
    return summary


def _donors(n: int = 30, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_periods = rng.integers(1, 12, n).astype(float)
    x = np.floor(rng.uniform(0, 1, n) * (n_periods + 1))
    t_x = np.where(x > 0, np.maximum(x, np.ceil(rng.uniform(0, 1, n) * n_periods)), 0.0)
    return pd.DataFrame({"frequency": x, "recency": t_x, "n_periods": n_periods})


# ------------------------------------------------------------------ the model's own identities
@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_conditional_pmf_sums_to_one_with_the_expected_mean(name: str) -> None:
    model = CONTINUOUS[name]()
    summary = _customers()
    for t in (1.0, "26W", 104.0):
        pmf = model.probability_of_purchases(summary, np.arange(N_MAX), t)
        assert list(pmf.columns) == list(range(N_MAX)) and pmf.index.equals(summary.index)
        assert (pmf.to_numpy() >= 0).all()
        np.testing.assert_allclose(pmf.sum(axis=1), 1.0, rtol=0, atol=1e-10)
        mean = pmf.to_numpy() @ np.arange(N_MAX)
        np.testing.assert_allclose(mean, model.expected_purchases(summary, t), rtol=1e-8)
        one = model.probability_of_purchases(summary, 3, t)
        assert one.name == "probability" and one.index.equals(summary.index)
        np.testing.assert_allclose(one, pmf[3], rtol=1e-12, atol=1e-300)


def test_bgbb_conditional_pmf_sums_to_one_with_the_expected_mean() -> None:
    model = BetaGeoBetaBinomModel.from_params(**BGBB)
    donors = _donors()
    for t in (1, 5, 30):
        pmf = model.probability_of_purchases(donors, np.arange(t + 3), t)
        np.testing.assert_allclose(pmf.sum(axis=1), 1.0, rtol=0, atol=1e-10)
        assert (pmf.loc[:, t + 1 :] == 0).all().all()  # at most one per opportunity
        mean = pmf.to_numpy() @ np.arange(t + 3)
        np.testing.assert_allclose(mean, model.expected_purchases(donors, t), rtol=1e-8)


@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_zero_horizon_and_history_free_customers(name: str) -> None:
    """t = 0: no purchases for sure; a customer with T = 0 is a new customer."""
    model = CONTINUOUS[name]()
    summary = _customers(8)
    pmf = model.probability_of_purchases(summary, [0, 1, 2], 0.0)
    np.testing.assert_array_equal(pmf.to_numpy(), [[1.0, 0.0, 0.0]] * 8)
    new = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [0.0]})
    new.attrs["freq"] = "W"
    np.testing.assert_allclose(
        model.probability_of_purchases(new, np.arange(20), 39.0).to_numpy()[0],
        model.probability_of_purchases_new_customer(np.arange(20), 39.0).to_numpy(),
        rtol=1e-9,
        atol=1e-15,
    )


# ------------------------------------------------------------------ the same quantity elsewhere
def test_pareto_conditional_pmf_equals_lifetimes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import ParetoNBDFitter
    oracle = ParetoNBDFitter()
    oracle.params_ = pd.Series(PARETO)
    model = ParetoNBDModel.from_params(**PARETO, freq="W")
    summary = pd.DataFrame(
        {"frequency": [0, 1, 2, 5, 10], "recency": [0, 10, 30.43, 20, 35], "T": 38.86}
    )
    summary.attrs["freq"] = "W"
    ours = model.probability_of_purchases(summary, np.arange(6), 39.0)
    for n in range(6):
        with np.errstate(all="ignore"):
            reference = np.array(
                [
                    oracle.conditional_probability_of_n_purchases_up_to_time(
                        n, 39.0, row.frequency, row.recency, row.T
                    )
                    for row in summary.itertuples()
                ],
                dtype=float,
            )
        np.testing.assert_allclose(ours[n], reference, rtol=1e-7)


def test_pareto_probability_alive_later_equals_lifetimes_and_its_survival() -> None:
    """lifetimes' P(alive at T + t) evaluates the current formula at T + t without purchases;
    for the Pareto/NBD (memoryless lifetime) that is ours only for the survival factor, so the
    check is the closed form ``P(alive at T) ((beta+T)/(beta+T+t))^s`` and monotonicity."""
    model = ParetoNBDModel.from_params(**PARETO, freq="W")
    summary = _customers()
    now = model.probability_alive(summary)
    later = model.probability_alive(summary, "39W")
    big_t = summary["T"]
    expected = now * ((PARETO["beta"] + big_t) / (PARETO["beta"] + big_t + 39.0)) ** PARETO["s"]
    np.testing.assert_allclose(later, expected, rtol=1e-12)
    np.testing.assert_allclose(model.probability_alive(summary, 0), now, rtol=1e-15)
    assert (later < now).all()


def test_bgbb_probability_alive_later_equals_lifetimes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoBetaBinomFitter
    oracle = BetaGeoBetaBinomFitter()
    oracle.params_ = pd.Series(BGBB)
    model = BetaGeoBetaBinomModel.from_params(**BGBB)
    donors = _donors()
    x, t_x, n = (donors[c].to_numpy(float) for c in ("frequency", "recency", "n_periods"))
    for m in (1, 3, 10):
        reference = oracle.conditional_probability_alive(m, x, t_x, n)
        np.testing.assert_allclose(model.probability_alive(donors, m), reference, rtol=1e-9)


@pytest.mark.parametrize("model_class", [BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel])
def test_cnbd_with_k_1_is_the_bg_nbd_family(model_class) -> None:
    params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    cnbd = model_class.from_params(k=1, **params, freq="W")
    classic_class = ModifiedBetaGeoModel if cnbd._modified else BetaGeoModel
    classic = classic_class.from_params(**params, freq="W")
    summary = _customers()
    np.testing.assert_allclose(
        cnbd.probability_of_purchases(summary, np.arange(30), 52.0),
        classic.probability_of_purchases(summary, np.arange(30), 52.0),
        rtol=1e-9,
        atol=1e-15,
    )


def test_ggom_small_b_limit_is_the_pareto_conditional_pmf() -> None:
    b = 1e-10
    gg = GammaGompertzNBDModel.from_params(
        r=PARETO["r"], alpha=PARETO["alpha"], b=b, s=PARETO["s"], beta=PARETO["beta"] * b, freq="W"
    )
    pn = ParetoNBDModel.from_params(**PARETO, freq="W")
    summary = _customers()
    np.testing.assert_allclose(
        gg.probability_of_purchases(summary, np.arange(30), 39.0),
        pn.probability_of_purchases(summary, np.arange(30), 39.0),
        rtol=1e-6,
        atol=1e-14,
    )


def test_bgbb_conditional_pmf_matches_a_simulation_conditioned_on_the_history() -> None:
    """Donors drawn from the prior, kept when their first 6 opportunities give (x, t_x) =
    (3, 5); their transactions at the next 5 opportunities are counted (FHS's process: at
    each opportunity the donor first survives with 1 - theta, then gives with p)."""
    rng = np.random.default_rng(2026)
    draws, n, future = 3_000_000, 6, 5
    p = rng.beta(BGBB["alpha"], BGBB["beta"], draws)
    theta = rng.beta(BGBB["gamma"], BGBB["delta"], draws)
    alive = np.cumprod(rng.random((draws, n + future)) >= theta[:, None], axis=1).astype(bool)
    buys = alive & (rng.random((draws, n + future)) < p[:, None])
    past = buys[:, :n]
    x = past.sum(axis=1)
    t_x = np.where(x > 0, n - np.argmax(past[:, ::-1], axis=1), 0)
    keep = (x == 3) & (t_x == 5)
    counts = buys[keep, n:].sum(axis=1)
    simulated = np.bincount(counts, minlength=future + 1) / keep.sum()
    donor = pd.DataFrame({"frequency": [3], "recency": [5], "n_periods": [n]})
    model = BetaGeoBetaBinomModel.from_params(**BGBB)
    pmf = model.probability_of_purchases(donor, np.arange(future + 1), future).to_numpy()[0]
    se = np.sqrt(pmf * (1 - pmf) / keep.sum())
    assert keep.sum() > 50_000
    assert np.all(np.abs(simulated - pmf) < 5 * se), (simulated, pmf)


# ------------------------------------------------------------------ deprecation and checks
NEW_CUSTOMER_MODELS = {
    **CONTINUOUS,
    "BG/BB": lambda: BetaGeoBetaBinomModel.from_params(**BGBB, freq="W"),
}


@pytest.mark.parametrize("name", list(NEW_CUSTOMER_MODELS))
def test_old_new_customer_call_warns_and_keeps_its_value(name: str) -> None:
    model = NEW_CUSTOMER_MODELS[name]()
    new = model.probability_of_purchases_new_customer([0, 1, 4], 6)
    with pytest.warns(FutureWarning, match="probability_of_purchases_new_customer"):
        old = model.probability_of_purchases([0, 1, 4], 6)
    pd.testing.assert_series_equal(old, new)
    with pytest.warns(FutureWarning):
        assert model.probability_of_purchases(2, 6) == model.probability_of_purchases_new_customer(
            2, 6
        )


def test_bgbb_future_periods_is_a_deprecated_alias_of_t() -> None:
    model = BetaGeoBetaBinomModel.from_params(**BGBB)
    donors = _donors()
    with pytest.warns(FutureWarning, match=r"probability_alive\(summary, t=m\)"):
        old = model.probability_alive(donors, future_periods=2)
    pd.testing.assert_series_equal(old, model.probability_alive(donors, 2))
    with pytest.raises(DataError, match="not also future_periods"):
        model.probability_alive(donors, 1, future_periods=2)
    assert not model.probability_alive(donors).equals(old)


@pytest.mark.parametrize("name", list(NEW_CUSTOMER_MODELS))
def test_the_same_argument_checks_everywhere(name: str) -> None:
    model = NEW_CUSTOMER_MODELS[name]()
    summary = _donors(5) if name == "BG/BB" else _customers(5)
    for call in (
        lambda: model.probability_of_purchases(summary, 1.5, 6),
        lambda: model.probability_of_purchases(summary, -1, 6),
        lambda: model.probability_of_purchases_new_customer(-1, 6),
    ):
        with pytest.raises(DataError, match=r"n must be whole numbers of \w+ >= 0"):
            call()
    for call in (
        lambda: model.probability_of_purchases(summary, 1, [6, 7]),
        lambda: model.probability_of_purchases_new_customer(1, [6, 7]),
        lambda: model.probability_alive(summary, [6, 7]),
    ):
        with pytest.raises(DataError, match="t must be one horizon"):
            call()
    with pytest.raises(DataError, match="must be finite and >= 0"):
        model.probability_of_purchases(summary, 1, -1.0)
    alive = model.probability_alive(summary)
    np.testing.assert_allclose(model.probability_alive(summary, None), alive, rtol=0)
    assert (model.probability_alive(summary, 6) <= alive + 1e-15).all()
