"""The shared fitting core (custval.models._base), exercised through BG/NBD and Gamma-Gamma."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import shared_file
from custval import (
    BetaGeoModel,
    ConvergenceError,
    DataError,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    load_model,
)
from custval._rows import factorize
from custval.models._base import (
    _REGISTRY,
    FORMAT_VERSION,
    BaseModel,
    compress_rows,
)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    summary = pd.read_csv(
        shared_file("cdnow", "cdnow_customers_summary.csv"), index_col="ID"
    ).astype(float)
    summary.attrs["freq"] = "W"
    return summary


# --------------------------------------------------------------------------------- compression
def test_compress_rows_rebuilds_the_input_and_sums_weights():
    rng = np.random.default_rng(0)
    cases = [
        {"x": rng.integers(0, 40, 5000).astype(float), "T": rng.integers(1, 700, 5000) * 1.0},
        {"x": rng.normal(size=3000).round(1), "k": rng.integers(0, 3, 3000)},
        {"x": np.array([1.0, -0.0, 0.0, 1.0, 1e18, 1e18]), "y": np.array([1, 1, 1, 1, 2, 2])},
    ]
    for data in cases:
        weights = rng.uniform(0.5, 2.0, len(data["x"]))
        unique, summed, inverse = compress_rows(data, weights)
        for column, values in data.items():
            np.testing.assert_array_equal(unique[column][inverse], values)
        assert len(summed) == len(pd.DataFrame(data).drop_duplicates())
        np.testing.assert_allclose(np.bincount(inverse, weights), summed)
        assert summed.sum() == pytest.approx(weights.sum())


def test_factorize_dense_and_hashed_paths_agree():
    rng = np.random.default_rng(1)
    for values in (
        rng.integers(0, 100, 1000).astype(float),  # dense path
        rng.integers(0, 100, 1000) * 1e9,  # range too wide: hashed
        rng.integers(0, 100, 1000) + 0.5 * (rng.uniform(size=1000) < 0.1),  # not whole
        np.array([np.nan, 1.0, np.nan]),
    ):
        codes, distinct = factorize(values)
        np.testing.assert_array_equal(distinct[codes], values)
        n = len(distinct)
        reference_codes, reference_uniques = pd.factorize(values, use_na_sentinel=False)
        assert n == len(reference_uniques)
        # same partition of the rows
        pairs = pd.DataFrame({"a": codes, "b": reference_codes}).drop_duplicates()
        assert len(pairs) == n == pairs["a"].nunique() == pairs["b"].nunique()


@pytest.mark.parametrize("model_class", [BetaGeoModel, ModifiedBetaGeoModel])
def test_fit_on_patterns_with_weights_equals_fit_on_customers(cdnow, model_class):
    full = model_class().fit(cdnow)
    patterns = cdnow.groupby(["frequency", "recency", "T"]).size().rename("weight").reset_index()
    patterns.attrs["freq"] = "W"
    compressed = model_class().fit(patterns, weights=patterns["weight"])
    np.testing.assert_allclose(compressed.params_, full.params_, rtol=1e-7)
    assert compressed.log_likelihood_ == pytest.approx(full.log_likelihood_, rel=1e-10)
    assert compressed.n_customers_ == full.n_customers_ == 2357
    assert compressed.n_patterns_ == full.n_patterns_ == len(patterns)
    np.testing.assert_allclose(compressed.variance_matrix_, full.variance_matrix_, rtol=1e-4)


def test_weights_count_customers(cdnow):
    doubled = BetaGeoModel().fit(pd.concat([cdnow, cdnow]))
    weighted = BetaGeoModel().fit(cdnow, weights=np.full(len(cdnow), 2.0))
    np.testing.assert_allclose(doubled.params_, weighted.params_, rtol=1e-8)
    assert weighted.n_customers_ == 2 * 2357
    zero = np.ones(len(cdnow))
    zero[:100] = 0
    np.testing.assert_allclose(
        BetaGeoModel().fit(cdnow, weights=zero).params_,
        BetaGeoModel().fit(cdnow.iloc[100:]).params_,
        rtol=1e-8,
    )
    # twice the customers: half the variance
    np.testing.assert_allclose(
        doubled.variance_matrix_, BetaGeoModel().fit(cdnow).variance_matrix_ / 2, rtol=1e-3
    )


def test_weights_are_validated(cdnow):
    with pytest.raises(DataError, match=r"weights must be 2,357 finite, non-negative numbers"):
        BetaGeoModel().fit(cdnow, weights=np.ones(3))
    with pytest.raises(DataError, match=r"weights must be 2,357 finite, non-negative numbers"):
        BetaGeoModel().fit(cdnow, weights=-np.ones(len(cdnow)))
    with pytest.raises(DataError, match=r"needs at least one customer to fit"):
        BetaGeoModel().fit(cdnow, weights=np.zeros(len(cdnow)))
    with pytest.raises(DataError, match=r"needs at least one customer to fit"):
        BetaGeoModel().fit(cdnow.iloc[:0])


# --------------------------------------------------------------------------------- penalizer
def test_penalizer_matches_lifetimes_scaling(cdnow):
    lifetimes = pytest.importorskip("lifetimes")
    # lifetimes rescales time so that max(T) = 1 before fitting (and penalising alpha), so the
    # two objectives are the same on data in that unit
    scaled = cdnow.assign(
        recency=cdnow["recency"] / cdnow["T"].max(), T=cdnow["T"] / cdnow["T"].max()
    )
    reference = lifetimes.BetaGeoFitter(penalizer_coef=0.1).fit(
        scaled["frequency"], scaled["recency"], scaled["T"]
    )
    penalized = BetaGeoModel(penalizer_coef=0.1).fit(scaled)
    np.testing.assert_allclose(penalized.params_, reference.params_, rtol=1e-3)
    unpenalized = BetaGeoModel().fit(scaled)
    assert np.sum(penalized.params_**2) < np.sum(unpenalized.params_**2)
    assert penalized.log_likelihood_ < unpenalized.log_likelihood_


def test_penalizer_shrinks_gamma_gamma():
    lifetimes = pytest.importorskip("lifetimes")
    frame = pd.read_csv(
        shared_file("cdnow", "cdnow_customers_summary_with_transactions.csv")
    ).rename(columns={"x": "frequency", "zbar": "monetary_value"})
    repeat = frame[frame["frequency"] > 0]
    ours = GammaGammaModel(penalizer_coef=0.01).fit(repeat)
    theirs = lifetimes.GammaGammaFitter(penalizer_coef=0.01).fit(
        repeat["frequency"], repeat["monetary_value"]
    )
    # same objective (mean negative log-likelihood + c * sum(params^2)), same optimum
    np.testing.assert_allclose(ours.params_.to_numpy(), theirs.params_.to_numpy(), rtol=1e-3)
    assert ours.params_["gamma"] < GammaGammaModel().fit(repeat).params_["gamma"]


# --------------------------------------------------------------------------------- fitted views
def test_summary_aic_bic(cdnow):
    model = BetaGeoModel().fit(cdnow)
    table = model.summary
    assert list(table.columns) == ["estimate", "std_error", "lower_95", "upper_95"]
    assert (table["lower_95"] < table["estimate"]).all()
    assert (table["estimate"] < table["upper_95"]).all()
    np.testing.assert_allclose(table["std_error"] ** 2, np.diag(model.variance_matrix_), rtol=1e-12)
    # standard errors agree with lifetimes' autograd Hessian (FHL do not publish them)
    lifetimes = pytest.importorskip("lifetimes")
    reference = lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    np.testing.assert_allclose(
        table["std_error"], reference.standard_errors_[table.index], rtol=1e-2
    )
    assert model.aic == pytest.approx(8 - 2 * model.log_likelihood_)
    assert model.bic == pytest.approx(4 * np.log(2357) - 2 * model.log_likelihood_)


def test_convergence_error_says_what_failed_and_what_to_try(cdnow):
    with pytest.raises(ConvergenceError, match=r"BG/NBD model did not converge from any of 5") as e:
        BetaGeoModel(max_iter=1).fit(cdnow)
    message = str(e.value)
    assert "start [" in message and "max |gradient|" in message
    assert "Try: a small penalizer_coef" in message


def test_initial_params_are_used_and_checked(cdnow):
    model = BetaGeoModel(initial_params={"r": 0.25, "alpha": 4.0}).fit(cdnow)
    assert model.params_["r"] == pytest.approx(0.2426, rel=1e-3)
    with pytest.raises(DataError, match=r"initial_params has unknown parameter\(s\) \['s'\]"):
        BetaGeoModel(initial_params={"s": 1.0}).fit(cdnow)
    with pytest.raises(DataError, match=r"initial_params must be positive and finite"):
        BetaGeoModel(initial_params={"r": -1.0}).fit(cdnow)


def test_unit_is_recorded_and_checked(cdnow):
    model = BetaGeoModel().fit(cdnow)
    assert model.freq_ == "W"
    daily = cdnow.copy()
    daily.attrs["freq"] = "D"
    with pytest.raises(DataError, match=r"fitted on a summary in unit 'W' .* unit 'D'; rebuild"):
        model.expected_purchases(daily, 10)
    unlabelled = cdnow.copy()
    unlabelled.attrs = {}
    assert BetaGeoModel().fit(unlabelled).freq_ is None
    model.expected_purchases(unlabelled, 10)  # no unit to compare: accepted


def test_fit_takes_the_unit_explicitly_when_a_merge_dropped_attrs(cdnow):
    labelled = BetaGeoModel().fit(cdnow)
    segments = pd.DataFrame(
        {"segment": np.where(cdnow["frequency"] > 0, "repeat", "one-time")}, index=cdnow.index
    )
    merged = cdnow.merge(segments, left_index=True, right_index=True)
    assert "freq" not in merged.attrs  # what pandas does in merge
    model = BetaGeoModel().fit(merged, freq="W")
    assert model.freq_ == "W"
    pd.testing.assert_series_equal(model.params_, labelled.params_)
    # the fitted unit drives horizons with units: "13W" is 13 periods, "91D" too, "3M" 13.04
    weeks = model.expected_purchases(merged, 13.0)
    pd.testing.assert_series_equal(model.expected_purchases(merged, "13W"), weeks)
    pd.testing.assert_series_equal(model.expected_purchases(merged, "91D"), weeks)
    months = model.expected_purchases(merged, 3 * 365.2425 / 12 / 7)
    pd.testing.assert_series_equal(model.expected_purchases(merged, "3M"), months)
    assert (months > weeks).all()
    # the explicit unit wins over a missing one, and is the one checked at prediction
    daily = merged.copy()
    daily.attrs["freq"] = "D"
    with pytest.raises(DataError, match=r"fitted on a summary in unit 'W' .* unit 'D'"):
        model.expected_purchases(daily, "13W")
    # neither given: a horizon with a unit cannot be converted, and the error says how to fit
    unknown = BetaGeoModel().fit(merged)
    assert unknown.freq_ is None
    with pytest.raises(DataError, match=r"t='13W' has a unit, .*fit\(summary, freq='W'\)"):
        unknown.expected_purchases(merged, "13W")


def test_fit_refuses_a_freq_that_disagrees_with_the_summary(cdnow):
    with pytest.raises(
        DataError,
        match=r"freq='D' disagrees with the summary's recorded unit \(attrs\['freq'\] == 'W'\); "
        r"pass the unit the summary was built with \(freq='W'\)",
    ):
        BetaGeoModel().fit(cdnow, freq="D")
    assert BetaGeoModel().fit(cdnow, freq="weeks").freq_ == "W"  # aliases of the same unit agree


def test_from_params_errors():
    model = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, freq="weeks")
    assert model.freq_ == "W" and not model.converged_ and model.variance_matrix_ is None
    assert np.isnan(model.summary["std_error"]).all()
    with pytest.raises(DataError, match=r"needs exactly the parameters .* missing \['b'\]"):
        BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793)
    with pytest.raises(DataError, match=r"unknown \['s'\]"):
        BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.4, s=1.0)
    with pytest.raises(DataError, match=r"parameters must be positive and finite"):
        BetaGeoModel.from_params(r=0.243, alpha=-4.414, a=0.793, b=2.426)
    with pytest.raises(DataError, match=r"unsupported time unit 'fortnights'"):
        BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, freq="fortnights")


def test_duration_helper():
    weekly = BetaGeoModel.from_params(r=1, alpha=1, a=1, b=1, freq="W")
    assert weekly._duration("14D") == pytest.approx(2.0)
    assert weekly._duration(3) == 3.0
    np.testing.assert_allclose(weekly._duration(["7D", 2, "1W"]), [1.0, 2.0, 1.0])
    with pytest.raises(DataError, match=r"t must be finite and >= 0"):
        weekly._duration(float("inf"))
    with pytest.raises(DataError, match=r"t must be a number of periods or a duration"):
        weekly._duration(None)


# --------------------------------------------------------------------------------- persistence
def test_save_load_round_trip(cdnow, tmp_path):
    model = BetaGeoModel(penalizer_coef=0.001, initial_params={"r": 0.3}, tol=1e-9).fit(cdnow)
    path = model.save(tmp_path / "bgnbd.json")
    state = json.loads(path.read_text())
    assert state["format_version"] == FORMAT_VERSION and state["model"] == "BetaGeoModel"
    loaded = BetaGeoModel.load(path)
    assert loaded.get_params() == model.get_params()
    pd.testing.assert_series_equal(loaded.params_, model.params_)
    pd.testing.assert_frame_equal(loaded.variance_matrix_, model.variance_matrix_)
    pd.testing.assert_frame_equal(loaded.summary, model.summary)
    for attribute in ("log_likelihood_", "n_customers_", "n_patterns_", "n_iter_", "freq_"):
        assert getattr(loaded, attribute) == getattr(model, attribute), attribute
    assert loaded.aic == model.aic
    # from_params models (no variance, no likelihood) round-trip too
    injected = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    reloaded = load_model(injected.save(tmp_path / "injected.json"))
    assert reloaded.variance_matrix_ is None and np.isnan(reloaded.log_likelihood_)


def test_load_refuses_newer_formats_and_other_files(tmp_path):
    path = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426).save(
        tmp_path / "m.json"
    )
    state = json.loads(path.read_text())
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**state, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(DataError, match=r"in model file format 2, but this custval reads format 1"):
        load_model(newer)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({**state, "model": "ParetoNBDModelV9"}))
    with pytest.raises(DataError, match=r"holds an unknown model 'ParetoNBDModelV9'"):
        load_model(unknown)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(DataError, match=r"is not a custval model file"):
        load_model(other)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DataError, match=r"cannot read a custval model from"):
        load_model(broken)
    with pytest.raises(DataError, match=r"holds a BetaGeoModel, not a GammaGammaModel"):
        GammaGammaModel.load(path)


def test_hooks_have_backwards_compatible_defaults(cdnow):
    """A model defining only _loglik (no gradient, no hooks) still fits through the base."""

    class PlainBetaGeo(BaseModel):
        _param_names = ("r", "alpha", "a", "b")
        _data_columns = ("frequency", "recency", "T")

        def _loglik(self, params, data):
            return BetaGeoModel()._loglik(params, data)

    try:
        plain = PlainBetaGeo().fit(cdnow)
        np.testing.assert_allclose(plain.params_, BetaGeoModel().fit(cdnow).params_, rtol=1e-5)
    finally:
        _REGISTRY.pop("PlainBetaGeo", None)  # keep the registry of saved-model classes clean


def test_predictions_follow_in_place_edits_of_the_summary():
    """The model reuses validated columns between predictions only while their values match."""
    model = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    summary = pd.DataFrame(
        {"frequency": [2.0, 0.0, 5.0], "recency": [30.43, 0.0, 35.0], "T": [38.86, 38.86, 38.86]}
    )
    first = model.expected_purchases(summary, 39)
    alive_before = model.probability_alive(summary)
    summary.loc[0, "frequency"] = 7.0  # edit in place, same object
    fresh = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    np.testing.assert_allclose(
        model.expected_purchases(summary, 39), fresh.expected_purchases(summary, 39), rtol=1e-12
    )
    np.testing.assert_allclose(
        model.probability_alive(summary), fresh.probability_alive(summary), rtol=1e-12
    )
    assert model.expected_purchases(summary, 39)[0] != first[0]
    assert alive_before[1] == model.probability_alive(summary)[1]
    summary.loc[1, "recency"] = 5.0  # now invalid: frequency 0 with positive recency
    with pytest.raises(DataError, match=r"recency.*non-zero values where frequency is 0"):
        model.probability_alive(summary)
