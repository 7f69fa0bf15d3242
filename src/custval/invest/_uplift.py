"""Uplift (heterogeneous treatment effects) from a randomized campaign.

Two meta-learners over scikit-learn models (HistGradientBoosting by default):

* **T-learner**: one outcome model per arm, ``tau(x) = mu1(x) - mu0(x)``.
* **X-learner** (Künzel, Sekhon, Bickel & Yu 2019, PNAS 116(10), eq. 3-5): the arm models impute
  individual effects ``D1 = Y1 - mu0(X1)`` for the treated and ``D0 = mu1(X0) - Y0`` for the
  controls, a second model is fitted to each, and ``tau(x) = e * tau0(x) + (1 - e) * tau1(x)``
  with ``e`` the share treated (the design propensity of a randomized campaign).

Every prediction used for evaluation is **out of fold** (cross-fitting): a customer's uplift comes
from models that never saw that customer, so the uplift deciles and the uplift curve are not
evaluated in sample.

The average effect is given twice and the two must agree: the plain difference in means with its
Neyman standard error, and the cross-fitted augmented-IPW (doubly robust) estimate
``mean(mu1 - mu0 + T (Y - mu1) / e - (1 - T) (Y - mu0) / (1 - e))`` (Robins, Rotnitzky & Zhao 1994;
Chernozhukov et al. 2018), which is the difference in means adjusted for the features. Bootstrap
intervals resample customers within each arm with the out-of-fold predictions held fixed: they
measure the sampling variability of the evaluation, not the refitting of the models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits
from tqdm import tqdm  # text bars: tqdm.auto warns in Jupyter without ipywidgets

from custval._format import number
from custval._validation import (
    OPEN_PROBABILITY,
    Interval,
    Options,
    refuse_rows,
    require_columns,
    require_numeric,
    validate_params,
)
from custval.errors import DataError
from custval.invest._common import UNCERTAINTY_CONSTRAINTS, percentile_interval

__all__ = ["UpliftResult", "estimate_uplift"]

_MAX_CATEGORIES = 250
_CURVE_POINTS = 101


# --- features ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Encoder:
    """Turns feature columns into a float matrix; categories become codes (NaN when unknown)."""

    features: tuple[str, ...]
    categories: dict[str, pd.Index]

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([f in self.categories for f in self.features], dtype=bool)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        require_columns(frame, self.features, what="frame")
        columns = []
        for f in self.features:
            s = frame[f]
            if f in self.categories:
                codes = pd.Categorical(s, categories=self.categories[f]).codes.astype(float)
                codes[codes < 0] = np.nan
                columns.append(codes)
            else:
                columns.append(pd.to_numeric(s, errors="coerce").to_numpy(dtype=float))
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def _make_encoder(frame: pd.DataFrame, features: Sequence[str]) -> _Encoder:
    categories: dict[str, pd.Index] = {}
    for f in features:
        s = frame[f]
        if pd.api.types.is_bool_dtype(s) or (
            pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype)
        ):
            continue
        if pd.api.types.is_datetime64_any_dtype(s):
            raise DataError(
                f"feature {f!r} is a date; turn it into a number first (e.g. days since an event)"
            )
        cats = pd.Categorical(s).categories
        if len(cats) > _MAX_CATEGORIES:
            raise DataError(
                f"feature {f!r} has {len(cats):,} categories (at most {_MAX_CATEGORIES} are "
                "supported); group rare categories or encode the column as numbers"
            )
        categories[f] = cats
    return _Encoder(features=tuple(features), categories=categories)


# --- learners -------------------------------------------------------------------------------------


def _default_learner(
    binary: bool, categorical: np.ndarray, n_train: int, random_state: int
) -> BaseEstimator:
    params = {
        "max_iter": 100,
        "learning_rate": 0.05,
        "max_leaf_nodes": 15,
        "min_samples_leaf": int(min(200, max(20, n_train // 200))),
        "l2_regularization": 1.0,
        "early_stopping": False,
        "categorical_features": categorical if categorical.any() else None,
        "random_state": random_state,
    }
    if binary:
        return HistGradientBoostingClassifier(**params)
    return HistGradientBoostingRegressor(**params)


class _Constant:
    """Stand-in model for a training set whose outcome takes one value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.value)


