"""Churn pipelines and their custom transformer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from custval import CategoricalColumns, DataError, make_churn_pipeline


@pytest.fixture(autouse=True)
def _one_thread():
    # The tests share 2 cores with other workers; spinning OpenMP threads would oversubscribe.
    with threadpool_limits(1):
        yield


@parametrize_with_checks([CategoricalColumns(), CategoricalColumns(max_categories=2)])
def test_sklearn_conformance(estimator, check):
    check(estimator)


def _table(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], n)
    tenure = rng.exponential(20, n)
    charges = rng.normal(60, 20, n)
    charges[rng.uniform(size=n) < 0.05] = np.nan
    logit = -1.0 + 1.5 * (plan == "basic") - 0.05 * tenure + 0.01 * np.nan_to_num(charges)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    table = pd.DataFrame(
        {
            "plan": pd.Series(plan, dtype="str"),
            "paperless": rng.uniform(size=n) < 0.5,
            "region": pd.Categorical(rng.choice(["n", "s"], n)),
            "tenure": tenure,
            "charges": charges,
            "count": rng.poisson(3, n),
        }
    )
    return table, y


def test_categorical_columns_fixes_levels():
    table, _ = _table(50)
    encoder = CategoricalColumns(max_categories=2).fit(table)
    assert set(encoder.categories_) == {"plan", "paperless", "region"}
    assert len(encoder.categories_["plan"]) == 2  # the two most frequent plans
    new = table.head(3).assign(plan=["unseen", "basic", None])
    out = encoder.transform(new)
    assert out["plan"].isna().tolist()[0] and out["plan"].isna().tolist()[2]
    assert list(out["plan"].cat.categories) == list(encoder.categories_["plan"])
    assert out["count"].dtype == np.float64
    assert list(encoder.get_feature_names_out()) == list(table.columns)
    with pytest.raises(DataError, match=r"column 'when' holds datetimes"):
        CategoricalColumns().fit(table.assign(when=pd.Timestamp("2024-01-01")))
    with pytest.raises(ValueError, match=r"max_categories must be a positive integer"):
        CategoricalColumns(max_categories=0).fit(table)


@pytest.mark.parametrize("kind", ["logistic", "gradient_boosting"])
@pytest.mark.parametrize("calibrate", [False, True])
def test_pipelines_learn_from_a_mixed_table(kind, calibrate):
    X, y = _table(2000)
    pipeline = make_churn_pipeline(kind, calibrate=calibrate)
    pipeline.fit(X.iloc[:1500], y[:1500])
    p = pipeline.predict_proba(X.iloc[1500:])[:, 1]
    assert roc_auc_score(y[1500:], p) > 0.7
    if calibrate:
        assert isinstance(pipeline.named_steps["model"], CalibratedClassifierCV)


def test_gradient_boosting_uses_native_categories():
    X, y = _table()
    pipeline = make_churn_pipeline("gradient_boosting").fit(X, y)
    model = pipeline.named_steps["model"]
    assert model.is_categorical_.tolist() == [True, True, True, False, False, False]


def test_same_random_state_same_scores():
    X, y = _table(3000)  # large enough for early stopping's random validation split
    first = make_churn_pipeline(random_state=7).fit(X, y).predict_proba(X)[:, 1]
    again = make_churn_pipeline(random_state=7).fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_array_equal(first, again)


def test_parameters_reach_the_classifier():
    pipeline = make_churn_pipeline("logistic", C=3.0)
    assert pipeline.named_steps["model"].C == 3.0
    assert make_churn_pipeline(max_iter=50).named_steps["model"].max_iter == 50


def test_unknown_kind():
    with pytest.raises(DataError, match=r"kind must be 'logistic' or 'gradient_boosting', got"):
        make_churn_pipeline("forest")
