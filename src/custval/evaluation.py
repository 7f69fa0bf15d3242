"""Holdout diagnostics: how well a fitted transaction model predicts what customers did next.

Every function takes a fitted model and a calibration/holdout split from
:func:`custval.calibration_holdout_split` (the calibration columns ``frequency, recency, T`` the
model was fitted on, plus ``frequency_holdout`` and ``duration_holdout``; its unit in
``attrs["freq"]``), so every model is judged the same way:

- :func:`tracking`: predicted vs actual repeat transactions per period across the cohort,
  incremental and cumulative (Fader, Hardie & Lee 2005, figure 2);
- :func:`conditional_expectations`: mean holdout purchases by calibration frequency (or
  recency) group, actual vs predicted (FHL 2005, figure 4);
- :func:`error_metrics`: per-customer MAE, RMSE, bias and MSLE of holdout purchases;
- :func:`ranking_metrics` and :func:`lift_by_decile`: does the model put the right customers
  on top (Spearman, top-decile capture, normalized Gini, lift);
- :func:`alive_metrics` and :func:`alive_calibration`: P(alive) against holdout activity;
- :func:`compare_models`: one table over several fitted models, best first.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.utils.validation import check_is_fitted

from custval._log import read_moment, read_timestamps
from custval._metrics import BY_ABSOLUTE as _BY_ABSOLUTE
from custval._metrics import SMALLER_IS_BETTER as _SMALLER_IS_BETTER
from custval._units import DAYS_PER_UNIT, normalize_freq, summary_freq
from custval._validation import (
    Interval,
    Options,
    covariate_profiles,
    has_covariates,
    nonnegative_columns,
    require_columns,
    require_numeric,
    validate_params,
    with_customer_columns,
)
from custval.errors import CustvalWarning, DataError

__all__ = [
    "alive_calibration",
    "alive_metrics",
    "compare_models",
    "conditional_expectations",
    "error_metrics",
    "lift_by_decile",
    "ranking_metrics",
    "tracking",
]

_SPLIT_COLUMNS = ("frequency", "recency", "T", "frequency_holdout", "duration_holdout")


# ---------------------------------------------------------------------------------------------
# Shared checks
# ---------------------------------------------------------------------------------------------
def _model_name(model: Any) -> str:
    return getattr(model, "_display_name", "") or type(model).__name__


def _check_split(
    split: pd.DataFrame, columns: tuple[str, ...] = _SPLIT_COLUMNS, freq: str | None = None
) -> str:
    if not isinstance(split, pd.DataFrame):
        raise DataError(
            f"split must be a DataFrame from custval.calibration_holdout_split, got "
            f"{type(split).__name__}"
        )
    nonnegative_columns(
        split,
        columns,
        what="split",
        hint="Build it with custval.calibration_holdout_split(transactions, calibration_end=...)",
    )
    if len(split) == 0:
        raise DataError("the split has no customers; check calibration_end and the transactions")
    return summary_freq(split, freq)


def _check_model_unit(model: Any, freq: str) -> None:
    if hasattr(model, "fit"):
        check_is_fitted(model, "params_")
    elif not isinstance(getattr(model, "params_", None), pd.Series):  # e.g. a bound model
        raise DataError(
            f"{_model_name(model)} has no fitted params_ (a Series of parameters); fit it first"
        )
    model_freq = getattr(model, "freq_", None)
    if model_freq is None:
        raise DataError(
            f"the {_model_name(model)} does not record the time unit it was fitted in (freq_ is "
            f"None), so its predictions cannot be matched to the split's unit {freq!r}; fit it "
            "on the split (whose attrs['freq'] is set) or use from_params(..., freq=...)"
        )
    if normalize_freq(model_freq) != freq:
        raise DataError(
            f"the {_model_name(model)} was fitted in unit {model_freq!r} but the split is in "
            f"unit {freq!r}; fit the model on this split's calibration columns"
        )


def _holdout_predictions(
    model: Any, split: pd.DataFrame, freq: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and actual holdout purchases per customer."""
    freq = _check_split(split, freq=freq)
    _check_model_unit(model, freq)
    duration = split["duration_holdout"].to_numpy(dtype=float)
    horizon: Any = float(duration[0]) if np.all(duration == duration[0]) else duration
    predicted = model.expected_purchases(split, horizon).to_numpy(dtype=float)
    actual = split["frequency_holdout"].to_numpy(dtype=float)
    return predicted, actual


