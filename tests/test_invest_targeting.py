"""Targeting on measured response: the contact rule, the held-out curves against random and
churn-risk targeting (by hand and against the simulated truth), and the errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval.errors import DataError
from custval.invest import estimate_uplift, uplift_targeting

FAST = {"n_bootstrap": 0, "n_folds": 2, "progress": False}


def _campaign(n=4000, seed=0):
    """Only customers with x > 0 respond (+20 of spend); churn risk is high for x < 0, so
    targeting by churn risk picks the customers who do not respond."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame({"treatment": rng.integers(0, 2, n), "x": x})
    tau = np.where(x > 0, 20.0, 0.0)
    frame["revenue"] = rng.gamma(2.0, 10.0, n) + tau * frame["treatment"]
    churn = pd.Series(1 / (1 + np.exp(3 * x)), index=frame.index)
    return frame, tau, churn


@pytest.fixture(scope="module")
def fitted():
    frame, tau, churn = _campaign()
    effect = estimate_uplift(frame, outcome="revenue", features=["x"], **FAST)
    return frame, tau, churn, effect


def test_contact_rule_and_curve_match_hand_computation(fitted):
    frame, _, churn, effect = fitted
    result = uplift_targeting(effect, margin=0.3, cost_per_contact=2.5, churn=churn, n_bootstrap=0)
    profit = 0.3 * effect.cate
    assert result.scores["predicted_incremental_profit"].tolist() == pytest.approx(profit.tolist())
    assert result.n_contact == int((profit > 2.5).sum())
    assert result.scores["contact"].sum() == result.n_contact
    # by hand: the top n_contact by predicted uplift, contacted mean minus held-back mean
    k = result.n_contact
    top = frame.loc[effect.cate.sort_values(ascending=False, kind="stable").index[:k]]
    diff = (
        top.loc[top["treatment"] == 1, "revenue"].mean()
        - top.loc[top["treatment"] == 0, "revenue"].mean()
    )
    assert result.comparison.loc["by uplift", "net_profit"] == pytest.approx(
        0.3 * diff * k - 2.5 * k
    )
    dim = (
        frame.loc[frame["treatment"] == 1, "revenue"].mean()
        - frame.loc[frame["treatment"] == 0, "revenue"].mean()
    )
    assert result.comparison.loc["at random", "net_profit"] == pytest.approx((0.3 * dim - 2.5) * k)
    curves = result.curves
    assert curves["n_targeted"].iloc[0] == 0 and curves["n_targeted"].iloc[-1] == len(frame)
    assert curves["by_uplift"].iloc[0] == 0.0
    # everyone contacted: every ranking earns the same
    assert curves["by_uplift"].iloc[-1] == pytest.approx(curves["at_random"].iloc[-1])
    assert curves["by_churn_risk"].iloc[-1] == pytest.approx(curves["at_random"].iloc[-1])


def test_uplift_targeting_recovers_the_true_profit_and_beats_random_and_churn_risk(fitted):
    frame, tau, churn, effect = fitted
    result = uplift_targeting(
        effect, margin=0.3, cost_per_contact=2.5, churn=churn, n_bootstrap=100
    )
    # about half the customers respond (x > 0): the rule contacts roughly them
    assert 0.35 < result.n_contact / len(frame) < 0.65
    chosen = result.scores["contact"].to_numpy()
    assert tau[chosen].mean() > 15  # the contacted are mostly responders
    true_net = float((0.3 * tau[chosen] - 2.5).sum())
    row = result.comparison.loc["by uplift"]
    assert row["ci_lower"] < true_net < row["ci_upper"]
    assert result.beats_random and result.beats_churn_risk
    assert result.comparison.loc["by churn risk", "net_profit"] < 0  # churn risk picks x < 0


def test_targeting_without_heterogeneity_does_not_claim_to_beat_random():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"treatment": rng.integers(0, 2, 3000), "x": rng.normal(size=3000)})
    frame["revenue"] = rng.gamma(2.0, 10.0, 3000) + 10.0 * frame["treatment"]
    effect = estimate_uplift(frame, outcome="revenue", features=["x"], **FAST)
    result = uplift_targeting(effect, margin=0.3, cost_per_contact=2.5, n_bootstrap=100)
    assert not result.beats_random
    assert result.beats_churn_risk is None


def test_targeting_refuses_bad_arguments(fitted):
    frame, _, churn, effect = fitted
    with pytest.raises(DataError, match="effect must be the result of estimate_uplift"):
        uplift_targeting(frame, margin=0.3, cost_per_contact=2.5)
    with pytest.raises(DataError, match="churn has no value for 10 campaign customers"):
        uplift_targeting(effect, margin=0.3, cost_per_contact=2.5, churn=churn.iloc[10:])
    binary = frame.assign(bought=(frame["revenue"] > 20).astype(int))
    yes_no = estimate_uplift(binary, outcome="bought", features=["x"], **FAST)
    with pytest.raises(DataError, match="target on money"):
        uplift_targeting(yes_no, margin=0.3, cost_per_contact=2.5)


def test_plot_targeting_curves_states_the_finding(fitted):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from custval.plotting import plot_targeting_curves

    _, _, churn, effect = fitted
    result = uplift_targeting(effect, margin=0.3, cost_per_contact=2.5, churn=churn, n_bootstrap=20)
    ax = plot_targeting_curves(result, currency="£")
    assert ax.get_title().startswith(f"Contacting the {result.n_contact:,} most responsive")
    assert "£" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "By predicted response",
        "At random",
        "By churn risk",
    ]
    plt.close(ax.figure)
    with pytest.raises(DataError, match="uplift_targeting"):
        plot_targeting_curves(effect)
