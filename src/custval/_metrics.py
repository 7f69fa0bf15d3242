"""Directions of the model-comparison metrics, shared by :func:`custval.evaluation.compare_models`
and :func:`custval.plotting.plot_model_comparison` (one definition, public names of a private
module)."""

from __future__ import annotations

__all__ = ["BY_ABSOLUTE", "SMALLER_IS_BETTER"]

#: direction of each metric of compare_models: True if smaller is better
SMALLER_IS_BETTER = {
    "aic": True,
    "bic": True,
    "log_likelihood": False,
    "mae": True,
    "rmse": True,
    "msle": True,
    "bias": True,  # by absolute value
    "total_error": True,  # by absolute value
    "spearman": False,
    "top_decile_capture": False,
    "normalized_gini": False,
    "top_decile_lift": False,
    "roc_auc": False,
    "brier": True,
}
BY_ABSOLUTE = {"bias", "total_error"}
