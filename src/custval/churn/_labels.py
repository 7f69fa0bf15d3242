"""Churn labels: non-contractual (no purchase within a horizon) and contractual (a churn flag or
an end date)."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from custval._validation import bad_values_message, refuse_rows, require_columns
from custval.churn._data import (
    _check_horizon,
    _datetimes,
    _Log,
    _prepare_log,
    _timedelta,
    _timestamp,
)
from custval.errors import DataError

__all__ = ["churn_labels", "contractual_churn_labels"]

_TRUE = frozenset({"yes", "y", "true", "t", "1", "churn", "churned"})
_FALSE = frozenset({"no", "n", "false", "f", "0"})


def churn_labels(
    transactions: pd.DataFrame,
    *,
    cutoff: str | pd.Timestamp,
    horizon: str = "90D",
    observation_end: str | pd.Timestamp | None = None,
) -> pd.Series:
    """Non-contractual churn: no purchase within ``horizon`` after ``cutoff``.

    A customer is labelled only if they made a purchase on or before the cutoff; they are
    *churned* (1) when they make no purchase in the window ``(cutoff, cutoff + horizon]``.

    Edge cases, all deliberate:

    * a purchase exactly at the cutoff belongs to the past (it makes the customer a customer at
      the cutoff, and does not count as a purchase within the horizon);
    * a purchase exactly at ``cutoff + horizon`` is within the horizon (the window is closed on
      the right);
    * customers first seen after the cutoff are not labelled (they are not in the index);
    * returns (negative ``amount`` or ``quantity``) are not purchases;
    * a date without a time, ``"2011-06-01"``, means midnight at the start of that day, so
      purchases later that day are after the cutoff.

    Parameters
    ----------
    transactions : DataFrame
        Clean log with ``customer_id``, ``timestamp`` (datetime) and ``amount``; optional
        ``quantity`` marks returns. Not modified.
    cutoff : str or Timestamp
        The moment the prediction is made.
    horizon : str, default "90D"
        Length of the label window, with a unit ("90D", "13W", "3M").
    observation_end : str or Timestamp, optional
        When the log ends; default its last timestamp. A window that runs past it is refused.

    Returns
    -------
    Series
        ``churned`` (int8, 1 = churned), indexed by ``customer_id``, sorted.

    Raises
    ------
    DataError
        If the window ``(cutoff, cutoff + horizon]`` runs past the end of the data, or the log is
        not usable.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import churn_labels
    >>> log = pd.DataFrame({
    ...     "customer_id": ["a", "a", "b", "c"],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-02-15", "2024-01-10", "2024-03-01"]),
    ...     "amount": [10.0, 20.0, 5.0, 8.0],
    ... })
    >>> churn_labels(log, cutoff="2024-01-31", horizon="30D").to_dict()
    {'a': 0, 'b': 1}
    """
    log = _prepare_log(transactions)
    return _labels_at(
        log,
        _timestamp(cutoff, "cutoff"),
        _timedelta(horizon, "horizon"),
        horizon,
        _end(log, observation_end),
    )


def _end(log: _Log, observation_end: object) -> pd.Timestamp:
    return log.end if observation_end is None else _timestamp(observation_end, "observation_end")


def _labels_at(
    log: _Log,
    cutoff: pd.Timestamp,
    horizon: pd.Timedelta,
    horizon_text: str,
    end: pd.Timestamp,
) -> pd.Series:
    """Labels at one cutoff on a prepared log (shared with the backtest)."""
    _check_horizon(cutoff, horizon, end, horizon_text)
    population = log.customers_at(cutoff)
    future = log.between(cutoff, cutoff + horizon)
    buyers = np.unique(future["code"].to_numpy()[~future["is_return"].to_numpy()])
    churned = (~np.isin(population, buyers)).astype(np.int8)
    index = pd.Index(log.customers[population], name="customer_id")
    return pd.Series(churned, index=index, name="churned")


def contractual_churn_labels(
    customers: pd.DataFrame,
    *,
    churn: str | None = None,
    end: str | None = None,
    start: str | None = None,
    cutoff: str | pd.Timestamp | None = None,
    horizon: str | None = None,
    customer_id: str = "customer_id",
    positive: Collection[object] | None = None,
) -> pd.Series:
    """Contractual churn labels from a subscription table, in the same form as
    :func:`churn_labels` so both settings share one evaluation.

    Two ways to say who churned:

    * ``churn="Churn"``: a column that already holds the outcome (Yes/No, True/False, 1/0), as
      in a telco snapshot. Every row is labelled.
    * ``end="end_date"`` with ``cutoff`` and ``horizon``: a customer active at the cutoff (started
      on or before it, when ``start`` is given, and not ended by it) has churned when the
      subscription ends within ``(cutoff, cutoff + horizon]``. A missing end means still active.
      Customers who ended on or before the cutoff, or started after it, are not labelled.

    Parameters
    ----------
    customers : DataFrame
        One row per customer; the id is the column ``customer_id`` (or the index, when it has
        that name). Not modified.
    churn : str, optional
        Column with the churn outcome.
    end, start : str, optional
        Datetime columns with the subscription's end and start.
    cutoff : str or Timestamp, optional
        Required with ``end``.
    horizon : str, optional
        Required with ``end``; a duration with unit ("90D", "3M").
    customer_id : str, default "customer_id"
        Name of the id column, e.g. ``"customerID"`` for the IBM telco table.
    positive : collection, optional
        Values of ``churn`` that mean churned; default yes/true/1 (case-insensitive).

    Returns
    -------
    Series
        ``churned`` (int8), indexed by ``customer_id``.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import contractual_churn_labels
    >>> table = pd.DataFrame({"customerID": ["x", "y"], "Churn": ["Yes", "No"]})
    >>> contractual_churn_labels(table, churn="Churn", customer_id="customerID").to_dict()
    {'x': 1, 'y': 0}
    """
    if (churn is None) == (end is None):
        raise DataError(
            "contractual_churn_labels needs exactly one of churn= (a column with the outcome) "
            "or end= (a column with the subscription's end date, with cutoff= and horizon=)"
        )
    ids = _customer_ids(customers, customer_id)
    if churn is not None:
        require_columns(customers, [churn], what="customers")
        values = customers[churn]
        flags = _flags(values, positive)
        bad = np.isnan(flags)
        refuse_rows(
            customers,
            bad,
            churn,
            "values that are neither churned nor retained",
            "use Yes/No, True/False or 1/0, or list the churned values in positive=",
        )
        return pd.Series(flags.astype(np.int8), index=ids, name="churned")

    if cutoff is None or horizon is None:
        raise DataError("end= needs cutoff= and horizon= (e.g. cutoff='2024-01-01', horizon='90D')")
    require_columns(customers, [end] + ([start] if start is not None else []), what="customers")
    ends, starts = (_datetimes(customers[c], "customers", c) for c in (end, start or end))
    when = _timestamp(cutoff, "cutoff")
    window = _timedelta(horizon, "horizon")
    active = ends.isna() | (ends > when)
    if start is not None:
        active &= starts <= when
    churned = (ends > when) & (ends <= when + window)
    mask = active.to_numpy()
    return pd.Series(churned.to_numpy()[mask].astype(np.int8), index=ids[mask], name="churned")


def _customer_ids(customers: pd.DataFrame, customer_id: str) -> pd.Index:
    if not isinstance(customers, pd.DataFrame):
        raise DataError(f"customers must be a pandas DataFrame, got {type(customers).__name__}")
    if customer_id in customers.columns:
        ids = pd.Index(customers[customer_id], name="customer_id")
    elif customers.index.name == customer_id:
        ids = customers.index.rename("customer_id")
    else:
        raise DataError(
            f"customers has no column {customer_id!r} (nor an index of that name); pass the "
            f"name of its id column as customer_id=, e.g. customer_id='customerID'"
        )
    if ids.has_duplicates:
        mask = ids.duplicated(keep=False)
        raise DataError(
            bad_values_message(
                pd.DataFrame({customer_id: ids}, index=customers.index),
                mask,
                customer_id,
                "duplicated ids",
                "keep one row per customer",
            )
        )
    return ids


def _flags(values: pd.Series, positive: Collection[object] | None) -> np.ndarray:
    """1.0 churned, 0.0 retained, NaN unreadable."""
    if positive is not None:
        out = values.isin(list(positive)).to_numpy(dtype=float)
        out[values.isna().to_numpy()] = np.nan
        return out
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float)
        return np.where(np.isin(numbers, [0.0, 1.0]), numbers, np.nan)
    text = values.astype("string").str.strip().str.lower()
    out = np.full(len(values), np.nan)
    out[text.isin(_TRUE).to_numpy(dtype=bool)] = 1.0
    out[text.isin(_FALSE).to_numpy(dtype=bool)] = 0.0
    return out
