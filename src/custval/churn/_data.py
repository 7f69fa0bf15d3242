"""Input handling shared by churn labels, features and the backtest.

A transaction log is validated once and reduced to a lean frame with integer customer codes
(:class:`_Log`), so that features and labels at many cutoffs reuse the same work.

Purchases and returns
---------------------
A row is a *return* when its ``amount`` is negative, or its ``quantity`` is negative when that
column is present; every other row (including zero amounts) is a *purchase*. Labels and the
customer population count purchases only: a customer who only returned goods before the cutoff
is not a customer at the cutoff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from custval._units import parse_duration
from custval._validation import bad_values_message, require_columns, require_numeric
from custval.errors import DataError

_REQUIRED = ("customer_id", "timestamp", "amount")
_HINT = (
    "Clean the log with custval.clean_transactions (or rename your columns to customer_id, "
    "timestamp, amount)"
)


@dataclass(frozen=True)
class _Log:
    """A validated transaction log, sorted by time, with integer customer codes.

    ``frame`` has columns ``code`` (int64 customer code), ``timestamp``, ``amount``, ``is_return``
    and, when present in the input, ``order_id``, ``quantity``, ``product_code``. ``customers``
    maps a code to the customer id (``customers[code]``).
    """

    frame: pd.DataFrame
    customers: pd.Index
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def has_orders(self) -> bool:
        return "order_id" in self.frame.columns

    @property
    def has_quantity(self) -> bool:
        return "quantity" in self.frame.columns

    @property
    def has_products(self) -> bool:
        return "product_code" in self.frame.columns

    def before(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        """Rows at or before ``cutoff`` (the past, as seen at the cutoff)."""
        stop = int(
            np.searchsorted(self.frame["timestamp"].to_numpy(), cutoff.to_datetime64(), "right")
        )
        return self.frame.iloc[:stop]

    def between(self, start: pd.Timestamp, stop: pd.Timestamp) -> pd.DataFrame:
        """Rows in ``(start, stop]``."""
        times = self.frame["timestamp"].to_numpy()
        lo = int(np.searchsorted(times, start.to_datetime64(), "right"))
        hi = int(np.searchsorted(times, stop.to_datetime64(), "right"))
        return self.frame.iloc[lo:hi]

    def customers_at(self, cutoff: pd.Timestamp) -> np.ndarray:
        """Sorted codes of the customers with a purchase at or before ``cutoff``."""
        past = self.before(cutoff)
        return np.unique(past["code"].to_numpy()[~past["is_return"].to_numpy()])


def _prepare_log(transactions: pd.DataFrame) -> _Log:
    """Validate a clean transaction log and build the lean :class:`_Log` (input untouched)."""
    require_columns(transactions, _REQUIRED, what="transactions", hint=_HINT)
    timestamps = _datetimes(
        transactions["timestamp"],
        "column 'timestamp'",
        "convert it with pd.to_datetime or clean the log with custval.clean_transactions",
    )
    missing = timestamps.isna().to_numpy()
    if missing.any():
        raise DataError(
            bad_values_message(
                transactions,
                missing,
                "timestamp",
                "missing values",
                "drop those rows or clean the log with custval.clean_transactions",
            )
        )
    missing = transactions["customer_id"].isna().to_numpy()
    if missing.any():
        raise DataError(
            bad_values_message(
                transactions,
                missing,
                "customer_id",
                "missing values",
                "a purchase without a customer cannot be followed over time; drop those rows",
            )
        )
    numeric = ["amount"] + (["quantity"] if "quantity" in transactions.columns else [])
    require_numeric(transactions, numeric, what="transactions")
    if len(transactions) == 0:
        raise DataError("transactions is empty; churn needs at least one purchase")

    codes, customers = pd.factorize(transactions["customer_id"], sort=True)
    frame = pd.DataFrame(
        {
            "code": codes.astype(np.int64),
            "timestamp": timestamps.to_numpy(dtype="datetime64[ns]"),
            "amount": transactions["amount"].to_numpy(dtype=float),
        }
    )
    is_return = frame["amount"].to_numpy() < 0
    if "quantity" in transactions.columns:
        quantity = transactions["quantity"].to_numpy(dtype=float)
        frame["quantity"] = quantity
        is_return |= quantity < 0
    frame["is_return"] = is_return
    if "order_id" in transactions.columns:
        frame["order_id"] = pd.factorize(transactions["order_id"])[0].astype(np.int64)
    if "product_code" in transactions.columns:
        frame["product_code"] = pd.factorize(transactions["product_code"])[0].astype(np.int64)
    order = np.argsort(frame["timestamp"].to_numpy(), kind="stable")
    frame = frame.take(order).reset_index(drop=True)
    times = frame["timestamp"]
    return _Log(frame=frame, customers=customers, start=times.iloc[0], end=times.iloc[-1])


def _datetimes(values: pd.Series, what: str, fix: str = "convert it with pd.to_datetime"):
    """``values`` as tz-naive datetimes, or a ``DataError`` naming ``what`` and the fix."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        raise DataError(f"{what} must hold datetimes, got dtype {values.dtype}; {fix}")
    return values.dt.tz_localize(None) if values.dt.tz is not None else values


def _timestamp(value: object, name: str) -> pd.Timestamp:
    """Read a cutoff-like argument as a tz-naive Timestamp."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise DataError(
            f"{name} must be a date or timestamp such as '2011-06-01', got {value!r}"
        ) from error
    if stamp is pd.NaT or pd.isna(stamp):
        raise DataError(f"{name} must be a date or timestamp such as '2011-06-01', got {value!r}")
    if stamp.tz is not None:
        stamp = stamp.tz_localize(None)
    return stamp


def _timedelta(duration: str, name: str) -> pd.Timedelta:
    """A duration with unit ("90D", "13W", "3M") as a Timedelta; refuses bare numbers."""
    days = parse_duration(duration, to="D")
    if not (days > 0 and math.isfinite(days)):
        raise DataError(
            f"{name} must be a positive, finite duration such as '90D', got {duration!r}"
        )
    return pd.Timedelta(days=days)


def _check_horizon(
    cutoff: pd.Timestamp, horizon: pd.Timedelta, end: pd.Timestamp, horizon_text: str
) -> None:
    """Refuse a label window that runs past the end of the observed data."""
    if cutoff + horizon > end:
        latest = end - horizon
        raise DataError(
            f"the horizon {horizon_text} after cutoff {cutoff} ends at {cutoff + horizon}, after "
            f"the data's end {end}, so churn cannot be observed for the whole horizon; use a "
            f"cutoff on or before {latest} or a shorter horizon (or pass observation_end if the "
            "log is known to run further than its last transaction)"
        )
