"""Churn: labels at a cutoff, features from the past only, scikit-learn pipelines, a rolling
backtest against the BG/NBD baseline, and current churn scores.

Two settings share one evaluation (:class:`ChurnEvaluation`, :func:`churn_metrics`):

* non-contractual (a transaction log): :func:`churn_labels` (no purchase within a horizon after
  the cutoff), :func:`churn_features`, :func:`churn_backtest` and :func:`churn_scores`;
* contractual (a subscription or telco table): :func:`contractual_churn_labels` and
  :func:`churn_evaluate`.

Private modules: ``_data`` (input checks), ``_labels``, ``_features``, ``_pipelines``,
``_backtest``.
"""

from __future__ import annotations

from custval.churn._backtest import (
    ChurnEvaluation,
    churn_backtest,
    churn_evaluate,
    churn_metrics,
    churn_scores,
)
from custval.churn._features import churn_features
from custval.churn._labels import churn_labels, contractual_churn_labels
from custval.churn._pipelines import MODEL_NAMES, CategoricalColumns, make_churn_pipeline

__all__ = [
    "MODEL_NAMES",
    "CategoricalColumns",
    "ChurnEvaluation",
    "churn_backtest",
    "churn_evaluate",
    "churn_features",
    "churn_labels",
    "churn_metrics",
    "churn_scores",
    "contractual_churn_labels",
    "make_churn_pipeline",
]
