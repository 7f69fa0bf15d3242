"""Customer summaries (frequency, recency, T, monetary value), calibration/holdout splits, RFM
scores and RFM segments.

The summary has exactly the meaning of lifetimes' ``summary_data_from_transaction_data``
(lifetimes 0.11.3) and agrees with it number for number, but it is computed with integer period
codes, one ``np.sort`` of packed int64 keys and ``np.bincount``: no ``Period`` objects, no Python
loops, no object arrays (see ``benchmarks/bench_rfm.py`` for the speed and memory comparison).

Periods
-------
Every timestamp is mapped to an integer period code, the same periods pandas builds with
``Timestamp.to_period(freq)``:

========  ====================================================================================
``freq``  period
========  ====================================================================================
``"h"``   clock hour (hours since 1970-01-01 00:00, floored)
``"D"``   calendar day (days since 1970-01-01, floored)
``"W"``   week Monday to Sunday, i.e. pandas' ``W-SUN`` period; ``"W-MON"`` ... ``"W-SAT"``
          give weeks ending on that day instead
``"M"``   calendar month (``year * 12 + month``)
``"Y"``   calendar year
========  ====================================================================================

Ages (recency, T, duration) are differences of period codes, so they are whole numbers of
periods, as in lifetimes for ``"h"``, ``"D"`` and ``"W"``. Time zones: a timezone-aware
timestamp column is read as local wall-clock time (as pandas' ``to_period`` does).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from custval import _engines
from custval._log import TICKS_PER_SECOND, TransactionLog, read_log, read_moment
from custval._units import normalize_freq
from custval._validation import require_columns, require_numeric
from custval.errors import CustvalWarning, DataError

__all__ = [
    "calibration_holdout_split",
    "rfm_scores",
    "rfm_segments",
    "rfm_summary",
]

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
HOLDOUT_COLUMNS = ("frequency_holdout", "monetary_value_holdout", "duration_holdout")

# The segment names of rfm_segments, best first (the order of the ordered Categorical).
_SEGMENTS: tuple[str, ...] = (
    "Champions",
    "Loyal",
    "Potential loyalists",
    "New",
    "Promising",
    "Needs attention",
    "About to sleep",
    "At risk",
    "Can't lose them",
    "Hibernating",
    "Lost",
)

# Segment of each (r_score, f_score) cell: _SEGMENT_GRID[r - 1][f - 1]; f = 1 ... 5 left to right.
_SEGMENT_GRID_NAMES = (
    ("Lost", "Lost", "At risk", "At risk", "Can't lose them"),  # r = 1
    ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),  # r = 2
    ("About to sleep", "About to sleep", "Needs attention", "Loyal", "Loyal"),  # r = 3
    ("Promising", "Potential loyalists", "Potential loyalists", "Loyal", "Loyal"),  # r = 4
    ("New", "Potential loyalists", "Potential loyalists", "Champions", "Champions"),  # r = 5
)
_SEGMENT_GRID = np.array(
    [[_SEGMENTS.index(name) for name in row] for row in _SEGMENT_GRID_NAMES], dtype=np.int8
)

_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


# --- periods --------------------------------------------------------------------------------------


# Amounts that are decimals of at most this many places are summed as whole units (exactly, in
# any order): see decimal_units. A row's units stay below 2**40 (so rounding is never a tie)
# and their absolute total below 2**53 (so every partial sum is an exact float64).
DECIMAL_PLACES = tuple(range(7))
UNIT_LIMIT = 2.0**40
TOTAL_LIMIT = 2.0**53


@dataclass(frozen=True)
class _Freq:
    """A parsed ``freq``: the canonical unit code and, for weeks, the first weekday (0 = Monday)."""

    code: str
    week_start: int = 0


def _parse_freq(freq: str) -> _Freq:
    if isinstance(freq, str) and freq.upper().startswith("W-"):
        anchor = freq[2:].upper()
        if anchor not in _WEEKDAYS:
            raise DataError(
                f"unknown week anchor in freq={freq!r}; use 'W' (weeks ending on "
                f"Sunday) or 'W-' plus one of {', '.join(_WEEKDAYS)}"
            )
        # a week ending on weekday e starts on weekday e + 1
        return _Freq("W", (_WEEKDAYS.index(anchor) + 1) % 7)
    code = normalize_freq(freq)
    return _Freq(code)


def _days_to_periods(days: np.ndarray, freq: _Freq) -> np.ndarray:
    """Map days since 1970-01-01 to period codes (days for "D")."""
    if freq.code == "D":
        return days
    if freq.code == "W":
        # 1970-01-01 was a Thursday (weekday 3): day d has weekday (d + 3) % 7.
        return np.floor_divide(days + (3 - freq.week_start), 7)
    unit = "M" if freq.code == "M" else "Y"
    return days.astype("datetime64[D]").astype(f"datetime64[{unit}]").view(np.int64)


def _periods(ticks: np.ndarray, unit: str, freq: _Freq) -> np.ndarray:
    """Integer period codes of int64 timestamps counted in ``unit`` since the epoch.

    The codes are int32 when they fit (half the memory of int64), else int64.
    """
    per_second = TICKS_PER_SECOND[unit]
    step = 3600 * per_second if freq.code == "h" else 86400 * per_second
    if ticks.size == 0:
        return np.empty(0, dtype=np.int64)
    first, last = int(ticks.min()) // step, int(ticks.max()) // step
    small = -(2**31) < first and last < 2**31 - 1
    steps = np.empty(ticks.size, dtype=np.int32 if small else np.int64)
    np.floor_divide(ticks, step, out=steps, casting="unsafe")  # exact: the range was checked
    if freq.code in ("h", "D"):
        return steps
    if last - first + 1 >= steps.size:
        return _days_to_periods(steps.astype(np.int64), freq)
    # Fewer distinct days than rows: convert each day once, then look the rows up.
    table = _days_to_periods(np.arange(first, last + 1, dtype=np.int64), freq)
    steps -= first
    return table.astype(steps.dtype).take(steps)


# --- input ------------------------------------------------------------------------------------


def _moment_tick(value, log: TransactionLog, name: str) -> tuple[int, pd.Timestamp]:
    """``value`` as a tick of ``log`` (floored), and as a naive wall-clock Timestamp."""
    moment = read_moment(value, name)
    if moment.tz is not None:
        if log.tz is None:
            raise DataError(
                f"{name}={value!r} has a time zone but the timestamp column has "
                "none; pass a time without time zone"
            )
        moment = moment.tz_convert(log.tz).tz_localize(None)
    floored = moment.floor(f"1{log.unit}") if log.unit != "ns" else moment
    tick = int(floored.asm8.astype(f"datetime64[{log.unit}]").view(np.int64))
    return tick, moment


# --- core aggregation -------------------------------------------------------------------------


def _passes(amount: np.ndarray, scale: float) -> np.ndarray | None:
    """Whole units ``rint(amount * scale)`` if every amount is the float64 nearest to
    ``units / scale``, else None (the caller has checked that the units are in range)."""
    units = np.rint(amount * scale)
    return units if np.array_equal(units / scale, amount) else None


def units_fit(rows: int, largest: float, places: int) -> bool:
    """Whether ``rows`` amounts of absolute value at most ``largest`` with ``places`` decimals
    are whole units below 2**40 each whose partial sums are exact in float64 (below 2**53):
    one rule for the pandas path and the engines."""
    scale = 10.0**places
    return largest * scale < UNIT_LIMIT and rows * largest * scale < TOTAL_LIMIT


def decimal_units(amount: np.ndarray) -> tuple[np.ndarray | None, float | None]:
    """The amounts as whole units of ``10**-places``, for exact sums in any order.

    ``places`` is the fewest of :data:`DECIMAL_PLACES` for which every amount is the float64
    nearest to a decimal with that many places (cents: 2); the units must stay in range
    (:func:`units_fit`: the largest below 2**40, rows times the largest below 2**53). Sums of
    such units are exact float64 integers whatever the order of the additions, so a
    customer's mean spend is ``units / (count * 10**places)``, rounded once: the correctly
    rounded mean of the decimal amounts, which the DuckDB and Spark engines compute the same
    way (``custval._engines``). Returns ``(None, None)`` when no number of places fits; sums
    are then float64 additions in row order.

    Examples
    --------
    >>> import numpy as np
    >>> decimal_units(np.array([0.1, 0.2, 12.25]))
    (array([  10.,   20., 1225.]), 100.0)
    >>> decimal_units(np.array([1 / 3]))
    (None, None)
    """
    if amount.size == 0:
        return None, None
    largest = float(np.abs(amount).max())
    sample = amount[:4096]
    for places in DECIMAL_PLACES:
        if not units_fit(amount.size, largest, places):
            return None, None  # more places only make larger units
        scale = 10.0**places
        if _passes(sample, scale) is None:  # a sample rules out most places in no time
            continue
        units = _passes(amount, scale)
        if units is not None:
            return units, scale
    return None, None


def _read_summary_log(transactions: pd.DataFrame, **columns: Any) -> TransactionLog:
    """The log of a summary: :func:`custval._log.read_log` with the amounts as whole units of
    ``1 / scale`` when they are decimals (:func:`decimal_units`), so sums are exact in any
    order."""
    log = read_log(transactions, **columns)
    if log.amount is None:
        return log
    units, scale = decimal_units(log.amount)
    return log if units is None else dataclasses.replace(log, amount=units, scale=scale)


def _pair_keys(codes: np.ndarray, periods: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Sorted distinct (customer, period) pairs packed as integers ``code << shift | period - low``.

    Returns the keys, ``shift`` and ``low``. One in-place ``sort`` of the packed keys replaces a
    group-by: equal keys are the purchases of one customer in one period. The keys are int32
    where they fit (a million customers by a thousand periods): half the bytes to sort.
    """
    low = int(periods.min())
    shift = max(int(periods.max()) - low, 1).bit_length()
    top = int(codes.max())
    if shift >= 62 or (top + 1) >> (62 - shift):
        raise DataError(
            "too many customers times periods to pack into 64-bit keys; use a coarser freq"
        )
    small = shift < 31 and top >> (31 - shift) == 0  # the largest key fits int32
    key = codes.astype(np.int32 if small else np.int64)
    key <<= shift
    key += periods - low  # + (period - low) equals | (period - low): it is below 1 << shift
    key.sort()
    if key.size > 1:
        new = np.empty(key.size, dtype=bool)
        new[0] = True
        np.not_equal(key[1:], key[:-1], out=new[1:])
        key = key[new]
    return key, shift, low