def _value_predictions(
    model: Any, split: pd.DataFrame, spend_model: Any, freq: str | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    predicted, actual = _holdout_predictions(model, split, freq)
    if spend_model is None:
        return predicted, actual, "holdout purchases"
    require_columns(split, ["monetary_value", "monetary_value_holdout"], what="split")
    require_numeric(split, ["monetary_value", "monetary_value_holdout"], what="split")
    spend = spend_model.expected_spend(split).to_numpy(dtype=float)
    actual_value = actual * split["monetary_value_holdout"].to_numpy(dtype=float)
    return predicted * spend, actual_value, "holdout spend"


def _holdout_duration(split: pd.DataFrame) -> float | None:
    """The holdout length shared by every customer, None when it differs between them."""
    duration = split["duration_holdout"]
    return float(duration.iloc[0]) if duration.nunique() == 1 else None


def _equal_width_bins(
    values: np.ndarray, edges: np.ndarray, spec: str
) -> tuple[np.ndarray, list[str]]:
    """The bin of each value (values outside ``edges`` go to the end bins) and the bins' labels
    "[a, b)", the last one closed "[a, b]", with the edges formatted by ``spec`` (".3g")."""
    bins = len(edges) - 1
    group = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
    labels = [
        f"[{edges[i]:{spec}}, {edges[i + 1]:{spec}}{']' if i == bins - 1 else ')'}"
        for i in range(bins)
    ]
    return group, labels


def _group_means(
    group: np.ndarray, n_groups: int, *values: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Customers per group, and the mean of each of ``values`` per group (NaN when empty)."""
    counts = np.bincount(group, minlength=n_groups).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = [np.bincount(group, weights=v, minlength=n_groups) / counts for v in values]
    return counts, means


def _tie_averaged(order_key: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` sorted by ``order_key`` descending, each tie group replaced by its mean.

    Ties in the prediction (e.g. every one-time buyer of the same age) have no order, so the
    metrics use the expected value over all orders of a tie: the group mean.
    """
    order = np.argsort(-order_key, kind="stable")
    key, vals = order_key[order], values[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sums = np.add.reduceat(vals, starts)
    sizes = np.diff(np.r_[starts, len(vals)])
    return order, np.repeat(sums / sizes, sizes)


# ---------------------------------------------------------------------------------------------
# Tracking
# ---------------------------------------------------------------------------------------------
def _ticks(timestamps: pd.Series, unit: str) -> np.ndarray:
    """Integer period codes of timestamps: hours, days, Monday-start weeks, months or years
    (the periods of :func:`custval.rfm_summary`)."""
    values = pd.to_datetime(timestamps)
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    raw = values.to_numpy().astype("datetime64[ns]")
    if unit == "h":
        return raw.astype("datetime64[h]").astype(np.int64)
    days = raw.astype("datetime64[D]").astype(np.int64)
    if unit == "D":
        return days
    if unit == "W":
        return np.floor_divide(days + 3, 7)  # 1970-01-01 was a Thursday
    return raw.astype(f"datetime64[{unit}]").astype(np.int64)


def _tick_end(tick: int, unit: str) -> pd.Timestamp:
    """Last day (last hour for "h") of the period with code ``tick``."""
    if unit == "h":
        return pd.Timestamp(np.datetime64(int(tick), "h"))
    if unit == "W":
        return pd.Timestamp(np.datetime64(int(tick) * 7 - 3 + 6, "D"))
    following = np.datetime64(int(tick) + 1, unit).astype("datetime64[D]")
    return pd.Timestamp(following - np.timedelta64(1, "D"))


def tracking(
    model: Any,
    transactions: pd.DataFrame,
    split: pd.DataFrame,
    *,
    customer_id: str = "customer_id",
    timestamp: str = "timestamp",
    purchase_unit: str | None = None,
    customers: pd.DataFrame | None = None,
    freq: str | None = None,
    calibration_end: Any = None,
    observation_end: Any = None,
) -> pd.DataFrame:
    """Predicted vs actual repeat transactions of the cohort, per period and cumulative.

    The cohort is the split's customers. Period 1 starts at the cohort's earliest first
    purchase; periods have the split's unit. The prediction for a customer ``a`` periods after
    their first purchase is the model's ``expected_purchases_new_customer(a)`` (FHL 2005,
    eq. 9), so the cumulative prediction at the end of period ``k`` is
    ``sum_i E[X(age_i(k))]``, with each customer contributing from their own first purchase
    on. This is the tracking plot of Fader, Hardie & Lee (2005, figure 2): the calibration part
    shows the fit, the holdout part the forecast.

    Parameters
    ----------
    model : fitted model
        With ``expected_purchases_new_customer(t)``; fitted in the split's unit. A
        :class:`custval.ParetoNBDDynamicBound` predicts each customer along their own
        covariate path (its ``summary_`` with ``holdout_end`` is the split; pass
        ``purchase_unit="D"``, the unit it counts purchases in).
    transactions : DataFrame
        The log the split was built from (``customer_id``, ``timestamp``). Not modified.
    split : DataFrame
        From :func:`custval.calibration_holdout_split`, with ``attrs["calibration_end"]`` and
        ``attrs["observation_end"]``.
    customer_id, timestamp : str
        Column names in ``transactions``.
    purchase_unit : str, optional
        The period within which purchases count as one, as in the summary (``"D"`` when the
        split was built with ``freq="D"`` and its ages rescaled to weeks, as in Hardie's CDNOW
        data); defaults to the split's unit. It is checked against the split: the customers'
        ``T`` must equal their ages computed from the transactions in this unit.
    customers : DataFrame, optional
        For a model with covariates: the customers' covariates, indexed by customer_id
        (default: columns of ``split``); each customer's prediction is that of a new
        customer with their covariates (BG/NBD and MBG/NBD).
    freq : str, optional
        The split's unit; defaults to ``split.attrs["freq"]`` (which pandas drops in ``merge``
        and ``join``: pass it here then). The explicit value wins.
    calibration_end, observation_end : date-like, optional
        The split's dates; default to ``split.attrs["calibration_end"]`` and
        ``split.attrs["observation_end"]``.

    Returns
    -------
    DataFrame
        Indexed by ``period`` (1, 2, ...): ``period_end`` (last day of the period),
        ``actual``, ``predicted`` (repeat transactions in the period), ``actual_cumulative``,
        ``predicted_cumulative`` and ``holdout`` (True after the calibration period).
        ``attrs``: ``freq``, ``purchase_unit``, ``calibration_periods``, ``n_customers``,
        ``model``.

    Raises
    ------
    DataError
        Missing columns or split attributes, customers of the split absent from the
        transactions, or ages that do not match the split's ``T`` (wrong ``purchase_unit``).

    Examples
    --------
    >>> import pandas as pd, custval
    >>> log = pd.DataFrame({"customer_id": [1, 1, 2, 2, 3],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-20", "2024-01-03",
    ...                                  "2024-02-10", "2024-01-10"]), "amount": 10.0})
    >>> split = custval.calibration_holdout_split(log, calibration_end="2024-01-31",
    ...                                           observation_end="2024-02-25", freq="D")
    >>> model = custval.BetaGeoModel.from_params(r=0.3, alpha=5.0, a=0.8, b=2.5, freq="D")
    >>> table = tracking(model, log, split)
    >>> int(table["actual_cumulative"].iloc[-1])
    2
    """
    freq = _check_split(split, ("frequency", "recency", "T"), freq)
    _check_model_unit(model, freq)
    given = {"calibration_end": calibration_end, "observation_end": observation_end}
    dates = {}
    for key, value in given.items():
        value = value if value is not None else split.attrs.get(key)
        if not value:
            raise DataError(
                f"the split does not record attrs[{key!r}] (pandas drops attrs in merge and "
                f"join); pass {key}= (the date the split was built with), or build it with "
                "custval.calibration_holdout_split"
            )
        dates[key] = read_moment(value, key, wall_clock=True)
    unit = normalize_freq(purchase_unit) if purchase_unit is not None else freq
    ratio = DAYS_PER_UNIT[unit] / DAYS_PER_UNIT[freq]  # one tick in periods of the split
    if ratio > 1.0 + 1e-12:
        raise DataError(
            f"purchase_unit {unit!r} is longer than the split's unit {freq!r}; use the unit "
            "the summary counted purchases in (e.g. 'D')"
        )
    require_columns(transactions, [customer_id, timestamp], what="transactions")
    end, calibration_end = dates["observation_end"], dates["calibration_end"]
    times = read_timestamps(
        transactions[timestamp],
        what="transactions",
        column=timestamp,
        frame=transactions,
        allow_missing=True,
        wall_clock=True,
    )
    in_cohort = transactions[customer_id].isin(split.index).to_numpy() & (times <= end).to_numpy()
    log = pd.DataFrame(
        {
            "customer": transactions.loc[in_cohort, customer_id].to_numpy(),
            "tick": _ticks(times[in_cohort], unit),
        }
    ).drop_duplicates()
    first = log.groupby("customer", sort=False)["tick"].min()
    missing = ~split.index.isin(first.index)
    if missing.any():
        raise DataError(
            f"{int(missing.sum()):,} customers of the split have no transaction on or before "
            f"observation_end (first: {list(split.index[missing][:5])}); pass the transaction "
            "log the split was built from"
        )
    first = first.reindex(split.index)
    end_tick = int(_ticks(pd.Series([end]), unit)[0])
    calibration_tick = int(_ticks(pd.Series([calibration_end]), unit)[0])
    ages = (calibration_tick - first.to_numpy()) * ratio
    mismatch = np.abs(ages - split["T"].to_numpy(dtype=float)) > 0.5 * ratio + 1e-9
    if mismatch.any():
        i = int(np.flatnonzero(mismatch)[0])
        raise DataError(
            f"the customers' ages from the transactions in purchase_unit {unit!r} do not match "
            f"the split's T for {int(mismatch.sum()):,} customers (e.g. {split.index[i]!r}: "
            f"{ages[i]:.4g} vs T = {split['T'].iloc[i]:.4g} {freq!r} periods); pass the "
            "purchase_unit the split was built with (e.g. purchase_unit='D' when daily ages "
            "were rescaled to weeks)"
        )
    origin = int(first.min())
    per = 1.0 / ratio  # ticks per period
    n_periods = math.floor((end_tick - origin) * ratio + 1e-9) + 1
    calibration_periods = math.floor((calibration_tick - origin) * ratio + 1e-9) + 1

    # actual: repeat purchase ticks (after the customer's first) counted by period
    first_tick = log["customer"].map(first).to_numpy()
    repeat_ticks = log["tick"].to_numpy()[log["tick"].to_numpy() > first_tick]
    period_of = np.floor((repeat_ticks - origin) * ratio + 1e-9).astype(np.int64) + 1
    actual = np.bincount(period_of, minlength=n_periods + 1)[1:].astype(float)

    # predicted: sum over customers of E[X(age at the end of each period)]
    periods = np.arange(1, n_periods + 1)
    last_tick = np.minimum(origin + np.ceil(periods * per - 1e-9) - 1, end_tick)
    if getattr(model, "_customer_paths", False):  # each customer along their own path
        age = np.clip(last_tick[:, None] - first.to_numpy()[None, :], 0, None) * ratio
        cumulative = np.asarray(model.expected_purchases_new_customer(age, split)).sum(axis=1)
    else:
        first_values, first_code = np.unique(first.to_numpy(), return_inverse=True)
        age = np.clip(last_tick[:, None] - first_values[None, :], 0, None) * ratio
        unique_ages, where = np.unique(age, return_inverse=True)
        expected, profile = _new_customer_expectations(model, unique_ages, split, customers)
        counts = np.zeros((len(first_values), expected.shape[1]))  # customers by (first, profile)
        np.add.at(counts, (first_code.ravel(), profile), 1.0)
        cumulative = (expected[where.reshape(age.shape)] * counts[None, :, :]).sum(axis=(1, 2))

    period_end = [_tick_end(int(t), unit) for t in last_tick]
    table = pd.DataFrame(
        {
            "period_end": period_end,
            "actual": actual,
            "predicted": np.diff(cumulative, prepend=0.0),
            "actual_cumulative": np.cumsum(actual),
            "predicted_cumulative": cumulative,
            "holdout": periods > calibration_periods,
        },
        index=pd.Index(periods, name="period"),
    )
    table.attrs.update(
        {
            "freq": freq,
            "purchase_unit": unit,
            "calibration_periods": calibration_periods,
            "n_customers": len(split),
            "model": _model_name(model),
        }
    )
    return table


# ---------------------------------------------------------------------------------------------
# Conditional expectations
# ---------------------------------------------------------------------------------------------
def _new_customer_expectations(
    model: Any, ages: np.ndarray, split: pd.DataFrame, customers: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """``E[X(age)]`` of a new customer at each of ``ages``, shape ``(len(ages), n_profiles)``,
    and each split customer's profile: one profile without covariates; with them, the
    distinct covariate profiles of the split's customers (columns of ``split`` or
    ``customers``)."""
    if not has_covariates(model):  # customers, if given, are not needed
        expected = np.asarray(model.expected_purchases_new_customer(ages), dtype=float)
        return expected.reshape(-1, 1), np.zeros(len(split), dtype=np.int64)
    frame = with_customer_columns(split, customers, what="split")
    profiles, codes = covariate_profiles(
        frame, model.covariates_.covariates, what="split", given=customers is not None
    )
    try:
        expected = np.stack(
            [
                model.expected_purchases_new_customer(float(a), customers=profiles).to_numpy()
                for a in ages
            ]
        )
    except TypeError as error:
        raise DataError(
            f"the {_model_name(model)} with covariates has no expected purchases for new "
            "customers by covariate profile, which the tracking plot needs; track the model "
            "without covariates (BG/NBD and MBG/NBD with covariates have them)"
        ) from error
    return expected.astype(float), codes


@validate_params(
    {
        "by": Options(("frequency", "recency")),
        "max_bin": Interval(Integral, 1, None),
        "bins": Interval(Integral, 1, None),
    }
)
def conditional_expectations(
    model: Any,
    split: pd.DataFrame,
    *,
    by: str = "frequency",
    max_bin: int = 7,
    bins: int = 10,
    customers: pd.DataFrame | None = None,
    freq: str | None = None,
) -> pd.DataFrame:
    """Mean holdout purchases per calibration group, actual vs the model's prediction.

    The prediction for each customer is ``expected_purchases(split, duration_holdout)``, the
    conditional expectation given their calibration history (FHL 2005, eq. 10 for BG/NBD);
    averaging it within groups of calibration frequency gives FHL's figure 4.

    Parameters
    ----------
    model : fitted model
        Fitted on the split's calibration columns (same unit).
    split : DataFrame
        From :func:`custval.calibration_holdout_split`.
    by : {"frequency", "recency"}, default "frequency"
        Group by calibration frequency (``0, 1, ..., max_bin - 1`` and ``"max_bin+"``) or by
        recency (``bins`` equal-width groups over ``[0, max T]``).
    max_bin : int, default 7
        Frequencies of ``max_bin`` and more form the last group ("7+").
    bins : int, default 10
        Number of recency groups.
    customers : DataFrame, optional
        For a model with covariates: the customers' covariates, indexed by customer_id
        (default: columns of ``split``).
    freq : str, optional
        The split's unit; defaults to ``split.attrs["freq"]`` (which pandas drops in ``merge``
        and ``join``: pass it here then). The explicit value wins.

    Returns
    -------
    DataFrame
        One row per group (index named ``by``, in order): ``n_customers``, ``actual``,
        ``predicted`` (mean holdout purchases per customer), ``difference`` (predicted -
        actual) and ``relative_error`` (difference / actual). ``attrs``: ``by``, ``duration``,
        ``freq``, ``model``.

    Examples
    --------
    >>> import pandas as pd, custval
    >>> split = pd.DataFrame({"frequency": [0, 1, 2, 9], "recency": [0, 20, 30, 38],
    ...     "T": [39, 39, 39, 39], "frequency_holdout": [0, 1, 1, 6],
    ...     "duration_holdout": 39.0})
    >>> split.attrs["freq"] = "W"
    >>> model = custval.BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426,
    ...                                          freq="W")
    >>> conditional_expectations(model, split).index.tolist()
    ['0', '1', '2', '7+']
    """
    split = with_customer_columns(split, customers, what="split")
    predicted, actual = _holdout_predictions(model, split, freq)
    if by == "frequency":
        x = split["frequency"].to_numpy(dtype=float)
        group = np.minimum(x, max_bin).astype(np.int64)
        labels = [str(i) for i in range(max_bin)] + [f"{max_bin}+"]
    else:
        edges = np.linspace(0.0, float(split["T"].max()), bins + 1)
        group, labels = _equal_width_bins(split["recency"].to_numpy(dtype=float), edges, ".4g")
    counts, (mean_actual, mean_predicted) = _group_means(group, len(labels), actual, predicted)
    keep = counts > 0
    index = pd.Index(np.asarray(labels, dtype=object)[keep], name=by)
    table = pd.DataFrame(
        {
            "n_customers": counts[keep].astype(np.int64),
            "actual": mean_actual[keep],
            "predicted": mean_predicted[keep],
        },
        index=index,
    )
    table["difference"] = table["predicted"] - table["actual"]
    with np.errstate(invalid="ignore", divide="ignore"):
        table["relative_error"] = table["difference"] / table["actual"].where(table["actual"] != 0)
    table.attrs.update(
        {
            "by": by,
            "duration": _holdout_duration(split),
            "freq": summary_freq(split, freq),
            "model": _model_name(model),
        }
    )
    return table


# ---------------------------------------------------------------------------------------------
# Per-customer metrics
# ---------------------------------------------------------------------------------------------
def error_metrics(model: Any, split: pd.DataFrame, *, freq: str | None = None) -> pd.Series:
    """Per-customer errors of predicted holdout purchases.

    Parameters
    ----------
    model : fitted model
        Fitted on the split's calibration columns.
    split : DataFrame
        From :func:`custval.calibration_holdout_split`.
    freq : str, optional
        The split's unit; defaults to ``split.attrs["freq"]`` (which pandas drops in ``merge``
        and ``join``: pass it here then). The explicit value wins.

    Returns
    -------
    Series
        ``n_customers``, ``actual_mean``, ``predicted_mean``, ``mae`` (mean absolute error),
        ``rmse`` (root mean squared error), ``bias`` (mean of predicted - actual: positive
        means over-prediction), ``msle`` (mean squared error of ``log1p``), ``actual_total``,
        ``predicted_total`` and ``total_error`` ((predicted - actual) / actual, in total).
        Named after the model.

    Examples
    --------
    >>> import pandas as pd, custval
    >>> split = pd.DataFrame({"frequency": [0, 1, 2], "recency": [0, 20, 30], "T": [39] * 3,
    ...                       "frequency_holdout": [0, 1, 1], "duration_holdout": 39.0})
    >>> split.attrs["freq"] = "W"
    >>> model = custval.BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426,
    ...                                          freq="W")
    >>> round(float(error_metrics(model, split)["mae"]), 3)
    0.278
    """
    predicted, actual = _holdout_predictions(model, split, freq)
    error = predicted - actual
    total = float(actual.sum())
    return pd.Series(
        {
            "n_customers": float(len(actual)),
            "actual_mean": float(actual.mean()),
            "predicted_mean": float(predicted.mean()),
            "mae": float(np.mean(np.abs(error))),
            "rmse": float(np.sqrt(np.mean(error**2))),
            "bias": float(np.mean(error)),
            "msle": float(np.mean((np.log1p(predicted) - np.log1p(actual)) ** 2)),
            "actual_total": total,
            "predicted_total": float(predicted.sum()),
            "total_error": float(predicted.sum() - total) / total if total > 0 else math.nan,
        },
        name=_model_name(model),
    )


def _normalized_gini(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Gini of ``actual`` ordered by ``predicted`` over the Gini of the perfect order."""

    def gini(key: np.ndarray) -> float:
        _, values = _tie_averaged(key, actual)
        total = values.sum()
        if total <= 0:
            return math.nan
        n = len(values)
        return float(np.cumsum(values).sum() / total / n - (n + 1) / (2 * n))

    best = gini(actual)
    return gini(predicted) / best if best and math.isfinite(best) else math.nan


def lift_by_decile(
    model: Any, split: pd.DataFrame, *, spend_model: Any = None, freq: str | None = None
) -> pd.DataFrame:
    """Actual holdout purchases (or spend) in each decile of the model's prediction.

    Customers are ranked by predicted holdout purchases (with ``spend_model``: predicted
    purchases times expected spend), decile 1 holding the top 10%. Tied predictions share
    their actual outcome evenly (the metric does not depend on the order of ties).

    Parameters
    ----------
    model : fitted model
        Fitted on the split's calibration columns.
    split : DataFrame
        From :func:`custval.calibration_holdout_split`.
    spend_model : fitted spend model, optional
        Rank and measure by value (``frequency_holdout * monetary_value_holdout``).
    freq : str, optional
        The split's unit; defaults to ``split.attrs["freq"]`` (which pandas drops in ``merge``
        and ``join``: pass it here then). The explicit value wins.

    Returns
    -------
    DataFrame
        Indexed by ``decile`` 1-10: ``n_customers``, ``predicted_mean``, ``actual_mean``,
        ``actual_share`` (of the total), ``cumulative_share`` and ``lift`` (decile mean over
        overall mean).

    Examples
    --------
    >>> import numpy as np, pandas as pd, custval
    >>> x = np.arange(20) % 5
    >>> split = pd.DataFrame({"frequency": x, "recency": np.where(x > 0, 30, 0), "T": 39,
    ...                       "frequency_holdout": x // 2, "duration_holdout": 39.0})
    >>> split.attrs["freq"] = "W"
    >>> model = custval.BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426,
    ...                                          freq="W")
    >>> float(lift_by_decile(model, split)["lift"].iloc[0])
    2.5
    """
    predicted, actual, _ = _value_predictions(model, split, spend_model, freq)
    order, averaged = _tie_averaged(predicted, actual)
    n = len(actual)
    decile = (np.arange(n) * 10) // n + 1
    total = averaged.sum()
    frame = pd.DataFrame({"decile": decile, "predicted": predicted[order], "actual": averaged})
    grouped = frame.groupby("decile")
    table = pd.DataFrame(
        {
            "n_customers": grouped.size(),
            "predicted_mean": grouped["predicted"].mean(),
            "actual_mean": grouped["actual"].mean(),
        }
    )
    table["actual_share"] = grouped["actual"].sum() / total if total > 0 else np.nan
    table["cumulative_share"] = table["actual_share"].cumsum()
    mean = averaged.mean()
    table["lift"] = table["actual_mean"] / mean if mean > 0 else np.nan
    return table


def ranking_metrics(
    model: Any, split: pd.DataFrame, *, spend_model: Any = None, freq: str | None = None
) -> pd.Series:
    """How well the model's ranking of customers matches their holdout behaviour.

    Parameters
    ----------
    model : fitted model
        Fitted on the split's calibration columns.
    split : DataFrame
        From :func:`custval.calibration_holdout_split`.
    spend_model : fitted spend model, optional
        Rank by predicted value and compare with holdout spend instead of purchases.
    freq : str, optional
        The split's unit; defaults to ``split.attrs["freq"]`` (which pandas drops in ``merge``
        and ``join``: pass it here then). The explicit value wins.

    Returns
    -------
    Series
        ``spearman`` (rank correlation of predicted and actual, ties averaged),
        ``top_decile_capture`` (share of the actual total in the predicted top 10%),
        ``top_decile_lift`` (that share over 10%) and ``normalized_gini`` (Gini of the actual
        values ordered by prediction over that of the perfect order: 1 is a perfect ranking,
        0 a random one). Named after the model.

    Examples
    --------
    >>> import numpy as np, pandas as pd, custval
    >>> x = np.arange(20) % 5
    >>> split = pd.DataFrame({"frequency": x, "recency": np.where(x > 0, 30, 0), "T": 39,
    ...                       "frequency_holdout": x // 2, "duration_holdout": 39.0})
    >>> split.attrs["freq"] = "W"
    >>> model = custval.BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426,
    ...                                          freq="W")
    >>> round(float(ranking_metrics(model, split)["normalized_gini"]), 3)
    1.0
    """
    predicted, actual, _ = _value_predictions(model, split, spend_model, freq)
    deciles = lift_by_decile(model, split, spend_model=spend_model, freq=freq)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = stats.spearmanr(predicted, actual).statistic
    capture = float(deciles["actual_share"].iloc[0])
    top_share = deciles["n_customers"].iloc[0] / deciles["n_customers"].sum()
    return pd.Series(
        {
            "spearman": float(rho),
            "top_decile_capture": capture,
            "top_decile_lift": capture / top_share,
            "normalized_gini": _normalized_gini(predicted, actual),
        },
        name=_model_name(model),
    )


def _alive_data(
    model: Any, split: pd.DataFrame, freq: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    freq = _check_split(split, freq=freq)
    _check_model_unit(model, freq)
    if not hasattr(model, "probability_alive"):
        raise DataError(f"the {_model_name(model)} has no probability_alive(summary) method")
    p_alive = model.probability_alive(split).to_numpy(dtype=float)
    active = (split["frequency_holdout"].to_numpy(dtype=float) > 0).astype(float)
    return p_alive, active


def alive_metrics(model: Any, split: pd.DataFrame, *, freq: str | None = None) -> pd.Series:
    """P(alive) at the end of calibration against activity in the holdout.

    Activity (at least one holdout purchase) is the observable proxy of being alive: an alive
    customer may still not buy in a short holdout, so the share active sits below the mean
    P(alive) even for a well-calibrated model; the ranking (ROC AUC) is the cleaner measure.

    Parameters
    ----------
    model : fitted model
        With ``probability_alive(summary)``, fitted on the split's calibration columns.
    split : DataFrame
        From :func:`custval.calibration_holdout_split`.
    freq : str, optional
        The split's unit; defaults to ``split.attrs["freq"]`` (which pandas drops in ``merge``
        and ``join``: pass it here then). The explicit value wins.

    Returns
    -------
    Series
        ``roc_auc`` (P(alive) as a score for holdout activity; NaN when everyone or no one is
        active), ``brier`` (mean squared difference of P(alive) and activity),
        ``mean_p_alive``, ``share_active`` and ``n_customers``. Named after the model.

    Examples
    --------
    >>> import pandas as pd, custval
    >>> split = pd.DataFrame({"frequency": [0, 3, 3], "recency": [0, 5, 38], "T": [39] * 3,
    ...                       "frequency_holdout": [0, 0, 2], "duration_holdout": 39.0})
    >>> split.attrs["freq"] = "W"
    >>> model = custval.BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426,
    ...                                          freq="W")
    >>> round(float(alive_metrics(model, split)["share_active"]), 3)
    0.333
    """
    p_alive, active = _alive_data(model, split, freq)
    auc = float(roc_auc_score(active, p_alive)) if 0 < active.sum() < len(active) else math.nan
    return pd.Series(
        {
            "roc_auc": auc,
            "brier": float(np.mean((p_alive - active) ** 2)),
            "mean_p_alive": float(p_alive.mean()),
            "share_active": float(active.mean()),
            "n_customers": float(len(active)),
        },
        name=_model_name(model),
    )


@validate_params({"bins": Interval(Integral, 1, None)})
def alive_calibration(
    model: Any, split: pd.DataFrame, *, bins: int = 10, freq: str | None = None
) -> pd.DataFrame:
    """Share of customers active in the holdout within bins of P(alive).

    Parameters
    ----------
    model : fitted model
        With ``probability_alive(summary)``, fitted on the split's calibration columns.
    split : DataFrame
        From :func:`custval.calibration_holdout_split`.
    bins : int, default 10
        Equal-width bins of P(alive) over ``[0, 1]``; empty bins are left out.
    freq : str, optional
        The split's unit; defaults to ``split.attrs["freq"]`` (which pandas drops in ``merge``
        and ``join``: pass it here then). The explicit value wins.

    Returns
    -------
    DataFrame
        One row per bin (index ``p_alive_bin``, e.g. ``"[0.9, 1]"``): ``n_customers``,
        ``mean_p_alive`` and ``share_active``. ``attrs`` hold the :func:`alive_metrics`
        (``roc_auc``, ``brier``, ...), ``duration`` and ``model``.

    Examples
    --------
    >>> import pandas as pd, custval
    >>> split = pd.DataFrame({"frequency": [0, 3, 3], "recency": [0, 5, 38], "T": [39] * 3,
    ...                       "frequency_holdout": [0, 0, 2], "duration_holdout": 39.0})
    >>> split.attrs["freq"] = "W"
    >>> model = custval.BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426,
    ...                                          freq="W")
    >>> alive_calibration(model, split, bins=2)["n_customers"].tolist()
    [1, 2]
    """
    p_alive, active = _alive_data(model, split, freq)
    group, labels = _equal_width_bins(p_alive, np.linspace(0.0, 1.0, bins + 1), ".3g")
    counts, (mean_p, share) = _group_means(group, bins, p_alive, active)
    keep = counts > 0
    table = pd.DataFrame(
        {
            "n_customers": counts[keep].astype(np.int64),
            "mean_p_alive": mean_p[keep],
            "share_active": share[keep],
        },
        index=pd.Index(np.asarray(labels, dtype=object)[keep], name="p_alive_bin"),
    )
    metrics = alive_metrics(model, split, freq=freq)
    table.attrs.update({k: float(v) for k, v in metrics.items()})
    table.attrs["duration"] = _holdout_duration(split)
    table.attrs["freq"] = summary_freq(split, freq)
    table.attrs["model"] = _model_name(model)
    return table


# ---------------------------------------------------------------------------------------------
# Model comparison
# ---------------------------------------------------------------------------------------------
@validate_params(
    {
        "metric": Options(
            sorted(_SMALLER_IS_BETTER), fix="the metric names a column of the comparison"
        )
    }
)
def compare_models(
    models: Mapping[str, Any],
    split: pd.DataFrame,
    *,
    metric: str = "rmse",
    spend_model: Any = None,
    customers: pd.DataFrame | None = None,
    freq: str | None = None,
) -> pd.DataFrame:
    """One table over several fitted models: fit statistics and holdout metrics, best first.

    Models with covariates take part like the others: their predictions use each customer's
    covariates (columns of ``split`` or of ``customers``) and ``n_params`` counts their
    coefficients; a regularity model whose ``k`` was chosen by likelihood counts ``k`` too.

    Parameters
    ----------
    models : mapping of str to fitted model
        Display name to model, each fitted on the split's calibration columns.
    split : DataFrame
        From :func:`custval.calibration_holdout_split`.
    metric : str, default "rmse"
        Column to sort by: ``aic``, ``bic``, ``log_likelihood``, ``mae``, ``rmse``, ``msle``,
        ``bias`` and ``total_error`` (by absolute value), ``spearman``,
        ``top_decile_capture``, ``top_decile_lift``, ``normalized_gini``, ``roc_auc`` or
        ``brier``; each in its own direction (smaller errors, larger likelihood and AUC first).
    spend_model : fitted spend model, optional
        Passed to :func:`ranking_metrics` (rank by value instead of purchases).
    customers : DataFrame, optional
        The customers' covariates, indexed by customer_id, for models fitted with covariates
        (default: the covariate columns are columns of ``split``).
    freq : str, optional
        The split's unit; defaults to ``split.attrs["freq"]`` (which pandas drops in ``merge``
        and ``join``: pass it here then). The explicit value wins.

    Returns
    -------
    DataFrame
        One row per model (index ``model``), sorted best first by ``metric``: ``n_params``
        (the estimated parameters: AIC's and BIC's ``k``), ``n_customers``,
        ``log_likelihood``, ``aic``, ``bic``, the :func:`error_metrics`
        (``mae``, ``rmse``, ``bias``, ``msle``, ``total_error``), the
        :func:`ranking_metrics` and the :func:`alive_metrics` (``roc_auc``, ``brier``).
        ``attrs``: ``best_model``, ``metric``, ``smaller_is_better``.

    Warns
    -----
    CustvalWarning
        When the models were fitted on different numbers of customers (their likelihoods,
        AIC and BIC are then not comparable).

    Examples
    --------
    >>> import pandas as pd, custval
    >>> split = pd.DataFrame({"frequency": [0, 1, 2, 5], "recency": [0, 20, 30, 38],
    ...     "T": [39] * 4, "frequency_holdout": [0, 1, 1, 4], "duration_holdout": 39.0})
    >>> split.attrs["freq"] = "W"
    >>> a = custval.BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, freq="W")
    >>> b = custval.BetaGeoModel.from_params(r=0.5, alpha=4.414, a=0.793, b=2.426, freq="W")
    >>> table = compare_models({"published": a, "doubled r": b}, split, metric="mae")
    >>> table.attrs["best_model"]
    'published'
    """
    if not isinstance(models, Mapping) or not models:
        raise DataError(
            "models must be a non-empty dict of name to fitted model, e.g. "
            "{'BG/NBD': bgnbd, 'Pareto/NBD': pnbd}"
        )
    split = with_customer_columns(split, customers, what="split")
    rows = {}
    for name, model in models.items():
        errors = error_metrics(model, split, freq=freq)
        ranking = ranking_metrics(model, split, spend_model=spend_model, freq=freq)
        try:
            alive = alive_metrics(model, split, freq=freq)
        except DataError:
            alive = pd.Series({"roc_auc": math.nan, "brier": math.nan})
        n_params = _n_estimated(model)
        rows[str(name)] = {
            "n_params": n_params,
            "n_customers": float(getattr(model, "n_customers_", math.nan)),
            "log_likelihood": float(getattr(model, "log_likelihood_", math.nan)),
            "aic": _safe(lambda m=model: m.aic),
            "bic": _safe(lambda m=model: m.bic),
            "mae": errors["mae"],
            "rmse": errors["rmse"],
            "bias": errors["bias"],
            "msle": errors["msle"],
            "total_error": errors["total_error"],
            "spearman": ranking["spearman"],
            "top_decile_capture": ranking["top_decile_capture"],
            "top_decile_lift": ranking["top_decile_lift"],
            "normalized_gini": ranking["normalized_gini"],
            "roc_auc": alive["roc_auc"],
            "brier": alive["brier"],
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    fitted_on = table["n_customers"].dropna().unique()
    if len(fitted_on) > 1:
        warnings.warn(
            "the models were fitted on different numbers of customers "
            f"({sorted(fitted_on.tolist())}); their log-likelihood, AIC and BIC are not "
            "comparable, only the holdout metrics are",
            CustvalWarning,
            stacklevel=2,
        )
    smaller = _SMALLER_IS_BETTER[metric]
    key = table[metric].abs() if metric in _BY_ABSOLUTE else table[metric]
    order = key.sort_values(ascending=smaller, na_position="last", kind="stable").index
    table = table.loc[order]
    table.attrs.update(
        {
            "best_model": str(table.index[0]),
            "metric": metric,
            "smaller_is_better": smaller,
            "freq": summary_freq(split, freq),
        }
    )
    return table


def _n_estimated(model: Any) -> int:
    """Estimated parameters: ``params_`` (covariate coefficients included) plus ``k`` for a
    regularity model that chose it by likelihood (``k_selected_``)."""
    return len(model.params_) + int(bool(getattr(model, "k_selected_", False)))


def _safe(compute: Any) -> float:
    try:
        value = float(compute())
    except (AttributeError, TypeError, ValueError):
        return math.nan
    return value
