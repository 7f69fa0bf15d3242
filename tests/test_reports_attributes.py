"""Customer attributes in the customer-value report (notebook 02): which columns become
covariates, the covariate model that joins the comparison, and the effects in words (escaped,
and true to the simulation's known channel and region effects)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import custval
from custval import reports
from custval.reports import story

PAYLOAD = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def sample():
    data = reports.load_report_data()
    split = custval.calibration_holdout_split(
        data.transactions,
        calibration_end=reports.default_calibration_end(data.transactions, data.observation_end),
        observation_end=data.observation_end,
        freq="W",
    )
    return data, split


def test_attributes_are_the_low_cardinality_text_columns(sample):
    data, split = sample
    attributes = reports.customer_attributes(data, split.index)
    assert list(attributes.columns) == ["channel", "region"]  # not costs, dates or ids
    assert attributes.index.equals(split.index)
    customers = data.customers.set_index("customer_id")
    expected = customers.loc[split.index, "channel"].astype(str)
    assert (attributes["channel"] == expected).all()
    # customers without a row get the level 'unknown'; no customer table: no attributes
    partial = reports.ReportData(
        data.transactions, data.cleaning, data.customers.iloc[10:], None, "x", data.observation_end
    )
    filled = reports.customer_attributes(partial, split.index)
    missing = ~split.index.isin(data.customers["customer_id"].iloc[10:])
    assert (filled.loc[missing, "channel"] == reports._data.UNKNOWN_LEVEL).all()
    without = reports.ReportData(data.transactions, data.cleaning, None, None, "x", pd.Timestamp(0))
    assert reports.customer_attributes(without, split.index) is None
    assert reports.best_covariate_model({"BG/NBD": custval.BetaGeoModel()}, split, None) == {}


def test_the_covariate_model_joins_the_comparison_and_finds_the_known_effects(sample):
    """The sample's truth: the referral channel buys more often than affiliate (rate
    multiplier 1.25 vs 0.9), social less (0.8); the attributes model must say so."""
    data, split = sample
    truth = data.truth["channels"]
    attributes = reports.customer_attributes(data, split.index)
    candidates = {"BG/NBD": custval.BetaGeoModel(), "Pareto/NBD": custval.ParetoNBDModel()}
    chosen = reports.best_covariate_model(candidates, split, attributes)
    assert list(chosen) == ["BG/NBD with customer attributes"]  # Pareto/NBD lacks profiles
    (model,) = chosen.values()
    effects = custval.covariate_effects(model)
    ratio = truth["referral"]["rate_multiplier"] / truth["affiliate"]["rate_multiplier"]
    referral = effects.loc["purchase:channel[referral]"]
    assert referral["lower_95"] < ratio < referral["upper_95"]
    assert effects.loc["purchase:channel[social]", "multiplier"] < 1
    words = story.customer_attribute_effects(model)
    assert "Customers from the referral channel buy" in words
    assert "those from the affiliate channel" in words
    summary = custval.rfm_summary(data.transactions, freq="W", observation_end=data.observation_end)
    full = reports.refit(model, summary, reports.customer_attributes(data, summary.index))
    assert type(full) is type(model) and list(full.params_.index) == list(model.params_.index)


def test_effects_in_words_escape_attribute_names_and_levels():
    rng = np.random.default_rng(3)
    n = 3000
    summary, customers = custval.datasets.simulate_beta_geo_covariates(
        0.5, 5.0, 0.8, 2.5, purchase={"channel[referral]": 0.6}, dropout={}, n=n
    )
    customers = customers.assign(
        channel=customers["channel"].map(lambda v: f"{PAYLOAD} {v}"),
        **{PAYLOAD: rng.choice(["a", "b"], size=n)},
    )
    model = custval.BetaGeoModel().fit(
        summary, customers=customers, purchase_covariates=["channel", PAYLOAD]
    )
    from bs4 import BeautifulSoup
    from nbconvert.filters.markdown import markdown2html

    shown = markdown2html(story.customer_attribute_effects(model))
    soup = BeautifulSoup(shown, "html.parser")
    assert soup.find_all("img") == []  # no markup from the data
    text = soup.get_text()
    assert f"Customers from the {PAYLOAD} referral channel buy 1." in text  # shown as text
    assert f"those from the {PAYLOAD} direct channel" in text


def test_without_covariate_models_the_effects_say_no_attributes_were_used():
    model = custval.BetaGeoModel.from_params(r=0.5, alpha=5.0, a=0.8, b=2.5)
    assert "No customer attributes" in story.customer_attribute_effects(model, 20.0)


def test_tracking_with_covariates_sums_each_profiles_new_customer_expectation(sample):
    """Zero coefficients track as the plain model; a referral effect adds exactly the
    referral customers' extra expected purchases (one new-customer curve per profile)."""
    data, split = sample
    plain = custval.BetaGeoModel().fit(split)
    attributes = reports.customer_attributes(data, split.index)
    referral = (attributes["channel"] == "referral").astype(float).to_frame("referral")
    params = plain.params_.to_dict()
    zero = custval.BetaGeoModel.from_params(**params, **{"purchase:referral": 0.0}, freq="W")
    evaluation = custval.evaluation
    expected = evaluation.tracking(plain, data.transactions, split)
    tracked = evaluation.tracking(zero, data.transactions, split, customers=referral)
    pd.testing.assert_frame_equal(tracked, expected, rtol=1e-10)
    doubled = custval.BetaGeoModel.from_params(
        **params, **{"purchase:referral": np.log(2.0)}, freq="W"
    )
    boosted = evaluation.tracking(doubled, data.transactions, split, customers=referral)
    fast = custval.BetaGeoModel.from_params(**{**params, "alpha": params["alpha"] / 2}, freq="W")
    referral_split = split[referral["referral"].to_numpy() == 1.0]
    others_split = split[referral["referral"].to_numpy() == 0.0]
    for part in (referral_split, others_split):
        part.attrs = split.attrs
    by_parts = evaluation.tracking(fast, data.transactions, referral_split)[
        "predicted_cumulative"
    ].add(
        evaluation.tracking(plain, data.transactions, others_split)["predicted_cumulative"],
        fill_value=0.0,
    )
    np.testing.assert_allclose(
        boosted["predicted_cumulative"].to_numpy()[-len(by_parts) :],
        by_parts.to_numpy(),
        rtol=1e-9,
    )
