"""Uplift from randomized campaigns: average effect next to the difference in means, deciles,
uplift curve, power, cross-fitting; Hillstrom's e-mail test; the simulated sample's truth."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.neighbors import KNeighborsRegressor

from conftest import shared_file
from custval import CustvalWarning, DataError
from custval.invest import campaign_outcomes, estimate_uplift, history_features

FAST = {"progress": False, "n_bootstrap": 100}


def _campaign(n=3000, *, binary=False, effect=True, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(size=n)
    x2 = rng.normal(size=n)
    group = rng.choice(["north", "south", "east"], size=n)
    t = rng.permutation(np.repeat([0, 1], n // 2))
    if binary:
        tau = 0.3 * x1 if effect else np.zeros(n)
        y = (rng.uniform(size=n) < 0.1 + 0.1 * (x2 > 0) + tau * t).astype(int)
    else:
        tau = 4.0 * x1 if effect else np.zeros(n)
        y = 1.0 + 2.0 * x2 + tau * t + rng.normal(size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "group": group, "treatment": t, "y": y})
    frame.index = pd.Index([f"c{i}" for i in range(n)], name="customer_id")
    return frame, tau


def _dim(frame, outcome="y", treatment="treatment"):
    yt = frame.loc[frame[treatment] == 1, outcome].to_numpy(dtype=float)
    yc = frame.loc[frame[treatment] == 0, outcome].to_numpy(dtype=float)
    se = math.sqrt(yt.var(ddof=1) / len(yt) + yc.var(ddof=1) / len(yc))
    return yt.mean() - yc.mean(), se


@pytest.fixture(scope="module")
def continuous():
    frame, tau = _campaign()
    return frame, tau, estimate_uplift(frame, outcome="y", features=["x1", "x2", "group"], **FAST)


def test_average_effect_equals_the_difference_in_means(continuous):
    frame, _, result = continuous
    dim, se = _dim(frame)
    row = result.ate.loc["difference in means"]
    assert row["estimate"] == pytest.approx(dim, rel=1e-12)
    assert row["std_error"] == pytest.approx(se, rel=1e-12)
    z = stats.norm.ppf(0.975)
    assert row["ci_lower"] == pytest.approx(dim - z * se)
    assert row["ci_upper"] == pytest.approx(dim + z * se)
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs(dim) / se))
    # the model's (cross-fitted AIPW) average agrees with it, and the truth is 4 * E[x1] = 2
    model = result.ate.loc["model (cross-fitted AIPW)"]
    assert abs(model["estimate"] - dim) < se
    assert model["ci_lower"] < 2.0 < model["ci_upper"]
    assert row["bootstrap_ci_lower"] < dim < row["bootstrap_ci_upper"]
    assert result.groups.loc["treated", "n"] == 1500
    assert result.groups.loc["control", "mean"] == pytest.approx(
        frame.loc[frame["treatment"] == 0, "y"].mean()
    )


def test_heterogeneous_effects_are_ranked(continuous):
    frame, tau, result = continuous
    assert np.corrcoef(result.cate, tau)[0, 1] > 0.8
    d = result.by_decile
    assert d.index.tolist() == list(range(1, 11))
    assert d["n"].sum() == len(frame)
    assert np.all(np.diff(d["predicted_uplift"]) <= 1e-12)
    assert d.loc[1, "observed_uplift"] > 3.0 > 1.0 > d.loc[10, "observed_uplift"]
    assert d.loc[1, "ci_lower"] > d.loc[10, "ci_upper"]
    # each decile's observed uplift is its own difference in means
    in_top = result.cate.rank(ascending=False, method="first") <= 300
    est, se = _dim(frame[in_top.to_numpy()])
    assert d.loc[1, "observed_uplift"] == pytest.approx(est)
    assert d.loc[1, "std_error"] == pytest.approx(se)
    # uplift curve: starts at 0, ends at ATE x n, beats random targeting
    q = result.qini
    assert len(q) == 101 and q["incremental_outcome"].iloc[0] == 0.0
    dim, _ = _dim(frame)
    assert q["incremental_outcome"].iloc[-1] == pytest.approx(dim * len(frame))
    assert q["random_targeting"].iloc[-1] == pytest.approx(dim * len(frame))
    assert result.qini_area > 0 and result.qini_area_ci[0] > 0
    # 4 x1 with x1 uniform: the best ordering gains integral of (F(f) - f * mean), about 0.33
    assert 0.2 < result.qini_area < 0.45


@pytest.mark.slow
def test_binary_outcome_and_x_learner():
    frame, tau = _campaign(4000, binary=True, seed=1)
    for method in ("t_learner", "x_learner"):
        result = estimate_uplift(
            frame, outcome="y", features=["x1", "x2"], method=method, fit_final=False, **FAST
        )
        assert result.outcome_type == "binary"
        dim, se = _dim(frame)
        assert result.ate.loc["difference in means", "estimate"] == pytest.approx(dim)
        assert result.ate.loc["difference in means", "std_error"] == pytest.approx(se)
        assert abs(result.ate.loc["model (cross-fitted AIPW)", "estimate"] - dim) < se
        assert np.corrcoef(result.cate, tau)[0, 1] > 0.5
        assert result.qini_area_ci[0] > 0
        assert result.assumptions["method"] == method


def test_no_effect_is_reported_as_not_distinguishable_with_the_mde():
    frame, _ = _campaign(1000, effect=False, seed=5)
    result = estimate_uplift(frame, outcome="y", features=["x1"], fit_final=False, **FAST)
    _, se = _dim(frame)
    assert not result.distinguishable_from_zero
    mde = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * se
    assert result.power["minimum_detectable_effect"] == pytest.approx(mde)
    assert result.message.startswith("The effect on y is not distinguishable from zero")
    assert f"minimum detectable effect at 80% power is {mde:.4g}" in result.message
    strong = estimate_uplift(
        _campaign(1000, seed=5)[0], outcome="y", features=["x1"], fit_final=False, **FAST
    )
    assert strong.distinguishable_from_zero
    assert "distinguishable from zero (p = " in strong.message


def test_predictions_are_out_of_fold():
    # A 1-nearest-neighbour learner memorizes its training rows: evaluated in sample, a
    # treated customer's predicted uplift would contain its own noisy outcome. Out of fold it
    # cannot, so on pure noise the prediction is unrelated to the customer's own outcome.
    frame, _ = _campaign(2000, effect=False, seed=2)
    frame["y"] = np.random.default_rng(2).normal(size=len(frame))
    result = estimate_uplift(
        frame,
        outcome="y",
        features=["x1", "x2"],
        learner=KNeighborsRegressor(n_neighbors=1),
        fit_final=True,
        **FAST,
    )
    signed = np.where(frame["treatment"] == 1, 1.0, -1.0) * frame["y"]
    assert abs(np.corrcoef(result.cate, signed)[0, 1]) < 0.1
    in_sample = result.predict(frame)  # the final model has seen every row
    assert np.corrcoef(in_sample, signed)[0, 1] > 0.5
    assert result.qini_area_ci[0] < 0 < result.qini_area_ci[1]


def test_predict_effect_by_and_reproducibility(continuous):
    frame, _, result = continuous
    new = frame.iloc[:5]
    pred = result.predict(new)
    assert pred.index.equals(new.index) and pred.name == "uplift"
    by = result.effect_by("group")
    assert sorted(by.index) == ["east", "north", "south"]
    part = frame[frame["group"] == "east"]
    est, se = _dim(part)
    assert by.loc["east", "observed_uplift"] == pytest.approx(est)
    assert by.loc["east", "std_error"] == pytest.approx(se)
    assert by["predicted_rank"].tolist() == [1, 2, 3]
    again = estimate_uplift(frame, outcome="y", features=["x1", "x2", "group"], **FAST)
    pd.testing.assert_series_equal(again.cate, result.cate)
    assert again.qini_area_ci == result.qini_area_ci
    none = estimate_uplift(
        frame, outcome="y", features=["x1"], n_bootstrap=0, fit_final=False, progress=False
    )
    assert np.isnan(none.ate["bootstrap_ci_lower"]).all() and np.isnan(none.qini_area_ci[0])
    with pytest.raises(DataError, match="no model fitted on the whole campaign"):
        none.predict(new)


def test_input_is_not_modified(continuous):
    frame, _, _ = continuous
    before = frame.copy()
    estimate_uplift(frame, outcome="y", features=["x1", "group"], fit_final=False, **FAST)
    pd.testing.assert_frame_equal(frame, before)


def test_errors():
    frame, _ = _campaign(200)
    fit = {"outcome": "y", "progress": False, "n_bootstrap": 0}
    with pytest.raises(DataError, match="features is empty"):
        estimate_uplift(frame, features=[], **fit)
    with pytest.raises(DataError, match=r"features include \['y'\], the treatment or outcome"):
        estimate_uplift(frame, features=["x1", "y"], **fit)
    with pytest.raises(DataError, match=r"missing required column.*'age'"):
        estimate_uplift(frame, features=["age"], **fit)
    bad = frame.assign(treatment=frame["treatment"].replace({1: 2}))
    with pytest.raises(DataError, match=r"column 'treatment' has 100 values other than 0 and 1"):
        estimate_uplift(bad, features=["x1"], **fit)
    few = frame.assign(treatment=0)
    few.iloc[:3, few.columns.get_loc("treatment")] = 1
    with pytest.raises(DataError, match=r"the treated group has 3 customers; .* at least 5"):
        estimate_uplift(few, features=["x1"], **fit)
    with pytest.raises(DataError, match="method must be 't_learner' or 'x_learner'"):
        estimate_uplift(frame, features=["x1"], method="s_learner", **fit)
    with pytest.raises(DataError, match="n_folds must be an integer >= 2"):
        estimate_uplift(frame, features=["x1"], n_folds=1, **fit)
    with pytest.raises(DataError, match="feature 'when' is a date"):
        estimate_uplift(frame.assign(when=pd.Timestamp("2024-01-01")), features=["when"], **fit)
    text = frame.assign(y=frame["y"].astype(str))
    with pytest.raises(DataError, match=r"column 'y' holds str values, not numbers; convert"):
        estimate_uplift(text, features=["x1"], **fit)


# --- campaign outcomes --------------------------------------------------------------------------


def test_campaign_outcomes_hand_built():
    log = pd.DataFrame(
        {
            "customer_id": ["1", "1", "1", "1", "2", "3"],
            "order_id": ["o1", "o2", "o2", "o3", "o4", "o5"],
            "timestamp": pd.to_datetime(
                [
                    "2023-06-01",  # before the contact, in the lookback
                    "2024-01-01",  # on the contact day: inside the window
                    "2024-01-01",  # same order, second line
                    "2024-03-31",  # day 90: outside [contact, contact + 90D)
                    "2024-03-30 23:00",  # inside
                    "2022-01-01",  # long before: tenure, but outside the 365D lookback
                ],
                format="ISO8601",
            ),
            "amount": [10.0, 20.0, 5.0, 7.0, 3.0, 8.0],
        }
    )
    campaign = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "treatment": [1, 0, 1],
            "contact_date": pd.to_datetime(["2024-01-01"] * 3),
            "segment": ["a", "b", "a"],
        }
    )
    out = campaign_outcomes(log, campaign, window="90D", observation_end="2024-12-31")
    assert out.index.tolist() == [1, 2, 3]
    assert out["purchase"].tolist() == [1, 1, 0]
    assert out["orders"].tolist() == [1, 1, 0]
    assert out["revenue"].tolist() == [25.0, 3.0, 0.0]
    assert out["segment"].tolist() == ["a", "b", "a"]
    assert out["pre_orders"].tolist() == [1, 0, 0]
    assert out["pre_revenue"].tolist() == [10.0, 0.0, 0.0]
    assert out.loc[1, "pre_recency_days"] == 214.0
    assert np.isnan(out.loc[2, "pre_recency_days"])
    assert out.loc[3, "pre_tenure_days"] == 730.0
    assert out.attrs["window_rule"] == "contact_date <= timestamp < contact_date + 90D"
    with pytest.warns(CustvalWarning, match="3 customers' outcome windows end after the data end"):
        campaign_outcomes(log, campaign, window="90D", observation_end="2024-02-01")
    with pytest.raises(DataError, match="column 'customer_id' has 2 duplicated customer ids"):
        campaign_outcomes(log, pd.concat([campaign, campaign.iloc[[0]]]), window="90D")
    with pytest.raises(DataError, match="cannot read duration '90'; write a number and a unit"):
        campaign_outcomes(log, campaign, window="90")
    with pytest.raises(DataError, match=r"campaign is missing required column.*'contact_date'"):
        campaign_outcomes(log, campaign.drop(columns="contact_date"))
    missing = campaign.assign(contact_date=campaign["contact_date"].where([True, False, True]))
    with pytest.raises(DataError, match="column 'contact_date' has 1 missing dates"):
        campaign_outcomes(log, missing, observation_end="2024-12-31")


def test_history_features_lookback():
    log = pd.DataFrame(
        {
            "customer_id": [7, 7, 7],
            "timestamp": pd.to_datetime(["2020-01-01", "2023-12-01", "2024-01-10"]),
            "amount": [1.0, 2.0, 4.0],
        }
    )
    anchors = pd.Series(pd.to_datetime(["2024-01-10"]), index=[7])
    all_time = history_features(log, anchors, lookback=None, prefix="h_")
    assert all_time.loc[7, "h_orders"] == 2 and all_time.loc[7, "h_revenue"] == 3.0
    recent = history_features(log, anchors, lookback="60D")
    assert recent.loc[7, "pre_orders"] == 1 and recent.loc[7, "pre_revenue"] == 2.0
    assert recent.loc[7, "pre_recency_days"] == 40.0
    with pytest.raises(DataError, match="anchors must be a Series of dates"):
        history_features(log, anchors.to_frame())


# --- Hillstrom's MineThatData e-mail test ---------------------------------------------------------

HILLSTROM_FEATURES = [
    "recency",
    "history_segment",
    "history",
    "mens",
    "womens",
    "zip_code",
    "newbie",
    "channel",
]


@pytest.fixture(scope="module")
def hillstrom():
    data = pd.read_csv(shared_file("hillstrom", "hillstrom.csv.gz"))
    data = data[data["segment"].isin(["Womens E-Mail", "No E-Mail"])].copy()
    data["treatment"] = (data["segment"] == "Womens E-Mail").astype(int)
    return data


@pytest.mark.slow
@pytest.mark.parametrize(
    ("outcome", "published", "digits"),
    [("visit", 0.045, 3), ("conversion", 0.0031, 4), ("spend", 0.42, 2)],
)
def test_hillstrom_womens_email(hillstrom, outcome, published, digits):
    assert len(hillstrom) == 21_387 + 21_306
    result = estimate_uplift(
        hillstrom,
        outcome=outcome,
        features=HILLSTROM_FEATURES,
        n_folds=3 if outcome != "spend" else 5,
        fit_final=False,
        progress=False,
    )
    dim, se = _dim(hillstrom, outcome)
    row = result.ate.loc["difference in means"]
    assert row["estimate"] == pytest.approx(dim, rel=1e-12)
    assert row["std_error"] == pytest.approx(se, rel=1e-12)
    # published: +4.5 points of visits, +0.31 points of conversion, +$0.42 of spend
    assert round(row["estimate"], digits) == published
    model = result.ate.loc["model (cross-fitted AIPW)"]
    assert abs(model["estimate"] - dim) < 0.5 * se
    assert result.distinguishable_from_zero
    if outcome == "spend":
        d = result.by_decile
        assert d.index.tolist() == list(range(1, 11))
        assert d["n"].sum() == len(hillstrom)
        assert d[["observed_uplift", "std_error", "ci_lower", "ci_upper"]].notna().all().all()
        assert np.isfinite(result.qini_area) and np.all(np.isfinite(result.qini_area_ci))
        assert result.qini["incremental_outcome"].iloc[-1] == pytest.approx(dim * len(hillstrom))


def test_hillstrom_published_numbers_independently(hillstrom):
    # The three published effects (difference in means) and their standard errors, computed
    # here without custval, pinned to four significant digits.
    expected = {
        "visit": (0.045233, 0.0032345),
        "conversion": (0.0031109, 0.00082267),
        "spend": (0.42441, 0.13033),
    }
    for outcome, (effect, se) in expected.items():
        dim, s = _dim(hillstrom, outcome)
        assert dim == pytest.approx(effect, rel=1e-4)
        assert s == pytest.approx(se, rel=1e-4)


# --- the simulated sample's known truth ----------------------------------------------------------


@pytest.fixture(scope="module")
def sample_campaign():
    from custval import clean_transactions, load_sample

    try:
        sample = load_sample()
    except FileNotFoundError as exc:  # an installed package without data/sample
        pytest.skip(f"sample data not available: {exc}")
    # the truth's outcome definitions: orders that are not returns, merchandise lines (no
    # postage), exact duplicate rows dropped, zero-amount lines kept
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustvalWarning)
        clean, _ = clean_transactions(
            sample.transactions, returns="drop", exclude_codes={"POST"}, zero_amounts="keep"
        )
    window = f"{sample.truth['campaign']['window_days']}D"
    outcomes = campaign_outcomes(clean, sample.campaign, window=window)
    customers = sample.customers.set_index("customer_id")[["channel", "region"]]
    return sample, clean, outcomes.join(customers)


SAMPLE_FEATURES = [
    "pre_orders",
    "pre_revenue",
    "pre_recency_days",
    "pre_tenure_days",
    "segment",
    "channel",
    "region",
]


def test_sample_outcomes_follow_the_truth_definition(sample_campaign):
    sample, clean, out = sample_campaign
    truth = sample.truth["campaign"]
    start = pd.Timestamp(truth["contact_date"])
    end = pd.Timestamp(sample.truth["period"]["campaign_window_last_day"]) + pd.Timedelta("1D")
    inside = clean[(clean["timestamp"] >= start) & (clean["timestamp"] < end)]
    orders = inside.groupby("customer_id")["order_id"].nunique()
    revenue = inside.groupby("customer_id")["amount"].sum()
    keys = out.index.astype(str)
    assert out["orders"].to_numpy().tolist() == orders.reindex(keys, fill_value=0).tolist()
    assert out["revenue"].to_numpy() == pytest.approx(revenue.reindex(keys, fill_value=0.0))
    assert len(out) == truth["segments"]["all"]["n_customers"]
    assert int(out["treatment"].sum()) == truth["segments"]["all"]["n_treated"]


@pytest.mark.slow
def test_sample_effect_interval_covers_the_truth_and_ranks_the_responsive_segment(
    sample_campaign,
):
    sample, _, out = sample_campaign
    truth = sample.truth["campaign"]
    segments = truth["segments"]
    purchase = estimate_uplift(out, outcome="purchase", features=SAMPLE_FEATURES, progress=False)
    revenue = estimate_uplift(
        out, outcome="revenue", features=SAMPLE_FEATURES, fit_final=False, progress=False
    )
    for result, key in ((purchase, "effect_purchase"), (revenue, "effect_revenue")):
        true = segments["all"][key]
        for estimator in ("difference in means", "model (cross-fitted AIPW)"):
            row = result.ate.loc[estimator]
            assert row["ci_lower"] < true < row["ci_upper"], (key, estimator)
        assert result.distinguishable_from_zero
    by = purchase.effect_by("segment")
    assert by.index[0] == truth["responsive_segment"] == "non_member"
    for segment in ("non_member", "member"):
        row = by.loc[segment]
        assert row["ci_lower"] < segments[segment]["effect_purchase"] < row["ci_upper"]
    # the members' effect is not distinguishable from zero, and the model says they respond less
    assert by.loc["member", "ci_lower"] < 0 < by.loc["member", "ci_upper"]
    assert by.loc["non_member", "predicted_uplift"] > 2 * by.loc["member", "predicted_uplift"]
