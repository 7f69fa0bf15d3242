"""Time units: the one place that knows how long a day, week, month or year is.

A summary records its unit in ``summary.attrs["freq"]`` (one of ``"D"``, ``"W"``, ``"M"``,
``"Y"``; ``"h"`` for hours). Durations are written with their unit ("365D", "52W", "12M",
"1Y") and converted to a summary's unit here, so no function guesses units.

Months and years are Gregorian averages (365.2425 days a year, 1/12 of it a month), which is what
pandas uses for period arithmetic on average as well.
"""

from __future__ import annotations

import math
import re

from custval.errors import DataError

DAYS_PER_UNIT: dict[str, float] = {
    "h": 1.0 / 24.0,
    "D": 1.0,
    "W": 7.0,
    "M": 365.2425 / 12.0,
    "Y": 365.2425,
}
_ALIASES = {
    "H": "h",
    "d": "D",
    "w": "W",
    "m": "M",
    "ME": "M",
    "MS": "M",
    "y": "Y",
    "A": "Y",
    "YE": "Y",
    "day": "D",
    "days": "D",
    "week": "W",
    "weeks": "W",
    "month": "M",
    "months": "M",
    "year": "Y",
    "years": "Y",
}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]+)\s*$")


def normalize_freq(freq: str) -> str:
    """Return the canonical unit code for ``freq`` ("D", "W", "M", "Y" or "h").

    >>> normalize_freq("W")
    'W'
    >>> normalize_freq("days")
    'D'
    """
    if not isinstance(freq, str):
        raise DataError(f"freq must be a string such as 'D', 'W' or 'M', got {freq!r}")
    code = _ALIASES.get(freq, freq)
    if code.startswith("W-"):  # pandas anchored weeks, e.g. "W-SUN"
        code = "W"
    if code not in DAYS_PER_UNIT:
        raise DataError(
            f"unsupported time unit {freq!r}; use one of 'D' (days), 'W' (weeks), "
            "'M' (months), 'Y' (years) or 'h' (hours)"
        )
    return code


def parse_duration(duration: str | float | int, *, to: str) -> float:
    """Convert a duration with explicit unit to a number of ``to`` units.

    A bare number is refused: the unit must be stated, because every reference library has a
    silent unit trap here. ``math.inf`` (or the string "inf") is passed through.

    >>> parse_duration("52W", to="D")
    364.0
    >>> round(parse_duration("12M", to="W"), 4)
    52.1775
    """
    to = normalize_freq(to)
    if isinstance(duration, float) and math.isinf(duration):
        return math.inf
    if isinstance(duration, str) and duration.strip().lower() in {"inf", "infinite", "infinity"}:
        return math.inf
    if not isinstance(duration, str):
        raise DataError(
            f"duration {duration!r} has no unit; write it with one, e.g. '365D', '52W' or '12M'"
        )
    match = _DURATION.match(duration)
    if match is None:
        raise DataError(
            f"cannot read duration {duration!r}; write a number and a unit, e.g. "
            "'365D', '52W' or '12M'"
        )
    amount, unit = float(match.group(1)), normalize_freq(match.group(2))
    return amount * DAYS_PER_UNIT[unit] / DAYS_PER_UNIT[to]


def annual_rate_to_period(annual_rate: float, freq: str) -> float:
    """Convert an annual discount rate to the equivalent compound rate per ``freq`` period.

    >>> round(annual_rate_to_period(0.10, "M"), 6)
    0.007974
    """
    if not (annual_rate > -1.0 and math.isfinite(annual_rate)):
        raise DataError(
            f"annual_discount_rate must be a finite number above -1, got {annual_rate!r}"
        )
    years_per_period = DAYS_PER_UNIT[normalize_freq(freq)] / DAYS_PER_UNIT["Y"]
    return (1.0 + annual_rate) ** years_per_period - 1.0


def recorded_freq(summary, freq: str | None = None, *, what: str = "summary") -> str | None:
    """The time unit a model records at fit: the explicit ``freq`` when given, else the unit
    recorded in ``summary.attrs["freq"]``, else None.

    The explicit argument exists because pandas drops ``attrs`` in ``merge`` and ``join``. When
    both are given and name different units a ``DataError`` says so: the data a model is
    fitted on has one unit, and guessing which of the two is wrong would silently rescale every
    parameter and horizon. (Valuation, :func:`summary_freq`, lets the explicit unit win.)

    >>> import pandas as pd
    >>> recorded_freq(pd.DataFrame(), freq="weeks")
    'W'
    >>> recorded_freq(pd.DataFrame()) is None
    True
    """
    given = getattr(summary, "attrs", {}).get("freq")
    if freq is None:
        return None if given is None else normalize_freq(given)
    code = normalize_freq(freq)
    if given is not None and normalize_freq(given) != code:
        raise DataError(
            f"freq={freq!r} disagrees with the {what}'s recorded unit "
            f"(attrs['freq'] == {given!r}); pass the unit the {what} was built with "
            f"(freq={normalize_freq(given)!r}), or rebuild it with "
            f"custval.rfm_summary(freq={code!r})"
        )
    return code


def summary_freq(summary, freq: str | None = None) -> str:
    """The time unit of ``summary``: the explicit ``freq`` when given (it wins over a recorded
    unit: a value table may be asked for in another unit), else the unit recorded in
    ``summary.attrs["freq"]``; a ``DataError`` naming ``freq=`` when there is neither.

    >>> import pandas as pd
    >>> summary_freq(pd.DataFrame(), freq="W")
    'W'
    """
    if freq is None:
        freq = getattr(summary, "attrs", {}).get("freq")
    if freq is None:
        raise DataError(
            "the summary does not record its time unit (summary.attrs['freq'] is missing; "
            "pandas drops attrs in merge and join); pass freq='D', 'W' or 'M' (the freq it "
            "was built with), build it with custval.rfm_summary, or set summary.attrs['freq']"
        )
    return normalize_freq(freq)