def _fit_one(
    X: np.ndarray,
    y: np.ndarray,
    *,
    binary: bool,
    learner: BaseEstimator | None,
    categorical: np.ndarray,
    random_state: int,
) -> Any:
    if len(np.unique(y)) < 2:
        return _Constant(float(y[0]) if len(y) else 0.0)
    if learner is None:
        model = _default_learner(binary, categorical, len(y), random_state)
    else:
        model = clone(learner)
    return model.fit(X, y)


def _predict_mean(model: Any, X: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        classes = list(model.classes_)
        return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X))
    return np.asarray(model.predict(X), dtype=float)


def _fit_learners(
    X: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    *,
    binary: bool,
    method: str,
    learner: BaseEstimator | None,
    categorical: np.ndarray,
    random_state: int,
) -> dict[str, Any]:
    kw = {"learner": learner, "categorical": categorical, "random_state": random_state}
    treated, control = t == 1, t == 0
    models = {
        "mu0": _fit_one(X[control], y[control], binary=binary, **kw),
        "mu1": _fit_one(X[treated], y[treated], binary=binary, **kw),
        "e": float(treated.mean()),
    }
    if method == "x_learner":
        # Künzel et al. (2019), eq. 3-4: impute individual effects with the other arm's model.
        d1 = y[treated] - _predict_mean(models["mu0"], X[treated])
        d0 = _predict_mean(models["mu1"], X[control]) - y[control]
        models["tau1"] = _fit_one(X[treated], d1, binary=False, **kw)
        models["tau0"] = _fit_one(X[control], d0, binary=False, **kw)
    return models


def _predict_learners(models: dict[str, Any], X: np.ndarray, method: str) -> tuple[np.ndarray, ...]:
    mu0 = _predict_mean(models["mu0"], X)
    mu1 = _predict_mean(models["mu1"], X)
    if method == "x_learner":
        e = models["e"]  # Künzel et al. (2019), eq. 5 with g(x) = e(x), constant by design
        tau = e * _predict_mean(models["tau0"], X) + (1 - e) * _predict_mean(models["tau1"], X)
    else:
        tau = mu1 - mu0
    return mu0, mu1, tau


