"""The customer summary and the cleaning on DuckDB (larger than memory) and Spark (a cluster).

:func:`custval.rfm_summary` and :func:`custval.calibration_holdout_split` route a DuckDB
relation, a path or glob of Parquet files (read by DuckDB, out of core) or a
``pyspark.sql.DataFrame`` here. The result is an :class:`EngineSummary`: the summary as a lazy
frame of the same engine (``.frame``), with the ``attrs`` of the pandas summary; ``to_pandas()``
collects it into exactly the frame the pandas path returns for the same rows.

One definition, two dialects
----------------------------
The aggregation is one SQL text (:func:`_summary_sql`), rendered for DuckDB and for Spark SQL;
only a few expressions differ (:class:`_Dialect`: quoting, the day number of a timestamp and an
ordered sum). Narwhals, Ibis and SQLFrame were tried (README, "At scale"): each expresses the
grouped minimum, maximum, count and sum, SQLFrame as fast as this SQL, Ibis slower, but none
states *the order in which a group's amounts are added*, which the fallback below needs.

Sums that do not depend on the order
------------------------------------
Amounts that are decimals of a few places (cents: the usual case) are summed as whole units
(:func:`custval.rfm.decimal_units`): every partial sum is an exact float64 integer, so any order
of additions gives the same bits, in pandas and in a parallel engine alike, and DuckDB and Spark
aggregate plainly (``sum``, ``min_by``). The one validating pass (:func:`_scan`) finds the
number of places with the pandas path's rule. Other amounts (thirds, full-precision floats) are
added in row order, as the pandas path adds them: DuckDB with an ordered aggregate
``sum(amount ORDER BY row)``, Spark by folding the row-ordered list of amounts
(``aggregate(array_sort(collect_list(...)), 0D, ...)``), about five times the price.

Periods are the same integer arithmetic as :mod:`custval.rfm`: the day number of a timestamp
(days since 1970-01-01, wall-clock time) for ``"D"``; ``floor((day + 3 - week_start) / 7)``
for weeks; ``(year - 1970) * 12 + month - 1`` for months; ``year - 1970`` for years and
``day * 24 + hour`` for hours.

Distinct periods: a customer's frequency is their number of distinct periods minus one. Spark
(and DuckDB for a log of more than 762 periods, e.g. hours) groups the (customer, period) pairs
first, then the customers: two hash aggregations, the first of about as many groups as rows.
DuckDB, when the log spans at most 762 periods (two years of days), sets bit ``p - first`` of a
per-customer bitmap of six 128-bit integers (``bit_or``) and counts its bits, in one
aggregation by customer (:func:`_bitmap_ctes`); 10M rows: 1.2-1.4 s instead of 1.5-1.9 s.

Row order is the order of the input: a Parquet glob is read file by file in sorted path order
(DuckDB's ``file_index`` and ``file_row_number``), a DuckDB relation in its scan order, a Spark
DataFrame in partition order (``monotonically_increasing_id``). A pandas frame with the same
rows in the same order gives the same summary, every bit of every column.

:func:`clean_transactions` is :func:`custval.clean_transactions` for the same inputs: one SQL
text for both engines (reasons, duplicates by window ``row_number``, netting by window running
sums and minima), equal to the pandas results bit for bit for decimal amounts.

Spark reads timestamps in its session time zone; keep ``spark.sql.session.timeZone`` the zone
the log was written in (UTC in the tests) so wall-clock days are the days of the pandas path.
"""

from __future__ import annotations

import glob as _glob
import itertools
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from custval._log import read_moment
from custval.errors import CustvalWarning, DataError

__all__ = ["EngineSummary", "summary_patterns"]

_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_ORDER = "__custval_row"
_FILE = "__custval_file"
_counter = itertools.count()


# --- recognising engine inputs ------------------------------------------------------------------


def _is_duckdb(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] in ("duckdb", "_duckdb") and hasattr(obj, "query")


def _is_spark(obj: Any) -> bool:
    module = type(obj).__module__
    return module.startswith("pyspark.sql") and type(obj).__name__ == "DataFrame"


def _is_parquet_path(obj: Any) -> bool:
    """A path or glob of Parquet files, or a folder (of Parquet files)."""
    if not isinstance(obj, str | Path):
        return False
    text = os.fspath(obj)
    return (
        text.lower().endswith((".parquet", ".pq", ".parq"))
        or _glob.has_magic(text)
        or os.path.isdir(text)
    )


def is_engine_input(obj: Any) -> bool:
    """True for a DuckDB relation, a Parquet path/glob or a Spark DataFrame."""
    return _is_duckdb(obj) or _is_spark(obj) or _is_parquet_path(obj)


def is_engine_summary(obj: Any) -> bool:
    return isinstance(obj, EngineSummary)


# --- dialects -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    """The few expressions in which DuckDB and Spark SQL differ."""

    name: str
    quote: Callable[[str], str]
    day: Callable[[str], str]  # days since 1970-01-01 of a timestamp expression
    ordered_sum: Callable[[str, Sequence[str]], str]  # sum of a value in the order of columns
    to_text: str  # type name for CAST(... AS <text>)
    strip: Callable[[str], str]  # text without surrounding whitespace
    integral_text: Callable[[str], str]  # "17850.0" -> "17850"
    try_double: Callable[[str], str]  # text as a double, NULL if it is not a number
    parse_timestamp: Callable[[str, str | None], str]  # text as a timestamp, NULL if not one
    whole: Callable[[str], str]  # a double rounded to a whole number (see _units)


def _duck_ordered_sum(value: str, order: Sequence[str]) -> str:
    return f"sum({value} ORDER BY {', '.join(order)})"


def _spark_ordered_sum(value: str, order: Sequence[str]) -> str:
    # Fold the row-ordered list: aggregate() adds left to right, like the pandas path.
    (column,) = order
    pair = f"named_struct('o', {column}, 'a', {value})"
    pairs = f"collect_list(CASE WHEN {value} IS NOT NULL THEN {pair} END)"
    return f"aggregate(array_sort({pairs}), CAST(0 AS DOUBLE), (acc, x) -> acc + x.a)"


def _text_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _duck_timestamp(text: str, fmt: str | None) -> str:
    if fmt is None:
        return f"TRY_CAST({text} AS TIMESTAMP)"
    return f"try_strptime({text}, {_text_literal(fmt)})"


def _spark_timestamp(text: str, fmt: str | None) -> str:
    if fmt is None:
        return f"try_cast({text} AS TIMESTAMP)"
    return f"try_to_timestamp({text}, {_text_literal(_java_format(fmt))})"


_DUCKDB = _Dialect(
    name="duckdb",
    quote=lambda name: '"' + name.replace('"', '""') + '"',
    day=lambda ts: f"date_diff('day', DATE '1970-01-01', CAST({ts} AS DATE))",
    ordered_sum=_duck_ordered_sum,
    to_text="VARCHAR",
    strip=lambda text: rf"regexp_replace({text}, '^\s+|\s+$', '', 'g')",
    integral_text=lambda text: rf"regexp_replace({text}, '^([+-]?[0-9]+)\.0+$', '\1')",
    try_double=lambda text: f"TRY_CAST({text} AS DOUBLE)",
    parse_timestamp=_duck_timestamp,
    whole=lambda x: f"round({x})",
)
# Spark SQL string literals read backslash escapes: '\\s' is the regular expression \s.
_SPARK = _Dialect(
    name="spark",
    quote=lambda name: "`" + name.replace("`", "``") + "`",
    day=lambda ts: f"datediff(CAST({ts} AS DATE), DATE '1970-01-01')",
    ordered_sum=_spark_ordered_sum,
    to_text="STRING",
    strip=lambda text: rf"regexp_replace({text}, '^\\s+|\\s+$', '')",
    integral_text=lambda text: rf"regexp_replace({text}, '^([+-]?[0-9]+)\\.0+$', '$1')",
    try_double=lambda text: f"try_cast({text} AS DOUBLE)",
    parse_timestamp=_spark_timestamp,
    whole=lambda x: f"rint({x})",
)


