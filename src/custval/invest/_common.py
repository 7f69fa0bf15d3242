"""Shared checks of the invest package: value basis and margin, churn probability, per-customer
inputs given as a number, a column or a Series."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from custval._log import read_timestamps
from custval._validation import (
    OPEN_PROBABILITY,
    Interval,
    align_by_customer,
    check_margin,
    check_margins,
    check_param,
    refuse_rows,
    require_columns,
    require_numeric,
)
from custval.errors import DataError

Z95 = 1.959963984540054

#: Special value of ``churn``: the probability that the customer is already lost, from the model.
ONE_MINUS_P_ALIVE = "1 - p_alive"


def check_value_table(value_table: pd.DataFrame, columns: list[str]) -> None:
    """Check that ``value_table`` is a DataFrame indexed by customer with ``columns``."""
    require_columns(
        value_table,
        columns,
        what="value table",
        hint="build it with custval.customer_value_table(...)",
    )
    if not value_table.index.is_unique:
        dup = value_table.index.duplicated()
        raise DataError(
            f"value table index (customer_id) has {int(dup.sum()):,} duplicated labels "
            f"(first: {list(value_table.index[dup][:5])}); keep one row per customer"
        )


#: the uncertainty arguments shared by the effect estimators and the targeting built on them
UNCERTAINTY_CONSTRAINTS = {"n_bootstrap": Interval(Integral, 0, None), "alpha": OPEN_PROBABILITY}


def check_fraction(name: str, value: float, *, low_open: bool = False) -> float:
    """Return ``value`` as a float after checking it lies in [0, 1] (or (0, 1])."""
    return float(check_param(name, value, Interval(Real, 0, 1, closed=_FRACTION[low_open])))


_FRACTION = {True: "right", False: "both"}


def per_customer(
    spec: Any,
    table: pd.DataFrame,
    *,
    name: str,
    fraction: bool = False,
    nonnegative: bool = False,
) -> pd.Series:
    """Turn a number, a column name of ``table`` or a Series by customer into a Series.

    The Series is aligned on ``table.index``; customers it lacks are refused with their ids.
    """
    if isinstance(spec, str):
        require_columns(table, [spec], what="value table")
        require_numeric(table, [spec], what="value table")
        series = table[spec].astype(float)
    elif isinstance(spec, pd.Series):
        series = align_by_customer(spec, table, name=name, what="value table").astype(float)
        series.name = name
    elif isinstance(spec, int | float | np.number) and not isinstance(spec, bool):
        series = pd.Series(float(spec), index=table.index, name=name)
    else:
        raise DataError(
            f"{name} must be a number, a column name of the value table or a pandas Series "
            f"indexed by customer_id, got {type(spec).__name__}"
        )
    values = series.to_numpy()
    frame = series.to_frame(name)
    bad = ~np.isfinite(values)
    refuse_rows(frame, bad, name, "missing or non-numeric values", "give a number per customer")
    if fraction:
        bad = (values < 0) | (values > 1)
        refuse_rows(frame, bad, name, "values outside [0, 1]", "use shares 0..1")
    if nonnegative:
        bad = values < 0
        refuse_rows(frame, bad, name, "negative values", f"{name} must be >= 0")
    return series.rename(name)


def churn_probability(value_table: pd.DataFrame, churn: str | pd.Series) -> tuple[pd.Series, str]:
    """The probability of losing each customer, and a label saying where it came from."""
    if isinstance(churn, pd.Series):
        label = f"Series {churn.name!r}" if churn.name is not None else "Series"
        return per_customer(churn, value_table, name="churn_probability", fraction=True), label
    if churn == ONE_MINUS_P_ALIVE:
        require_columns(value_table, ["p_alive"], what="value table")
        p_alive = per_customer("p_alive", value_table, name="p_alive", fraction=True)
        return (1.0 - p_alive).rename("churn_probability"), "1 - p_alive (value table)"
    if not isinstance(churn, str):
        raise DataError(
            f"churn must be a column name, '1 - p_alive' or a Series of probabilities by "
            f"customer_id, got {type(churn).__name__}"
        )
    if churn not in value_table.columns:
        raise DataError(
            f"value table has no column {churn!r}; pass the churn scores as "
            "churn=custval.churn_scores(...) (a Series by customer_id), or use "
            "churn='1 - p_alive' (the model's probability that the customer is lost)"
        )
    return (
        per_customer(churn, value_table, name="churn_probability", fraction=True),
        f"column {churn!r}",
    )


def table_basis(value_table: pd.DataFrame, value_basis: str | None) -> str | None:
    """The money basis of ``value_table``: the explicit ``value_basis`` when given, else the
    table's ``attrs["value_basis"]`` (None when neither says)."""
    if value_basis is not None:
        if value_basis not in ("contribution", "revenue"):
            raise DataError(f"value_basis must be 'contribution' or 'revenue', got {value_basis!r}")
        return value_basis
    return value_table.attrs.get("value_basis")