# --- result ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpliftResult:
    """Result of :func:`estimate_uplift`.

    Attributes
    ----------
    ate : DataFrame
        The average effect, two rows: ``"difference in means"`` and ``"model (cross-fitted
        AIPW)"``; columns ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper`` (normal),
        ``p_value`` (two-sided), ``bootstrap_ci_lower``, ``bootstrap_ci_upper``.
    groups : DataFrame
        ``n``, ``mean`` and ``std`` of the outcome in the ``treated`` and ``control`` arms.
    by_decile : DataFrame
        Customers cut into deciles of out-of-fold predicted uplift (1 = highest): ``n``,
        ``n_treated``, ``n_control``, ``predicted_uplift`` (mean), ``treated_mean``,
        ``control_mean``, ``observed_uplift`` (difference in means), ``std_error`` and bootstrap
        ``ci_lower``/``ci_upper``.
    qini : DataFrame
        Uplift curve on 101 points: ``fraction_targeted``, ``n_targeted``,
        ``incremental_outcome`` (cumulative incremental outcome if the top ``n_targeted`` by
        predicted uplift were treated: (treated mean − control mean among them) × n),
        ``random_targeting`` (average effect × n), and bootstrap ``ci_lower``/``ci_upper``.
    qini_area : float
        Area between the uplift curve and random targeting, per customer of the base (outcome
        units; positive when the ranking beats random targeting). ``qini_area_ci`` is its
        bootstrap interval.
    cate : Series
        Out-of-fold predicted uplift per row of the input frame.
    power : dict
        ``alpha``, ``power``, ``std_error``, ``minimum_detectable_effect`` (of the difference in
        means, two-sided), ``distinguishable_from_zero`` and ``p_value``.
    message : str
        A plain sentence on the average effect, saying when it is not distinguishable from zero.
    assumptions : dict
        Method, learner, folds, bootstrap, features, outcome type, design propensity.
    """

    outcome: str
    outcome_type: Literal["binary", "continuous"]
    method: str
    ate: pd.DataFrame
    groups: pd.DataFrame
    by_decile: pd.DataFrame
    qini: pd.DataFrame = field(repr=False)
    qini_area: float
    qini_area_ci: tuple[float, float]
    cate: pd.Series = field(repr=False)
    power: dict[str, Any]
    message: str
    assumptions: dict[str, Any]
    _frame: pd.DataFrame = field(repr=False)
    _treatment: str = field(repr=False)
    _encoder: _Encoder = field(repr=False)
    _final: dict[str, Any] | None = field(repr=False)

    @property
    def distinguishable_from_zero(self) -> bool:
        """Whether the difference-in-means confidence interval excludes zero."""
        return bool(self.power["distinguishable_from_zero"])

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """Predicted uplift for new customers (models refitted on the whole campaign).

        Parameters
        ----------
        frame : DataFrame
            Must hold the feature columns used for fitting.

        Returns
        -------
        Series
            ``uplift`` indexed like ``frame``.
        """
        if self._final is None:
            raise DataError(
                "this result has no model fitted on the whole campaign; call estimate_uplift "
                "with fit_final=True to predict for new customers (the out-of-fold uplift of "
                "the campaign's own customers is in result.cate)"
            )
        X = self._encoder.transform(frame)
        _, _, tau = _predict_learners(self._final, X, self.method)
        return pd.Series(tau, index=frame.index, name="uplift")

    def effect_by(self, by: str | pd.Series, *, alpha: float = 0.05) -> pd.DataFrame:
        """Observed effect (difference in means) and mean predicted uplift per group.

        Parameters
        ----------
        by : str or Series
            A column of the frame given to :func:`estimate_uplift`, or a Series aligned with it.
        alpha : float, default 0.05
            For the normal confidence intervals.

        Returns
        -------
        DataFrame
            One row per group, highest predicted uplift first: ``n_treated``, ``n_control``,
            ``observed_uplift``, ``std_error``, ``ci_lower``, ``ci_upper``, ``predicted_uplift``
            and ``predicted_rank`` (1 = the group the model expects to respond most).
        """
        if isinstance(by, str):
            require_columns(self._frame, [by], what="campaign frame")
            groups = self._frame[by]
        else:
            groups = by.reindex(self._frame.index)
        t = self._frame[self._treatment].to_numpy(dtype=float)
        y = self._frame[self.outcome].to_numpy(dtype=float)
        data = pd.DataFrame({"g": groups.to_numpy(), "t": t, "y": y, "cate": self.cate.to_numpy()})
        z = stats.norm.ppf(1 - alpha / 2)
        rows = []
        for key, part in data.groupby("g", sort=True, observed=True):
            yt = part.loc[part["t"] == 1, "y"].to_numpy()
            yc = part.loc[part["t"] == 0, "y"].to_numpy()
            est, se = _dim(yt, yc)
            rows.append(
                {
                    "group": key,
                    "n_treated": len(yt),
                    "n_control": len(yc),
                    "observed_uplift": est,
                    "std_error": se,
                    "ci_lower": est - z * se,
                    "ci_upper": est + z * se,
                    "predicted_uplift": float(part["cate"].mean()),
                }
            )
        out = pd.DataFrame(rows).set_index("group")
        out.index.name = by if isinstance(by, str) else (by.name or "group")
        out = out.sort_values("predicted_uplift", ascending=False, kind="stable")
        out["predicted_rank"] = np.arange(1, len(out) + 1)
        return out


def _dim(yt: np.ndarray, yc: np.ndarray) -> tuple[float, float]:
    """Difference in means and its Neyman standard error sqrt(s1²/n1 + s0²/n0)."""
    if len(yt) < 2 or len(yc) < 2:
        return float("nan"), float("nan")
    est = float(yt.mean() - yc.mean())
    se = math.sqrt(yt.var(ddof=1) / len(yt) + yc.var(ddof=1) / len(yc))
    return est, se


# --- evaluation on sorted data ----------------------------------------------------------------