def _period_sql(dialect: _Dialect, ts: str, freq) -> str:
    """Integer period code of ``ts``, the same codes as ``custval.rfm._periods``."""
    day = dialect.day(ts)
    if freq.code == "D":
        body = day
    elif freq.code == "h":
        body = f"({day}) * 24 + hour({ts})"
    elif freq.code == "W":
        # 1970-01-01 was a Thursday (weekday 3); exact: |day| is far below 2**50
        body = f"floor((({day}) + {3 - freq.week_start}) / 7.0)"
    elif freq.code == "M":
        body = f"(year({ts}) - 1970) * 12 + month({ts}) - 1"
    else:
        body = f"year({ts}) - 1970"
    return f"CAST({body} AS BIGINT)"


# --- the source: an engine frame with the three columns and the row order -----------------------


@dataclass
class _Source:
    """A registered engine frame: columns ``cid``, ``ts``, (``amt``) and the row-order columns."""

    dialect: _Dialect
    sql: Callable[[str], Any]  # run a query over the view, lazily; returns a native frame
    view: str
    order: tuple[str, ...]
    id_type: str
    keep: Any = None  # objects the lazy frames depend on (a DuckDB connection)

    def collect(self, query: str) -> list[tuple]:
        frame = self.sql(query)
        return [
            tuple(row) for row in (frame.fetchall() if self.dialect is _DUCKDB else frame.collect())
        ]


def _columns_of(frame: Any, engine: str) -> dict[str, str]:
    if engine == "duckdb":
        return {name: str(kind) for name, kind in zip(frame.columns, frame.types, strict=True)}
    return {f.name: f.dataType.simpleString() for f in frame.schema.fields}


def _native(transactions: Any) -> tuple[Any, str, Any]:
    """``(frame, engine, keep)``: the engine frame of an input (a Parquet path read by a new
    DuckDB connection, which ``keep`` holds, with its file index and row number)."""
    if _is_spark(transactions):
        return transactions, "spark", None
    import duckdb

    if _is_duckdb(transactions):
        return transactions, "duckdb", None
    files = _parquet_files(transactions)
    keep = duckdb.connect()
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    frame = keep.sql(
        f"SELECT *, CAST(file_index AS BIGINT) AS {_FILE} "
        f"FROM read_parquet([{listed}], file_row_number = true)"
    )
    return frame, "duckdb", keep


def _register(frame: Any, engine: str, keep: Any, select: Sequence[str], id_type: str) -> _Source:
    """A view of ``select`` (expressions over the frame's columns) plus the row order."""
    dialect = _DUCKDB if engine == "duckdb" else _SPARK
    view = f"custval_src_{os.getpid()}_{next(_counter)}"
    select = list(select)
    if engine == "spark":
        from pyspark.sql import functions as F

        frame = frame.withColumn(_ORDER, F.monotonically_increasing_id())
        select.append(dialect.quote(_ORDER))
    elif keep is not None:  # Parquet: file by file (in sorted path order), row by row
        select.append(f"({_FILE} << 40) + file_row_number AS {_ORDER}")
    else:
        select.append(f"row_number() OVER () AS {_ORDER}")
    base = f"SELECT {', '.join(select)} FROM {{table}}"
    if engine == "spark":
        inner = frame.sparkSession.sql(base.format(table="{df}"), df=frame)
        inner.createOrReplaceTempView(view)
        session = frame.sparkSession

        def run(query: str) -> Any:
            return session.sql(query)

    else:
        inner = frame.query(f"{view}_raw", base.format(table=f"{view}_raw"))

        def run(query: str) -> Any:
            return inner.query(view, query)

    return _Source(dialect, run, view, (_ORDER,), id_type, keep=(keep, inner))


