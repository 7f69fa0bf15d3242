"""Evaluation of churn classifiers: metrics, a time-based backtest, a snapshot evaluation for
contractual tables, and current scores."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits
from tqdm import tqdm  # text bars: tqdm.auto warns in Jupyter without ipywidgets

from custval._validation import OPEN_PROBABILITY, Interval, validate_params
from custval.churn._data import _Log, _prepare_log, _timedelta, _timestamp
from custval.churn._features import _features_at, _FeatureSpec
from custval.churn._labels import _end, _labels_at
from custval.churn._pipelines import _KINDS, make_churn_pipeline
from custval.errors import DataError

__all__ = ["ChurnEvaluation", "churn_backtest", "churn_evaluate", "churn_metrics", "churn_scores"]

_EPS = 1e-6
#: BG/NBD baselines: model name -> probability of churn from the features.
_BASELINES = ("bgnbd", "bgnbd_no_purchase")


def _baseline(features: pd.DataFrame, name: str) -> np.ndarray:
    """``1 - p_alive`` ("bgnbd") or ``p_no_purchase``; a failed fit scores everyone alike."""
    values = (
        1.0 - features["p_alive"].to_numpy()
        if name == "bgnbd"
        else features["p_no_purchase"].to_numpy()
    )
    if np.isnan(values).all():
        return np.full(len(values), 0.5)
    return np.where(np.isnan(values), np.nanmean(values), values)


# ------------------------------------------------------------------------------------ metrics
@validate_params({"top": Interval(Real, 0, 1, closed="right")})
def churn_metrics(
    churned: Sequence[int] | np.ndarray | pd.Series,
    probability: Sequence[float] | np.ndarray | pd.Series,
    *,
    top: float = 0.1,
) -> dict[str, float]:
    """Discrimination, calibration and targeting metrics of churn probabilities.

    Parameters
    ----------
    churned : array-like of 0/1
        Observed labels.
    probability : array-like of float
        Predicted churn probabilities (scores in [0, 1]).
    top : float, default 0.1
        Share of customers targeted for ``lift`` and ``capture`` (the top decile).

    Returns
    -------
    dict
        ``n_customers``, ``churn_rate``, ``roc_auc``, ``pr_auc`` (average precision), ``brier``,
        ``log_loss`` (probabilities clipped to [1e-6, 1 - 1e-6]), ``lift`` (churn rate among
        the ``top`` highest scores over the overall rate) and ``capture`` (share of all
        churners found there). AUCs are NaN when only one class is present.

    Examples
    --------
    >>> from custval import churn_metrics
    >>> m = churn_metrics([1, 0, 1, 0], [0.9, 0.2, 0.6, 0.4], top=0.25)
    >>> m["roc_auc"], m["lift"], m["capture"]
    (1.0, 2.0, 0.5)
    """
    y = np.asarray(churned, dtype=float)
    p = np.asarray(probability, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise DataError(
            f"churned and probability must be 1-d and the same length, got shapes {y.shape} "
            f"and {p.shape}"
        )
    if y.size == 0:
        raise DataError("churn_metrics needs at least one customer, got none")
    if not np.all(np.isin(y, [0.0, 1.0])):
        raise DataError("churned must hold only 0 and 1")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise DataError("probability must hold finite numbers in [0, 1]")
    both = 0 < y.sum() < y.size
    rate = float(y.mean())
    k = max(1, math.ceil(top * y.size))
    chosen = np.argsort(-p, kind="stable")[:k]
    found = float(y[chosen].sum())
    clipped = np.clip(p, _EPS, 1 - _EPS)
    return {
        "n_customers": float(y.size),
        "churn_rate": rate,
        "roc_auc": float(roc_auc_score(y, p)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, p)) if both else math.nan,
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "lift": (found / k) / rate if rate > 0 else math.nan,
        "capture": found / float(y.sum()) if y.sum() > 0 else math.nan,
    }


def _calibration_table(y: np.ndarray, p: np.ndarray, bins: int) -> pd.DataFrame:
    """Observed churn rate per quantile bin of the predicted probability."""
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, min(bins, len(p)))
    return pd.DataFrame(
        {
            "bin": np.arange(1, len(groups) + 1),
            "mean_probability": [float(p[g].mean()) for g in groups],
            "observed_rate": [float(y[g].mean()) for g in groups],
            "n_customers": [len(g) for g in groups],
        }
    )


# ------------------------------------------------------------------------------------ results
@dataclass
class ChurnEvaluation:
    """Results of :func:`churn_backtest` or :func:`churn_evaluate`.

    Attributes
    ----------
    metrics : DataFrame
        One row per test cutoff and model: ``cutoff``, ``model``, ``n_train``, then the columns
        of :func:`churn_metrics`. ``model`` is ``"logistic"``, ``"gradient_boosting"``, or one
        of the BG/NBD baselines scored on the same customers and labels: ``"bgnbd"``
        (``1 - P(alive)``) and ``"bgnbd_no_purchase"`` (the model's probability of no purchase
        within the horizon, the label's own event).
    predictions : DataFrame
        ``cutoff``, ``model``, ``customer_id``, ``churned``, ``probability``.
    importance : DataFrame
        Permutation importance (drop in ROC AUC) of each feature for each fitted model at the
        last test cutoff: ``model``, ``feature``, ``importance``, ``importance_std``, sorted.
    calibration : DataFrame
        ``cutoff``, ``model``, ``bin``, ``mean_probability``, ``observed_rate``,
        ``n_customers`` over quantile bins of the predicted probability.
    pipelines : dict
        The fitted pipelines of the last test cutoff, by model.
    """

    metrics: pd.DataFrame
    predictions: pd.DataFrame
    importance: pd.DataFrame
    calibration: pd.DataFrame
    pipelines: dict[str, Pipeline] = field(default_factory=dict, repr=False)

    def best_model(self, metric: str = "roc_auc") -> str:
        """The model with the best mean ``metric`` over the test cutoffs."""
        means = self.metrics.groupby("model")[metric].mean()
        lower_is_better = metric in {"brier", "log_loss"}
        return str(means.idxmin() if lower_is_better else means.idxmax())


def _check_models(models: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(models, str):
        models = (models,)
    unknown = [m for m in models if m not in _KINDS]
    if unknown or not models:
        raise DataError(
            f"models must name one or more of {list(_KINDS)}, got {list(models)!r} (the BG/NBD "
            "baseline is always evaluated)"
        )
    return tuple(models)


class _Collector:
    """Accumulates per cutoff and model results into a :class:`ChurnEvaluation`."""

    def __init__(self, bins: int, random_state: int | None, importance_samples: int) -> None:
        self.bins, self.random_state = bins, random_state
        self.importance_samples = importance_samples
        self.rows: list[dict[str, Any]] = []
        self.predictions: list[pd.DataFrame] = []
        self.calibrations: list[pd.DataFrame] = []
        self.importances: list[pd.DataFrame] = []
        self.pipelines: dict[str, Pipeline] = {}

    def score(
        self, cutoff: Any, model: str, y: np.ndarray, p: np.ndarray, index: pd.Index, n_train: int
    ) -> None:
        self.rows.append(
            {"cutoff": cutoff, "model": model, "n_train": n_train} | churn_metrics(y, p)
        )
        self.predictions.append(
            pd.DataFrame(
                {
                    "cutoff": cutoff,
                    "model": model,
                    "customer_id": index,
                    "churned": y,
                    "probability": p,
                }
            )
        )
        calibration = _calibration_table(y, p, self.bins)
        calibration.insert(0, "model", model)
        calibration.insert(0, "cutoff", cutoff)
        self.calibrations.append(calibration)

    def fit_and_score(
        self,
        cutoff: Any,
        model: str,
        train: tuple[pd.DataFrame, np.ndarray],
        test: tuple[pd.DataFrame, np.ndarray],
        *,
        calibrate: bool,
        keep: bool,
    ) -> None:
        """Fit ``model`` on ``train``, score ``test``; ``keep`` the pipeline and its importance."""
        pipeline = make_churn_pipeline(model, calibrate=calibrate, random_state=self.random_state)
        pipeline.fit(*train)
        X_test, y_test = test
        p = pipeline.predict_proba(X_test)[:, 1]
        self.score(cutoff, model, y_test, p, X_test.index, len(train[1]))
        if keep:
            self.pipelines[model] = pipeline
            self.importances.append(
                _importance(
                    pipeline, X_test, y_test, model, self.random_state, self.importance_samples
                )
            )

    def result(self) -> ChurnEvaluation:
        return ChurnEvaluation(
            metrics=pd.DataFrame(self.rows),
            predictions=_stack(self.predictions),
            importance=_stack(self.importances),
            calibration=_stack(self.calibrations),
            pipelines=self.pipelines,
        )


def _rank_auc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (Mann-Whitney U with mid-ranks for ties)."""
    positive = y == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(scores, axis=1)
    return (ranks[:, positive].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _importance(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    model: str,
    random_state: int | None,
    max_samples: int,
    n_repeats: int = 3,
) -> pd.DataFrame:
    """Permutation importance: the drop in ROC AUC when one column is shuffled.

    The definition of ``sklearn.inspection.permutation_importance`` (Breiman 2001), evaluated in
    one batch: every shuffled copy of ``X`` is stacked into one frame and scored by a single
    ``predict_proba`` call, which is several times faster than one pipeline call per column and
    repeat (the per-call overhead of a pipeline on a DataFrame dominates at this size).
    """
    if max_samples <= 0:
        return pd.DataFrame(columns=["model", "feature", "importance", "importance_std"])
    columns = list(X.columns)
    if not 0 < y.sum() < y.size:
        mean = std = np.full(len(columns), np.nan)
    else:
        if len(X) > max_samples:
            X, _, y, _ = train_test_split(
                X, y, train_size=max_samples, stratify=y, random_state=random_state
            )
        X = X.reset_index(drop=True)
        rng = np.random.default_rng(random_state)
        copies = []
        for column in columns:
            for _ in range(n_repeats):
                shuffled = X[column].iloc[rng.permutation(len(X))].reset_index(drop=True)
                copies.append(X.assign(**{column: shuffled}))
        scores = pipeline.predict_proba(pd.concat([X, *copies], ignore_index=True))[:, 1]
        blocks = scores.reshape(1 + len(copies), len(X))
        auc = _rank_auc(y, blocks)
        drops = (auc[0] - auc[1:]).reshape(len(columns), n_repeats)
        mean, std = drops.mean(axis=1), drops.std(axis=1)
    frame = pd.DataFrame(
        {"model": model, "feature": columns, "importance": mean, "importance_std": std}
    )
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _threads(n_threads: int | None) -> contextlib.AbstractContextManager:
    """Limit OpenMP/BLAS threads (gradient boosting spins its threads: on a busy machine one
    thread per process is much faster than oversubscribing the cores)."""
    if n_threads is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n_threads)


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ------------------------------------------------------------------------------------ backtest
#: what the model-fitting entry points (backtest, evaluate, scores) accept
_FIT_CONSTRAINTS = {"n_threads": [Interval(Integral, 1, None), None]}


@validate_params(_FIT_CONSTRAINTS)
def churn_backtest(
    transactions: pd.DataFrame,
    *,
    cutoffs: Sequence[str | pd.Timestamp] | int,
    horizon: str = "90D",
    models: Sequence[str] = ("logistic", "gradient_boosting"),
    customers: pd.DataFrame | None = None,
    touchpoints: pd.DataFrame | None = None,
    windows: Sequence[str] = ("30D", "90D", "365D"),
    calibrate: bool = False,
    observation_end: str | pd.Timestamp | None = None,
    importance_samples: int = 2000,
    bins: int = 10,
    progress: bool = True,
    random_state: int | None = 0,
    n_threads: int | None = None,
) -> ChurnEvaluation:
    """Rolling-origin backtest of churn classifiers against the BG/NBD baseline.

    For every cutoff but the first, the models are trained on the features and labels of the
    earlier cutoffs whose label windows end on or before it (``c + horizon <= test cutoff``), so
    no training label looks past the moment the test predictions are made, and are tested on
    the features and labels at that cutoff. Features always come from data at or before their
    own cutoff (:func:`churn_features`). The BG/NBD baseline scores ``1 - p_alive`` from a model
    fitted at the test cutoff, on exactly the same customers and labels.

    Parameters
    ----------
    transactions : DataFrame
        Clean log (see :func:`churn_features`; clean it with ``returns="keep"`` or ``"drop"``:
        netting returns rewrites earlier purchases with later information). Not modified.
    cutoffs : sequence of dates, or int
        The cutoffs, or how many: ``n`` places them ``horizon`` apart, the last at the data's
        end minus the horizon.
    horizon : str, default "90D"
        Label window with a unit.
    models : sequence of {"logistic", "gradient_boosting"}
        Pipelines from :func:`make_churn_pipeline` to evaluate.
    customers, touchpoints, windows
        Passed to :func:`churn_features`.
    calibrate : bool, default False
        Calibrate the classifiers' probabilities (``CalibratedClassifierCV``).
    observation_end : date, optional
        End of the data; default the last transaction.
    importance_samples : int, default 2000
        Test customers (stratified sample) used for permutation importance (3 repeats per
        feature); 0 skips it.
    bins : int, default 10
        Quantile bins of the calibration table.
    progress : bool, default True
        Show a tqdm progress bar.
    random_state : int or None, default 0
    n_threads : int, optional
        Most threads for the classifiers (default: all cores). On a machine shared with other
        work, ``1`` avoids oversubscription and is often much faster.

    Returns
    -------
    ChurnEvaluation

    Raises
    ------
    DataError
        If a cutoff's label window runs past the data's end, or no test cutoff has a fully
        labelled training cutoff before it.

    Examples
    --------
    >>> import custval
    >>> sample = custval.load_sample()  # doctest: +SKIP
    >>> result = custval.churn_backtest(sample.transactions, cutoffs=3)  # doctest: +SKIP
    >>> result.metrics[["cutoff", "model", "roc_auc"]]  # doctest: +SKIP
    """
    models = _check_models(models)
    log = _prepare_log(transactions)
    window = _timedelta(horizon, "horizon")
    end = _end(log, observation_end)
    points = _cutoffs(cutoffs, log, window, end)
    plan = [(test, [c for c in points if c + window <= test]) for test in points[1:]]
    plan = [(test, train) for test, train in plan if train]
    if not plan:
        raise DataError(
            f"no cutoff has an earlier cutoff whose {horizon} label window ends before it; "
            f"space the cutoffs at least {horizon} apart (cutoffs given: "
            f"{[str(c) for c in points]})"
        )
    spec = _FeatureSpec.build(
        log, customers=customers, touchpoints=touchpoints, windows=windows, horizon=horizon
    )
    needed = sorted({c for test, train in plan for c in [test, *train]})
    steps = len(needed) + len(plan) * len(models)
    collector = _Collector(bins, random_state, importance_samples)
    bar = tqdm(total=steps, desc="churn backtest", disable=not progress, leave=False)
    with bar, _threads(n_threads):
        tables = {}
        for c in needed:
            bar.set_postfix_str(f"features {c.date()}")
            features = _features_at(log, c, spec, model_features=True)
            labels = _labels_at(log, c, window, horizon, end)
            tables[c] = (features, labels.to_numpy())
            bar.update()
        for number, (test, train) in enumerate(plan):
            X_train = pd.concat([tables[c][0] for c in train], ignore_index=True)
            y_train = np.concatenate([tables[c][1] for c in train])
            X_test, y_test = tables[test]
            for name in _BASELINES:
                collector.score(test, name, y_test, _baseline(X_test, name), X_test.index, 0)
            for model in models:
                bar.set_postfix_str(f"{model} {test.date()}")
                collector.fit_and_score(
                    test,
                    model,
                    (X_train, y_train),
                    tables[test],
                    calibrate=calibrate,
                    keep=number == len(plan) - 1,
                )
                bar.update()
    return collector.result()


def _cutoffs(
    cutoffs: Sequence[Any] | int, log: _Log, window: pd.Timedelta, end: pd.Timestamp
) -> list[pd.Timestamp]:
    if isinstance(cutoffs, int | np.integer) and not isinstance(cutoffs, bool):
        if cutoffs < 2:
            raise DataError(f"a backtest needs at least 2 cutoffs, got cutoffs={cutoffs}")
        last = (end - window).floor("D")
        points = [last - k * window for k in range(int(cutoffs) - 1, -1, -1)]
        if points[0] <= log.start:
            raise DataError(
                f"{cutoffs} cutoffs spaced {window} apart would start at {points[0]}, before "
                f"the data's start {log.start}; use fewer cutoffs or a shorter horizon"
            )
        return points
    if isinstance(cutoffs, str) or not isinstance(cutoffs, Sequence | pd.Index | np.ndarray):
        raise DataError(f"cutoffs must be a list of dates or a number of cutoffs, got {cutoffs!r}")
    points = sorted(_timestamp(c, "each cutoff") for c in cutoffs)
    if len(points) < 2:
        raise DataError(f"a backtest needs at least 2 cutoffs, got {len(points)}")
    return points


# ------------------------------------------------------------------------------------ snapshot
@validate_params({**_FIT_CONSTRAINTS, "test_size": OPEN_PROBABILITY})
def churn_evaluate(
    features: pd.DataFrame,
    labels: pd.Series,
    *,
    models: Sequence[str] = ("logistic", "gradient_boosting"),
    test_size: float = 0.25,
    calibrate: bool = False,
    importance_samples: int = 2000,
    bins: int = 10,
    random_state: int | None = 0,
    n_threads: int | None = None,
) -> ChurnEvaluation:
    """Evaluate churn classifiers on one snapshot with a stratified train/test split.

    For contractual tables (a telco or subscription table and
    :func:`contractual_churn_labels`), where there is no transaction history to roll cutoffs
    over. The result has the same shape as :func:`churn_backtest`'s (``cutoff`` is missing), so
    both settings share metrics, tables and plots.

    Parameters
    ----------
    features : DataFrame
        One row per customer; text columns are treated as categories. Rows are matched to
        ``labels`` by index.
    labels : Series
        ``churned`` 0/1 indexed like ``features``.
    models : sequence of {"logistic", "gradient_boosting"}
    test_size : float, default 0.25
    calibrate, importance_samples, bins, random_state, n_threads
        As in :func:`churn_backtest`.

    Returns
    -------
    ChurnEvaluation

    Examples
    --------
    >>> import custval
    >>> table = ...  # a telco table, one row per customer  # doctest: +SKIP
    >>> labels = custval.contractual_churn_labels(table, churn="Churn")  # doctest: +SKIP
    >>> X = table.set_index("customer_id").drop(columns="Churn")  # doctest: +SKIP
    >>> custval.churn_evaluate(X, labels).metrics  # doctest: +SKIP
    """
    models = _check_models(models)
    if not isinstance(features, pd.DataFrame):
        raise DataError(f"features must be a pandas DataFrame, got {type(features).__name__}")
    if not features.index.equals(labels.index):
        missing = labels.index.difference(features.index)
        if len(missing):
            raise DataError(
                f"{len(missing):,} labelled customers have no features (e.g. "
                f"{missing[:3].tolist()}); index features and labels by the same customer ids"
            )
        features = features.loc[labels.index]
    y = labels.to_numpy(dtype=float)
    if not 0 < y.sum() < y.size:
        raise DataError("labels must contain both churned (1) and retained (0) customers")
    X_train, X_test, y_train, y_test = train_test_split(
        features, y, test_size=test_size, stratify=y, random_state=random_state
    )
    collector = _Collector(bins, random_state, importance_samples)
    with _threads(n_threads):
        for model in models:
            collector.fit_and_score(
                None, model, (X_train, y_train), (X_test, y_test), calibrate=calibrate, keep=True
            )
    return collector.result()


# ------------------------------------------------------------------------------------ scores
@validate_params(_FIT_CONSTRAINTS)
def churn_scores(
    transactions: pd.DataFrame,
    *,
    cutoff: str | pd.Timestamp | None = None,
    horizon: str = "90D",
    model: str = "gradient_boosting",
    customers: pd.DataFrame | None = None,
    touchpoints: pd.DataFrame | None = None,
    windows: Sequence[str] = ("30D", "90D", "365D"),
    calibrate: bool = False,
    random_state: int | None = 0,
    n_threads: int | None = None,
) -> pd.Series:
    """Current churn probability of every customer: no purchase within ``horizon`` from now.

    The model is trained on the features and labels at the latest fully labelled cutoff,
    ``cutoff - horizon`` (its label window ends at ``cutoff``), and scores the features at
    ``cutoff``. Join the result with the customer value table to find customers who are
    valuable and at risk.

    Parameters
    ----------
    transactions : DataFrame
        Clean log. Not modified.
    cutoff : date, optional
        When to score; default the last transaction (the data's end). Only data at or before it
        is used.
    horizon : str, default "90D"
    model : str, default "gradient_boosting"
        A classifier, ``"gradient_boosting"`` or ``"logistic"``, or a BG/NBD baseline fitted at
        the cutoff that trains nothing: ``"bgnbd"`` (``1 - P(alive)``) or
        ``"bgnbd_no_purchase"`` (its probability of no purchase within ``horizon``).
    customers, touchpoints, windows
        Passed to :func:`churn_features`.
    calibrate : bool, default False
    random_state : int or None, default 0
    n_threads : int, optional
        As in :func:`churn_backtest`.

    Returns
    -------
    Series
        ``churn_probability`` indexed by ``customer_id`` (customers with a purchase on or
        before the cutoff).

    Examples
    --------
    >>> import custval
    >>> sample = custval.load_sample()  # doctest: +SKIP
    >>> risk = custval.churn_scores(sample.transactions)  # doctest: +SKIP
    >>> risk.sort_values(ascending=False).head()  # doctest: +SKIP
    """
    if model not in _BASELINES:
        _check_models([model])
    log = _prepare_log(transactions)
    window = _timedelta(horizon, "horizon")
    now = log.end if cutoff is None else _timestamp(cutoff, "cutoff")
    spec = _FeatureSpec.build(
        log, customers=customers, touchpoints=touchpoints, windows=windows, horizon=horizon
    )
    X_now = _features_at(log, now, spec, model_features=True)
    if model in _BASELINES:
        values = _baseline(X_now, model)
        return pd.Series(values, index=X_now.index, name="churn_probability")
    train = now - window
    if train <= log.start:
        raise DataError(
            f"there is no history before {train} (cutoff {now} minus the horizon {horizon}) to "
            f"train on; the data starts {log.start}. Use a shorter horizon or a later cutoff"
        )
    X_train = _features_at(log, train, spec, model_features=True)
    y_train = _labels_at(log, train, window, horizon, now).to_numpy()
    if not 0 < y_train.sum() < y_train.size:
        raise DataError(
            f"at the training cutoff {train} every customer has the same label, so there is "
            "nothing to learn; use a longer history or another horizon"
        )
    pipeline = make_churn_pipeline(model, calibrate=calibrate, random_state=random_state)
    with _threads(n_threads):
        pipeline.fit(X_train, y_train)
        p = pipeline.predict_proba(X_now)[:, 1]
    return pd.Series(p, index=X_now.index, name="churn_probability")