class _Evaluator:
    """Statistics computed from rows sorted by predicted uplift, under bootstrap weights."""

    def __init__(
        self, t: np.ndarray, y: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, tau: np.ndarray
    ) -> None:
        order = np.argsort(-tau, kind="stable")
        self.order = order
        self.t = t[order]
        self.y = y[order]
        self.mu0 = mu0[order]
        self.mu1 = mu1[order]
        self.tau = tau[order]
        n = len(t)
        self.n = n
        self.decile = (np.arange(n) * 10) // n
        self.grid = np.round(np.linspace(0.0, 1.0, _CURVE_POINTS) * n).astype(int)

    def __call__(self, w: np.ndarray) -> dict[str, Any]:
        t, y = self.t, self.y
        wt, wc = w * t, w * (1 - t)
        n1, n0 = wt.sum(), wc.sum()
        dim = (wt @ y) / n1 - (wc @ y) / n0
        e = n1 / (n1 + n0)
        psi = self.mu1 - self.mu0 + t * (y - self.mu1) / e - (1 - t) * (y - self.mu0) / (1 - e)
        aipw = (w @ psi) / w.sum()
        # uplift curve at the grid points
        k = self.grid[1:] - 1
        cnt_t, cnt_c = np.cumsum(wt)[k], np.cumsum(wc)[k]
        sum_t, sum_c = np.cumsum(wt * y)[k], np.cumsum(wc * y)[k]
        size = np.cumsum(w)[k]
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.where((cnt_t > 0) & (cnt_c > 0), sum_t / cnt_t - sum_c / cnt_c, 0.0)
        curve = np.concatenate([[0.0], diff * size])
        total = w.sum()
        sizes = np.concatenate([[0.0], size])
        random = dim * sizes
        fraction = sizes / total
        area = float(np.trapezoid((curve - random) / total, fraction))
        # deciles
        d = self.decile
        nt_d = np.bincount(d, weights=wt, minlength=10)
        nc_d = np.bincount(d, weights=wc, minlength=10)
        with np.errstate(divide="ignore", invalid="ignore"):
            dec = (
                np.bincount(d, weights=wt * y, minlength=10) / nt_d
                - np.bincount(d, weights=wc * y, minlength=10) / nc_d
            )
        return {"dim": dim, "aipw": aipw, "curve": curve, "area": area, "decile": dec}


# --- public function ----------------------------------------------------------------------------