def _missing_columns(columns: dict[str, str], wanted: Sequence[str], hint: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        present = ", ".join(repr(c) for c in columns)
        raise DataError(
            f"transactions is missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"columns present: {present}. {hint}"
        )


def _source(transactions: Any, customer_id: str, timestamp: str, amount: str | None) -> _Source:
    frame, engine, keep = _native(transactions)
    columns = _columns_of(frame, engine)
    wanted = [customer_id, timestamp] + ([amount] if amount is not None else [])
    _missing_columns(
        columns,
        wanted,
        "Pass the column names with customer_id=, timestamp= and amount= (amount=None to "
        "skip monetary values)",
    )
    ts_type = columns[timestamp].upper()
    if not ts_type.startswith(("TIMESTAMP", "DATE")):
        raise DataError(
            f"column {timestamp!r} holds {columns[timestamp]} values, not timestamps; cast it "
            f"in the engine first, e.g. CAST({timestamp} AS TIMESTAMP) or to_timestamp(...)"
        )
    if "TIME ZONE" in ts_type:  # DuckDB's TIMESTAMPTZ (Spark's timestamp is read in session time)
        raise DataError(
            f"column {timestamp!r} is a timestamp with time zone; cast it to the local "
            "wall-clock time (TIMESTAMP without time zone) first, as the pandas path reads it"
        )
    if amount is not None and not _is_numeric_type(columns[amount]):
        raise DataError(
            f"column {amount!r} holds {columns[amount]} values, not numbers; cast it in the "
            f"engine first, e.g. CAST({amount} AS DOUBLE)"
        )
    q = (_DUCKDB if engine == "duckdb" else _SPARK).quote
    select = [f"{q(customer_id)} AS cid", f"{q(timestamp)} AS ts"]
    if amount is not None:
        select.append(f"CAST({q(amount)} AS DOUBLE) AS amt")
    return _register(frame, engine, keep, select, columns[customer_id])


def _is_numeric_type(kind: str) -> bool:
    kind = kind.upper()
    return kind.startswith(
        (
            "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "INT", "LONG", "SHORT", "BYTE",
            "REAL",
        )
    )  # fmt: skip


def _parquet_files(path: str | os.PathLike[str]) -> list[str]:
    text = os.fspath(path)
    if os.path.isdir(text):
        files = sorted(
            str(p)
            for p in Path(text).rglob("*")
            if p.suffix.lower() in (".parquet", ".pq", ".parq")
        )
    elif _glob.has_magic(text):
        files = sorted(_glob.glob(text, recursive=True))
    else:
        files = [text] if os.path.exists(text) else []
    if not files:
        raise DataError(
            f"no Parquet file found at {text!r}; pass a file, a folder of .parquet files or a "
            "glob such as 'orders/*.parquet'"
        )
    return files


# --- validation and the end of observation ------------------------------------------------------


def _units(dialect: _Dialect, scale: str, amount: str = "amt") -> str:
    """Whole units of ``1 / scale`` of the amount (exact where :func:`_places_sql` finds places).

    DuckDB rounds half away from zero, Spark (``rint``) and the pandas path half to even; the
    units are the same wherever the places test passes, since an amount whose scaled value ends
    in exactly .5 fails it under either rule. Spark's ``round`` goes through ``BigDecimal``:
    ``rint`` is 5x faster there (10M rows: the validating scan 2.0-4.7 s -> 0.4-0.6 s)."""
    return dialect.whole(f"{amount} * {scale}")


def _places_sql(dialect: _Dialect) -> str:
    """The fewest decimal places of each amount, as :func:`custval.rfm.decimal_units` tests
    them (``rint(amt * 10**places) / 10**places = amt`` with units below 2**40), else 99.

    A decimal with ``k`` places passes for every number of places from ``k`` while its units
    are in range, so the fewest places that fit every row is the largest of these minima."""
    from custval.rfm import DECIMAL_PLACES, UNIT_LIMIT

    cases = " ".join(
        f"WHEN abs(amt * 1e{k}) < CAST({UNIT_LIMIT:.0f} AS DOUBLE) AND "
        f"{_units(dialect, f'1e{k}')} / 1e{k} = amt THEN {k}"
        for k in DECIMAL_PLACES
    )
    return f"CASE WHEN amt IS NULL THEN NULL {cases} ELSE 99 END"


@dataclass(frozen=True)
class _Scanned:
    """What the validating pass found: the row count, the first and last timestamps (as text)
    and the scale of whole units of the amounts (``"1e2"`` for cents; None when the amounts
    are not such decimals: see :func:`custval.rfm.decimal_units`)."""

    n: int
    first: str | None
    last: str | None
    scale: str | None


def _scan(source: _Source, amount: bool) -> _Scanned:
    """One pass over the log (:class:`_Scanned`); raise on missing or non-finite values."""
    from custval.rfm import DECIMAL_PLACES, units_fit

    checks = ["CASE WHEN cid IS NULL THEN 1 ELSE 0 END", "CASE WHEN ts IS NULL THEN 1 ELSE 0 END"]
    if amount:
        checks.append(
            "CASE WHEN amt IS NULL OR isnan(amt) OR abs(amt) = CAST('Infinity' AS DOUBLE) "
            "THEN 1 ELSE 0 END"
        )
    sums = ", ".join(f"CAST(sum({c}) AS BIGINT)" for c in checks)
    decimals = f", max({_places_sql(source.dialect)}), max(abs(amt))" if amount else ""
    text = source.dialect.to_text
    (row,) = source.collect(
        f"SELECT count(*), CAST(min(ts) AS {text}), CAST(max(ts) AS {text}), {sums}{decimals} "
        f"FROM {source.view}"
    )
    n, first, last, *bad = row[: 3 + len(checks)]
    scale = None
    if amount and n:
        places, largest = row[3 + len(checks) :]
        if places in DECIMAL_PLACES and units_fit(n, float(largest), places):
            scale = f"1e{places}"
    problems = [
        ("customer id", "missing customer ids", "drop those rows or fill in the customer id"),
        ("timestamp", "missing timestamps", "drop those rows or fill in the purchase time"),
        ("amount", "missing or infinite amounts", "fill or drop those rows first"),
    ]
    conditions = [
        "cid IS NULL",
        "ts IS NULL",
        "amt IS NULL OR isnan(amt) OR abs(amt) = CAST('Infinity' AS DOUBLE)",
    ]
    for count, (what, problem, fix), condition in zip(bad, problems, conditions, strict=False):
        if count:
            examples = source.collect(
                f"SELECT cid, CAST(ts AS {text}) FROM {source.view} WHERE {condition} LIMIT 5"
            )
            shown = ", ".join(f"(customer_id={c!r}, timestamp={t!r})" for c, t in examples)
            raise DataError(f"the {what} column has {count:,} {problem} ({shown}); {fix}")
    return _Scanned(int(n), first, last, scale)


def _moment(value: Any, name: str) -> pd.Timestamp:
    moment = read_moment(value, name)
    if moment.tz is not None:
        raise DataError(
            f"{name}={value!r} has a time zone but the engine's timestamps are wall-clock "
            "times; pass a time without time zone"
        )
    return moment


def _literal(moment: pd.Timestamp) -> str:
    # microseconds: the resolution of DuckDB's TIMESTAMP and Spark's timestamps
    return f"TIMESTAMP '{moment.floor('us').strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _period_of(moment: pd.Timestamp, freq) -> int:
    from custval.rfm import _periods

    tick = np.array([moment.as_unit("ns").value], dtype=np.int64)
    return int(_periods(tick, "ns", freq)[0])


def _first_period(scanned: _Scanned, freq) -> int | None:
    """The period of the log's first timestamp (None for an empty log)."""
    return None if scanned.first is None else _period_of(pd.Timestamp(scanned.first), freq)


# --- the aggregation, once ----------------------------------------------------------------------

#: DuckDB counts a customer's distinct periods with a bitmap of the periods (one HUGEINT per
#: 127 periods, ``bit_or`` per customer, ``bit_count``) when the log spans at most this many
#: HUGEINTs, in one hash aggregation by customer. Beyond it the (customer, period) pairs are
#: grouped first: a second aggregation of about as many groups as rows, which costs more than
#: six bitmaps but less than eight (10M rows on 2 cores: 1.2 s with six, 1.6 s with eight,
#: 1.5-1.8 s for the pairs).
_BITMAP_WORDS = 6
_BITMAP_BITS = 127  # bits 0..126 of a signed 128-bit integer


def _summary_sql(
    source: _Source,
    freq,
    *,
    end: pd.Timestamp,
    end_period: int,
    amount: bool,
    scale: str | None = None,
    first_period: int | None = None,
    calibration_end: pd.Timestamp | None = None,
    holdout_duration: int = 0,
) -> str:
    """The summary (and, with ``calibration_end``, the holdout columns) as one SQL query.

    The calibration part is the summary of the rows up to ``calibration_end``; with
    ``calibration_end=None`` it is the summary of the rows up to ``end``. With a ``scale``
    (the amounts are decimals: :func:`_scan`) spend is a plain sum of whole units, exact in any
    order, and a mean is ``units / (count * scale)``; without, amounts are added in row order.
    ``first_period`` (the log's first period) lets DuckDB count distinct periods with bitmaps
    (:func:`_bitmap_ctes`) when the periods up to ``end_period`` fit in ``_BITMAP_WORDS``.
    """
    d = source.dialect
    period = _period_sql(d, "ts", freq)
    order = [f"r.{c}" for c in source.order]
    carry = ""
    if amount:
        carry = f", {_units(d, scale)} AS amt" if scale else (", amt, " + ", ".join(source.order))

    def spend() -> str:
        return "sum(r.amt)" if scale else d.ordered_sum("r.amt", order)

    def mean(total: str, count: str) -> str:
        return f"{total} / ({count} * {scale})" if scale else f"{total} / {count}"

    cut = _literal(calibration_end if calibration_end is not None else end)
    # With whole units, spend is summed per (customer, period) pair and per customer in the
    # same grouped passes (exact in any order); the spend of the first period is the pair
    # total at the smallest period, min_by(s, p). Otherwise row-order sums (a join per sum).
    units = amount and scale is not None
    pair_spend = ", sum(amt) AS s" if units else ""
    span = None if first_period is None else end_period - first_period + 1
    bitmap = d is _DUCKDB and span is not None and 0 < span <= _BITMAP_WORDS * _BITMAP_BITS
    inline = "NOT MATERIALIZED " if bitmap else ""  # r is read twice: scan it twice
    ctes = [
        f"r_all AS {inline}(SELECT cid, ts, {period} AS p{carry} FROM {source.view} "
        f"WHERE ts <= {_literal(end)})",
        f"r AS {inline}(SELECT * FROM r_all WHERE ts <= {cut})",
    ]
    if bitmap:
        ctes += _bitmap_ctes(first_period, span, units)
    else:
        ctes += [
            # distinct (customer, period) pairs first: cheaper than count(DISTINCT p)
            f"pr AS (SELECT cid, p{pair_spend} FROM r GROUP BY cid, p)",
            "f AS (SELECT cid, min(p) AS p0, max(p) AS p1, count(*) AS n"
            + (", sum(s) - min_by(s, p) AS spend" if units else "")
            + " FROM pr GROUP BY cid)",
        ]
    select = [
        "f.cid AS customer_id",
        "CAST(f.n - 1 AS DOUBLE) AS frequency",
        "CAST(f.p1 - f.p0 AS DOUBLE) AS recency",
        f"CAST({end_period} - f.p0 AS DOUBLE) AS T",
    ]
    joins = []
    if amount:
        total = "f.spend"
        if not units:  # spend outside the first purchase period, added in row order
            ctes.append(
                f"m AS (SELECT r.cid, {spend()} AS spend FROM r "
                "JOIN f ON r.cid = f.cid WHERE r.p <> f.p0 GROUP BY r.cid)"
            )
            joins.append("LEFT JOIN m ON f.cid = m.cid")
            total = "m.spend"
        select.append(
            f"CASE WHEN f.n > 1 THEN {mean(total, 'CAST(f.n - 1 AS DOUBLE)')} "
            "ELSE CAST(0 AS DOUBLE) END AS monetary_value"
        )
    if calibration_end is not None:
        ctes.append(
            "h AS (SELECT cid, count(*) AS n" + (", sum(s) AS spend" if units else "") + " FROM "
            f"(SELECT cid, p{pair_spend} FROM r_all WHERE ts > {cut} GROUP BY cid, p) hp "
            "GROUP BY cid)"
        )
        joins.append("LEFT JOIN h ON f.cid = h.cid")
        select.append("CAST(coalesce(h.n, 0) AS DOUBLE) AS frequency_holdout")
        if amount:
            total = "h.spend"
            if not units:
                ctes.append(
                    f"hs AS (SELECT r.cid, {spend()} AS spend FROM r_all r "
                    f"WHERE r.ts > {cut} GROUP BY r.cid)"
                )
                joins.append("LEFT JOIN hs ON f.cid = hs.cid")
                total = "hs.spend"
            select.append(
                f"CASE WHEN h.n > 0 THEN {mean(total, 'CAST(h.n AS DOUBLE)')} "
                "ELSE CAST(0 AS DOUBLE) END AS monetary_value_holdout"
            )
        select.append(f"CAST({holdout_duration} AS DOUBLE) AS duration_holdout")
    return f"WITH {', '.join(ctes)} SELECT {', '.join(select)} FROM f {' '.join(joins)}"


def _bitmap_ctes(first_period: int, span: int, units: bool) -> list[str]:
    """DuckDB's ``f`` (``cid, p0, p1, n[, spend]``) from one aggregation by customer.

    Period ``p`` is bit ``(p - first) % 127`` of word ``(p - first) // 127``; a customer's
    ``bit_or`` of their periods has as many set bits as they have distinct periods. The spend
    outside the first period is the total minus the first period's: ``min_by(amt, p)`` when
    no period of the customer has two rows (``count(*)`` equals the distinct periods), else
    the sum of the first period's rows, joined back for those customers only. All integer
    arithmetic (whole units with ``units``): the same numbers as the pairs' aggregation.
    """
    words = -(-span // _BITMAP_BITS)
    offset = f"(p - {first_period})"
    bits = ", ".join(
        f"bit_or(CASE WHEN {offset} // {_BITMAP_BITS} = {i} THEN CAST(1 AS HUGEINT) << "
        f"CAST({offset} % {_BITMAP_BITS} AS HUGEINT) ELSE CAST(0 AS HUGEINT) END) AS w{i}"
        for i in range(words)
    )
    distinct = " + ".join(f"CAST(bit_count(w{i}) AS BIGINT)" for i in range(words))
    if not units:
        return [
            f"fw AS (SELECT cid, min(p) AS p0, max(p) AS p1, {bits} FROM r GROUP BY cid)",
            f"f AS (SELECT cid, p0, p1, {distinct} AS n FROM fw)",
        ]
    return [
        "fw AS (SELECT cid, min(p) AS p0, max(p) AS p1, count(*) AS m, sum(amt) AS total, "
        f"min_by(amt, p) AS a0, {bits} FROM r GROUP BY cid)",
        f"fc AS MATERIALIZED (SELECT cid, p0, p1, m, total, a0, {distinct} AS n FROM fw)",
        "dup AS (SELECT cid, p0 FROM fc WHERE m > n)",
        "fix AS (SELECT r.cid, sum(r.amt) AS s0 FROM r JOIN dup ON r.cid = dup.cid "
        "AND r.p = dup.p0 GROUP BY r.cid)",
        "f AS (SELECT fc.cid, fc.p0, fc.p1, fc.n, fc.total - coalesce(fix.s0, fc.a0) AS spend "
        "FROM fc LEFT JOIN fix ON fc.cid = fix.cid)",
    ]


# --- the result ---------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class EngineSummary:
    """A customer summary that lives in DuckDB or Spark.

    Made by :func:`custval.rfm_summary` and :func:`custval.calibration_holdout_split` from a
    DuckDB relation, a Parquet path or glob, or a Spark DataFrame. Nothing is computed until the
    frame is used: ``to_pandas()`` collects it, :func:`summary_patterns` (and a model's ``fit``)
    collects only its distinct patterns, ``write_parquet`` writes it where the data lives.

    Attributes
    ----------
    frame : duckdb.DuckDBPyRelation or pyspark.sql.DataFrame
        The summary: ``customer_id`` and the columns of the pandas summary, one row per
        customer, in no particular order.
    attrs : dict
        As the pandas summary's ``attrs``: ``freq``, ``observation_end`` (and
        ``calibration_end`` for a split).
    engine : {"duckdb", "spark"}

    Examples
    --------
    >>> import duckdb, pandas as pd
    >>> from custval import rfm_summary
    >>> log = pd.DataFrame({"customer_id": [1, 1, 2],
    ...                     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-05"]),
    ...                     "amount": [10.0, 20.0, 8.0]})
    >>> summary = rfm_summary(duckdb.from_df(log))
    >>> summary.to_pandas().equals(rfm_summary(log))
    True
    """

    frame: Any
    attrs: dict[str, Any]
    engine: str
    columns: tuple[str, ...]
    id_type: str
    _keep: Any = field(default=None, compare=False)

    def __repr__(self) -> str:
        return (
            f"EngineSummary(engine={self.engine!r}, columns={list(self.columns)}, "
            f"attrs={self.attrs})"
        )

    def to_arrow(self) -> Any:
        """The summary as a ``pyarrow.Table`` (collected to this process)."""
        if self.engine == "duckdb":
            table = self.frame.arrow()
            return table.read_all() if hasattr(table, "read_all") else table
        return self.frame.toArrow()

    def to_pandas(self) -> pd.DataFrame:
        """Collect the summary: the frame the pandas path returns (index, dtypes and attrs)."""
        if self.engine == "duckdb":  # sorted by DuckDB in parallel; pandas then only checks
            table = self.frame.order('"customer_id"').arrow()
            table = table.read_all() if hasattr(table, "read_all") else table
            table = table.select(["customer_id", *self.columns])
        else:
            table = self.to_arrow().select(["customer_id", *self.columns])
        frame = table.to_pandas().set_index("customer_id")
        if not _increasing(table.column("customer_id")):
            frame = frame.sort_index(kind="stable")
        frame.attrs.update(self.attrs)
        return frame

    def write_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write ``customer_id`` and the columns as Parquet, inside the engine (DuckDB: one
        file; Spark: a folder of part files)."""
        frame = self._selected()
        if self.engine == "duckdb":
            frame.write_parquet(os.fspath(path))
        else:
            frame.write.mode("overwrite").parquet(os.fspath(path))

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """Write ``customer_id`` and the columns as CSV with a header, inside the engine."""
        frame = self._selected()
        if self.engine == "duckdb":
            frame.write_csv(os.fspath(path), header=True)
        else:
            frame.write.mode("overwrite").option("header", True).csv(os.fspath(path))

    def _selected(self) -> Any:
        return self.frame.select(*["customer_id", *self.columns])


def _increasing(ids: Any) -> bool:
    """Whether a pyarrow array of ids is strictly increasing, tested in Arrow (pandas would
    first make a Python object of every id). Where Arrow says so, pandas' order is the same:
    Arrow compares numbers by value and strings by UTF-8 bytes, which is code-point order;
    anything Arrow cannot compare, and any tie or NaN, is left to pandas to sort."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(ids) < 2:
        return True
    try:
        less = pc.less(ids.slice(0, len(ids) - 1), ids.slice(1))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, TypeError):
        return False
    return bool(pc.all(less, skip_nulls=False).as_py())


def _engine_result(
    source: _Source, query: str, attrs: dict[str, Any], columns: Sequence[str]
) -> EngineSummary:
    return EngineSummary(
        frame=source.sql(query),
        attrs=attrs,
        engine=source.dialect.name,
        columns=tuple(columns),
        id_type=source.id_type,
        _keep=source.keep,
    )


def rfm_summary(
    transactions: Any,
    *,
    customer_id: str,
    timestamp: str,
    amount: str | None,
    freq: str,
    observation_end: Any,
) -> EngineSummary:
    """The engine version of :func:`custval.rfm_summary` (same arguments, same meaning)."""
    from custval.rfm import SUMMARY_COLUMNS, _parse_freq

    parsed = _parse_freq(freq)
    source = _source(transactions, customer_id, timestamp, amount)
    scanned = _scan(source, amount is not None)
    if observation_end is not None:
        end = _moment(observation_end, "observation_end")
    elif scanned.last is None:
        raise DataError("the transaction log is empty; there is nothing to summarize")
    else:
        end = pd.Timestamp(scanned.last)
    query = _summary_sql(
        source,
        parsed,
        end=end,
        end_period=_period_of(end, parsed),
        amount=amount is not None,
        scale=scanned.scale,
        first_period=_first_period(scanned, parsed),
    )
    columns = SUMMARY_COLUMNS if amount is not None else SUMMARY_COLUMNS[:3]
    attrs = {"freq": parsed.code, "observation_end": end.isoformat()}
    return _engine_result(source, query, attrs, columns)


def calibration_holdout_split(
    transactions: Any,
    *,
    calibration_end: Any,
    observation_end: Any,
    freq: str,
    customer_id: str,
    timestamp: str,
    amount: str | None,
) -> EngineSummary:
    """The engine version of :func:`custval.calibration_holdout_split`."""
    from custval.rfm import SUMMARY_COLUMNS, _parse_freq

    parsed = _parse_freq(freq)
    source = _source(transactions, customer_id, timestamp, amount)
    if calibration_end is None:
        raise DataError(
            "calibration_end is required; pass the last date of the calibration "
            "period, e.g. '1997-09-30'"
        )
    cal = _moment(calibration_end, "calibration_end")
    scanned = _scan(source, amount is not None)
    if observation_end is not None:
        end = _moment(observation_end, "observation_end")
    else:
        end = pd.Timestamp(scanned.last) if scanned.last is not None else None
    if end is None or end.floor("us") <= cal.floor("us"):
        raise DataError(
            f"observation_end ({end.isoformat() if end is not None else 'no data'}) "
            f"must be after calibration_end ({cal.isoformat()}); pass a later "
            "observation_end or an earlier calibration_end"
        )
    (counts,) = source.collect(
        f"SELECT CAST(sum(CASE WHEN ts <= {_literal(cal)} THEN 1 ELSE 0 END) AS BIGINT), "
        f"CAST(sum(CASE WHEN ts > {_literal(cal)} AND ts <= {_literal(end)} THEN 1 ELSE 0 END) "
        f"AS BIGINT) FROM {source.view}"
    )
    in_calibration, in_holdout = counts
    if not in_calibration:
        raise DataError(
            f"no transaction on or before calibration_end ({cal.isoformat()}); the first one "
            f"is at {pd.Timestamp(scanned.first).isoformat()}: pass a later calibration_end"
        )
    if not in_holdout:
        warnings.warn(
            f"no transaction between calibration_end ({cal.isoformat()}) and "
            f"observation_end ({end.isoformat()}); all holdout columns are 0",
            CustvalWarning,
            stacklevel=3,
        )
    query = _summary_sql(
        source,
        parsed,
        end=end,
        end_period=_period_of(cal, parsed),
        amount=amount is not None,
        scale=scanned.scale,
        first_period=_first_period(scanned, parsed),
        calibration_end=cal,
        holdout_duration=_period_of(end, parsed) - _period_of(cal, parsed),
    )
    columns = list(SUMMARY_COLUMNS if amount is not None else SUMMARY_COLUMNS[:3])
    columns += ["frequency_holdout"] + (["monetary_value_holdout"] if amount else [])
    columns += ["duration_holdout"]
    attrs = {
        "freq": parsed.code,
        "calibration_end": cal.isoformat(),
        "observation_end": end.isoformat(),
    }
    return _engine_result(source, query, attrs, columns)


# --- patterns for fitting -----------------------------------------------------------------------


def summary_patterns(
    summary: EngineSummary | pd.DataFrame, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The distinct rows of a summary's columns with the number of customers of each.

    On an :class:`EngineSummary` the grouping runs in the engine and only the distinct patterns
    come back to this process: a few thousand rows for a daily summary of millions of customers
    (without ``monetary_value``). Every model's ``fit`` accepts the result with
    ``weights=patterns["weight"]`` and gives the parameters of a fit on the full summary (and
    ``fit(engine_summary)`` does exactly this).

    Parameters
    ----------
    summary : EngineSummary or pandas.DataFrame
        A summary from :func:`custval.rfm_summary` (or a split).
    columns : sequence of str, optional
        Columns that make a pattern; default ``frequency, recency, T``.

    Returns
    -------
    pandas.DataFrame
        The pattern columns (float64) and ``weight`` (float64, customers per pattern), sorted by
        the pattern columns; ``attrs`` as the summary's.

    Examples
    --------
    >>> import duckdb, pandas as pd
    >>> from custval import BetaGeoModel, rfm_summary, summary_patterns
    >>> log = pd.DataFrame({"customer_id": [1, 1, 2, 3],
    ...                     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-05",
    ...                                                  "2024-01-05"]),
    ...                     "amount": [10.0, 20.0, 8.0, 5.0]})
    >>> summary_patterns(rfm_summary(duckdb.from_df(log)))  # doctest: +NORMALIZE_WHITESPACE
       frequency  recency    T  weight
    0        0.0      0.0  6.0     2.0
    1        1.0     10.0 10.0     1.0
    """
    columns = list(columns) if columns is not None else ["frequency", "recency", "T"]
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise DataError(
            f"summary is missing pattern column(s) {', '.join(map(repr, missing))}; columns "
            f"present: {', '.join(map(repr, summary.columns))}"
        )
    if isinstance(summary, EngineSummary):
        if summary.engine == "duckdb":
            quoted = ", ".join(f'"{c}"' for c in columns)
            table = summary.frame.query(
                "custval_summary",
                f"SELECT {quoted}, CAST(count(*) AS DOUBLE) AS weight FROM custval_summary "
                f"GROUP BY {quoted} ORDER BY {quoted}",
            ).df()
        else:
            from pyspark.sql import functions as F

            grouped = summary.frame.groupBy(*columns).agg(
                F.count("*").cast("double").alias("weight")
            )
            rows = grouped.collect()
            table = pd.DataFrame([tuple(r) for r in rows], columns=[*columns, "weight"])
            table = table.sort_values(columns, kind="stable")
        patterns = table.astype(np.float64).reset_index(drop=True)
    else:
        patterns = (
            summary.groupby(columns, sort=True)
            .size()
            .astype(np.float64)
            .rename("weight")
            .reset_index()
        )
    patterns.attrs.update(summary.attrs)
    return patterns


def fit_arguments(
    summary: EngineSummary, columns: Sequence[str], weights: Any
) -> tuple[pd.DataFrame, np.ndarray]:
    """``(patterns, weights)`` for a model's ``fit`` on an engine summary."""
    if weights is not None:
        raise DataError(
            "weights cannot be given with an engine summary: its customers are counted in the "
            "engine; fit the summary alone, or pass summary_patterns(summary) with its weights"
        )
    patterns = summary_patterns(summary, columns)
    return patterns, patterns["weight"].to_numpy()