def contribution_value(
    value_table: pd.DataFrame,
    value: str,
    margin: float | str | None,
    value_basis: str | None = None,
) -> tuple[pd.Series, dict[str, Any]]:
    """Per-customer value as contribution, applying ``margin`` only when the table is revenue.

    The basis is ``value_basis`` when given, else the table's ``attrs["value_basis"]``. A
    contribution table already carries the margin, so a second margin is refused (it would count
    the margin twice); a revenue table needs one.
    """
    check_value_table(value_table, [value])
    require_numeric(value_table, [value], what="value table")
    basis = table_basis(value_table, value_basis)
    raw = value_table[value].astype(float)
    if basis == "contribution":
        if margin is not None:
            raise DataError(
                f"value table column {value!r} is already contribution "
                f"(attrs['value_basis'] == 'contribution', margin "
                f"{value_table.attrs.get('margin', 'unknown')!r} applied when it was built); "
                "margin=... would count the margin twice. Leave margin=None"
            )
        info = {
            "value_column": value,
            "value_basis": "contribution",
            "margin": value_table.attrs.get("margin"),
            "margin_applied_here": None,
        }
        return raw.rename("value_at_stake"), info
    if basis == "revenue":
        if margin is None:
            raise DataError(
                f"value table column {value!r} is revenue (attrs['value_basis'] == 'revenue'); "
                "pass margin= (a fraction such as 0.3, or a column name of the value table) "
                "so the value at stake is contribution, not revenue"
            )
        if isinstance(margin, str):
            require_columns(value_table, [margin], what="value table")
            m = pd.Series(
                check_margins(value_table, margin, what="value table"), index=value_table.index
            )
            shown: Any = f"column {margin!r}"
        else:
            m = check_margin(margin)
            shown = m
        info = {
            "value_column": value,
            "value_basis": "revenue",
            "margin": shown,
            "margin_applied_here": shown,
        }
        return (raw * m).rename("value_at_stake"), info
    if basis is None:
        raise DataError(
            "the value table does not say whether its values are revenue or contribution "
            "(attrs['value_basis'] is missing; pandas drops attrs in join and merge); pass "
            "value_basis='contribution' or 'revenue' (customer_value_table's attrs say which), "
            "or pass churn scores as churn=scores instead of joining them"
        )
    raise DataError(
        f"value table attrs['value_basis'] is {basis!r}; expected 'contribution' or 'revenue'"
    )


def value_table_context(value_table: pd.DataFrame) -> dict[str, Any]:
    """The value table's own assumptions (horizon, discount rate, unit), for the output."""
    keys = ("freq", "horizon", "annual_discount_rate", "margin", "value_basis")
    return {f"value_table_{k}": value_table.attrs[k] for k in keys if k in value_table.attrs}


def percentile_interval(samples: np.ndarray, alpha: float, axis: int = 0) -> np.ndarray:
    """Percentile bootstrap interval (lower, upper) along ``axis``, ignoring NaNs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, said so
        return np.nanquantile(samples, [alpha / 2, 1 - alpha / 2], axis=axis)


def id_keys(values: pd.Index | pd.Series | np.ndarray) -> np.ndarray:
    """Customer ids as normalised text, to match tables that store them differently.

    Cleaned transaction logs hold ids as text ("17850"), while customer and campaign tables often
    hold integers (17850) or floats (17850.0); all three give the key "17850".
    """
    series = pd.Series(np.asarray(values, dtype=object))
    text = series.map(lambda v: "" if pd.isna(v) else str(v).strip())
    return text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True).to_numpy(dtype=object)


def read_dates(frame: pd.DataFrame, column: str, *, what: str) -> pd.Series:
    """``frame[column]`` as naive datetime64 (NaT kept), refusing values that are not dates.

    The column is read by :func:`custval._log.read_timestamps`, as the transaction log is.
    """
    require_columns(frame, [column], what=what)
    return read_timestamps(
        frame[column], what=what, column=column, frame=frame, allow_missing=True, wall_clock=True
    )