def _check_inputs(
    frame: pd.DataFrame, treatment: str, outcome: str, features: Sequence[str], n_folds: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    if isinstance(features, str):
        features = [features]
    if len(features) == 0:
        raise DataError(
            "features is empty; name the pre-campaign columns the uplift model may use "
            "(never outcomes measured after the contact)"
        )
    require_columns(frame, [treatment, outcome, *features], what="campaign frame")
    overlap = {treatment, outcome} & set(features)
    if overlap:
        raise DataError(
            f"features include {sorted(overlap)}, the treatment or outcome column; remove them"
        )
    require_numeric(frame, [outcome], what="campaign frame")
    raw_t = frame[treatment]
    t = pd.to_numeric(raw_t, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(t, [0.0, 1.0])
    refuse_rows(
        frame,
        bad,
        treatment,
        "values other than 0 and 1",
        "code the treatment as 1 (contacted) and 0 (control)",
    )
    for arm, name in ((1.0, "treated"), (0.0, "control")):
        size = int((t == arm).sum())
        if size < max(2, n_folds):
            raise DataError(
                f"the {name} group has {size} customers; estimating uplift with {n_folds}-fold "
                f"cross-fitting needs at least {max(2, n_folds)} in each group"
            )
    y = frame[outcome].to_numpy(dtype=float)
    binary = bool(np.isin(y, [0.0, 1.0]).all())
    return t, y, binary


@validate_params(
    {
        "method": Options(("t_learner", "x_learner")),
        "n_folds": Interval(Integral, 2, None),
        "power": OPEN_PROBABILITY,
        **UNCERTAINTY_CONSTRAINTS,
    }
)
def estimate_uplift(
    frame: pd.DataFrame,
    *,
    treatment: str = "treatment",
    outcome: str,
    features: Sequence[str],
    method: Literal["t_learner", "x_learner"] = "t_learner",
    learner: BaseEstimator | None = None,
    n_folds: int = 5,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    power: float = 0.8,
    fit_final: bool = True,
    random_state: int = 0,
    n_jobs: int | None = 1,
    progress: bool = True,
) -> UpliftResult:
    """Average and individual effects of a randomized campaign, with honest uncertainty.

    Parameters
    ----------
    frame : DataFrame
        One row per customer of the campaign (e.g. from :func:`campaign_outcomes`).
    treatment : str, default "treatment"
        Column coded 1 (contacted) and 0 (randomized control).
    outcome : str
        Outcome column: binary (0/1, e.g. ``purchase``) or continuous (e.g. ``revenue``).
    features : sequence of str
        Pre-campaign columns for the uplift model; text and categorical columns are handled.
    method : {"t_learner", "x_learner"}, default "t_learner"
        Meta-learner (see the module notes).
    learner : scikit-learn estimator, optional
        Replaces the default HistGradientBoosting models (a classifier for binary outcomes in
        the arm models, a regressor otherwise); it is cloned for every fit.
    n_folds : int, default 5
        Cross-fitting folds: every evaluated prediction is out of fold.
    n_bootstrap : int, default 200
        Bootstrap resamples (within arm) for the intervals; 0 skips them.
    alpha : float, default 0.05
        1 - confidence level.
    power : float, default 0.8
        Power for the minimum detectable effect.
    fit_final : bool, default True
        Also fit the models on the whole campaign, for :meth:`UpliftResult.predict`.
    random_state : int, default 0
        Seeds the folds, the learners and the bootstrap.
    n_jobs : int or None, default 1
        OpenMP threads for the gradient-boosting fits (None: the library default, all cores).
        The models are small; on a busy or shared machine more threads are often slower.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    UpliftResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> x = rng.uniform(size=n)
    >>> t = rng.integers(0, 2, size=n)
    >>> campaign = pd.DataFrame({"x": x, "treatment": t,
    ...                          "revenue": 10 * x * t + rng.normal(size=n)})
    >>> result = estimate_uplift(campaign, outcome="revenue", features=["x"], n_bootstrap=50,
    ...                          progress=False)
    >>> bool(abs(result.ate.loc["difference in means", "estimate"] - 5.0) < 0.5)
    True
    """
    features = [features] if isinstance(features, str) else list(features)
    t, y, binary = _check_inputs(frame, treatment, outcome, features, n_folds)
    encoder = _make_encoder(frame, features)
    X = encoder.transform(frame)
    fit_kw = {
        "binary": binary,
        "method": method,
        "learner": learner,
        "categorical": encoder.categorical_mask,
        "random_state": random_state,
    }
    with threadpool_limits(limits=n_jobs, user_api="openmp"):
        (mu0, mu1, tau), final = _cross_fit(
            X, t, y, fit_kw, n_folds=n_folds, fit_final=fit_final, progress=progress
        )
    ev = _Evaluator(t, y, mu0, mu1, tau)
    point = ev(np.ones(len(frame)))
    boot = _Bootstrap(ev, point, n_bootstrap, alpha, random_state, progress)
    z = stats.norm.ppf(1 - alpha / 2)
    yt, yc = y[t == 1], y[t == 0]
    dim, dim_se = _dim(yt, yc)
    ate = _ate_table(ev, boot, z)
    p_value = float(ate.loc["difference in means", "p_value"])
    mde = float((z + stats.norm.ppf(power)) * dim_se)
    distinguishable = bool(abs(dim) > z * dim_se)
    area_ci = boot.interval("area")
    return UpliftResult(
        outcome=outcome,
        outcome_type="binary" if binary else "continuous",
        method=method,
        ate=ate,
        groups=_arm_table(yt, yc),
        by_decile=_decile_table(ev, boot),
        qini=_qini_table(ev, point, boot, dim),
        qini_area=point["area"],
        qini_area_ci=(float(area_ci[0]), float(area_ci[1])),
        cate=pd.Series(tau, index=frame.index, name="uplift"),
        power={
            "alpha": alpha,
            "power": power,
            "std_error": dim_se,
            "minimum_detectable_effect": mde,
            "distinguishable_from_zero": distinguishable,
            "p_value": p_value,
        },
        message=_effect_message(outcome, yt, yc, z, alpha, power, p_value, mde),
        assumptions={
            "design": "randomized campaign: treatment independent of features; design "
            "propensity estimated as the share treated",
            "propensity": float(t.mean()),
            "method": method,
            "learner": "HistGradientBoosting (custval defaults)"
            if learner is None
            else type(learner).__name__,
            "features": features,
            "categorical_features": list(encoder.categories),
            "outcome": outcome,
            "outcome_type": "binary" if binary else "continuous",
            "n_folds": n_folds,
            "n_bootstrap": n_bootstrap,
            "bootstrap": "resampling customers within arm; out-of-fold predictions held fixed",
            "alpha": alpha,
            "random_state": random_state,
        },
        _frame=frame,
        _treatment=treatment,
        _encoder=encoder,
        _final=final,
    )


# --- the steps of estimate_uplift --------------------------------------------------------------


def _cross_fit(
    X: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    fit_kw: dict[str, Any],
    *,
    n_folds: int,
    fit_final: bool,
    progress: bool,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], dict[str, Any] | None]:
    """Out-of-fold ``(mu0, mu1, tau)`` for every customer, and the models fitted on everyone.

    Folds are stratified by arm and by whether the outcome is positive (by arm alone where a
    stratum has fewer customers than folds).
    """
    n = len(t)
    strata = t.astype(int) * 2 + (y > 0).astype(int)
    counts = np.bincount(strata, minlength=4)
    if counts[counts > 0].min() < n_folds:
        strata = t.astype(int)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=fit_kw["random_state"])
    mu0, mu1, tau = np.empty(n), np.empty(n), np.empty(n)
    steps = n_folds + int(fit_final)
    label = f"uplift ({fit_kw['method']}): fitting"
    with tqdm(total=steps, desc=label, disable=not progress) as bar:
        for train, test in folds.split(X, strata):
            models = _fit_learners(X[train], t[train], y[train], **fit_kw)
            mu0[test], mu1[test], tau[test] = _predict_learners(models, X[test], fit_kw["method"])
            bar.update()
        final = _fit_learners(X, t, y, **fit_kw) if fit_final else None
        bar.update(int(fit_final))
    return (mu0, mu1, tau), final


