"""Observational programme effect: propensity weighting against a known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval import DataError
from custval.invest import relationship_effect

TRUE_EFFECT = 15.0


def _programme(n=6000, seed=0, effect=TRUE_EFFECT):
    """Members self-select on pre-enrolment spend, frequency and region; value depends on them."""
    rng = np.random.default_rng(seed)
    spend = rng.gamma(2.0, 50.0, n)
    orders = rng.poisson(3.0, n)
    region = rng.choice(["north", "south", "west"], n, p=[0.5, 0.3, 0.2])
    logit = -3.0 + 0.015 * spend + 0.3 * orders + 0.8 * (region == "south")
    member = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    value = (
        20.0 + 0.8 * spend + 10.0 * orders + 25.0 * (region == "south") + effect * member
    ) + rng.normal(0, 20, n)
    return pd.DataFrame(
        {
            "loyalty_member": member,
            "clv": value,
            "pre_spend": spend,
            "pre_orders": orders,
            "region": region,
        },
        index=pd.Index(np.arange(n), name="customer_id"),
    )


@pytest.fixture(scope="module")
def weighted():
    frame = _programme()
    result = relationship_effect(
        frame,
        covariates=["pre_spend", "pre_orders", "region"],
        n_bootstrap=100,
        progress=False,
        randomized={"estimate": 14.0, "ci_lower": 9.0, "ci_upper": 19.0},
    )
    return frame, result


def test_weighted_estimate_is_close_to_the_truth_and_the_naive_one_is_not(weighted):
    frame, result = weighted
    est = result.estimates
    naive = est.loc["naive difference"]
    member = frame["loyalty_member"]
    assert naive["estimate"] == pytest.approx(
        frame.loc[member, "clv"].mean() - frame.loc[~member, "clv"].mean()
    )
    assert naive["estimate"] > TRUE_EFFECT + 40  # selection on spend inflates it
    assert not naive["ci_lower"] < TRUE_EFFECT < naive["ci_upper"]
    w = est.loc["propensity weighted"]
    assert abs(w["estimate"] - TRUE_EFFECT) < 3.0
    assert w["ci_lower"] < TRUE_EFFECT < w["ci_upper"]
    assert w["ci_upper"] - w["ci_lower"] < 12.0
    assert result.estimate == w["estimate"]
    assert (est["design"] == ["observational", "observational", "randomized"]).all()
    assert est.loc["randomized", "estimate"] == 14.0
    assert result.message.startswith("Observational estimate:")
    assert "no unmeasured" in result.message
    assert result.assumptions["design"].startswith("observational")


def test_balance_improves_after_weighting(weighted):
    _, result = weighted
    b = result.balance
    assert set(b.index) == {"pre_spend", "pre_orders", "region_south", "region_west"}
    assert b.loc["pre_spend", "smd_before"] > 0.5
    assert (b["smd_after"].abs() < 0.1).all() and b["balanced_after"].all()


def test_weights_trimming_and_att_by_hand():
    frame = _programme(n=3000, seed=4)
    result = relationship_effect(
        frame, covariates=["pre_spend"], trim=0.1, n_bootstrap=0, progress=False
    )
    e = result.propensity.to_numpy()
    z = frame["loyalty_member"].to_numpy()
    keep = (e >= 0.1) & (e <= 0.9)
    assert result.trimmed == int((~keep).sum()) > 0
    assert result.estimates.loc["propensity weighted", "customers"] == keep.sum()
    w = np.where(z, 1.0, e / (1 - e))
    y = frame["clv"].to_numpy()
    t, c = keep & z, keep & ~z
    by_hand = np.average(y[t], weights=w[t]) - np.average(y[c], weights=w[c])
    assert result.estimate == pytest.approx(by_hand)
    assert result.weights[~keep].eq(0).all()
    assert result.weights[t].sum() == pytest.approx(1.0)
    assert result.weights[c].sum() == pytest.approx(1.0)
    ate = relationship_effect(
        frame, covariates=["pre_spend"], estimand="ATE", trim=0.1, n_bootstrap=0, progress=False
    )
    w = np.where(z, 1 / e, 1 / (1 - e))
    assert ate.estimate == pytest.approx(
        np.average(y[t], weights=w[t]) - np.average(y[c], weights=w[c])
    )


def test_randomized_estimate_from_an_uplift_result():
    from custval.invest import estimate_uplift

    rng = np.random.default_rng(0)
    n = 400
    campaign = pd.DataFrame(
        {"x": rng.normal(size=n), "treatment": rng.integers(0, 2, n), "y": rng.normal(size=n)}
    )
    uplift = estimate_uplift(
        campaign, outcome="y", features=["x"], n_bootstrap=0, fit_final=False, progress=False
    )
    result = relationship_effect(
        _programme(n=1000),
        covariates=["pre_spend"],
        n_bootstrap=0,
        progress=False,
        randomized=uplift,
    )
    row = result.estimates.loc["randomized"]
    assert row["estimate"] == uplift.ate.loc["difference in means", "estimate"]
    assert row["customers"] == n


def test_input_is_not_modified():
    frame = _programme(n=500)
    before = frame.copy()
    relationship_effect(frame, covariates=["pre_spend", "region"], n_bootstrap=5, progress=False)
    pd.testing.assert_frame_equal(frame, before)


def test_errors():
    frame = _programme(n=500)
    kw = {"n_bootstrap": 0, "progress": False}
    with pytest.raises(DataError, match="covariates is empty"):
        relationship_effect(frame, covariates=[], **kw)
    with pytest.raises(DataError, match="covariates must not include the membership or the"):
        relationship_effect(frame, covariates=["clv"], **kw)
    with pytest.raises(DataError, match=r"trim must lie in \[0, 0.5\), got 0.6"):
        relationship_effect(frame, covariates=["pre_spend"], trim=0.6, **kw)
    with pytest.raises(DataError, match="estimand must be 'ATT' or 'ATE'"):
        relationship_effect(frame, covariates=["pre_spend"], estimand="ATC", **kw)
    coded = frame.assign(loyalty_member=np.where(frame["loyalty_member"], "yes", "no"))
    with pytest.raises(DataError, match="column 'loyalty_member' has 500 values other than 0/1"):
        relationship_effect(coded, covariates=["pre_spend"], **kw)
    gaps = frame.assign(pre_spend=frame["pre_spend"].where(frame.index > 2))
    with pytest.raises(DataError, match=r"column 'pre_spend' has 3 missing or infinite values"):
        relationship_effect(gaps, covariates=["pre_spend"], **kw)
    with pytest.raises(DataError, match="need at least 2 members and 2 non-members"):
        relationship_effect(frame.assign(loyalty_member=True), covariates=["pre_spend"], **kw)
    with pytest.raises(DataError, match="randomized must be an UpliftResult or a mapping"):
        relationship_effect(frame, covariates=["pre_spend"], randomized=[1.0], **kw)
    separated = frame.assign(pre_spend=frame["loyalty_member"] * 1000.0)
    with pytest.raises(DataError, match="members and non-members do not overlap"):
        relationship_effect(separated, covariates=["pre_spend"], **kw)