# --- scoring ------------------------------------------------------------------------------------


def _chunk_values(chunk: pd.DataFrame, attrs: dict[str, Any], models: tuple, options: dict):
    """The per-customer columns of the value table for one chunk of a summary (pandas)."""
    from custval.clv import _VALUE_COLUMNS, customer_value_table

    summary = chunk.set_index("customer_id")
    summary.attrs.update(attrs)
    table = customer_value_table(*models, summary, segments=False, progress=False, **options)
    return table[list(_VALUE_COLUMNS)].reset_index(), table.attrs


def _segment_sql(dialect: _Dialect, table: str) -> str:
    """Rank, decile and RFM segment of every customer of ``table``, as the pandas value table.

    Ranks order by ``clv`` descending, ties by customer id (the pandas table is sorted by id);
    the R and F scores are those of :func:`custval.rfm_scores` (share of the customers with a
    different value that a customer beats), computed per distinct value.
    """
    from custval.rfm import _SEGMENT_GRID_NAMES

    div = "//" if dialect is _DUCKDB else "div"

    def score(name: str, value: str) -> str:
        return (
            f"{name}_v AS (SELECT {value} AS v, count(*) AS c FROM {table} GROUP BY {value}), "
            f"{name}_w AS (SELECT v, c, sum(c) OVER (ORDER BY v ROWS UNBOUNDED PRECEDING) - c "
            f"AS worse, count(*) OVER () AS k FROM {name}_v), "
            f"{name}_s AS (SELECT v, CASE WHEN k = 1 THEN 3 ELSE least(5 * worse {div} "
            f"((SELECT count(*) FROM {table}) - c) + 1, 5) END AS s FROM {name}_w)"
        )

    cells = " ".join(
        f"WHEN r_s.s = {r} AND f_s.s = {f} THEN '{name.replace(chr(39), chr(39) * 2)}'"
        for r, row in enumerate(_SEGMENT_GRID_NAMES, start=1)
        for f, name in enumerate(row, start=1)
    )
    since = "-(t.T - t.recency)"
    return (
        f"WITH {score('r', '-(T - recency)')}, {score('f', 'frequency')} "
        f"SELECT t.*, CAST(row_number() OVER (ORDER BY t.clv DESC, t.customer_id) AS BIGINT) "
        "AS value_rank, "
        f"CAST((row_number() OVER (ORDER BY t.clv DESC, t.customer_id) - 1) * 10 {div} "
        f"count(*) OVER () + 1 AS BIGINT) AS value_decile, CASE {cells} END AS segment "
        f"FROM {table} t JOIN r_s ON {since} = r_s.v JOIN f_s ON t.frequency = f_s.v"
    )


