"""The transaction log shared by rfm, churn and invest, and the one timestamp reader.

A log is validated once by :func:`read_log` into a :class:`TransactionLog`: integer customer
codes, wall-clock ``datetime64`` timestamps (and the column's time zone), float amounts and the
optional source columns a caller asked for, as flat arrays with one entry per row. Every module
that takes a transaction log reads it through :func:`read_log`, every timestamp column through
:func:`read_timestamps` and every date-like argument (``observation_end``, ``calibration_end``,
``cutoff``) through :func:`read_moment`, so the same input gets the same error everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from custval._short_ids import short_string_codes
from custval._validation import refuse_rows, require_columns, require_numeric
from custval.errors import DataError

__all__ = ["TransactionLog", "read_amounts", "read_log", "read_moment", "read_timestamps"]

#: int64 ticks per second of the datetime64 units kept as they are (others are cast to ns).
TICKS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
# A compact integer id range (max - min) up to this many times the row count is used directly as
# the customer code (no hashing); wider ranges are factorized.
_COMPACT_ID_FACTOR = 4
_COMPACT_ID_SLACK = 1 << 20


@dataclass(frozen=True)
class TransactionLog:
    """A validated transaction log as flat arrays, one entry per row of the source frame.

    ``codes[i]`` is the customer of row ``i``: codes increase with the customer id when the ids
    can be sorted; ``ids(codes)`` turns codes back into ids. ``times`` are naive wall-clock
    ``datetime64`` values (unit s, ms, us or ns, as the column had them) and ``tz`` the column's
    time zone. ``columns`` holds the optional source columns that were asked for and present.
    """

    codes: np.ndarray
    n_codes: int
    times: np.ndarray
    tz: object
    amount: np.ndarray | None
    columns: dict[str, pd.Series] = field(default_factory=dict)
    uniques: pd.Index | None = None  # customer id of each code; None for compact integer ids
    id_base: int = 0
    id_dtype: object = None
    #: 10**places when ``amount`` holds whole units of ``1 / scale`` (exact sums in any order,
    #: :func:`custval.rfm.decimal_units`), else None: ``amount`` holds the amounts
    scale: float | None = None

    def spend(self, codes: np.ndarray, amount: np.ndarray) -> np.ndarray:
        """Sum of ``amount`` per customer code: exact whole units in any order when the
        amounts are decimals, else float64 additions in row order."""
        if self.scale is not None:
            return np.bincount(codes, weights=amount, minlength=self.n_codes)
        total = np.zeros(self.n_codes)
        np.add.at(total, codes, amount)
        return total

    def mean(self, spend: np.ndarray, count: np.ndarray) -> np.ndarray:
        """``spend / count`` where ``count > 0``, else 0; one rounding for whole units."""
        scale = 1.0 if self.scale is None else self.scale
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, spend / (count * scale), 0.0)

    @property
    def unit(self) -> str:
        """The datetime64 unit of ``times``."""
        return np.datetime_data(self.times.dtype)[0]

    @property
    def ticks(self) -> np.ndarray:
        """``times`` as int64 counts of ``unit`` since the epoch (a view, no copy)."""
        return self.times.view(np.int64)

    def ids(self, codes: np.ndarray) -> pd.Index:
        """The customer ids of ``codes``, as an Index named ``customer_id``."""
        if self.uniques is not None:
            index = self.uniques.take(codes)
        else:
            index = pd.Index((codes + self.id_base).astype(self.id_dtype, copy=False))
        index.name = "customer_id"
        return index

    @cached_property
    def customers(self) -> pd.Index:
        """The customer id of every code (``customers[code]``)."""
        return self.ids(np.arange(self.n_codes))


def read_log(
    transactions: pd.DataFrame,
    *,
    customer_id: str = "customer_id",
    timestamp: str = "timestamp",
    amount: str | None = "amount",
    optional: Sequence[str] = (),
    text_timestamps: bool = True,
    compact_ids: bool = True,
    hint: str = "Pass the column names with customer_id=, timestamp= and amount= "
    "(amount=None to skip monetary values)",
) -> TransactionLog:
    """Validate ``transactions`` once and return its :class:`TransactionLog` (input untouched).

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per transaction.
    customer_id, timestamp, amount : str
        Column names; ``amount=None`` reads no amounts.
    optional : sequence of str
        Further columns kept in ``columns`` when present (e.g. ``order_id``, ``quantity``).
    text_timestamps : bool, default True
        Parse text timestamps (see :func:`read_timestamps`); False refuses them.
    compact_ids : bool, default True
        Use compact integer ids as their own codes (codes may then skip unused ids); False
        always gives dense codes ``0 ... n_customers - 1``.
    hint : str
        The fix added to the missing-column message.

    Examples
    --------
    >>> import pandas as pd
    >>> log = read_log(pd.DataFrame({"customer_id": ["b", "a", "b"], "amount": [1.0, 2.0, 3.0],
    ...                              "timestamp": ["2024-01-02", "2024-01-01", "2024-01-03"]}))
    >>> log.codes.tolist(), log.customers.tolist(), str(log.times[0].astype("datetime64[s]"))
    ([1, 0, 1], ['a', 'b'], '2024-01-02T00:00:00')
    """
    columns = [customer_id, timestamp] + ([amount] if amount is not None else [])
    require_columns(transactions, columns, what="transactions", hint=hint)
    codes, n_codes, uniques, id_base, id_dtype = _customer_codes(
        transactions, customer_id, compact=compact_ids
    )
    times = read_timestamps(
        transactions[timestamp],
        what="transactions",
        column=timestamp,
        frame=transactions,
        text=text_timestamps,
    )
    tz = getattr(times.dtype, "tz", None)
    if tz is not None:
        times = times.dt.tz_localize(None)  # wall-clock time, as Timestamp.to_period uses
    values = times.to_numpy()
    if np.datetime_data(values.dtype)[0] not in TICKS_PER_SECOND:
        values = values.astype("datetime64[ns]")
    amounts = read_amounts(transactions, amount) if amount is not None else None
    kept = {name: transactions[name] for name in optional if name in transactions.columns}
    return TransactionLog(codes, n_codes, values, tz, amounts, kept, uniques, id_base, id_dtype)


def read_amounts(frame: pd.DataFrame, column: str) -> np.ndarray:
    """``frame[column]`` as float64, refusing text, numbers stored as text and non-finite values
    (the non-numeric rows named by :func:`custval._validation.require_numeric`).

    >>> import pandas as pd
    >>> read_amounts(pd.DataFrame({"amount": [1, 2]}), "amount").tolist()
    [1.0, 2.0]
    """
    series = frame[column]
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        numeric = pd.to_numeric(series, errors="coerce")
        if not (numeric.isna() & series.notna()).any():  # all numbers, stored as text
            raise DataError(
                f"column {column!r} holds numbers stored as {series.dtype} values; "
                f"convert it first, e.g. df[{column!r}] = pd.to_numeric(df[{column!r}])"
            )
    require_numeric(frame, [column], what="transactions")
    return series.to_numpy(dtype=np.float64)


def _customer_codes(frame: pd.DataFrame, column: str, *, compact: bool):
    """Integer code per row, increasing with the customer id where the ids can be sorted."""
    series = frame[column]
    dtype = series.dtype
    if compact and isinstance(dtype, np.dtype) and dtype.kind in "iu" and len(series) > 0:
        values = series.to_numpy()
        low, high = int(values.min()), int(values.max())
        span = high - low + 1
        if high < 2**62 and span <= _COMPACT_ID_FACTOR * len(values) + _COMPACT_ID_SLACK:
            # Compact integer ids are their own codes: no hashing, sorted for free.
            codes = np.empty(values.size, dtype=np.int32 if span < 2**31 else np.int64)
            np.subtract(values, low, out=codes, casting="unsafe")  # in range by construction
            return codes, span, None, low, dtype
    short = short_string_codes(series)
    if short is not None:  # short string ids: packed into integers, not hashed as strings
        codes, index = short
        return codes, len(index), index, 0, None
    try:
        codes, uniques = pd.factorize(series, sort=True)
    except TypeError:  # ids that cannot be ordered (mixed types): keep first-seen order
        codes, uniques = pd.factorize(series, sort=False)
    refuse_rows(
        frame,
        codes < 0,
        column,
        "missing customer ids",
        "drop those rows or fill in the customer id (a purchase without a customer cannot be "
        "followed over time)",
    )
    small = len(uniques) < 2**31
    codes = codes.astype(np.int32 if small else np.int64, copy=False)
    return codes, len(uniques), pd.Index(uniques), 0, None


def read_timestamps(
    series: pd.Series,
    *,
    what: str,
    column: str,
    frame: pd.DataFrame | None = None,
    text: bool = True,
    allow_missing: bool = False,
    wall_clock: bool = False,
) -> pd.Series:
    """``series`` (the column ``column`` of ``what``) as datetime64, time zone kept.

    Numbers are refused (their unit is unknown). Text is parsed when ``text`` is true (the
    format inferred from the first value, then ISO 8601 of varying precision), refusing the rows
    that are not dates; ``text=False`` refuses any column that does not hold datetimes. Missing
    timestamps (NaT) are refused with their rows unless ``allow_missing``. With ``wall_clock`` a
    time-zone-aware column loses its zone (local clock times kept, as ``Timestamp.to_period``
    reads them). ``frame`` (default: the series as a one-column frame) gives the row labels in
    the messages.

    >>> import pandas as pd
    >>> read_timestamps(pd.Series(["2024-01-01", "2024-01-02 10:00"]), what="transactions",
    ...                 column="timestamp").dt.hour.tolist()
    [0, 10]
    """
    if frame is None:
        frame = series.to_frame(column)
    if not pd.api.types.is_datetime64_any_dtype(series):
        if not text:
            raise DataError(
                f"{what} column {column!r} must hold datetimes, got dtype {series.dtype}; "
                "convert it with pd.to_datetime or clean the log with custval.clean_transactions"
            )
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise DataError(
                f"column {column!r} holds numbers ({series.dtype}), not timestamps; "
                f"convert it with pd.to_datetime(df[{column!r}], unit=...) stating "
                "the unit of the numbers"
            )
        parsed = pd.to_datetime(series, errors="coerce")
        bad = (parsed.isna() & series.notna()).to_numpy()
        if bad.any():  # the format is inferred from the first value; ISO dates may vary
            parsed = pd.to_datetime(series, errors="coerce", format="ISO8601")
            bad = (parsed.isna() & series.notna()).to_numpy()
        refuse_rows(
            frame,
            bad,
            column,
            "values that are not dates",
            f"parse the column yourself, e.g. pd.to_datetime(df[{column!r}], format=...), and "
            "fix or drop those rows",
        )
        series = parsed
    if not allow_missing:
        refuse_rows(
            frame,
            series.isna().to_numpy(),
            column,
            "missing timestamps (NaT)",
            "drop those rows or fill in the time (custval.clean_transactions drops them)",
        )
    if wall_clock and getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_localize(None)
    return series


def read_moment(value: object, name: str, *, wall_clock: bool = False) -> pd.Timestamp:
    """A date-like argument ``name`` as a Timestamp, or a DataError naming the argument.

    With ``wall_clock`` a time-zone-aware moment loses its zone (its local clock time is kept).

    >>> read_moment("2024-01-31", "observation_end")
    Timestamp('2024-01-31 00:00:00')
    """
    example = f"{name} must be a date or timestamp such as '2011-06-01' or a pd.Timestamp"
    try:
        moment = pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise DataError(
            f"cannot read {name}={value!r} as a date or timestamp ({error}); {example}"
        ) from None
    if moment is pd.NaT:
        raise DataError(f"{name} is missing (NaT, got {value!r}); {example}")
    if wall_clock and moment.tz is not None:
        moment = moment.tz_localize(None)
    return moment
