"""Numbers formatted for people: one place, used by plots, report tables and notebook narrative."""

from __future__ import annotations

import math

__all__ = ["count", "money", "number", "percent"]


def money(value: float, currency: str = "$", *, decimals: int | None = None) -> str:
    """Format an amount of money compactly: ``$1,234``, ``$12.3k``, ``$4.56M``.

    >>> money(1234.5)
    '$1,234'
    >>> money(2_345_678)
    '$2.35M'
    >>> money(-12.5, decimals=2)
    '-$12.50'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if decimals is not None:
        return f"{sign}{currency}{value:,.{decimals}f}"
    if value >= 1e9:
        return f"{sign}{currency}{value / 1e9:.2f}B"
    if value >= 1e6:
        return f"{sign}{currency}{value / 1e6:.2f}M"
    if value >= 1e5:
        return f"{sign}{currency}{value / 1e3:.0f}k"
    if value >= 100:
        return f"{sign}{currency}{value:,.0f}"
    return f"{sign}{currency}{value:,.2f}"


def percent(share: float, *, decimals: int = 0) -> str:
    """Format a share (0.583) as a percentage ('58%').

    >>> percent(0.583)
    '58%'
    >>> percent(0.0123, decimals=1)
    '1.2%'
    """
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "n/a"
    return f"{100 * share:.{decimals}f}%"


def count(n: float) -> str:
    """Format a count with thousands separators: ``12,345``.

    >>> count(12345)
    '12,345'
    """
    return f"{round(n):,}"


def number(value: float, *, digits: int = 3) -> str:
    """Format a plain number with ``digits`` significant digits: ``1.23``, ``1,230``.

    >>> number(1.23456)
    '1.23'
    >>> number(1234.5)
    '1,234'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"