class _Bootstrap:
    """The evaluation on customers resampled within arm (out-of-fold predictions held fixed)."""

    def __init__(
        self,
        ev: _Evaluator,
        point: dict[str, Any],
        n_bootstrap: int,
        alpha: float,
        random_state: int,
        progress: bool,
    ) -> None:
        self.point, self.alpha, self.n_bootstrap = point, alpha, n_bootstrap
        self.draws: dict[str, list[Any]] = {key: [] for key in point}
        if not n_bootstrap:
            return
        n = len(ev.t)
        rng = np.random.default_rng(random_state)
        pos_t, pos_c = np.nonzero(ev.t == 1)[0], np.nonzero(ev.t == 0)[0]
        for _ in tqdm(range(n_bootstrap), desc="uplift: bootstrap", disable=not progress):
            w = np.bincount(pos_t[rng.integers(0, len(pos_t), len(pos_t))], minlength=n)
            w = w + np.bincount(pos_c[rng.integers(0, len(pos_c), len(pos_c))], minlength=n)
            for key, val in ev(w.astype(float)).items():
                self.draws[key].append(val)

    def interval(self, key: str) -> np.ndarray:
        """Percentile interval of ``key`` (NaN without resamples), shape ``(2, *shape)``."""
        if not self.n_bootstrap:
            return np.full((2, *np.shape(self.point[key])), np.nan)
        return percentile_interval(np.asarray(self.draws[key], dtype=float), self.alpha)


