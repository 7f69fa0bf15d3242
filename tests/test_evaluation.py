"""Holdout diagnostics: CDNOW published numbers (Fader, Hardie & Lee 2005), metrics computed
by hand, and refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

import custval
from custval import BetaGeoModel, CustvalWarning, DataError, ModifiedBetaGeoModel
from custval import evaluation as ev

PUBLISHED_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
# FHL 2005, figure 4 / Hardie's BG/NBD spreadsheet: expected holdout purchases (39 weeks) by
# calibration frequency 0, 1, ..., 6, 7+
PUBLISHED_CONDITIONAL = [0.225, 0.523, 1.044, 1.520, 2.164, 2.654, 3.504, 6.157]


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_path):
    """The CDNOW sample as in FHL 2005: purchases merged per day, calibration to 1997-09-30,
    holdout to 1998-06-30, ages in weeks (days / 7)."""
    raw = pd.read_csv(
        cdnow_sample_path,
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "cds", "amount"],
    )
    log = pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "timestamp": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"),
            "amount": raw["amount"].astype(float),
        }
    )
    daily = custval.calibration_holdout_split(
        log, calibration_end="1997-09-30", observation_end="1998-06-30", freq="D"
    )
    split = daily.copy()
    for column in ("recency", "T", "duration_holdout"):
        split[column] = split[column] / 7.0
    split.attrs = {**daily.attrs, "freq": "W"}
    return log, split, BetaGeoModel().fit(split)


def _small_split() -> pd.DataFrame:
    split = pd.DataFrame(
        {
            "frequency": [0.0, 0.0, 1.0, 2.0, 5.0, 3.0],
            "recency": [0.0, 0.0, 10.0, 30.0, 38.0, 5.0],
            "T": [39.0, 20.0, 39.0, 39.0, 39.0, 39.0],
            "frequency_holdout": [0.0, 1.0, 0.0, 2.0, 4.0, 0.0],
            "monetary_value": [0.0, 0.0, 10.0, 20.0, 30.0, 15.0],
            "monetary_value_holdout": [0.0, 12.0, 0.0, 25.0, 28.0, 0.0],
            "duration_holdout": 39.0,
        },
        index=pd.Index(list("abcdef"), name="customer_id"),
    )
    split.attrs["freq"] = "W"
    return split


def _published() -> BetaGeoModel:
    return BetaGeoModel.from_params(**PUBLISHED_BG, freq="W")


def _by_hand(model: BetaGeoModel, split: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and actual holdout purchases of ``_small_split`` (39 weeks for everyone)."""
    return model.expected_purchases(split, 39.0).to_numpy(), split["frequency_holdout"].to_numpy()


# --------------------------------------------------------------------------------- CDNOW
def test_cdnow_tracking_reproduces_fhl_2005(cdnow):
    log, split, model = cdnow
    table = ev.tracking(model, log, split, purchase_unit="D")
    assert len(table) == 78 and table.attrs["calibration_periods"] == 39
    assert table["holdout"].sum() == 39
    # actual repeat transactions: 2,457 in calibration, 4,339 by week 78
    assert table["actual_cumulative"].iloc[38] == 2457
    assert table["actual_cumulative"].iloc[-1] == 4339
    # BG/NBD prediction at week 78: 4,166 in FHL 2005
    assert table["predicted_cumulative"].iloc[-1] == pytest.approx(4166, rel=0.01)
    published = ev.tracking(_published(), log, split, purchase_unit="D")
    assert published["predicted_cumulative"].iloc[-1] == pytest.approx(4166, abs=1.0)
    np.testing.assert_allclose(table["predicted"].cumsum(), table["predicted_cumulative"])
    assert table["period_end"].iloc[38] == pd.Timestamp("1997-09-30")
    assert table["period_end"].iloc[-1] == pd.Timestamp("1998-06-30")


def test_cdnow_conditional_expectations_match_the_published_column(cdnow):
    _, split, model = cdnow
    table = ev.conditional_expectations(model, split, by="frequency", max_bin=7)
    assert table.index.tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    np.testing.assert_allclose(table["predicted"], PUBLISHED_CONDITIONAL, rtol=0.02)
    assert table["n_customers"].sum() == len(split)
    assert table["n_customers"].iloc[0] == 1411  # one-time buyers in the CDNOW sample
    # actual holdout purchases per group add up to the holdout total (1,882)
    total = (table["actual"] * table["n_customers"]).sum()
    assert total == pytest.approx(1882)