def customer_value_table(
    transaction_model: Any,
    spend_model: Any,
    summary: EngineSummary,
    *,
    chunk_size: int = 100_000,
    segments: bool = True,
    **options: Any,
) -> EngineSummary:
    """The value table of :func:`custval.customer_value_table` for an engine summary.

    Scored in the engine: Spark runs the pandas computation on each partition
    (``mapInPandas``, with the fitted parameters shipped to the executors); DuckDB streams the
    summary in chunks of ``chunk_size`` customers, writing each chunk's values to a Parquet
    file. Ranks, deciles and RFM segments need the whole customer base, so they are computed
    afterwards by the engine (window functions over the scored table). The columns equal the
    pandas table of the collected summary, ``clv`` to 1e-13 relative (the kernel's sums over a
    chunk's distinct patterns round differently from those over all customers at once).
    """
    from custval.clv import _SUMMARY_COLUMNS, _TABLE_COLUMNS, _VALUE_COLUMNS

    options.pop("progress", None)
    seed = options.get("random_state", 0)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise DataError(
            f"random_state must be an integer seed when scoring in an engine (got {seed!r}): "
            "every chunk draws the same parameter vectors from it, as the pandas table does"
        )
    models = (transaction_model, spend_model)
    attrs = dict(summary.attrs)
    columns = ["customer_id", *_SUMMARY_COLUMNS]
    if summary.engine == "spark":
        first = summary.frame.select(*columns).limit(1).toPandas()
        _, table_attrs = _chunk_values(first, attrs, models, options)
        id_type = summary.frame.schema["customer_id"].dataType.simpleString()
        schema = f"customer_id {id_type}, " + ", ".join(f"{c} double" for c in _VALUE_COLUMNS)

        def score_batches(batches):
            for batch in batches:
                if len(batch):
                    yield _chunk_values(batch, attrs, models, options)[0]

        # The summary is materialised first: planned together with the Python UDF, Spark 4.3
        # miscompiles its aggregates (a long buffer fed a double) and returns wrong periods.
        inputs = summary.frame.select(*columns).localCheckpoint()
        scored = inputs.mapInPandas(score_batches, schema)
        session = summary.frame.sparkSession
        view = f"custval_scored_{os.getpid()}_{next(_counter)}"
        scored.createOrReplaceTempView(view)
        frame = session.sql(_segment_sql(_SPARK, view)) if segments else scored
        keep = summary._keep
    else:
        import tempfile

        import duckdb
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = tempfile.TemporaryDirectory(prefix="custval-scores-")
        path = os.path.join(folder.name, "values.parquet")
        reader = summary.frame.select(*columns).to_arrow_reader(chunk_size)
        writer = None
        table_attrs: dict[str, Any] = {}
        for batch in reader:
            values, table_attrs = _chunk_values(batch.to_pandas(), attrs, models, options)
            arrow = pa.Table.from_pandas(values, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, arrow.schema)
            writer.write_table(arrow)
        if writer is None:
            raise DataError("the summary has no customers; there is nothing to score")
        writer.close()
        connection = duckdb.connect()
        scored = connection.read_parquet(path)
        frame = scored.query("scored", _segment_sql(_DUCKDB, "scored")) if segments else scored
        keep = (folder, connection, scored)
    table_columns = _TABLE_COLUMNS if segments else _TABLE_COLUMNS[:-1]
    return EngineSummary(
        frame=frame,
        attrs=dict(table_attrs),
        engine=summary.engine,
        columns=tuple(table_columns),
        id_type=summary.id_type,
        _keep=keep,
    )


