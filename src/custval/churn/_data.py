"""Input handling shared by churn labels, features and the backtest.

A transaction log is validated once by :func:`custval._log.read_log` (the reader shared with rfm
and invest) and reduced to a lean, time-sorted frame with integer customer codes (:class:`_Log`),
so that features and labels at many cutoffs reuse the same work.

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

from custval._log import read_log, read_moment, read_timestamps
from custval._units import parse_duration
from custval._validation import require_numeric
from custval.errors import DataError

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
    """Validate a clean transaction log and build the lean :class:`_Log` (input untouched).

    The log is read once by :func:`custval._log.read_log` (the reader of rfm and invest);
    churn adds the return flag and sorts the rows by time.
    """
    log = read_log(
        transactions,
        optional=("quantity", "order_id", "product_code"),
        text_timestamps=False,
        compact_ids=False,
        hint=_HINT,
    )
    if "quantity" in log.columns:
        require_numeric(transactions, ["quantity"], what="transactions")
    if len(transactions) == 0:
        raise DataError("transactions is empty; churn needs at least one purchase")

    frame = pd.DataFrame(
        {
            "code": log.codes.astype(np.int64),
            "timestamp": log.times.astype("datetime64[ns]"),
            "amount": log.amount,
        }
    )
    is_return = log.amount < 0
    if "quantity" in log.columns:
        quantity = log.columns["quantity"].to_numpy(dtype=float)
        frame["quantity"] = quantity
        is_return |= quantity < 0
    frame["is_return"] = is_return
    for name in ("order_id", "product_code"):
        if name in log.columns:
            frame[name] = pd.factorize(log.columns[name])[0].astype(np.int64)
    order = np.argsort(frame["timestamp"].to_numpy(), kind="stable")
    frame = frame.take(order).reset_index(drop=True)
    times = frame["timestamp"]
    return _Log(frame=frame, customers=log.customers, start=times.iloc[0], end=times.iloc[-1])


def _datetimes(values: pd.Series, what: str, column: str) -> pd.Series:
    """``values`` (column ``column`` of ``what``) as tz-naive datetimes, NaT kept."""
    return read_timestamps(
        values, what=what, column=column, text=False, allow_missing=True, wall_clock=True
    )


def _timestamp(value: object, name: str) -> pd.Timestamp:
    """Read a cutoff-like argument as a tz-naive (wall-clock) Timestamp."""
    return read_moment(value, name, wall_clock=True)


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