def test_tracking_refuses_a_purchase_unit_that_does_not_match_the_split(cdnow):
    log, split, model = cdnow
    with pytest.raises(DataError, match=r"do not match the split's T.*purchase_unit='D'"):
        ev.tracking(model, log, split)  # weekly ticks, but T counts days / 7
    no_dates = split.copy()
    no_dates.attrs = {"freq": "W"}
    with pytest.raises(DataError, match=r"does not record attrs\['calibration_end'\]"):
        ev.tracking(model, log, no_dates, purchase_unit="D")
    with pytest.raises(DataError, match="no transaction on or before observation_end"):
        ev.tracking(model, log[log["customer_id"] != 1], split, purchase_unit="D")
    with pytest.raises(DataError, match="purchase_unit 'M' is longer than the split's unit"):
        ev.tracking(model, log, split, purchase_unit="M")


def test_tracking_counts_repeat_purchases_by_period():
    log = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2, 3, 3],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-01",
                    "2024-01-01",
                    "2024-01-09",
                    "2024-01-03",
                    "2024-01-20",
                    "2024-01-10",
                    "2024-01-30",
                ]
            ),
            "amount": 10.0,
        }
    )
    split = custval.calibration_holdout_split(
        log, calibration_end="2024-01-14", observation_end="2024-01-31", freq="D"
    )
    model = BetaGeoModel.from_params(r=0.3, alpha=5.0, a=0.8, b=2.5, freq="D")
    table = ev.tracking(model, log, split)
    assert len(table) == 31  # days 2024-01-01 ... 2024-01-31
    repeat_days = table.index[table["actual"] > 0].tolist()
    assert repeat_days == [9, 20, 30]  # same-day duplicates and first purchases excluded
    ages = np.array([30.0, 28.0, 21.0])  # each customer's age on 2024-01-31
    expected = sum(model.expected_purchases_new_customer(a) for a in ages)
    assert table["predicted_cumulative"].iloc[-1] == pytest.approx(expected, rel=1e-12)
    assert table["predicted_cumulative"].iloc[0] == pytest.approx(
        model.expected_purchases_new_customer(0.0)
    )


# --------------------------------------------------------------------------------- metrics
def test_error_metrics_by_hand():
    split = _small_split()
    model = _published()
    predicted, actual = _by_hand(model, split)
    metrics = ev.error_metrics(model, split)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(predicted - actual)))
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((predicted - actual) ** 2)))
    assert metrics["bias"] == pytest.approx(np.mean(predicted - actual))
    assert metrics["msle"] == pytest.approx(np.mean((np.log1p(predicted) - np.log1p(actual)) ** 2))
    assert metrics["total_error"] == pytest.approx(predicted.sum() / actual.sum() - 1)
    assert metrics.name == "BG/NBD model"


def test_conditional_expectations_by_recency_and_refusals():
    split = _small_split()
    model = _published()
    table = ev.conditional_expectations(model, split, by="recency", bins=4)
    assert table["n_customers"].sum() == len(split)
    assert table.index.name == "recency"
    with pytest.raises(DataError, match="by must be 'frequency' or 'recency'"):
        ev.conditional_expectations(model, split, by="monetary")
    with pytest.raises(DataError, match="max_bin must be a positive integer, got"):
        ev.conditional_expectations(model, split, max_bin=0)


def test_ranking_metrics_by_hand_and_tie_invariance():
    split = _small_split()
    model = _published()
    predicted, actual = _by_hand(model, split)
    metrics = ev.ranking_metrics(model, split)
    assert metrics["spearman"] == pytest.approx(stats.spearmanr(predicted, actual).statistic)
    top = np.argmax(predicted)  # 6 customers: the top decile is the single best
    assert metrics["top_decile_capture"] == pytest.approx(actual[top] / actual.sum())
    shuffled = split.sample(frac=1.0, random_state=1)
    again = ev.ranking_metrics(model, shuffled)
    pd.testing.assert_series_equal(metrics, again)
    perfect = split.assign(frequency_holdout=np.round(predicted * 10))
    assert ev.ranking_metrics(model, perfect)["normalized_gini"] == pytest.approx(1.0)
    deciles = ev.lift_by_decile(model, split)
    assert deciles["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    assert (deciles["lift"] * deciles["n_customers"]).sum() == pytest.approx(len(split))


def test_ranking_by_value_uses_the_spend_model():
    split = _small_split()
    model = _published()
    spend = custval.GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44, freq="W")
    by_value = ev.ranking_metrics(model, split, spend_model=spend)
    predicted = (model.expected_purchases(split, 39.0) * spend.expected_spend(split)).to_numpy()
    actual = (split["frequency_holdout"] * split["monetary_value_holdout"]).to_numpy()
    assert by_value["spearman"] == pytest.approx(stats.spearmanr(predicted, actual).statistic)