def _open_log(path: str, engine: str, timestamp: str) -> Any:
    """A Parquet path/glob as is; a CSV file as an engine frame with a parsed timestamp."""
    csv = str(path).lower().endswith((".csv", ".csv.gz", ".tsv", ".txt"))
    if engine == "spark":
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F

        spark = SparkSession.builder.getOrCreate()
        if not csv:
            return spark.read.parquet(str(path))
        frame = spark.read.option("header", True).option("inferSchema", True).csv(str(path))
        return frame.withColumn(timestamp, F.to_timestamp(F.col(timestamp)))
    if not csv:
        return path
    import duckdb

    relation = duckdb.connect().read_csv(str(path))
    column = _DUCKDB.quote(timestamp)
    return relation.query(
        "log", f"SELECT * REPLACE (CAST({column} AS TIMESTAMP) AS {column}) FROM log"
    )


def score_log(
    path: str,
    *,
    engine: str = "duckdb",
    customer_id: str = "customer_id",
    timestamp: str = "timestamp",
    amount: str = "amount",
    freq: str = "W",
    observation_end: Any = None,
    model: str = "bgnbd",
    **options: Any,
) -> EngineSummary:
    """Summary, pattern fits and value table of a Parquet/CSV log in one engine (``custval
    score``): BG/NBD (or Pareto/NBD) and Gamma-Gamma fitted on the distinct patterns."""
    from custval.clv import customer_value_table
    from custval.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel
    from custval.rfm import rfm_summary

    log = _open_log(path, engine, timestamp)
    summary = rfm_summary(
        log,
        customer_id=customer_id,
        timestamp=timestamp,
        amount=amount,
        freq=freq,
        observation_end=observation_end,
    )
    if not isinstance(summary, EngineSummary):  # pragma: no cover - paths always route here
        raise DataError(f"cannot read {path!r} as a Parquet or CSV transaction log")
    transactions = (ParetoNBDModel if model == "pareto" else BetaGeoModel)().fit(summary)
    spend = GammaGammaModel().fit(summary)
    return customer_value_table(transactions, spend, summary, **options)


# --- cleaning -----------------------------------------------------------------------------------


_STRFTIME_TO_JAVA = {
    "Y": "yyyy", "y": "yy", "m": "MM", "d": "dd", "H": "HH", "I": "hh", "M": "mm", "S": "ss",
    "f": "SSSSSS", "p": "a", "b": "MMM", "B": "MMMM", "j": "DDD", "z": "Z",
}  # fmt: skip


def _java_format(fmt: str) -> str:
    """A strftime format (pandas' ``timestamp_format``) as a Spark datetime pattern."""
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            code = fmt[i + 1]
            if code == "%":
                out.append("'%'")
            elif code in _STRFTIME_TO_JAVA:
                out.append(_STRFTIME_TO_JAVA[code])
            else:
                raise DataError(
                    f"timestamp_format={fmt!r}: %{code} has no Spark equivalent here; use "
                    f"%Y %m %d %H %M %S %f %y %I %p %b %B %j %z, or parse the column in Spark"
                )
            i += 2
        else:
            j = i
            while j < len(fmt) and fmt[j] != "%":
                j += 1
            text = fmt[i:j]
            out.append("'" + text.replace("'", "''") + "'" if any(c.isalpha() for c in text)
                       else text)  # fmt: skip
            i = j
    return "".join(out)


