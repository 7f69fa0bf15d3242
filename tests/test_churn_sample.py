"""Churn classifiers on the simulated sample retailer, judged against the generator's truth."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

import custval

CUTOFF = pd.Timestamp("2024-06-30")


@pytest.fixture(scope="module")
def sample():
    if not hasattr(custval, "load_sample"):
        pytest.skip("custval.load_sample is not available yet (datasets.py has not landed)")
    try:
        return custval.load_sample()
    except FileNotFoundError as error:
        pytest.skip(f"the sample data is not available: {error}")


@pytest.fixture(scope="module")
def clean(sample):
    # returns="keep": netting would set returns after the cutoff against purchases before it.
    log, _ = custval.clean_transactions(sample.transactions, returns="keep")
    return log


@pytest.fixture(scope="module")
def customers(sample):
    # loyalty_member is the status at the END of the data: it would leak. loyalty_join_date is
    # fine, churn_features blanks dates after the cutoff. (Integer ids join the clean log's
    # text ids.)
    return sample.customers.drop(columns=["loyalty_member"])


@pytest.mark.slow
def test_classifier_finds_the_customers_who_are_truly_gone(sample, clean, customers):
    truth = sample.customer_truth.assign(
        customer_id=lambda f: f["customer_id"].astype(clean["customer_id"].dtype)
    ).set_index("customer_id")
    with threadpool_limits(1):
        scores = custval.churn_scores(clean, cutoff=CUTOFF, horizon="90D", customers=customers)
    dead = (truth["dropout_date"] <= CUTOFF).reindex(scores.index)
    assert dead.notna().all()
    auc = roc_auc_score(dead, scores)
    labels = custval.churn_labels(clean, cutoff=CUTOFF, horizon="90D")
    hindsight = roc_auc_score(dead, labels.reindex(scores.index))
    features = custval.churn_features(clean, cutoff=CUTOFF, horizon="90D")
    p_alive = roc_auc_score(dead, 1 - features["p_alive"])
    print(
        f"\nsample, cutoff {CUTOFF.date()}: gradient boosting AUC vs true dead state {auc:.3f}; "
        f"the 90-day label itself (hindsight) {hindsight:.3f}; BG/NBD 1 - P(alive) {p_alive:.3f}"
    )
    # Floor 0.75. The classifier learns the 90-day no-purchase label, a noisy proxy of death:
    # in this sample 78% of customers make no purchase in 90 days while 41% are dead, so even the
    # label known with hindsight scores only ~0.69 against the truth. A classifier that merely
    # learned "quiet lately" would sit near that; one that ranks by underlying dropout risk gets
    # ~0.78 (measured with the committed sample and seed). 0.75 sits between the two, and
    # above the hindsight label, with room for harmless changes to features or defaults.
    # (1 - P(alive) scores ~0.91: the sample IS a BG/NBD process, so P(alive) is close to the
    # Bayes-optimal score of the alive state, which is not what the classifier is trained on.)
    assert auc > 0.75
    assert auc > hindsight


@pytest.mark.slow
def test_backtest_on_the_sample(clean, customers):
    with threadpool_limits(1):
        result = custval.churn_backtest(
            clean,
            cutoffs=["2024-01-01", "2024-04-01", "2024-07-01"],
            customers=customers,
            progress=False,
            importance_samples=500,
        )
    auc = result.metrics.set_index(["cutoff", "model"])["roc_auc"]
    print("\n" + result.metrics[["cutoff", "model", "roc_auc", "pr_auc", "brier"]].to_string())
    for cutoff in result.metrics["cutoff"].unique():
        # both classifiers clearly beat 1 - P(alive), which ranks one-time buyers as safest
        assert auc[(cutoff, "gradient_boosting")] > auc[(cutoff, "bgnbd")] + 0.05
        assert auc[(cutoff, "gradient_boosting")] > 0.8