def _summarize(
    log: TransactionLog,
    rows: np.ndarray | None,
    periods: np.ndarray,
    end_period: int,
    include_litt: bool = False,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Summary of ``rows`` (a boolean mask, or None for all rows) up to period ``end_period``,
    and the customer code of each of its rows; with ``include_litt`` also ``litt``, the sum of
    the logs of the gaps between consecutive purchase periods (BTYDplus' ``elog2cbs``)."""
    codes = log.codes if rows is None else log.codes[rows]
    if rows is not None:
        periods = periods[rows]
    amount = None
    if log.amount is not None:
        amount = log.amount if rows is None else log.amount[rows]
    columns = list(SUMMARY_COLUMNS if log.amount is not None else SUMMARY_COLUMNS[:3])
    if include_litt:
        columns.append("litt")
    if codes.size == 0:
        none = np.empty(0, dtype=np.int64)
        frame = pd.DataFrame(
            {c: np.empty(0, dtype=np.float64) for c in columns}, index=log.ids(none)
        )
        return frame, none
    key, shift, low = _pair_keys(codes, periods)
    pair_customer = key >> shift
    starts = np.flatnonzero(pair_customer[1:] != pair_customer[:-1])
    starts += 1
    starts = np.concatenate(([0], starts))
    ends = np.append(starts[1:], key.size) - 1
    customer = pair_customer[starts]
    mask = (1 << shift) - 1
    litt = None
    if include_litt:  # gaps between consecutive distinct purchase periods of one customer
        same = pair_customer[1:] == pair_customer[:-1]
        gaps = np.diff(key & mask)[same].astype(np.float64)
        owner = np.repeat(np.arange(starts.size), ends - starts + 1)[1:][same]
        litt = np.bincount(owner, weights=np.log(gaps), minlength=starts.size)
    del pair_customer
    first = (key[starts] & mask).astype(np.int64) + low
    last = (key[ends] & mask).astype(np.int64) + low
    del key
    frequency = (ends - starts).astype(np.float64)
    data = {
        "frequency": frequency,
        "recency": (last - first).astype(np.float64),
        "T": (end_period - first).astype(np.float64),
    }
    if litt is not None:
        data["litt"] = litt
    if amount is not None:
        # Spend outside the first purchase period, summed per customer (exact for decimals).
        first_of = np.zeros(log.n_codes, dtype=periods.dtype)
        first_of[customer] = first
        repeat = periods != first_of.take(codes)
        spend = log.spend(codes, np.where(repeat, amount, 0.0))
        data["monetary_value"] = log.mean(spend[customer], frequency)
    return pd.DataFrame(data, index=log.ids(customer), columns=columns), customer


# --- public -----------------------------------------------------------------------------------


def rfm_summary(
    transactions: pd.DataFrame,
    *,
    customer_id: str = "customer_id",
    timestamp: str = "timestamp",
    amount: str | None = "amount",
    freq: str = "D",
    observation_end=None,
    include_litt: bool = False,
) -> pd.DataFrame:
    """Summarize a transaction log per customer: frequency, recency, T and monetary value.

    Purchases are grouped into periods of ``freq``; purchases in the same period count as one
    purchase whose value is the sum of their amounts. With ages measured in whole periods:

    - ``frequency``: number of *repeat* purchase periods (distinct purchase periods minus one);
    - ``recency``: age of the customer at the last purchase (last minus first purchase period),
      0 when there is no repeat purchase;
    - ``T``: age of the customer at the end of observation (period of ``observation_end`` minus
      the first purchase period);
    - ``monetary_value``: mean value of the repeat purchase periods (the first period excluded),
      0 for customers without a repeat purchase.

    These are exactly the columns of lifetimes 0.11.3 ``summary_data_from_transaction_data``
    (with ``monetary_value_col`` given), and the values agree with it for ``"h"``, ``"D"``
    and ``"W"``.

    Parameters
    ----------
    transactions : pandas.DataFrame, DuckDB relation, Parquet path or Spark DataFrame
        One row per transaction (or order line). Not modified. A DuckDB relation, a path,
        folder or glob of Parquet files (read by DuckDB, out of core) or a
        ``pyspark.sql.DataFrame`` is summarized in its engine and gives a lazy
        :class:`custval.EngineSummary` whose ``to_pandas()`` equals this function's result on
        the same rows (see the README section "At scale").
    customer_id, timestamp : str, default "customer_id", "timestamp"
        Column names of the customer id and of the purchase time (datetime64, any resolution,
        with or without time zone; strings are parsed with ``pd.to_datetime``).
    amount : str or None, default "amount"
        Column of the value of each row; ``None`` leaves out ``monetary_value``.
    freq : {"D", "W", "M", "h", "Y"} or "W-MON" ... "W-SUN", default "D"
        Period length. Weeks are pandas' ``W-SUN`` periods (Monday to Sunday), months are
        calendar months, years calendar years (see the module docstring).
    observation_end : date-like, optional
        End of observation; defaults to the last timestamp in the data. Transactions *after*
        ``observation_end`` (timestamp later than it) are excluded, and customers whose first
        purchase is after it are left out. ``T`` is measured to the period that contains it.
    include_litt : bool, default False
        Also return ``litt``, the sum over the repeat purchases of the log of the time since
        the previous purchase, in periods of ``freq`` (0 without repeat purchases): the
        statistic the regularity models need (:class:`custval.BetaGeoCNBDModel`; BTYDplus'
        ``elog2cbs``). Give a fine ``freq`` (``"D"``) so that gaps are not rounded.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (sorted when the ids can be sorted), columns
        ``frequency, recency, T, monetary_value`` (float64). ``attrs["freq"]`` holds the unit
        ("D", "W", "M", "h" or "Y") and ``attrs["observation_end"]`` the end as an ISO string.
        For an engine input, a lazy :class:`custval.EngineSummary` of the same columns and
        ``attrs`` (``to_pandas()`` gives this frame).

    Raises
    ------
    DataError
        A column is missing, amounts are not numeric or not finite, timestamps are missing or
        not dates, customer ids are missing, or ``freq`` is unknown.

    Notes
    -----
    Differences from lifetimes 0.11.3 (the same quantities otherwise):

    - An explicit ``observation_end`` cuts at the timestamp: lifetimes'
      ``summary_data_from_transaction_data`` also keeps transactions later in the same period
      (e.g. the rest of the week), which leaks data from after the end. Its
      ``calibration_and_holdout_data`` cuts at the timestamp, like custval.
    - ``freq="M"`` and ``"Y"`` count whole calendar months and years between periods; lifetimes
      divides by ``np.timedelta64(1, "M")``, which current pandas refuses (``ValueError: Unit M
      is not supported``).
    - Anchored weeks (``"W-MON"`` ...) work here; lifetimes fails on them.

    Hardie's CDNOW summary (``cdnow_customers_summary.csv``, the data behind the BG/NBD paper)
    is the *daily* summary with ``recency`` and ``T`` divided by 7 (and rounded to two
    decimals): ``rfm_summary(..., freq="D", observation_end="1997-09-30")`` reproduces it
    exactly, while ``freq="W"`` does not (it merges purchases within a calendar week and counts
    whole weeks).

    Examples
    --------
    >>> import pandas as pd
    >>> log = pd.DataFrame({
    ...     "customer_id": [1, 1, 1, 2],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-11",
    ...                                  "2024-01-05"]),
    ...     "amount": [10.0, 5.0, 20.0, 8.0]})
    >>> rfm_summary(log)  # doctest: +NORMALIZE_WHITESPACE
                 frequency  recency     T  monetary_value
    customer_id
    1                  1.0     10.0  10.0            20.0
    2                  0.0      0.0   6.0             0.0
    >>> rfm_summary(log).attrs["observation_end"]
    '2024-01-11T00:00:00'
    """
    if _engines.is_engine_input(transactions):  # DuckDB, Parquet or Spark: see custval._engines
        return _engines.rfm_summary(
            transactions,
            customer_id=customer_id,
            timestamp=timestamp,
            amount=amount,
            freq=freq,
            observation_end=observation_end,
        )
    parsed = _parse_freq(freq)
    log = _read_summary_log(
        transactions, customer_id=customer_id, timestamp=timestamp, amount=amount
    )
    end_tick, end = _resolve_end(log, observation_end, "observation_end")
    rows = None
    if observation_end is not None:
        inside = log.ticks <= end_tick
        rows = None if inside.all() else inside
    periods = _periods(log.ticks, log.unit, parsed)
    end_period = int(_periods(np.array([end_tick], dtype=np.int64), log.unit, parsed)[0])
    result, _ = _summarize(log, rows, periods, end_period, include_litt)
    result.attrs["freq"] = parsed.code
    result.attrs["observation_end"] = end.isoformat() if end is not None else None
    return result


def _resolve_end(log: TransactionLog, value, name: str) -> tuple[int, pd.Timestamp | None]:
    if value is not None:
        return _moment_tick(value, log, name)
    if log.ticks.size == 0:
        return 0, None
    tick = int(log.ticks.max())
    moment = pd.Timestamp(np.int64(tick).astype(f"datetime64[{log.unit}]"))
    return tick, moment


def calibration_holdout_split(
    transactions: pd.DataFrame,
    *,
    calibration_end,
    observation_end=None,
    freq: str = "D",
    customer_id: str = "customer_id",
    timestamp: str = "timestamp",
    amount: str | None = "amount",
    include_litt: bool = False,
) -> pd.DataFrame:
    """Summarize a calibration period and count what each customer did in the holdout after it.

    The calibration columns are :func:`rfm_summary` of the transactions up to and including
    ``calibration_end`` (with ``observation_end=calibration_end``), for the customers whose
    first purchase is on or before ``calibration_end``; they keep the summary's names so the
    frame can be passed straight to a model's ``fit``. The holdout columns describe the
    transactions after ``calibration_end`` up to and including ``observation_end``:

    - ``frequency_holdout``: number of distinct purchase periods in the holdout (0 if none);
    - ``monetary_value_holdout``: mean value of a holdout purchase period, i.e. the holdout
      spend divided by ``frequency_holdout`` (purchases in the same period summed first, as
      in the calibration summary); 0 when there is no holdout purchase;
    - ``duration_holdout``: period of ``observation_end`` minus period of ``calibration_end``.

    This equals lifetimes 0.11.3 ``calibration_and_holdout_data`` (columns renamed from
    ``*_cal``) except for ``monetary_value_holdout``: lifetimes averages the individual
    transactions (line items) of the holdout instead of the purchase periods, so two
    purchases on one day count as two half-size purchases there; custval uses the same
    definition as the calibration ``monetary_value``.

    Parameters
    ----------
    transactions : pandas.DataFrame, DuckDB relation, Parquet path or Spark DataFrame
        One row per transaction. Not modified. Engine inputs give an
        :class:`custval.EngineSummary`, as in :func:`rfm_summary`.
    calibration_end : date-like
        Last moment of the calibration period (inclusive).
    observation_end : date-like, optional
        Last moment of the holdout period (inclusive); defaults to the last timestamp.
    freq : str, default "D"
        Period length, as in :func:`rfm_summary`.
    customer_id, timestamp, amount : str
        Column names, as in :func:`rfm_summary`; ``amount=None`` leaves out both monetary
        columns.
    include_litt : bool, default False
        Add the calibration ``litt`` column, as in :func:`rfm_summary`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``; columns ``frequency, recency, T, monetary_value,
        frequency_holdout, monetary_value_holdout, duration_holdout`` (float64).
        ``attrs`` holds ``freq``, ``calibration_end`` and ``observation_end`` (ISO strings).

    Raises
    ------
    DataError
        As :func:`rfm_summary`; also when ``observation_end`` is not after
        ``calibration_end`` or no transaction falls on or before ``calibration_end``.

    Warns
    -----
    CustvalWarning
        When the holdout period holds no transaction (all holdout columns are then 0).

    Examples
    --------
    >>> import pandas as pd
    >>> log = pd.DataFrame({
    ...     "customer_id": [1, 1, 1, 1, 2],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-12",
    ...                                  "2024-01-12", "2024-01-03"]),
    ...     "amount": [10.0, 20.0, 5.0, 15.0, 8.0]})
    >>> split = calibration_holdout_split(log, calibration_end="2024-01-07",
    ...                                   observation_end="2024-01-14")
    >>> columns = ["frequency", "frequency_holdout", "monetary_value_holdout"]
    >>> split[columns]  # doctest: +NORMALIZE_WHITESPACE
                 frequency  frequency_holdout  monetary_value_holdout
    customer_id
    1                  1.0                1.0                    20.0
    2                  0.0                0.0                     0.0
    """
    if _engines.is_engine_input(transactions):  # DuckDB, Parquet or Spark: see custval._engines
        return _engines.calibration_holdout_split(
            transactions,
            calibration_end=calibration_end,
            observation_end=observation_end,
            freq=freq,
            customer_id=customer_id,
            timestamp=timestamp,
            amount=amount,
        )
    parsed = _parse_freq(freq)
    log = _read_summary_log(
        transactions, customer_id=customer_id, timestamp=timestamp, amount=amount
    )
    if calibration_end is None:
        raise DataError(
            "calibration_end is required; pass the last date of the calibration "
            "period, e.g. '1997-09-30'"
        )
    cal_tick, cal = _moment_tick(calibration_end, log, "calibration_end")
    end_tick, end = _resolve_end(log, observation_end, "observation_end")
    if end is None or end_tick <= cal_tick:
        raise DataError(
            f"observation_end ({end.isoformat() if end is not None else 'no data'}) "
            f"must be after calibration_end ({cal.isoformat()}); pass a later "
            "observation_end or an earlier calibration_end"
        )
    calibration = log.ticks <= cal_tick
    if not calibration.any():
        first = pd.Timestamp(np.int64(log.ticks.min()).astype(f"datetime64[{log.unit}]"))
        raise DataError(
            f"no transaction on or before calibration_end ({cal.isoformat()}); the "
            f"first one is at {first.isoformat()}: pass a later calibration_end"
        )
    periods = _periods(log.ticks, log.unit, parsed)
    moments = np.array([cal_tick, end_tick], dtype=np.int64)
    cal_period, end_period = (int(p) for p in _periods(moments, log.unit, parsed))
    result, customers = _summarize(log, calibration, periods, cal_period, include_litt)

    holdout = ~calibration
    holdout &= log.ticks <= end_tick
    if holdout.any():
        codes = log.codes[holdout]
        key, shift, _ = _pair_keys(codes, periods[holdout])
        counts = np.bincount(key >> shift, minlength=log.n_codes)[customers].astype(np.float64)
    else:
        warnings.warn(
            f"no transaction between calibration_end ({cal.isoformat()}) and "
            f"observation_end ({end.isoformat()}); all holdout columns are 0",
            CustvalWarning,
            stacklevel=2,
        )
        codes = np.empty(0, dtype=np.int64)
        counts = np.zeros(len(customers))
    result["frequency_holdout"] = counts
    if log.amount is not None:
        spend = log.spend(codes, log.amount[holdout])
        result["monetary_value_holdout"] = log.mean(spend[customers], counts)
    result["duration_holdout"] = float(end_period - cal_period)
    result.attrs["freq"] = parsed.code
    result.attrs["calibration_end"] = cal.isoformat()
    result.attrs["observation_end"] = end.isoformat()
    return result


def _check_summary(summary: pd.DataFrame) -> None:
    require_columns(
        summary,
        SUMMARY_COLUMNS,
        what="summary",
        hint="Build it with custval.rfm_summary(transactions) (with an amount "
        "column, for monetary_value)",
    )
    require_numeric(summary, list(SUMMARY_COLUMNS), what="summary")


def _score(values: np.ndarray, bins: int) -> np.ndarray:
    """1 ... bins from the share of differing customers each one beats (higher value, higher).

    Computed per distinct value: ``pd.factorize(sort=True)`` gives each customer the rank of
    its value among the distinct values (one hash pass; -0.0 and 0.0 are one value), the
    counts of each value give ``worse`` (customers with a smaller value) by a cumulative sum,
    and ``different = n - count`` (customers with another value).
    """
    n = values.size
    if n == 0:
        return np.empty(0, dtype=np.int64)
    rank, distinct = pd.factorize(values, sort=True)
    if len(distinct) == 1:
        return np.full(n, (bins + 1) // 2, dtype=np.int64)
    count = np.bincount(rank, minlength=len(distinct))
    worse = np.cumsum(count) - count
    different = n - count
    score = np.minimum(bins * worse // different + 1, bins).astype(np.int64)
    return score[rank]


#: "111" ... "999": the rfm_score string of each r * 100 + f * 10 + m, looked up (no int->str)
_SCORE_STRINGS = pd.array([str(code) for code in range(1000)], dtype="str")


def rfm_scores(summary: pd.DataFrame, *, bins: int = 5) -> pd.DataFrame:
    """Score every customer 1 ... ``bins`` on recency, frequency and monetary value.

    Scores are quantiles of ranks, so they exist however many values are tied, and a higher
    score is always better:

    - R scores ``T - recency``, the time since the last purchase: *smaller* is better, so the
      most recent buyers get the top score;
    - F scores ``frequency`` (repeat purchases), M scores ``monetary_value`` (mean repeat
      spend; 0 for one-time buyers), larger is better.

    For each measure, a customer's position is the share of the customers *with a different
    value* that it beats, ``p = worse / (worse + better)``, and its score is
    ``min(bins, 1 + floor(bins * p))``. For distinct values this is the percent rank
    ``(rank - 1) / (n - 1)`` (SQL's ``PERCENT_RANK``) cut into ``bins`` equal-sized groups;
    with ties it keeps three promises:

    - equal values get equal scores (row order never matters);
    - the worst value scores 1 and the best scores ``bins``, however many customers share
      them (e.g. all one-time buyers, frequency 0, score F = 1, and all customers who bought
      in the last period of a weekly summary score R = ``bins``);
    - scores never decrease as the value improves.

    Degenerate bases: an empty summary gives an empty result; when a measure does not vary
    (a single customer, or all values equal) every customer gets the middle score
    ``(bins + 1) // 2`` for it; two customers that differ get 1 and ``bins``; three distinct
    values get 1, the middle score and ``bins``.

    Parameters
    ----------
    summary : pandas.DataFrame
        A summary from :func:`rfm_summary` (columns ``frequency, recency, T,
        monetary_value``). Not modified.
    bins : int, default 5
        Number of scores, 2 ... 9.

    Returns
    -------
    pandas.DataFrame
        A copy of ``summary`` with ``r_score``, ``f_score``, ``m_score`` (int64) and
        ``rfm_score``, the three digits as a string (e.g. ``"545"``).

    Raises
    ------
    DataError
        A column is missing or not numeric, or ``bins`` is out of range.

    Examples
    --------
    >>> import pandas as pd
    >>> summary = pd.DataFrame({"frequency": [0.0, 2.0, 5.0], "recency": [0.0, 20.0, 60.0],
    ...                         "T": [90.0, 80.0, 62.0], "monetary_value": [0.0, 15.0, 40.0]},
    ...                        index=pd.Index(["a", "b", "c"], name="customer_id"))
    >>> scores = rfm_scores(summary)
    >>> scores[["r_score", "f_score", "m_score", "rfm_score"]]  # doctest: +NORMALIZE_WHITESPACE
                 r_score  f_score  m_score rfm_score
    customer_id
    a                  1        1        1       111
    b                  3        3        3       333
    c                  5        5        5       555
    """
    _check_summary(summary)
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or not 2 <= bins <= 9:
        raise DataError(f"bins must be an integer from 2 to 9, got {bins!r}")
    bins = int(bins)
    frequency = summary["frequency"].to_numpy(dtype=np.float64)
    since_last = (summary["T"] - summary["recency"]).to_numpy(dtype=np.float64)
    monetary = summary["monetary_value"].to_numpy(dtype=np.float64)
    result = summary.copy()
    r = _score(-since_last, bins)
    f = _score(frequency, bins)
    m = _score(monetary, bins)
    result["r_score"] = r
    result["f_score"] = f
    result["m_score"] = m
    result["rfm_score"] = pd.Series(_SCORE_STRINGS.take(r * 100 + f * 10 + m), index=result.index)
    return result


def rfm_segments(summary: pd.DataFrame) -> pd.DataFrame:
    """Name each customer's RFM segment from the recency and frequency scores.

    The scores are those of :func:`rfm_scores` with 5 bins; the segment is read from the
    widely used R/F grid (the monetary score is reported but does not change the segment):

    =====================  ============  ============  ==========================================
    segment                r_score       f_score       reading
    =====================  ============  ============  ==========================================
    Champions              5             4–5           bought most recently and most often
    Loyal                  3–4           4–5           buy often, fairly recently
    Potential loyalists    4–5           2–3           recent, with a few repeat purchases
    New                    5             1             just bought, fewest repeat purchases
    Promising              4             1             recent, fewest repeat purchases
    Needs attention        3             3             middle of the road
    About to sleep         3             1–2           fading, few purchases
    At risk                1–2           3–4           bought often, but long ago
    Can't lose them        1–2           5             bought most often, but long ago
    Hibernating            2             1–2           long ago, few purchases
    Lost                   1             1–2           longest ago, few purchases
    =====================  ============  ============  ==========================================

    Every one of the 25 (r, f) cells belongs to exactly one segment. The degenerate bases of
    :func:`rfm_scores` carry over: a single customer (all middle scores) is "Needs attention",
    and an empty summary gives an empty result with the categories in place.

    Parameters
    ----------
    summary : pandas.DataFrame
        A summary from :func:`rfm_summary`. Not modified.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`rfm_scores` plus ``segment``, an ordered Categorical whose
        categories are the 11 segment names in the order of the table, best first (so sorting
        by segment lists Champions first, and ``min()`` is the best segment present).

    Examples
    --------
    >>> import pandas as pd
    >>> summary = pd.DataFrame({"frequency": [0.0, 2.0, 5.0], "recency": [0.0, 20.0, 60.0],
    ...                         "T": [90.0, 80.0, 62.0], "monetary_value": [0.0, 15.0, 40.0]},
    ...                        index=pd.Index(["a", "b", "c"], name="customer_id"))
    >>> rfm_segments(summary)["segment"].tolist()
    ['Lost', 'Needs attention', 'Champions']
    """
    result = rfm_scores(summary, bins=5)
    codes = _SEGMENT_GRID[result["r_score"].to_numpy() - 1, result["f_score"].to_numpy() - 1]
    result["segment"] = pd.Categorical.from_codes(codes, categories=list(_SEGMENTS), ordered=True)
    return result