def _clean_columns(
    d: _Dialect, columns: dict[str, str], timestamp_format: str | None
) -> dict[str, str]:
    """SQL of the parsed vocabulary columns, as :func:`custval.transactions._validate` reads
    them: ids as stripped text ("17850.0" -> "17850", blank -> missing), amounts and
    quantities as finite doubles (else missing), timestamps as wall-clock timestamps (text
    parsed as ISO 8601 or with ``timestamp_format``; missing outside pandas' range)."""
    q = d.quote

    def ids(name: str) -> str:
        value = q(name)
        if columns[name].upper().startswith(("FLOAT", "DOUBLE", "REAL")):
            value = f"CASE WHEN isnan({value}) THEN NULL ELSE {value} END"
        text = d.strip(f"CAST({value} AS {d.to_text})")
        return f"nullif({d.integral_text(text)}, '')"

    def number(name: str) -> str:
        kind = columns[name].upper()
        if kind.startswith("BOOL"):
            return "CAST(NULL AS DOUBLE)"
        value = (
            f"CAST({q(name)} AS DOUBLE)"
            if _is_numeric_type(kind)
            else d.try_double(d.strip(f"CAST({q(name)} AS {d.to_text})"))
        )
        return (
            f"CASE WHEN isnan({value}) OR abs({value}) = CAST('Infinity' AS DOUBLE) THEN NULL "
            f"ELSE {value} END"
        )

    kind = columns["timestamp"].upper()
    ts = q("timestamp")
    if "TIME ZONE" in kind:  # DuckDB's TIMESTAMPTZ: UTC, without the zone, as pandas
        ts = f"timezone('UTC', {ts})"
    elif kind.startswith("DATE"):
        ts = f"CAST({ts} AS TIMESTAMP)"
    elif not kind.startswith("TIMESTAMP"):
        if _is_numeric_type(kind) or kind.startswith("BOOL"):
            raise DataError(
                f"column 'timestamp' holds numbers ({columns['timestamp']}), not dates; convert "
                "them in the engine first (e.g. to_timestamp(seconds)) before cleaning"
            )
        ts = d.parse_timestamp(d.strip(f"CAST({ts} AS {d.to_text})"), timestamp_format)
    low, high = _literal(pd.Timestamp.min.ceil("us")), _literal(pd.Timestamp.max)
    parsed = {
        "cid": ids("customer_id"),
        "ts": f"CASE WHEN {ts} < {low} OR {ts} > {high} THEN NULL ELSE {ts} END",
        "amt": number("amount"),
    }
    if "order_id" in columns:
        parsed["oid"] = ids("order_id")
    if "quantity" in columns:
        parsed["qty"] = number("quantity")
    if "product_code" in columns:
        parsed["pc"] = ids("product_code")
    return parsed


def _strict_check(source: _Source, reason_sql: str, keys: Sequence[str]) -> None:
    """With ``strict=True``: raise for the first of the data problems that occurs (``r0`` of
    ``reason_sql``), showing the first values in input order."""
    from custval.transactions import _REASON_CODE

    codes = ", ".join(str(_REASON_CODE[k]) for k in keys)
    found = dict(
        source.collect(
            f"SELECT r0, count(*) FROM ({reason_sql}) t WHERE r0 IN ({codes}) GROUP BY r0"
        )
    )
    messages = {
        "missing_customer_id": ("customer_id", "missing customer ids", "fill them in or drop "
                                "those rows"),
        "invalid_timestamp": ("timestamp", "missing or unreadable timestamps", "fix them (pass "
                              "timestamp_format= for a fixed non-ISO format) or drop those rows"),
        "invalid_amount": ("amount", "missing or non-numeric amounts", "fix them (plain numbers "
                           "only) or drop those rows"),
        "after_observation_end": ("timestamp", "timestamps after observation_end",
                                  "move observation_end later or filter those rows out first"),
    }  # fmt: skip
    for key in keys:
        count = found.get(_REASON_CODE[key], 0)
        if count:
            column, problem, fix = messages[key]
            shown = source.collect(
                f"SELECT CAST(raw_{column} AS {source.dialect.to_text}) FROM ({reason_sql}) t "
                f"WHERE r0 = {_REASON_CODE[key]} ORDER BY {_ORDER} LIMIT 5"
            )
            values = ", ".join(repr(v) for (v,) in shown)
            raise DataError(
                f"column {column!r} has {count:,} {problem} (first values: {values}); {fix}, "
                "or pass strict=False to drop and count them"
            )