def _ate_table(ev: _Evaluator, boot: _Bootstrap, z: float) -> pd.DataFrame:
    """The average effect by difference in means and by cross-fitted AIPW, with normal and
    bootstrap intervals."""
    t, y, mu0, mu1 = ev.t, ev.y, ev.mu0, ev.mu1
    dim, dim_se = _dim(y[t == 1], y[t == 0])
    e = float(t.mean())
    psi = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
    aipw, aipw_se = float(psi.mean()), float(psi.std(ddof=1) / math.sqrt(len(t)))
    rows = {}
    for name, est, se, key in (
        ("difference in means", dim, dim_se, "dim"),
        ("model (cross-fitted AIPW)", aipw, aipw_se, "aipw"),
    ):
        lo, hi = boot.interval(key)
        rows[name] = {
            "estimate": est,
            "std_error": se,
            "ci_lower": est - z * se,
            "ci_upper": est + z * se,
            "p_value": float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else float("nan"),
            "bootstrap_ci_lower": float(lo),
            "bootstrap_ci_upper": float(hi),
        }
    ate = pd.DataFrame.from_dict(rows, orient="index")
    ate.index.name = "estimator"
    return ate


def _arm_table(yt: np.ndarray, yc: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": [len(yt), len(yc)],
            "mean": [yt.mean(), yc.mean()],
            "std": [yt.std(ddof=1), yc.std(ddof=1)],
        },
        index=pd.Index(["treated", "control"], name="arm"),
    )


def _decile_table(ev: _Evaluator, boot: _Bootstrap) -> pd.DataFrame:
    """Observed uplift by decile of predicted uplift (1 = highest)."""
    frame = pd.DataFrame({"decile": ev.decile + 1, "t": ev.t, "y": ev.y, "tau": ev.tau})
    lower, upper = boot.interval("decile")
    rows = []
    for d, part in frame.groupby("decile", sort=True):
        pt = part.loc[part["t"] == 1, "y"].to_numpy()
        pc = part.loc[part["t"] == 0, "y"].to_numpy()
        est, se = _dim(pt, pc)
        rows.append(
            {
                "decile": int(d),
                "n": len(part),
                "n_treated": len(pt),
                "n_control": len(pc),
                "predicted_uplift": float(part["tau"].mean()),
                "treated_mean": float(pt.mean()) if len(pt) else np.nan,
                "control_mean": float(pc.mean()) if len(pc) else np.nan,
                "observed_uplift": est,
                "std_error": se,
                "ci_lower": float(lower[int(d) - 1]),
                "ci_upper": float(upper[int(d) - 1]),
            }
        )
    return pd.DataFrame(rows).set_index("decile")


def _qini_table(
    ev: _Evaluator, point: dict[str, Any], boot: _Bootstrap, dim: float
) -> pd.DataFrame:
    lower, upper = boot.interval("curve")
    return pd.DataFrame(
        {
            "fraction_targeted": ev.grid / len(ev.t),
            "n_targeted": ev.grid,
            "incremental_outcome": point["curve"],
            "random_targeting": dim * ev.grid,
            "ci_lower": lower,
            "ci_upper": upper,
        }
    )


def _effect_message(
    outcome: str,
    yt: np.ndarray,
    yc: np.ndarray,
    z: float,
    alpha: float,
    power: float,
    p_value: float,
    mde: float,
) -> str:
    """One sentence on the average effect: its size and interval, or why it is not seen."""
    dim, dim_se = _dim(yt, yc)
    level = f"{100 * (1 - alpha):g}%"
    control_mean = float(yc.mean())
    relative = f" ({dim / control_mean:+.0%} on the control mean)" if control_mean else ""
    ci_text = f"{level} CI {number(dim - z * dim_se)} to {number(dim + z * dim_se)}"
    if abs(dim) > z * dim_se:
        return (
            f"The campaign changed {outcome} by {dim:+.4g} per customer{relative} ({ci_text}); "
            f"the effect is distinguishable from zero (p = {p_value:.2g})."
        )
    return (
        f"The effect on {outcome} is not distinguishable from zero: {dim:+.4g} per customer "
        f"({ci_text}, p = {p_value:.2g}). With {len(yt):,} treated and {len(yc):,} control "
        f"customers the minimum detectable effect at {power:.0%} power is {mde:.4g}."
    )
