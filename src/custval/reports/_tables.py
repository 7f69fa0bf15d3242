"""Tables for people: plain headers, a few rows, numbers formatted with :mod:`custval._format`.

Each function returns a pandas ``Styler`` (the formatted cells are its ``.data``, strings) with
the row index hidden, ready for ``display(...)`` in a report notebook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from custval._format import count, money, number, percent
from custval.reports._story import period_words, unit_words

__all__ = ["cleaning", "people_table", "segments", "years"]


def people_table(
    frame: pd.DataFrame,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    *,
    caption: str | None = None,
) -> Styler:
    """Format ``frame`` for people: each column through its formatter, the index hidden.

    Parameters
    ----------
    frame : DataFrame
        Columns already named with plain headers, in display order.
    formats : mapping, optional
        Column -> function returning the text of a value; other columns are shown as text.
    caption : str, optional
        A short caption above the table.
    """
    formats = dict(formats or {})
    shown = pd.DataFrame(
        {
            column: [
                "" if _missing(v) else (formats[column](v) if column in formats else str(v))
                for v in frame[column].tolist()
            ]
            for column in frame.columns
        }
    )
    styler = shown.style.hide(axis="index")
    styles = []
    for position, column in enumerate(frame.columns):
        align = "right" if column in formats else "left"
        styles.append({"selector": f"th.col{position}", "props": [("text-align", align)]})
        styles.append({"selector": f"td.col{position}", "props": [("text-align", align)]})
    styler = styler.set_table_styles(styles, overwrite=False)
    if caption:
        styler = styler.set_caption(caption)
    return styler


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def cleaning(report: Any, *, currency: str = "$") -> Styler:
    """The cleaning reconciliation: lines and revenue in, left out by reason, used."""
    labels = dict(report.LABELS)
    labels.update(
        {
            "missing_customer_id": "No customer id (guest orders)",
            "excluded_code": "Not a product sale (postage, fees)",
            "duplicate": "Exact copy of another line",
            "zero_amount": "Worth nothing",
            "return_netted": "Return, set against its purchase",
            "purchase_netted_to_zero": "Purchase returned in full",
            "return_unmatched": "Return of a purchase before the data starts",
        }
    )
    rows = [("In the file", report.rows_in, report.amount_in)]
    for key in report.reasons:
        if report.rows_dropped[key]:
            rows.append((labels[key], -report.rows_dropped[key], -report.amount_dropped[key]))
    rows.append(("Used in the reports", report.rows_kept, report.amount_kept))
    frame = pd.DataFrame(rows, columns=["", "Lines", "Revenue"])
    frame["Share of lines"] = frame["Lines"].abs() / report.rows_in
    frame = frame[["", "Lines", "Share of lines", "Revenue"]]

    def signed_count(value: float) -> str:
        return ("−" if value < 0 else "") + count(abs(value))

    def signed_money(value: float) -> str:
        if abs(value) < 0.005:
            return "–"
        return ("−" if value < 0 else "") + money(abs(value), currency)

    return people_table(
        frame,
        {
            "Lines": signed_count,
            "Share of lines": lambda v: percent(v, decimals=1),
            "Revenue": signed_money,
        },
    )


def years(activity: pd.DataFrame, *, currency: str = "$") -> Styler:
    """Revenue, orders and customers per calendar year (partial years say which months)."""
    period = activity.attrs.get("period", "M")
    by_year = activity.groupby(activity.index.year)
    frame = pd.DataFrame(
        {
            "Year": [_year_label(group, period) for _, group in by_year],
            "Revenue": by_year["revenue"].sum().to_numpy(),
            "Orders": by_year["orders"].sum().to_numpy(),
            "New customers": by_year["new_customers"].sum().to_numpy(),
        }
    )
    return people_table(
        frame,
        {
            "Revenue": lambda v: money(v, currency),
            "Orders": count,
            "New customers": count,
        },
    )


def _year_label(group: pd.DataFrame, period: str) -> str:
    year = group.index[0].year
    months = 3 * len(group) if period.startswith("Q") else len(group)
    if months >= 12 and not group["partial"].any():
        return str(year)
    first, last = group.index[0], group.index[-1]
    if first == last:
        return f"{year} ({period_words(first, period)} only, partial)"
    return f"{year} ({period_words(first, period)} to {period_words(last, period)}, partial)"


def segments(table: pd.DataFrame, *, currency: str = "$") -> Styler:
    """RFM segments: size, share of revenue, habits."""
    unit = unit_words(table.attrs.get("freq", "W"))
    frame = pd.DataFrame(
        {
            "Segment": table.index.astype(str),
            "Customers": table["customers"].to_numpy(),
            "Share of customers": table["customer_share"].to_numpy(),
            "Share of revenue": table["revenue_share"].to_numpy(),
            "Revenue per customer": table["revenue_per_customer"].to_numpy(),
            "Repeat purchases (average)": table["repeat_purchases"].to_numpy(),
            f"{unit.capitalize()} since last purchase (average)": table[
                "periods_since_last"
            ].to_numpy(),
        }
    )
    return people_table(
        frame,
        {
            "Customers": count,
            "Share of customers": percent,
            "Share of revenue": percent,
            "Revenue per customer": lambda v: money(v, currency),
            "Repeat purchases (average)": lambda v: number(v, digits=2),
            f"{unit.capitalize()} since last purchase (average)": count,
        },
    )
