"""Shared input checks.

One place that formats "where and what" for error messages, so that every ``DataError`` reads
the same way: the column, how many rows, the first few row labels with their values, the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from custval.errors import DataError

_SHOW = 5


def describe_rows(
    frame_or_series: pd.DataFrame | pd.Series,
    mask: np.ndarray | pd.Series,
    column: str | None = None,
    *,
    show: int = _SHOW,
) -> str:
    """Describe the rows selected by ``mask``: "rows 4 ('x'), 17 ('y'), ...".

    Row labels are the frame's index labels; values are shown when ``column`` is given.
    """
    mask = np.asarray(mask, dtype=bool)
    labels = frame_or_series.index[mask][:show]
    if column is not None:
        source = (
            frame_or_series[column]
            if isinstance(frame_or_series, pd.DataFrame)
            else (frame_or_series)
        )
        values = source[mask].iloc[:show].tolist()
        parts = [f"{label} ({value!r})" for label, value in zip(labels, values, strict=True)]
    else:
        parts = [str(label) for label in labels]
    more = ", ..." if int(mask.sum()) > show else ""
    return "rows " + ", ".join(parts) + more


def bad_values_message(
    frame: pd.DataFrame, mask: np.ndarray | pd.Series, column: str, problem: str, fix: str
) -> str:
    """Build the standard message for ``count`` rows of ``column`` that have ``problem``.

    >>> import pandas as pd
    >>> f = pd.DataFrame({"amount": ["1", "x"]})
    >>> bad_values_message(f, f["amount"] == "x", "amount", "non-numeric values",
    ...                    "clean or drop them")
    "column 'amount' has 1 non-numeric values (rows 1 ('x')); clean or drop them"
    """
    count = int(np.asarray(mask, dtype=bool).sum())
    return (
        f"column {column!r} has {count:,} {problem} ({describe_rows(frame, mask, column)}); {fix}"
    )


def require_columns(
    frame: pd.DataFrame, columns: Iterable[str], *, what: str = "input", hint: str | None = None
) -> None:
    """Raise ``DataError`` if any of ``columns`` is missing, listing the columns present."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        present = ", ".join(repr(c) for c in frame.columns)
        msg = (
            f"{what} is missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"columns present: {present}"
        )
        if hint:
            msg += f". {hint}"
        raise DataError(msg)


def require_numeric(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    what: str = "input",
    nonnegative: bool = False,
    finite: bool = True,
) -> None:
    """Raise ``DataError`` unless ``columns`` are numeric (and finite / non-negative)."""
    for column in columns:
        series = frame[column]
        if not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)):
            numeric = pd.to_numeric(series, errors="coerce")
            mask = (numeric.isna() & series.notna()).to_numpy()
            if mask.any():
                raise DataError(
                    bad_values_message(
                        frame,
                        mask,
                        column,
                        "non-numeric values",
                        f"{what} column {column!r} must be numeric; convert or drop those rows",
                    )
                )
            raise DataError(
                f"{what} column {column!r} holds {series.dtype} values, not numbers; "
                f"convert it first, e.g. frame[{column!r}] = pd.to_numeric(frame[{column!r}])"
            )
        values = series.to_numpy(dtype=float)
        if finite:
            mask = ~np.isfinite(values)
            if mask.any():
                raise DataError(
                    bad_values_message(
                        frame,
                        mask,
                        column,
                        "missing or infinite values",
                        "fill or drop those rows before calling this function",
                    )
                )
        if nonnegative:
            mask = values < 0
            if mask.any():
                raise DataError(
                    bad_values_message(
                        frame, mask, column, "negative values", f"{column!r} must be >= 0"
                    )
                )


#: the one margin rule of custval (clv, invest, reports)
MARGIN_RULE = (
    "a margin is the fraction of revenue kept as contribution, in (0, 1]: 0.3 for a 30% "
    "margin, 1 when the amounts are already profit"
)


def check_margin(value: object, *, name: str = "margin") -> float:
    """Return one margin as a float after checking it lies in (0, 1].

    >>> check_margin(0.3)
    0.3
    >>> check_margin(30)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    custval.errors.DataError: margin must be a fraction of revenue in (0, 1], got 30; ...
    """
    number = None
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        number = float(value)
    if number is None or not (0.0 < number <= 1.0):
        raise DataError(
            f"{name} must be a fraction of revenue in (0, 1], got {value!r}; {MARGIN_RULE}"
        )
    return number


def check_margins(frame: pd.DataFrame, column: str, *, what: str = "input") -> np.ndarray:
    """Per-customer margins of ``frame[column]`` as floats, each in (0, 1].

    >>> import pandas as pd
    >>> check_margins(pd.DataFrame({"m": [0.2, 0.5]}), "m").tolist()
    [0.2, 0.5]
    """
    require_numeric(frame, [column], what=what)
    values = frame[column].to_numpy(dtype=float)
    bad = ~((values > 0) & (values <= 1))
    if bad.any():
        raise DataError(
            bad_values_message(frame, bad, column, "margins outside (0, 1]", MARGIN_RULE)
        )
    return values


def with_customer_columns(
    frame: pd.DataFrame, customers: pd.DataFrame | None, *, what: str = "summary"
) -> pd.DataFrame:
    """``frame`` (a summary or split) with the columns of ``customers`` it lacks, aligned by
    customer_id: how covariates given apart (``customers=``) reach models that read them from
    the summary. ``frame`` itself (not a copy) when ``customers`` is None."""
    if customers is None:
        return frame
    if not isinstance(customers, pd.DataFrame):
        raise DataError(
            f"customers must be a DataFrame of covariates indexed by customer_id, got "
            f"{type(customers).__name__}"
        )
    if not customers.index.is_unique:
        raise DataError("customers has duplicate index values; give one row per customer")
    missing = ~frame.index.isin(customers.index)
    if missing.any():
        raise DataError(
            f"{int(missing.sum()):,} customers of the {what} have no row in customers (e.g. "
            f"{list(frame.index[missing][:3])}); index customers by the {what}'s customer_id"
        )
    out = frame.copy()
    for column in customers.columns.difference(frame.columns, sort=False):
        out[column] = customers[column].reindex(frame.index).to_numpy()
    return out


def has_covariates(model: Any) -> bool:
    """A fitted model with covariates (its ``covariates_`` names the covariate columns)."""
    return getattr(model, "covariates_", None) is not None


def covariate_profiles(
    frame: pd.DataFrame, names: Sequence[str], *, what: str = "summary", given: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct rows of the covariate columns ``names`` of ``frame`` (text columns as
    categoricals, which a model re-encodes cheaply) and each row's position among them.

    ``given``: whether the caller passed ``customers=`` (for the message when a column is
    missing)."""
    names = list(dict.fromkeys(names))
    absent = [n for n in names if n not in frame.columns]
    if absent:
        raise DataError(
            f"covariate column(s) {absent} are not in the {what}"
            f"{' or customers' if given else ''}; pass customers=<frame indexed by "
            f"customer_id> with them, or add them to the {what}"
        )
    table = frame[names]
    codes = table.groupby(names, sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(codes, return_index=True)[1]
    profiles = table.iloc[first].reset_index(drop=True)
    for name in names:
        column = profiles[name]
        if not pd.api.types.is_numeric_dtype(column) and not isinstance(
            column.dtype, pd.CategoricalDtype
        ):
            profiles[name] = pd.Categorical(column)
    return profiles, codes
