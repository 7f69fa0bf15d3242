"""Tables for people: plain headers, a few rows, numbers formatted with :mod:`custval._format`.

Each function returns a pandas ``Styler`` (the formatted cells are its ``.data``, strings) with
the row index hidden, ready for ``display(...)`` in a report notebook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from custval._format import count, escape_html, money, number, percent
from custval.reports._story import period_words, unit_words

__all__ = [
    "at_risk_customers",
    "campaign_by_segment",
    "campaign_payback",
    "churn_models",
    "cleaning",
    "contact_list",
    "contact_plan",
    "investment_plan",
    "model_comparison",
    "people_table",
    "segments",
    "targeting_comparison",
    "top_customers",
    "value_by_segment",
    "years",
]


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
    # Cells and headers may hold text from the data (ids, segment, channel and product names):
    # the Styler writes them as HTML unless told to escape.
    styler = shown.style.hide(axis="index")
    styler = styler.format(escape="html").format_index(escape="html", axis="columns")
    styles = []
    for position, column in enumerate(frame.columns):
        align = "right" if column in formats else "left"
        styles.append({"selector": f"th.col{position}", "props": [("text-align", align)]})
        styles.append({"selector": f"td.col{position}", "props": [("text-align", align)]})
    styler = styler.set_table_styles(styles, overwrite=False)
    if caption:
        styler = styler.set_caption(escape_html(caption))
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


def model_comparison(comparison: pd.DataFrame) -> Styler:
    """The holdout comparison of transaction models, best first, in plain words."""
    best = comparison.attrs.get("best_model", comparison.index[0])
    frame = pd.DataFrame(
        {
            "Model": [f"{m} (used below)" if m == best else str(m) for m in comparison.index],
            "Total purchases: predicted vs actual": comparison["total_error"].to_numpy(),
            "Average error per customer (purchases)": comparison["mae"].to_numpy(),
            "Purchases made by its top 10%": comparison["top_decile_capture"].to_numpy(),
            "Tells active from inactive (AUC)": comparison["roc_auc"].to_numpy(),
        }
    )
    return people_table(
        frame,
        {
            "Total purchases: predicted vs actual": lambda v: (
                ("+" if v > 0 else "") + percent(v, decimals=1)
            ),
            "Average error per customer (purchases)": lambda v: number(v, digits=2),
            "Purchases made by its top 10%": percent,
            "Tells active from inactive (AUC)": lambda v: number(v, digits=2),
        },
    )


def top_customers(value_table: pd.DataFrame, n: int = 10, *, currency: str = "$") -> Styler:
    """The ``n`` most valuable customers: history, chance still active, expected value."""
    top = value_table.nlargest(n, "clv")
    interval = value_table.attrs.get("interval", 0.8)
    horizon = value_table.attrs.get("horizon", "12M")
    frame = pd.DataFrame(
        {
            "Customer": top.index.astype(str),
            "Segment": top["segment"].astype(str).to_numpy(),
            "Purchases so far": (top["frequency"] + 1).to_numpy(),
            "Chance still buying": top["p_alive"].to_numpy(),
            f"Expected purchases (next {horizon})": top["expected_purchases"].to_numpy(),
            "Expected value": top["clv"].to_numpy(),
            f"{percent(interval)} range": [
                f"{money(lo, currency)} – {money(hi, currency)}"
                if pd.notna(lo) and pd.notna(hi)
                else ""
                for lo, hi in zip(top["clv_lower"], top["clv_upper"], strict=True)
            ],
        }
    )
    return people_table(
        frame,
        {
            "Purchases so far": count,
            "Chance still buying": percent,
            f"Expected purchases (next {horizon})": lambda v: number(v, digits=2),
            "Expected value": lambda v: money(v, currency),
        },
    )


def value_by_segment(value_table: pd.DataFrame, *, currency: str = "$") -> Styler:
    """Expected value per RFM segment: customers, total and share of expected value."""
    grouped = value_table.groupby(value_table["segment"].astype(str))
    total = float(value_table["clv"].sum()) or 1.0
    frame = pd.DataFrame(
        {
            "Segment": grouped.size().index,
            "Customers": grouped.size().to_numpy(),
            "Expected value": grouped["clv"].sum().to_numpy(),
            "Share of expected value": grouped["clv"].sum().to_numpy() / total,
            "Chance still buying (average)": grouped["p_alive"].mean().to_numpy(),
        }
    ).sort_values("Expected value", ascending=False)
    return people_table(
        frame,
        {
            "Customers": count,
            "Expected value": lambda v: money(v, currency),
            "Share of expected value": percent,
            "Chance still buying (average)": percent,
        },
    )


def churn_models(result: Any) -> Styler:
    """Back-test metrics of the churn models, averaged over the test dates, best first."""
    from custval.reports._story import model_name

    means = result.metrics.groupby("model")[["roc_auc", "pr_auc", "capture", "brier"]].mean()
    means = means.sort_values("roc_auc", ascending=False)
    frame = pd.DataFrame(
        {
            "Model": [model_name(m)[:1].upper() + model_name(m)[1:] for m in means.index],
            "Ranks leavers above stayers (AUC)": means["roc_auc"].to_numpy(),
            "Leavers found in its top 10%": means["capture"].to_numpy(),
            "Probability error (Brier, lower is better)": means["brier"].to_numpy(),
        }
    )
    return people_table(
        frame,
        {
            "Ranks leavers above stayers (AUC)": percent,
            "Leavers found in its top 10%": percent,
            "Probability error (Brier, lower is better)": lambda v: number(v, digits=2),
        },
    )


def at_risk_customers(
    result: Any, value_table: pd.DataFrame, n: int = 15, *, currency: str = "$"
) -> Styler:
    """The most valuable customers who are likely to stop buying."""
    at_risk = result.at_risk.head(n)
    rows = value_table.reindex(at_risk.index)
    unit = unit_words(value_table.attrs.get("freq", "W"))
    frame = pd.DataFrame(
        {
            "Customer": at_risk.index.astype(str),
            "Segment": rows["segment"].astype(str).to_numpy(),
            "Purchases so far": (rows["frequency"] + 1).to_numpy(),
            f"{unit.capitalize()} since last purchase": (rows["T"] - rows["recency"]).to_numpy(),
            "Expected value": at_risk["value"].to_numpy(),
            "Chance of no purchase": at_risk["churn_probability"].to_numpy(),
            "Value at risk": at_risk["value_at_risk"].to_numpy(),
        }
    )
    return people_table(
        frame,
        {
            "Purchases so far": count,
            f"{unit.capitalize()} since last purchase": count,
            "Expected value": lambda v: money(v, currency),
            "Chance of no purchase": percent,
            "Value at risk": lambda v: money(v, currency),
        },
    )


def campaign_by_segment(revenue: Any, *, currency: str = "$") -> Styler:
    """Observed campaign effect on spend per segment of the campaign table."""
    table = revenue.effect_by("segment")
    columns = {c: c for c in table.columns}
    effect = "observed_uplift" if "observed_uplift" in columns else table.columns[0]
    frame = pd.DataFrame(
        {
            "Segment": table.index.astype(str).str.replace("_", " "),
            "Contacted": table["n_treated"].to_numpy(),
            "Held back": table["n_control"].to_numpy(),
            "Extra spend per contacted customer": table[effect].to_numpy(),
        }
    )
    if {"ci_lower", "ci_upper"} <= set(table.columns):
        frame["95% range"] = [
            f"{money(lo, currency)} to {money(hi, currency)}"
            for lo, hi in zip(table["ci_lower"], table["ci_upper"], strict=True)
        ]
    return people_table(
        frame,
        {
            "Contacted": count,
            "Held back": count,
            "Extra spend per contacted customer": lambda v: money(v, currency),
        },
    )


def investment_plan(plan: Any, *, currency: str = "$") -> Styler:
    """The segment plan: what is at stake, what contacting returns, and the action."""
    table = plan.plan
    frame = pd.DataFrame(
        {
            "Segment": table.index.astype(str),
            "Customers": table["customers"].to_numpy(),
            "Value at stake": table["value_at_stake"].to_numpy(),
            "Chance of losing them (average)": table["churn_probability"].to_numpy(),
            "Return of contacting all, net of cost": table["expected_return"].to_numpy(),
            "Worth contacting one by one": table["customers_worth_contacting"].to_numpy(),
            "Action": table["recommendation"].astype(str).str.capitalize().to_numpy(),
        }
    )
    return people_table(
        frame,
        {
            "Customers": count,
            "Value at stake": lambda v: money(v, currency),
            "Chance of losing them (average)": percent,
            "Return of contacting all, net of cost": lambda v: money(v, currency),
            "Worth contacting one by one": count,
        },
    )


def _range(lo: float, hi: float, currency: str, decimals: int | None = None) -> str:
    if pd.isna(lo) or pd.isna(hi):
        return ""
    return f"{money(lo, currency, decimals=decimals)} to {money(hi, currency, decimals=decimals)}"


def campaign_payback(result: Any, *, currency: str = "$") -> Styler:
    """Did the campaign pay back: profit per contact against its cost, overall and by segment."""
    table = result.summary
    level = percent(result.level)
    names = ["All contacted" if n == "all" else str(n).replace("_", " ") for n in table.index]
    frame = pd.DataFrame(
        {
            "Customers": names,
            "Contacted": table["n_contacted"].to_numpy(),
            "Extra profit per contact": table["incremental_profit"].to_numpy(),
            f"{level} range": [
                _range(lo, hi, currency, 2)
                for lo, hi in zip(
                    table["incremental_profit_lower"],
                    table["incremental_profit_upper"],
                    strict=True,
                )
            ],
            "Cost per contact": table["cost_per_contact"].to_numpy(),
            "Net return per contact": table["net_return"].to_numpy(),
            "Return on cost": table["roi"].to_numpy(),
            "Net return in total": table["total_net_return"].to_numpy(),
            "Paid back?": [
                {"paid back": "Yes", "did not pay back": "No"}.get(v, "Not clear")
                for v in table["verdict"]
            ],
        }
    )
    return people_table(
        frame,
        {
            "Contacted": count,
            "Extra profit per contact": lambda v: money(v, currency, decimals=2),
            "Cost per contact": lambda v: money(v, currency, decimals=2),
            "Net return per contact": lambda v: money(v, currency, decimals=2),
            "Return on cost": lambda v: ("+" if v > 0 else "") + percent(v),
            "Net return in total": lambda v: money(v, currency),
        },
    )


def targeting_comparison(result: Any, *, currency: str = "$") -> Styler:
    """Net profit of three ways of choosing whom to contact, on held-out campaign customers."""
    c = result.comparison
    labels = {
        "by uplift": "By predicted response (recommended)",
        "at random": "At random",
        "by churn risk": "Those most at risk of churning",
    }
    level = percent(1 - result.assumptions.get("alpha", 0.05))
    frame = pd.DataFrame(
        {
            "Whom to contact": [labels.get(n, str(n)) for n in c.index],
            "Customers contacted": c["n_targeted"].to_numpy(),
            "Net profit": c["net_profit"].to_numpy(),
            f"{level} range": [
                _range(lo, hi, currency)
                for lo, hi in zip(c["ci_lower"], c["ci_upper"], strict=True)
            ],
        }
    )
    return people_table(
        frame, {"Customers contacted": count, "Net profit": lambda v: money(v, currency)}
    )


def contact_plan(plan: pd.DataFrame, *, currency: str = "$") -> Styler:
    """The plan by segment, from the same per-customer numbers as the contact list."""
    frame = pd.DataFrame(
        {
            "Segment": plan.index.astype(str),
            "Customers": plan["customers"].to_numpy(),
            "To contact": plan["to_contact"].to_numpy(),
            "Extra profit expected": plan["incremental_profit"].to_numpy(),
            "Cost of the contacts": plan["cost"].to_numpy(),
            "Net return": plan["net_return"].to_numpy(),
            "Action": plan["action"].astype(str).str.capitalize().to_numpy(),
        }
    )
    return people_table(
        frame,
        {
            "Customers": count,
            "To contact": count,
            "Extra profit expected": lambda v: money(v, currency),
            "Cost of the contacts": lambda v: money(v, currency),
            "Net return": lambda v: money(v, currency),
        },
    )


def contact_list(targets: pd.DataFrame, n: int = 10, *, currency: str = "$") -> Styler:
    """The first ``n`` customers of the contact list (the CSV holds them all)."""
    chosen = targets[targets["contact"].astype(bool)].head(n)
    interval = percent(targets.attrs.get("interval", 0.8))
    frame = pd.DataFrame(
        {
            "Customer": chosen.index.astype(str),
            "Segment": chosen["segment"].astype(str).to_numpy(),
            "Expected value": chosen["clv"].to_numpy(),
            f"{interval} range": [
                _range(lo, hi, currency)
                for lo, hi in zip(chosen["clv_lower"], chosen["clv_upper"], strict=True)
            ],
            "Chance of no purchase": chosen["churn_probability"].to_numpy(),
            "Extra profit of a contact": chosen["predicted_incremental_profit"].to_numpy(),
        }
    )
    return people_table(
        frame,
        {
            "Expected value": lambda v: money(v, currency),
            "Chance of no purchase": percent,
            "Extra profit of a contact": lambda v: money(v, currency, decimals=2),
        },
    )
