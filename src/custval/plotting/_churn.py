"""Churn figures: ROC and precision-recall curves, calibration, cumulative gains and feature
importance, all drawn from a :class:`custval.ChurnEvaluation`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from sklearn.metrics import precision_recall_curve, roc_curve

from custval._charts import get_ax, label_share_axes, reference_diagonal
from custval._format import number, percent
from custval.churn import MODEL_NAMES
from custval.errors import DataError

__all__ = [
    "plot_churn_calibration",
    "plot_churn_gains",
    "plot_churn_importance",
    "plot_churn_precision_recall",
    "plot_churn_roc",
]

_BASELINE = "bgnbd"
_STYLE = {
    "gradient_boosting": {"color": "C0", "linestyle": "-"},
    "logistic": {"color": "C2", "linestyle": "-"},
    "bgnbd": {"color": "C3", "linestyle": "--"},
    "bgnbd_no_purchase": {"color": "C1", "linestyle": ":"},
}


def _name(model: str) -> str:
    return MODEL_NAMES.get(model, model)


def _at_cutoff(frame: pd.DataFrame, cutoff: object, what: str) -> pd.DataFrame:
    """Rows of one test cutoff (default the last one; snapshot results have no cutoff)."""
    if frame.empty:
        raise DataError(f"the result has no {what}; run churn_backtest or churn_evaluate first")
    if frame["cutoff"].isna().all():
        return frame
    cutoffs = frame["cutoff"].dropna().unique()
    when = max(cutoffs) if cutoff is None else pd.Timestamp(cutoff)
    if when not in set(cutoffs):
        raise DataError(
            f"cutoff {cutoff!r} is not a test cutoff of this result; choose one of "
            f"{[str(pd.Timestamp(c).date()) for c in sorted(cutoffs)]}"
        )
    return frame[frame["cutoff"] == when]


def _models(frame: pd.DataFrame, models: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(frame["model"]))
    if models is None:
        return present
    missing = [m for m in models if m not in present]
    if missing:
        raise DataError(f"model(s) {missing} are not in the result; it has {present}")
    return list(models)


def _leaders(values: dict[str, float], tolerance: float = 0.005) -> list[str]:
    """The models within ``tolerance`` of the best value, best first (ties are not wins)."""
    ranked = sorted(values, key=values.get, reverse=True)
    return [m for m in ranked if values[ranked[0]] - values[m] < tolerance]


def _words(models: list[str]) -> str:
    if len(models) > 2:
        return f"{len(models)} models"
    return " and ".join(_name(m) for m in models)


def _groups(
    frame: pd.DataFrame, cutoff: object, models: Sequence[str] | None, what: str
) -> tuple[pd.DataFrame, list[tuple[str, pd.DataFrame]]]:
    """The rows of one test cutoff, and those rows per chosen model."""
    frame = _at_cutoff(frame, cutoff, what)
    return frame, [(m, frame[frame["model"] == m]) for m in _models(frame, models)]


def _best_classifier(metrics: pd.DataFrame, metric: str) -> str:
    classifiers = metrics[~metrics["model"].str.startswith("bgnbd")]
    pool = classifiers if len(classifiers) else metrics
    return str(pool.groupby("model")[metric].mean().idxmax())


def _subtitle(frame: pd.DataFrame, n: int | None = None) -> str:
    cutoff = frame["cutoff"].iloc[0]
    n = len(frame) // max(frame["model"].nunique(), 1) if n is None else n
    when = "" if pd.isna(cutoff) else f" at cutoff {pd.Timestamp(cutoff).date()}"
    return f"{n:,} test customers{when}"


def plot_churn_roc(
    result, *, cutoff: object = None, models: Sequence[str] | None = None, ax: Axes | None = None
) -> Axes:
    """ROC curve of each model at one test cutoff (default the last).

    The title names the model that ranks churners best and its ROC AUC against the P(alive)
    baseline (or the runner-up).

    Parameters
    ----------
    result : ChurnEvaluation
        From :func:`custval.churn_backtest` or :func:`custval.churn_evaluate`.
    cutoff : date, optional
    models : sequence of str, optional
        Models to draw; default all in the result.
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_churn_roc
    >>> ax = plot_churn_roc(result)  # doctest: +SKIP
    """
    predictions, groups = _groups(result.predictions, cutoff, models, "predictions")
    ax = get_ax(ax, figsize=(6.0, 5.0))
    aucs = {}
    for model, rows in groups:
        fpr, tpr, _ = roc_curve(rows["churned"], rows["probability"])
        aucs[model] = float(np.trapezoid(tpr, fpr))
        ax.plot(fpr, tpr, label=f"{_name(model)} (AUC {aucs[model]:.2f})", **_STYLE.get(model, {}))
    reference_diagonal(ax, "Random (AUC 0.50)")
    leaders = _leaders(aucs)
    other = _BASELINE if _BASELINE in aucs and _BASELINE not in leaders else None
    if other is None:
        rest = {m: a for m, a in aucs.items() if m not in leaders}
        other = max(rest, key=rest.get) if rest else None
    if len(leaders) == 1:
        title = f"{_name(leaders[0])} ranks churners best (ROC AUC {aucs[leaders[0]]:.2f}"
    else:
        title = f"{_words(leaders)} rank churners equally well (ROC AUC {aucs[leaders[0]]:.2f}"
    title += f" vs {aucs[other]:.2f} for {_name(other)})" if other else ")"
    ax.set_title(title + "\n" + _subtitle(predictions), fontsize=10)
    return label_share_axes(
        ax,
        "Share of retained customers flagged (false positive rate)",
        "Share of churners flagged (true positive rate)",
        "lower right",
    )


def plot_churn_precision_recall(
    result, *, cutoff: object = None, models: Sequence[str] | None = None, ax: Axes | None = None
) -> Axes:
    """Precision-recall curve of each model at one test cutoff (default the last).

    Parameters
    ----------
    result : ChurnEvaluation
    cutoff : date, optional
    models : sequence of str, optional
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_churn_precision_recall
    >>> ax = plot_churn_precision_recall(result)  # doctest: +SKIP
    """
    predictions, groups = _groups(result.predictions, cutoff, models, "predictions")
    ax = get_ax(ax, figsize=(6.0, 5.0))
    scores = {}
    rate = float(predictions["churned"].mean())
    for model, rows in groups:
        precision, recall, _ = precision_recall_curve(rows["churned"], rows["probability"])
        scores[model] = float(-np.sum(np.diff(recall) * precision[:-1]))
        ax.plot(
            recall,
            precision,
            label=f"{_name(model)} (PR AUC {scores[model]:.2f})",
            **_STYLE.get(model, {}),
        )
    ax.axhline(rate, color="grey", linewidth=0.8, label=f"Churn rate ({percent(rate)})")
    leaders = _leaders(scores)
    verb = "keeps precision highest" if len(leaders) == 1 else "keep precision equally high"
    ax.set_title(
        f"{_words(leaders)} {verb} (PR AUC {scores[leaders[0]]:.2f}; "
        f"{percent(rate)} of customers churn)\n{_subtitle(predictions)}",
        fontsize=10,
    )
    ax.set_ylim(0, 1.02)
    return label_share_axes(
        ax,
        "Share of churners found (recall)",
        "Share of flagged customers who churn (precision)",
        "lower left",
    )


def plot_churn_calibration(
    result, *, cutoff: object = None, models: Sequence[str] | None = None, ax: Axes | None = None
) -> Axes:
    """Predicted churn probability against the observed churn rate, per quantile bin.

    The title names the best calibrated model and its mean gap (customer-weighted mean of
    ``|observed - predicted|`` over the bins) in percentage points.

    Parameters
    ----------
    result : ChurnEvaluation
    cutoff : date, optional
    models : sequence of str, optional
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_churn_calibration
    >>> ax = plot_churn_calibration(result)  # doctest: +SKIP
    """
    table, groups = _groups(result.calibration, cutoff, models, "calibration table")
    ax = get_ax(ax, figsize=(6.0, 5.0))
    gaps = {}
    for model, rows in groups:
        gap = np.abs(rows["observed_rate"] - rows["mean_probability"])
        gaps[model] = float(np.average(gap, weights=rows["n_customers"]))
        ax.plot(
            rows["mean_probability"],
            rows["observed_rate"],
            marker="o",
            markersize=4,
            label=f"{_name(model)} (mean gap {100 * gaps[model]:.1f} pts)",
            **_STYLE.get(model, {}),
        )
    reference_diagonal(ax, "Perfect calibration")
    best = min(gaps, key=gaps.get)
    worst = max(gaps, key=gaps.get)
    title = f"{_name(best)} is off observed churn by {100 * gaps[best]:.1f} pts on average"
    n = int(groups[0][1]["n_customers"].sum())
    subtitle = _subtitle(table, n)
    if worst != best:
        subtitle = f"{_name(worst)}: {100 * gaps[worst]:.1f} pts; " + subtitle
    ax.set_title(title + "\n" + subtitle, fontsize=10)
    return label_share_axes(
        ax, "Predicted churn probability (bin mean)", "Observed churn rate", "upper left"
    )


def plot_churn_gains(
    result,
    *,
    cutoff: object = None,
    models: Sequence[str] | None = None,
    top: float = 0.1,
    ax: Axes | None = None,
) -> Axes:
    """Cumulative gains: share of all churners found when targeting the top-scored customers.

    The title compares the best classifier's churners found in its top ``top`` share with
    P(alive)'s ("Gradient boosting finds 2.1x more churners in its top 10% than P(alive)").

    Parameters
    ----------
    result : ChurnEvaluation
    cutoff : date, optional
    models : sequence of str, optional
    top : float, default 0.1
        The targeted share marked on the chart and used in the title.
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_churn_gains
    >>> ax = plot_churn_gains(result)  # doctest: +SKIP
    """
    predictions, groups = _groups(result.predictions, cutoff, models, "predictions")
    chosen = [model for model, _ in groups]
    ax = get_ax(ax, figsize=(6.0, 5.0))
    found = {}
    for model, rows in groups:
        order = np.argsort(-rows["probability"].to_numpy(), kind="stable")
        hits = rows["churned"].to_numpy()[order]
        gains = np.concatenate([[0.0], np.cumsum(hits) / max(hits.sum(), 1)])
        share = np.linspace(0, 1, len(gains))
        k = max(1, int(np.ceil(top * len(hits))))
        found[model] = float(hits[:k].sum())
        ax.plot(share, gains, label=_name(model), **_STYLE.get(model, {}))
    reference_diagonal(ax, "Random targeting")
    ax.axvline(top, color="grey", linewidth=0.6, linestyle=":")
    metrics = _at_cutoff(result.metrics, cutoff, "metrics")
    metrics = metrics[metrics["model"].isin(chosen)]
    best = _best_classifier(metrics, "capture")
    pct = percent(top)
    if _BASELINE in found and best != _BASELINE and found[_BASELINE] > 0:
        ratio = found[best] / found[_BASELINE]
        if ratio >= 1.05:
            title = f"{_name(best)} finds {ratio:.1f}x more churners in its top {pct} than P(alive)"
        elif ratio <= 1 / 1.05:
            title = (
                f"P(alive) finds {1 / ratio:.1f}x more churners in its top {pct} than {_name(best)}"
            )
        else:
            title = f"{_name(best)} and P(alive) find as many churners in their top {pct}"
    else:
        share = found[best] / max(predictions[predictions["model"] == best]["churned"].sum(), 1)
        title = f"{_name(best)} finds {percent(share)} of all churners in its top {pct}"
    ax.set_title(title + "\n" + _subtitle(predictions), fontsize=10)
    return label_share_axes(
        ax,
        "Share of customers targeted, highest churn score first",
        "Share of all churners found (capture)",
        "lower right",
    )


def plot_churn_importance(
    result, *, model: str | None = None, top: int = 15, ax: Axes | None = None
) -> Axes:
    """Permutation importance: how much ROC AUC drops when each feature is shuffled.

    Parameters
    ----------
    result : ChurnEvaluation
    model : str, optional
        Default the classifier with the best mean ROC AUC.
    top : int, default 15
        Number of features shown.
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_churn_importance
    >>> ax = plot_churn_importance(result)  # doctest: +SKIP
    """
    table = result.importance
    if table.empty:
        raise DataError(
            "the result has no feature importance (importance_samples=0?); rerun with "
            "importance_samples > 0"
        )
    model = (
        _best_classifier(result.metrics[result.metrics["model"].isin(table["model"])], "roc_auc")
        if model is None
        else model
    )
    rows = table[table["model"] == model]
    if rows.empty:
        raise DataError(
            f"no importance for model {model!r}; the result has {sorted(table['model'].unique())}"
        )
    rows = rows.sort_values("importance", ascending=False).head(top).iloc[::-1]
    ax = get_ax(ax, figsize=(6.5, 0.3 * len(rows) + 1.5))
    ax.barh(
        rows["feature"], rows["importance"], xerr=rows["importance_std"], color="C0", alpha=0.85
    )
    ax.axvline(0, color="grey", linewidth=0.8)
    lead = rows.iloc[-1]
    ax.set_title(
        f"{lead['feature']} matters most: shuffling it costs {_name(model)} "
        f"{number(lead['importance'], digits=2)} ROC AUC",
        fontsize=10,
    )
    ax.set_xlabel("Drop in ROC AUC when the feature is shuffled")
    ax.set_ylabel("Feature")
    return ax