def clean_transactions(
    frame: Any,
    *,
    observation_end: Any = None,
    strict: bool = False,
    returns: str = "net",
    cancellation_prefix: str | None = "C",
    zero_amounts: str = "drop",
    duplicates: str = "drop",
    exclude_codes: Any = None,
    timestamp_format: str | None = None,
) -> tuple[Any, Any]:
    """The engine version of :func:`custval.clean_transactions` (same options, same rules).

    One SQL definition for DuckDB and Spark SQL. Each row gets the first reason that applies,
    in the pandas order; duplicates are rows equal to an earlier live row (in input order) in
    every parsed column; netting (``returns="net"``) is the pandas path's nearest-first matching
    of returns to earlier purchases of the same customer (and product code), written as the
    same two Lindley recursions: running sums and running minima over a window ordered by
    time, purchases before returns, amount, order id, product code, quantity and input row,
    forward for the returns and backward for the purchases. Amounts that are decimals of a few
    places (cents) are worked on as exact whole units, as the pandas path does, so the clean
    amounts, the netted quantities and every total of the report are equal to the pandas
    results bit for bit. Other amounts cannot be netted on an engine (float sums in a
    window depend on how the engine adds), and their report totals (``fsum`` in DuckDB,
    38-digit decimals in Spark) agree with pandas to rounding.

    The clean log is a lazy frame of the same engine with the pandas columns, in the pandas
    order (``customer_id``, ``timestamp``, ``amount``, then ``order_id``, ``quantity``,
    ``product_code`` when present, then the other columns) and sorted as the pandas log
    (customer, time, amount, order id, product code, quantity, input row). Differences from
    pandas: text timestamps are parsed as ISO 8601 or with ``timestamp_format`` only (pandas
    also infers one other format from the first value); id text is stripped of ASCII
    whitespace only; timestamps keep the engine's resolution (microseconds).
    """
    from custval.rfm import DECIMAL_PLACES, units_fit
    from custval.transactions import (
        _REASON_CODE,
        CleaningReport,
        _check_options,
        _reasons_for,
        _settings,
    )

    excluded, end = _check_options(
        returns, zero_amounts, duplicates, cancellation_prefix, exclude_codes, observation_end
    )
    native, engine, keep = _native(frame)
    columns = _columns_of(native, engine)
    _missing_columns(
        columns,
        ["customer_id", "timestamp", "amount"],
        "clean_transactions expects the custval column names; rename them in the engine first",
    )
    if excluded is not None:
        _missing_columns(
            columns, ["product_code"], "exclude_codes needs the product codes: a "
            "'product_code' column"
        )  # fmt: skip
    d = _DUCKDB if engine == "duckdb" else _SPARK
    q = d.quote
    parsed = _clean_columns(d, columns, timestamp_format)
    vocabulary = ("customer_id", "timestamp", "amount", "order_id", "quantity", "product_code")
    internal = {_FILE, "file_row_number"} if keep is not None else set()
    extras = [c for c in columns if c not in vocabulary and c not in internal]
    select = [f"{expr} AS __{name}" for name, expr in parsed.items()]
    select += [f"{q(c)} AS __x{i}" for i, c in enumerate(extras)]
    select += [f"{q(c)} AS raw_{c}" for c in ("customer_id", "timestamp", "amount")]
    source = _register(native, engine, keep, select, columns["customer_id"])
    has = set(parsed)

    # Amounts as whole units, if they are decimals (the pandas rule, over the valid amounts).
    (scan,) = source.collect(
        f"SELECT count(amt), max({_places_sql(d)}), max(abs(amt)), "
        "CAST(sum(CASE WHEN amt < 0 THEN 1 ELSE 0 END) AS BIGINT) "
        f"FROM (SELECT __amt AS amt FROM {source.view}) a"
    )
    n_amounts, places, largest, negative = scan
    scale = None
    if n_amounts and places in DECIMAL_PLACES and units_fit(n_amounts, float(largest), places):
        scale = f"1e{places}"
    if returns == "net" and scale is None and negative:
        raise DataError(
            "returns='net' on DuckDB or Spark needs amounts that are decimals of at most "
            f"{DECIMAL_PLACES[-1]} places (such as cents), so that netting adds exactly; these "
            "amounts are not (or too large). Round them in the engine (e.g. round(amount, 2)), "
            "pass returns='drop' or 'keep', or clean the log in pandas"
        )

    code = _REASON_CODE
    first = [
        ("__cid IS NULL", "missing_customer_id"),
        ("__ts IS NULL", "invalid_timestamp"),
        ("__amt IS NULL", "invalid_amount"),
    ]
    if end is not None:
        first.append((f"__ts > {_literal(end)}", "after_observation_end"))
    if excluded is not None:
        listed = ", ".join("'" + c.replace("'", "''") + "'" for c in sorted(excluded)) or "NULL"
        first.append((f"__pc IN ({listed})", "excluded_code"))
    r1 = "CASE " + " ".join(f"WHEN {c} THEN {code[k]}" for c, k in first) + " END"
    strict_keys = [k for _, k in first if k != "excluded_code"]
    rows = f"SELECT *, {r1} AS r0 FROM {source.view}"
    if strict:
        _strict_check(source, rows, strict_keys)
    compare = [f"__{c}" for c in parsed] + [f"__x{i}" for i in range(len(extras))]
    later = []
    if duplicates == "drop":
        later.append(
            (
                f"row_number() OVER (PARTITION BY r0 IS NULL, {', '.join(compare)} "
                f"ORDER BY {_ORDER}) > 1",
                "duplicate",
            )
        )
    if zero_amounts == "drop":
        later.append(("__amt = 0", "zero_amount"))
    cancelled = "FALSE"
    if cancellation_prefix is not None and "oid" in has:
        prefix = cancellation_prefix.replace("'", "''")
        cancelled = f"coalesce(substr(__oid, 1, {len(cancellation_prefix)}) = '{prefix}', FALSE)"
    if returns == "drop":
        later.append((f"{cancelled} OR __amt < 0", "return"))
    elif returns == "net":
        later.append((f"{cancelled} AND __amt >= 0", "cancellation_not_negative"))
    r2 = "CASE " + " ".join(f"WHEN {c} THEN {code[k]}" for c, k in later) + " END"
    rows = f"SELECT *, coalesce(r0, {r2 if later else 'NULL'}) AS r FROM ({rows}) t1"
    units = _units(d, scale, "__amt") if scale else "__amt"
    rows = f"SELECT *, {units} AS u FROM ({rows}) t2"

    if returns == "net":
        group = "r IS NULL, __cid" + (", __pc" if "pc" in has else "")
        # the pandas order: time, purchases before returns, amount, ids, quantity, input row
        keys = ["__ts", "CASE WHEN u < 0 THEN 1 ELSE 0 END", "u"]
        if "oid" in has:
            keys.append("__oid")
        if "pc" in has:
            keys.append("__pc")
        if "qty" in has:
            keys.append("__qty")
        keys.append(_ORDER)
        first_nulls = {"__oid", "__pc"}

        def order(desc: bool) -> str:
            parts = []
            for k in keys:
                direction = "DESC" if desc else "ASC"
                if k in first_nulls:
                    parts.append(f"{k} {direction} NULLS {'LAST' if desc else 'FIRST'}")
                elif k == "__qty":
                    parts.append(f"{k} {direction} NULLS {'FIRST' if desc else 'LAST'}")
                else:
                    parts.append(f"{k} {direction}")
            return ", ".join(parts)

        fwd = f"PARTITION BY {group} ORDER BY {order(False)} ROWS UNBOUNDED PRECEDING"
        bwd = f"PARTITION BY {group} ORDER BY {order(True)} ROWS UNBOUNDED PRECEDING"
        fwd_lag = f"PARTITION BY {group} ORDER BY {order(False)}"
        bwd_lag = f"PARTITION BY {group} ORDER BY {order(True)}"
        rows = f"SELECT *, sum(u) OVER ({fwd}) AS s_f, sum(-u) OVER ({bwd}) AS s_b FROM ({rows}) t3"
        rows = (
            f"SELECT *, least(min(s_f) OVER ({fwd}), 0) AS low_f, "
            f"least(min(s_b) OVER ({bwd}), 0) AS low_b FROM ({rows}) t4"
        )
        rows = (
            f"SELECT *, coalesce(lag(low_f) OVER ({fwd_lag}), 0) - low_f AS lost, "
            f"coalesce(lag(low_b) OVER ({bwd_lag}), 0) - low_b AS left_ FROM ({rows}) t5"
        )
        rows = (
            "SELECT *, CASE WHEN r IS NOT NULL OR u < 0 THEN u "
            "ELSE least(greatest(left_, 0), u) END AS nu, "
            "CASE WHEN r IS NULL AND u < 0 THEN least(greatest(lost, 0), -u) END AS unmatched "
            f"FROM ({rows}) t6"
        )
        rows = (
            "SELECT *, CASE WHEN r IS NOT NULL THEN r "
            f"WHEN u < 0 AND unmatched < -u THEN {code['return_netted']} "
            f"WHEN u < 0 THEN {code['return_unmatched']} "
            f"WHEN u > 0 AND nu = 0 THEN {code['purchase_netted_to_zero']} END AS reason, "
            "CASE WHEN r IS NULL AND u >= 0 THEN u - nu ELSE 0 END AS consumed "
            f"FROM ({rows}) t7"
        )
    else:
        rows = f"SELECT *, u AS nu, r AS reason, 0 AS consumed FROM ({rows}) t6"

    # The report: counts and exact unit totals per reason, divided once in Python.
    def total(expression: str) -> str:
        if scale:
            return f"coalesce(sum({expression}), 0)"
        value = f"CAST({expression} AS DECIMAL(38, 18))" if d is _SPARK else expression
        summed = f"sum({value})" if d is _SPARK else f"fsum({value})"
        return f"coalesce(CAST({summed} AS DOUBLE), 0)"

    grouped = source.collect(
        f"SELECT coalesce(reason, -1), count(*), {total('nu')}, {total('consumed')}, "
        f"{total('u')} FROM ({rows}) r GROUP BY coalesce(reason, -1)"
    )
    divide = float(scale) if scale else 1.0
    by_code = {int(c): (int(n), float(a), float(b), float(u)) for c, n, a, b, u in grouped}

    def value(units_total: float) -> float:
        return units_total / divide

    empty = (0, 0.0, 0.0, 0.0)
    consumed = sum(entry[2] for entry in by_code.values())  # exact: whole units
    rows_dropped, amount_dropped = {}, {}
    for key in _reasons_for(returns, zero_amounts, duplicates):
        n, amount, _, original = by_code.get(code[key], empty)
        rows_dropped[key] = n
        if key == "return_netted":
            amount_dropped[key] = value(original + consumed)
        else:
            amount_dropped[key] = value(amount)
    kept = by_code.get(-1, empty)
    report = CleaningReport(
        rows_in=sum(entry[0] for entry in by_code.values()),
        rows_kept=kept[0],
        amount_in=value(sum(entry[3] for entry in by_code.values())),
        amount_kept=value(kept[1]),
        rows_dropped=rows_dropped,
        amount_dropped=amount_dropped,
        amount_netted=(0.0 - value(consumed)) if returns == "net" else 0.0,
        settings=_settings(
            returns, cancellation_prefix, zero_amounts, duplicates, excluded, end, strict
        )
        | {"engine": d.name},
    )
    amount_out = f"nu / {scale}" if scale else "nu"
    out = [f"__cid AS {q('customer_id')}", f"__ts AS {q('timestamp')}"]
    out.append(f"{amount_out} AS {q('amount')}")
    sort = [f"{q('customer_id')} ASC", f"{q('timestamp')} ASC", f"{q('amount')} ASC"]
    if "oid" in has:
        out.append(f"__oid AS {q('order_id')}")
        sort.append(f"{q('order_id')} ASC NULLS FIRST")
    if "qty" in has:
        out.append(f"CASE WHEN nu <> u THEN __qty * (nu / u) ELSE __qty END AS {q('quantity')}")
    if "pc" in has:
        out.append(f"__pc AS {q('product_code')}")
        sort.append(f"{q('product_code')} ASC NULLS FIRST")
    if "qty" in has:
        sort.append(f"{q('quantity')} ASC NULLS LAST")
    out += [f"__x{i} AS {q(c)}" for i, c in enumerate(extras)]
    clean = source.sql(
        f"SELECT {', '.join(out)} FROM (SELECT *, {_ORDER} AS __o FROM ({rows}) r "
        f"WHERE reason IS NULL) k ORDER BY {', '.join(sort)}, __o"
    )
    return clean, report.check()