def test_alive_metrics_and_calibration():
    split = _small_split()
    model = ModifiedBetaGeoModel.from_params(**PUBLISHED_BG, freq="W")
    p_alive = model.probability_alive(split).to_numpy()
    active = (split["frequency_holdout"] > 0).to_numpy()
    metrics = ev.alive_metrics(model, split)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(active, p_alive))
    assert metrics["brier"] == pytest.approx(np.mean((p_alive - active) ** 2))
    assert metrics["share_active"] == pytest.approx(active.mean())
    table = ev.alive_calibration(model, split, bins=5)
    assert table["n_customers"].sum() == len(split)
    weighted = (table["share_active"] * table["n_customers"]).sum() / len(split)
    assert weighted == pytest.approx(active.mean())
    assert table.attrs["roc_auc"] == pytest.approx(metrics["roc_auc"])


def test_compare_models_sorts_best_first_in_each_metric_direction(cdnow):
    _, split, bgnbd = cdnow
    mbgnbd = ModifiedBetaGeoModel().fit(split)
    models = {"BG/NBD": bgnbd, "MBG/NBD": mbgnbd, "published BG/NBD": _published()}
    by_rmse = ev.compare_models(models, split, metric="rmse")
    assert by_rmse["rmse"].is_monotonic_increasing
    assert by_rmse.attrs["best_model"] == by_rmse.index[0]
    by_ll = ev.compare_models(models, split, metric="log_likelihood")
    assert by_ll.attrs["best_model"] == by_ll["log_likelihood"].idxmax()
    by_bias = ev.compare_models(models, split, metric="bias")
    assert by_bias["bias"].abs().is_monotonic_increasing
    by_auc = ev.compare_models(models, split, metric="roc_auc")
    assert by_auc["roc_auc"].is_monotonic_decreasing
    assert by_rmse.loc["BG/NBD", "log_likelihood"] == pytest.approx(-9582.4, abs=0.1)
    assert by_rmse.loc["BG/NBD", "aic"] == pytest.approx(bgnbd.aic)
    with pytest.raises(
        DataError, match=r"metric must be one of \[.*\], got 'r2'; the metric names a column"
    ):
        ev.compare_models(models, split, metric="r2")
    with pytest.raises(DataError, match="models must be a non-empty dict"):
        ev.compare_models({}, split)


def test_compare_models_warns_when_likelihoods_are_not_comparable(cdnow):
    _, split, bgnbd = cdnow
    half = BetaGeoModel().fit(split.iloc[: len(split) // 2])
    with pytest.warns(CustvalWarning, match="fitted on different numbers of customers"):
        ev.compare_models({"all": bgnbd, "half": half}, split)


def test_unit_checks():
    split = _small_split()
    daily = BetaGeoModel.from_params(**PUBLISHED_BG, freq="D")
    with pytest.raises(DataError, match="fitted in unit 'D' but the split is in unit 'W'"):
        ev.error_metrics(daily, split)
    unknown = BetaGeoModel.from_params(**PUBLISHED_BG)
    with pytest.raises(DataError, match=r"does not record the time unit.*freq_ is None"):
        ev.error_metrics(unknown, split)
    no_holdout = split.drop(columns="frequency_holdout")
    with pytest.raises(DataError, match=r"missing required column.*'frequency_holdout'"):
        ev.error_metrics(_published(), no_holdout)
    no_unit = split.copy()
    no_unit.attrs = {}
    with pytest.raises(DataError, match=r"summary.attrs\['freq'\] is missing"):
        ev.error_metrics(_published(), no_unit)
