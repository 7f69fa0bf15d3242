"""Campaign payback in money: hand computation, the simulated sample's known truth, the
observational label and the sentence."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from custval.errors import DataError
from custval.invest import (
    campaign_outcomes,
    campaign_payback,
    estimate_uplift,
    relationship_effect,
)

FAST = {"n_bootstrap": 0, "n_folds": 2, "progress": False}
Z = stats.norm.ppf(0.975)


def _campaign(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "treatment": rng.integers(0, 2, n),
            "x": rng.normal(size=n),
            "segment": rng.choice(["a", "b"], n),
        }
    )
    effect = np.where(frame["segment"] == "a", 20.0, 2.0)  # segment a responds, b barely
    frame["revenue"] = rng.gamma(2.0, 10.0, n) + effect * frame["treatment"]
    return frame


def _hand(frame, margin, cost):
    """Difference in means, Neyman interval, and the money built from it, by hand."""
    yt = frame.loc[frame["treatment"] == 1, "revenue"]
    yc = frame.loc[frame["treatment"] == 0, "revenue"]
    dim = yt.mean() - yc.mean()
    se = np.sqrt(yt.var(ddof=1) / len(yt) + yc.var(ddof=1) / len(yc))
    lo, hi = dim - Z * se, dim + Z * se
    return {
        "n_contacted": len(yt),
        "incremental_profit": margin * dim,
        "incremental_profit_lower": margin * lo,
        "incremental_profit_upper": margin * hi,
        "net_return": margin * dim - cost,
        "net_return_lower": margin * lo - cost,
        "roi": (margin * dim - cost) / cost,
        "roi_upper": (margin * hi - cost) / cost,
        "payback_multiple": margin * dim / cost,
        "total_cost": cost * len(yt),
        "total_net_return": (margin * dim - cost) * len(yt),
    }


def test_payback_matches_hand_computation_overall_and_by_segment():
    frame = _campaign()
    effect = estimate_uplift(frame, outcome="revenue", features=["x", "segment"], **FAST)
    result = campaign_payback(effect, margin=0.3, cost_per_contact=2.5)
    assert result.design == "randomized" and result.level == pytest.approx(0.95)
    assert result.summary.index.tolist() == ["all", "a", "b"]
    for row, part in (("all", frame), ("a", frame[frame["segment"] == "a"])):
        for key, value in _hand(part, 0.3, 2.5).items():
            assert result.summary.loc[row, key] == pytest.approx(value, rel=1e-9), (row, key)
    # a: 0.3 * 20 = 6 of profit per 2.50 contact; b: 0.3 * 2 = 0.6, well below the cost
    assert result.summary.loc["a", "verdict"] == "paid back"
    assert result.summary.loc["b", "verdict"] == "did not pay back"
    assert result.summary.loc["a", "payback_multiple"] == pytest.approx(6 / 2.5, rel=0.1)
    # the whole is the contacted-weighted mix of its segments
    assert result.overall["total_cost"] == pytest.approx(
        result.summary.loc[["a", "b"], "total_cost"].sum()
    )


def test_sentence_says_what_a_contact_cost_brought_and_whether_it_paid_back():
    frame = _campaign()
    effect = estimate_uplift(frame, outcome="revenue", features=["x"], **FAST)
    result = campaign_payback(effect, margin=0.3, cost_per_contact=2.5, by=None)
    r = result.overall
    sentence = result.sentence(currency="£")
    assert sentence.startswith(
        f"Each £2.50 contact brought £{r['incremental_profit']:.2f} of profit"
    )
    assert f"(95% range £{r['incremental_profit_lower']:.2f} to " in sentence
    assert sentence.endswith(f"paid back {r['payback_multiple']:.1f} times its cost.")
    assert result.paid_back is True
    on_revenue = campaign_payback(effect, margin=1.0, cost_per_contact=2.5, by=None)
    assert "of revenue (no margin applied) (95% range" in on_revenue.sentence()
    # a cost above the whole interval of the profit: did not pay back
    dear = campaign_payback(effect, margin=0.3, cost_per_contact=50.0, by=None)
    assert dear.paid_back is False and "did not pay back" in dear.sentence()
    # a cost inside the interval: not clear, and the sentence says the range includes it
    mid = campaign_payback(
        effect, margin=0.3, cost_per_contact=float(r["incremental_profit"]), by=None
    )
    assert mid.paid_back is None and "may not have paid back" in mid.sentence()


def test_observational_effect_is_labelled_and_needs_members_for_totals():
    rng = np.random.default_rng(3)
    x = rng.normal(size=3000)
    joined = rng.uniform(size=3000) < 1 / (1 + np.exp(-x))
    frame = pd.DataFrame({"member": joined, "x": x})
    frame["value"] = 40 + 10 * x + 30 * joined + rng.normal(0, 5, 3000)
    effect = relationship_effect(
        frame, member="member", outcome="value", covariates=["x"], n_bootstrap=50, progress=False
    )
    result = campaign_payback(effect, margin=0.5, cost_per_contact=5.0)
    assert result.design == "observational"
    assert result.summary.index.tolist() == ["all"]
    assert result.overall["incremental_profit"] == pytest.approx(0.5 * effect.estimate)
    assert result.overall["incremental_profit"] == pytest.approx(15.0, rel=0.1)
    assert np.isnan(result.overall["total_net_return"])
    assert "observational" in result.sentence() and "not an experiment" in result.sentence()
    assert "programme paid back" in result.sentence()
    counted = campaign_payback(effect, margin=0.5, cost_per_contact=5.0, n_members=100)
    assert counted.overall["total_cost"] == pytest.approx(500.0)
    no_interval = relationship_effect(
        frame, member="member", outcome="value", covariates=["x"], n_bootstrap=0, progress=False
    )
    with pytest.raises(DataError, match="n_bootstrap > 0"):
        campaign_payback(no_interval, margin=0.5, cost_per_contact=5.0)


def test_payback_refuses_bad_arguments():
    effect = estimate_uplift(_campaign(400), outcome="revenue", features=["x"], **FAST)
    with pytest.raises(DataError, match="cost_per_contact must be a positive number, got 0"):
        campaign_payback(effect, margin=0.3, cost_per_contact=0)
    with pytest.raises(
        DataError, match=r"margin must be a fraction of revenue in \(0, 1\], got 1\.5"
    ):
        campaign_payback(effect, margin=1.5, cost_per_contact=2.5)
    with pytest.raises(DataError, match="effect must be the result of estimate_uplift"):
        campaign_payback(pd.DataFrame(), margin=0.3, cost_per_contact=2.5)


def test_sample_payback_covers_the_known_profit_per_contact():
    from custval import clean_transactions, load_sample

    try:
        sample = load_sample()
    except FileNotFoundError as exc:  # an installed package without data/sample
        pytest.skip(f"sample data not available: {exc}")
    truth = sample.truth["campaign"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean, _ = clean_transactions(
            sample.transactions, returns="drop", exclude_codes={"POST"}, zero_amounts="keep"
        )
    outcomes = campaign_outcomes(clean, sample.campaign, window=f"{truth['window_days']}D")
    features = [c for c in outcomes.columns if c.startswith("pre_")] + ["segment"]
    effect = estimate_uplift(outcomes, outcome="revenue", features=features, **FAST)
    result = campaign_payback(
        effect, margin=truth["gross_margin_assumed"], cost_per_contact=truth["cost_per_contact"]
    )
    for row in ("all", "non_member", "member"):
        known = truth["segments"][row]
        r = result.summary.loc[row]
        # the truth's net gross profit per contact lies inside the 95% interval ...
        net = known["incremental_gross_profit_per_contact"]
        assert r["net_return_lower"] < net < r["net_return_upper"], row
        # ... and is 0.3 x the true revenue effect minus the 2.50 cost
        assert net == pytest.approx(0.3 * known["effect_revenue"] - 2.5, abs=1e-3)
        assert r["n_contacted"] == known["n_treated"]
    assert result.summary.loc["non_member", "net_return"] > 0
    assert result.summary.loc["member", "verdict"] != "paid back"
