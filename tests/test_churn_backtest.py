"""Churn backtest, snapshot evaluation, scores, metrics and plots on small synthetic logs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from custval import (
    ChurnEvaluation,
    DataError,
    churn_backtest,
    churn_evaluate,
    churn_features,
    churn_labels,
    churn_metrics,
    churn_scores,
)
from custval.plotting import (
    plot_churn_calibration,
    plot_churn_gains,
    plot_churn_importance,
    plot_churn_precision_recall,
    plot_churn_roc,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def synthetic_log(n_customers: int = 800, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small BG/NBD-like retailer: Poisson purchasing until an exponential death time."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2022-01-01")
    days = 900.0
    first = rng.uniform(0, 500, n_customers)
    rate = rng.gamma(0.8, 1 / 25.0, n_customers)  # purchases per day while alive
    death = first + rng.exponential(300, n_customers)
    stop = np.minimum(death, days)
    counts = rng.poisson(rate * (stop - first))
    owner = np.repeat(np.arange(n_customers), counts)
    times = rng.uniform(first[owner], stop[owner])
    owner = np.concatenate([np.arange(n_customers), owner])  # the first purchase
    times = np.concatenate([first, times])
    amount = np.round(rng.gamma(2.0, 20.0, owner.size), 2)
    returned = rng.uniform(size=owner.size) < 0.05
    log = pd.DataFrame(
        {
            "customer_id": owner + 1000,
            "timestamp": start + pd.to_timedelta(np.round(times * 1440), unit="min"),
            "order_id": np.arange(owner.size),
            "quantity": np.where(returned, -1, 1),
            "amount": np.where(returned, -amount, amount),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(n_customers) + 1000,
            "channel": rng.choice(["web", "store", "app"], n_customers),
        }
    )
    return log, customers


@pytest.fixture(scope="module")
def data():
    return synthetic_log()


@pytest.fixture(scope="module")
def result(data):
    log, customers = data
    rng = np.random.default_rng(5)
    touchpoints = pd.DataFrame(
        {
            "customer_id": rng.choice(customers["customer_id"], 600),
            "timestamp": pd.Timestamp("2022-03-01")
            + pd.to_timedelta(rng.uniform(0, 600, 600), unit="D"),
            "kind": rng.choice(["call", "email"], 600),
        }
    )
    with threadpool_limits(1):
        return churn_backtest(
            log,
            cutoffs=["2022-09-01", "2023-01-01", "2023-05-01"],
            horizon="90D",
            customers=customers,
            touchpoints=touchpoints,
            progress=False,
            importance_samples=300,
        )


def test_backtest_tables(result):
    assert isinstance(result, ChurnEvaluation)
    metrics = result.metrics
    assert metrics["cutoff"].nunique() == 2  # the first cutoff only trains
    assert set(metrics["model"]) == {"bgnbd", "bgnbd_no_purchase", "logistic", "gradient_boosting"}
    for column in ("roc_auc", "pr_auc", "brier", "log_loss", "lift", "capture", "churn_rate"):
        assert metrics[column].notna().all()
    assert metrics["roc_auc"].between(0, 1).all()
    classifiers = metrics[metrics["model"].isin(["logistic", "gradient_boosting"])]
    assert (classifiers["roc_auc"] > 0.6).all()
    # every model is scored on exactly the same customers and labels at a cutoff
    for _, group in result.predictions.groupby("cutoff"):
        by_model = {m: g.set_index("customer_id")["churned"] for m, g in group.groupby("model")}
        first = next(iter(by_model.values()))
        assert all(labels.equals(first) for labels in by_model.values())
    assert set(result.calibration.columns) >= {"bin", "mean_probability", "observed_rate"}
    assert set(result.importance["model"]) == {"logistic", "gradient_boosting"}
    features = set(result.importance["feature"])
    assert {"channel", "touchpoints_call", "p_alive", "recency_days"} <= features
    assert set(result.pipelines) == {"logistic", "gradient_boosting"}
    assert result.best_model("brier") in set(metrics["model"])


def test_training_labels_are_observed_before_the_test_cutoff(result, data):
    log, _ = data
    # test cutoff 2023-01-01 trains on 2022-09-01 only (2022-09-01 + 90D = 2022-11-30)
    n_train = result.metrics.set_index(["cutoff", "model"])["n_train"]
    first = churn_labels(log, cutoff="2022-09-01", horizon="90D")
    second = churn_labels(log, cutoff="2023-01-01", horizon="90D")
    assert n_train[(pd.Timestamp("2023-01-01"), "logistic")] == len(first)
    assert n_train[(pd.Timestamp("2023-05-01"), "logistic")] == len(first) + len(second)


def test_a_cutoff_whose_labels_are_not_yet_observed_is_not_used_for_training(data):
    log, _ = data
    # 2023-03-01 + 90D runs past the 2023-05-01 test cutoff, so only 2022-09-01 trains
    result = churn_backtest(
        log,
        cutoffs=["2022-09-01", "2023-03-01", "2023-05-01"],
        models=["logistic"],
        progress=False,
        importance_samples=0,
    )
    n_train = result.metrics.set_index(["cutoff", "model"])["n_train"]
    expected = len(churn_labels(log, cutoff="2022-09-01", horizon="90D"))
    assert n_train[(pd.Timestamp("2023-05-01"), "logistic")] == expected
    assert result.importance.empty


def test_calibrated_backtest(data):
    log, _ = data
    result = churn_backtest(
        log,
        cutoffs=["2022-09-01", "2023-01-01"],
        models=["gradient_boosting"],
        calibrate=True,
        progress=False,
        importance_samples=0,
    )
    assert type(result.pipelines["gradient_boosting"][-1]).__name__ == "CalibratedClassifierCV"
    assert result.metrics.query("model == 'gradient_boosting'")["roc_auc"].iloc[0] > 0.6


def test_baseline_is_one_minus_p_alive(result, data):
    log, _ = data
    features = churn_features(log, cutoff="2023-05-01", horizon="90D")
    rows = result.predictions.query("model == 'bgnbd' and cutoff == '2023-05-01'")
    np.testing.assert_allclose(
        rows["probability"].to_numpy(), 1 - features.loc[rows["customer_id"], "p_alive"]
    )


def test_determinism_and_progress_bar(data, capsys):
    log, _ = data
    arguments = {
        "cutoffs": 2,
        "horizon": "120D",
        "models": ["gradient_boosting"],
        "importance_samples": 200,
        "random_state": 3,
    }
    first = churn_backtest(log, progress=False, **arguments)
    assert capsys.readouterr().err == ""
    again = churn_backtest(log, progress=True, **arguments)
    assert "churn backtest" in capsys.readouterr().err
    pd.testing.assert_frame_equal(first.predictions, again.predictions)
    pd.testing.assert_frame_equal(first.importance, again.importance)


def test_integer_cutoffs_end_one_horizon_before_the_data(data):
    log, _ = data
    result = churn_backtest(
        log, cutoffs=3, horizon="90D", models="logistic", progress=False, importance_samples=0
    )
    end = log["timestamp"].max()
    last = result.metrics["cutoff"].max()
    assert last == (end - pd.Timedelta(days=90)).floor("D")
    assert result.metrics["cutoff"].nunique() == 2


def test_backtest_errors(data):
    log, _ = data
    with pytest.raises(DataError, match=r"space the cutoffs at least 90D apart"):
        churn_backtest(log, cutoffs=["2023-01-01", "2023-02-01"], progress=False)
    with pytest.raises(DataError, match=r"after the data's end"):
        churn_backtest(log, cutoffs=["2023-01-01", "2024-06-01"], progress=False)
    with pytest.raises(DataError, match=r"models must name one or more of"):
        churn_backtest(log, cutoffs=2, models=["forest"], progress=False)
    with pytest.raises(DataError, match=r"a backtest needs at least 2 cutoffs, got 1"):
        churn_backtest(log, cutoffs=["2023-01-01"], progress=False)
    with pytest.raises(DataError, match=r"a backtest needs at least 2 cutoffs, got cutoffs=1"):
        churn_backtest(log, cutoffs=1, progress=False)
    with pytest.raises(DataError, match=r"would start at .* before the data's start"):
        churn_backtest(log, cutoffs=20, progress=False)
    with pytest.raises(DataError, match=r"cutoffs must be a list of dates or a number"):
        churn_backtest(log, cutoffs="2023-01-01", progress=False)
    with pytest.raises(DataError, match=r"n_threads must be a positive integer or None"):
        churn_backtest(log, cutoffs=2, progress=False, n_threads=0)


# ------------------------------------------------------------------------------------ scores
def test_scores(data):
    log, customers = data
    scores = churn_scores(log, customers=customers, cutoff="2023-09-01")
    assert scores.name == "churn_probability"
    assert scores.index.name == "customer_id"
    assert scores.between(0, 1).all()
    assert scores.index.equals(churn_features(log, cutoff="2023-09-01", model_features=False).index)
    again = churn_scores(log, customers=customers, cutoff="2023-09-01")
    pd.testing.assert_series_equal(scores, again)
    # scores only use the past: cutting the log at the cutoff changes nothing
    past = log[log["timestamp"] <= pd.Timestamp("2023-09-01")]
    pd.testing.assert_series_equal(
        churn_scores(past, customers=customers, cutoff="2023-09-01"), scores
    )
    baseline = churn_scores(log, cutoff="2023-09-01", model="bgnbd")
    features = churn_features(log, cutoff="2023-09-01")
    np.testing.assert_allclose(baseline, 1 - features["p_alive"])
    silent = churn_scores(log, cutoff="2023-09-01", model="bgnbd_no_purchase")
    np.testing.assert_allclose(silent, features["p_no_purchase"])
    with pytest.raises(DataError, match=r"models must name one or more of"):
        churn_scores(log, model="forest")
    with pytest.raises(DataError, match=r"there is no history before"):
        churn_scores(log, cutoff="2022-02-01", horizon="90D")
    loyal = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-05", "2024-02-03"]),
            "amount": 1.0,
        }
    )
    with pytest.raises(DataError, match=r"every customer has the same label"):
        churn_scores(loyal, horizon="30D")


# ------------------------------------------------------------------------------------ snapshot
def test_evaluate_on_a_snapshot():
    rng = np.random.default_rng(1)
    n = 1500
    table = pd.DataFrame(
        {
            "contract": rng.choice(["monthly", "yearly"], n),
            "tenure": rng.exponential(24, n),
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )
    risk = 1 / (1 + np.exp(-(1.0 * (table["contract"] == "monthly") - 0.05 * table["tenure"])))
    labels = pd.Series((rng.uniform(size=n) < risk).astype(int), index=table.index)
    result = churn_evaluate(table, labels, importance_samples=200)
    assert result.metrics["cutoff"].isna().all()
    assert (result.metrics["roc_auc"] > 0.65).all()
    assert len(result.predictions) == 2 * 375
    with pytest.raises(DataError, match=r"2 labelled customers have no features"):
        churn_evaluate(table.iloc[2:], labels)
    with pytest.raises(DataError, match=r"labels must contain both churned"):
        churn_evaluate(table, labels * 0)
    with pytest.raises(DataError, match=r"features must be a pandas DataFrame, got ndarray"):
        churn_evaluate(table.to_numpy(), labels)


# ------------------------------------------------------------------------------------ metrics
def test_metrics_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.05])
    m = churn_metrics(y, p, top=0.2)
    assert m["churn_rate"] == pytest.approx(0.3)
    assert m["capture"] == pytest.approx(1 / 3)  # top 2: 0.9 (churner) and 0.8
    assert m["lift"] == pytest.approx((1 / 2) / 0.3)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    one_class = churn_metrics([0, 0], [0.1, 0.2])
    assert np.isnan(one_class["roc_auc"]) and np.isnan(one_class["capture"])
    with pytest.raises(DataError, match=r"churned must hold only 0 and 1"):
        churn_metrics([2, 0], [0.1, 0.2])
    with pytest.raises(DataError, match=r"probability must hold finite numbers in \[0, 1\]"):
        churn_metrics([1, 0], [1.5, 0.2])
    with pytest.raises(DataError, match=r"must be 1-d and the same length"):
        churn_metrics([1, 0], [0.5])
    with pytest.raises(DataError, match=r"top must lie in \(0, 1\], got"):
        churn_metrics([1, 0], [0.5, 0.2], top=0)
    with pytest.raises(DataError, match=r"needs at least one customer"):
        churn_metrics([], [])


# ------------------------------------------------------------------------------------ plots
@pytest.mark.parametrize(
    ("plot", "title"),
    [
        (plot_churn_roc, r"rank.* churners (best|equally well) \(ROC AUC 0\.\d\d vs 0\.\d\d for P"),
        (plot_churn_precision_recall, r"keeps? precision (highest|equally high) \(PR AUC 0\.\d\d"),
        (plot_churn_calibration, r"is off observed churn by \d+\.\d pts on average"),
        (plot_churn_gains, r"(more churners in its top 10% than|as many churners in their top)"),
        (plot_churn_importance, r"matters most: shuffling it costs"),
    ],
)
def test_plots_state_their_finding(result, plot, title):
    fig, ax = plt.subplots()
    assert plot(result, ax=ax) is ax
    assert ax.get_title() and pytest.importorskip("re").search(title, ax.get_title())
    assert ax.get_xlabel() and ax.get_ylabel()
    plt.close(fig)
    ax = plot(result)  # a new figure when ax is None
    plt.close(ax.figure)


def test_ties_are_not_wins():
    from custval.plotting._churn import _leaders, _words

    assert _leaders({"a": 0.85, "b": 0.853, "c": 0.7}) == ["b", "a"]
    assert _words(["gradient_boosting", "logistic"]) == "Gradient boosting and Logistic regression"
    assert _words(["a", "b", "c"]) == "3 models"


def test_plot_options(result):
    ax = plot_churn_roc(result, cutoff="2023-01-01", models=["logistic", "bgnbd"])
    assert "2023-01-01" in ax.get_title()
    assert len(ax.get_lines()) == 3  # two models and the diagonal
    plt.close(ax.figure)
    with pytest.raises(DataError, match=r"cutoff '2021-01-01' is not a test cutoff"):
        plot_churn_roc(result, cutoff="2021-01-01")
    with pytest.raises(DataError, match=r"model\(s\) \['forest'\] are not in the result"):
        plot_churn_gains(result, models=["forest"])
    with pytest.raises(DataError, match=r"no importance for model 'bgnbd'"):
        plot_churn_importance(result, model="bgnbd")
    empty = ChurnEvaluation(
        metrics=result.metrics,
        predictions=pd.DataFrame(),
        importance=pd.DataFrame(),
        calibration=pd.DataFrame(),
    )
    with pytest.raises(DataError, match=r"the result has no predictions; run churn_backtest"):
        plot_churn_roc(empty)
    with pytest.raises(DataError, match=r"the result has no feature importance"):
        plot_churn_importance(empty)
