"""The narrative of the reports: sentences computed from results, never typed by hand.

Functions named after a section return Markdown for ``display(Markdown(...))`` (dollar signs
escaped so Markdown does not read them as math). Functions ending in ``_title`` return the
plain-text title of a chart, stating its finding. ``*_summary`` functions return the plain
sentences a notebook records with :func:`custval.reports.record_findings` for the index page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from custval._format import count, escape_markdown, money, number, percent

__all__ = [
    "activity",
    "activity_title",
    "campaign",
    "campaign_payback",
    "churn_backtest",
    "churn_risk",
    "churn_summary",
    "cleaning",
    "cohort_title",
    "cohorts",
    "concentration",
    "conditional_expectations",
    "contact_list",
    "customer_attribute_effects",
    "customer_base_summary",
    "customer_value_summary",
    "data_overview",
    "date_words",
    "horizon_words",
    "intervals",
    "investment_summary",
    "key_findings",
    "markdown",
    "missing_data",
    "model_comparison",
    "model_name",
    "payback_story",
    "period_words",
    "plain",
    "plan_from_targets",
    "plan_story",
    "programme_payback",
    "retention",
    "save_rate",
    "segments",
    "segments_title",
    "targeting",
    "top_customers_title",
    "unit_words",
    "valuable_at_risk",
    "value_overview",
    "value_risk_title",
]

_UNITS = {"D": "day", "W": "week", "M": "month", "Y": "year", "h": "hour", "Q": "quarter"}


# --- words ------------------------------------------------------------------------------------


def markdown(text: str | Iterable[str]) -> str:
    """Join sentences or paragraphs into Markdown, escaping dollar signs (not math).

    Text from the data or the options inside them must already have passed
    :func:`custval._format.escape_markdown` (the section functions here do that).
    """
    if not isinstance(text, str):
        text = "\n\n".join(t for t in text if t)
    return text.replace("\\$", "$").replace("$", "\\$")


def plain(text: str) -> str:
    """Plain text (a chart title, a headline) as Markdown that shows exactly that text.

    Examples
    --------
    >>> plain("<b>x</b> costs $5")
    '&#60;b&#62;x&#60;&#47;b&#62; costs &#36;5'
    """
    return markdown(escape_markdown(text))


def unit_words(freq: str, n: float | None = None) -> str:
    """The unit of ``freq`` in words: ``unit_words("W") == "weeks"``, ``unit_words("W", 1)``
    is ``"week"``."""
    base = _UNITS.get(str(freq)[:1].upper() if freq != "h" else "h", str(freq))
    return base if n is not None and abs(n - 1) < 1e-9 else base + "s"


def horizon_words(horizon: str) -> str:
    """``"12M"`` -> ``"12 months"``, ``"52W"`` -> ``"52 weeks"``, ``"inf"`` -> the whole future."""
    text = str(horizon).strip()
    if text.lower() in {"inf", "infinite", "lifetime"}:
        return "the customer's whole future"
    number, unit = text[:-1], text[-1:].upper()
    if unit in _UNITS and number.replace(".", "", 1).isdigit():
        value = float(number)
        return f"{value:g} {unit_words(unit, value)}"
    return text


def date_words(moment: Any) -> str:
    """``2011-12-09`` -> ``"9 Dec 2011"``."""
    moment = pd.Timestamp(moment)
    return f"{moment.day} {moment:%b %Y}"


def period_words(start: Any, period: str) -> str:
    """A period by its first day: ``"Nov 2011"`` for a month, ``"Q4 2011"`` for a quarter."""
    start = pd.Timestamp(start)
    if str(period).upper().startswith("Q"):
        return f"Q{start.quarter} {start.year}"
    return f"{start:%b %Y}"


def _signed_change(new: float, old: float) -> str:
    if not old:
        return "not comparable"
    change = new / old - 1.0
    if abs(change) < 0.005:
        return "level with"
    return f"{'up' if change > 0 else 'down'} {percent(abs(change))} on"


def key_findings(sentences: Iterable[str], *, title: str = "In short") -> str:
    """The headline sentences (plain text) as a Markdown list under a small heading; each
    sentence is escaped, so nothing in it becomes markup."""
    items = "\n".join(f"- {escape_markdown(s)}" for s in sentences)
    return markdown(f"**{title}**\n\n{items}")


def missing_data(what: str, needs: str) -> str:
    """A sentence saying why a section is skipped and what data would enable it."""
    return markdown(f"*This section needs {needs}, which this data set does not include. {what}*")


# --- 01 customer base -------------------------------------------------------------------------


def data_overview(data: Any, activity: pd.DataFrame, *, currency: str = "$") -> str:
    """Opening paragraph: the data, its period and its size."""
    currency = escape_markdown(currency)  # user text in Markdown
    clean = data.transactions
    customers = clean["customer_id"].nunique()
    orders = int(activity["orders"].sum())
    revenue = float(clean["amount"].sum())
    start, end = clean["timestamp"].min(), clean["timestamp"].max()
    return markdown(
        f"This report describes **{count(customers)} customers** who placed "
        f"**{count(orders)} orders** worth **{money(revenue, currency)}** between "
        f"{date_words(start)} and {date_words(end)}, in {escape_markdown(data.source)}. "
        "Revenue is net of returns throughout."
    )


def cleaning(report: Any, *, currency: str = "$") -> str:
    """What cleaning kept and removed, and that every line and amount is accounted for."""
    currency = escape_markdown(currency)  # user text in Markdown
    labels = {
        "missing_customer_id": "had no customer id (guest orders cannot be followed over time)",
        "invalid_timestamp": "had no readable date",
        "invalid_amount": "had no readable amount",
        "after_observation_end": "were dated after the end of the period",
        "excluded_code": "were not product sales (postage, fees and adjustments)",
        "duplicate": "were exact copies of another line",
        "zero_amount": "were worth nothing (free items)",
        "return": "were returns or cancellations",
        "cancellation_not_negative": "were cancellations with a positive amount",
        "return_unmatched": "were returns of purchases made before the data starts",
        "purchase_netted_to_zero": "were purchases returned in full",
    }
    parts = []
    for key, label in labels.items():
        rows = report.rows_dropped.get(key, 0)
        if rows:
            amount = report.amount_dropped.get(key, 0.0)
            worth = f", worth {money(amount, currency)}" if abs(amount) >= 0.5 else ""
            parts.append((rows, f"{count(rows)} {label}{worth}"))
    parts.sort(key=lambda item: -item[0])
    sentences = [
        f"The file has {count(report.rows_in)} lines worth {money(report.amount_in, currency)}; "
        f"{count(report.rows_kept)} of them ({percent(report.rows_kept / report.rows_in)}) "
        f"worth {money(report.amount_kept, currency)} are used in this report."
    ]
    if parts:
        listed = "; ".join(text for _, text in parts)
        sentences.append(f"Lines left out: {listed}.")
    netted = report.rows_dropped.get("return_netted", 0)
    if netted:
        sentences.append(
            f"{count(netted)} returns worth {money(-report.amount_netted, currency)} were set "
            "against the purchases they returned, so revenue is counted net of returns."
        )
    if report.reconciles:
        sentences.append(
            "Every line and every unit of money is accounted for: what is used plus what is "
            "left out adds up to the file."
        )
    else:  # pragma: no cover - a CleaningReport made by custval always reconciles
        sentences.append("The cleaning report does not add up; treat these numbers with care.")
    return markdown(" ".join(sentences))


def _full(activity: pd.DataFrame) -> pd.DataFrame:
    return activity[~activity["partial"]]


def _usable_sentence(report: Any) -> str:
    """'92% of the 70,187 lines are usable; most of the rest are X and Y (all counted).'"""
    names = {
        "missing_customer_id": "guest orders without a customer id",
        "invalid_timestamp": "lines without a date",
        "invalid_amount": "lines without an amount",
        "after_observation_end": "lines after the end of the period",
        "excluded_code": "postage and fee lines",
        "duplicate": "duplicates",
        "zero_amount": "free items",
        "return": "returns",
        "cancellation_not_negative": "odd cancellations",
        "return_unmatched": "returns of earlier purchases",
        "return_netted": "returns (netted against their purchases)",
        "purchase_netted_to_zero": "purchases returned in full",
    }
    top = sorted(
        (k for k, v in report.rows_dropped.items() if v), key=lambda k: -report.rows_dropped[k]
    )[:2]
    sentence = (
        f"{percent(report.rows_kept / report.rows_in)} of the {count(report.rows_in)} lines in "
        "the data are usable"
    )
    if top:
        sentence += "; most of the rest are " + " and ".join(names.get(k, k) for k in top)
    return sentence + ", all counted so that the amounts reconcile."


def activity_title(activity: pd.DataFrame, *, currency: str = "$") -> str:
    """Chart title: the revenue trend over the last year, or the peak month."""
    full = _full(activity)
    period = activity.attrs.get("period", "M")
    per_year = 4 if period.startswith("Q") else 12
    if len(full) >= 2 * per_year:
        last = full["revenue"].iloc[-per_year:].sum()
        before = full["revenue"].iloc[-2 * per_year : -per_year].sum()
        change = _signed_change(last, before)
        return f"Revenue over the last 12 months was {change} the year before"
    if full.empty:
        full = activity
    peak = full["revenue"].idxmax()
    return (
        f"Revenue peaked in {period_words(peak, period)} at "
        f"{money(full['revenue'].max(), currency)}"
    )


def activity(activity: pd.DataFrame, *, currency: str = "$") -> str:
    """Revenue and customers over time in sentences."""
    currency = escape_markdown(currency)  # user text in Markdown
    period = activity.attrs.get("period", "M")
    unit = "month" if period == "M" else "quarter"
    per_year = 4 if period.startswith("Q") else 12
    full = _full(activity)
    sentences = []
    if len(full) >= 2 * per_year:
        last, before = full.iloc[-per_year:], full.iloc[-2 * per_year : -per_year]
        sentences.append(
            f"In the last 12 full months ({period_words(last.index[0], period)} to "
            f"{period_words(last.index[-1], period)}) revenue was "
            f"{money(last['revenue'].sum(), currency)}, "
            f"{_signed_change(last['revenue'].sum(), before['revenue'].sum())} the 12 months "
            f"before; on average {count(last['active_customers'].mean())} customers bought "
            f"each {unit} ({_signed_change(last['active_customers'].mean(), before['active_customers'].mean())} "  # noqa: E501
            "the year before)."
        )
    elif not full.empty:
        sentences.append(
            f"On average {count(full['active_customers'].mean())} customers bought each {unit}, "
            f"spending {money(full['revenue'].mean(), currency)} a {unit} in total."
        )
    if not full.empty:
        peak = full["revenue"].idxmax()
        sentences.append(
            f"The busiest {unit} was {period_words(peak, period)}, with "
            f"{money(full.loc[peak, 'revenue'], currency)} from "
            f"{count(full.loc[peak, 'active_customers'])} customers."
        )
        new_share = full["new_customers"].sum() / max(full["active_customers"].sum(), 1)
        sentences.append(
            f"First-time buyers make up {percent(new_share)} of the customers active in a "
            f"typical {unit}."
        )
    partial = activity[activity["partial"]]
    if len(partial):
        names = " and ".join(period_words(p, period) for p in partial.index)
        sentences.append(
            f"{names} {'is' if len(partial) == 1 else 'are'} only partly covered by the data, "
            "so the chart shows them hatched and the comparisons leave them out."
        )
    return markdown(" ".join(sentences))


def _cohort_reference(retention: pd.DataFrame) -> tuple[int, int]:
    """The horizons the cohort sentences quote: the next period and about a year later."""
    period = retention.attrs.get("period", "M")
    year = 4 if period.startswith("Q") else 12
    columns = [c for c in retention.columns if c > 0 and retention[c].notna().sum() >= 2]
    if not columns:
        return 1, 1
    later = year if year in columns else max(columns)
    return 1, later


def _weighted(retention: pd.DataFrame, column: int) -> float:
    sizes = retention.attrs["sizes"]
    values = retention[column]
    mask = values.notna()
    if not mask.any():
        return math.nan
    return float(np.average(values[mask], weights=sizes[mask]))


def cohort_title(retention: pd.DataFrame) -> str:
    """Chart title: how many new customers buy again in the next period."""
    period = retention.attrs.get("period", "M")
    unit = "month" if period == "M" else "quarter"
    first, _ = _cohort_reference(retention)
    share = _weighted(retention, first) if first in retention.columns else math.nan
    if math.isnan(share):
        return "Too little history to follow customers after their first purchase"
    return f"{percent(share)} of new customers buy again in the {unit} after their first"


def cohorts(retention: pd.DataFrame) -> str:
    """Acquisition cohorts in sentences (repeat buying after the first period, and later)."""
    period = retention.attrs.get("period", "M")
    unit = "month" if period == "M" else "quarter"
    sizes = retention.attrs["sizes"]
    first, later = _cohort_reference(retention)
    if first not in retention.columns or retention[first].notna().sum() == 0:
        return markdown(
            f"The data covers too few {unit}s to follow customers after their first purchase."
        )
    sentences = [
        f"Customers are grouped by the {unit} of their first purchase ({count(len(sizes))} "
        f"groups of {count(sizes.min())} to {count(sizes.max())} customers). On average "
        f"{percent(_weighted(retention, first))} of a group buys again in the next {unit}"
    ]
    if later != first:
        year = 4 if period.startswith("Q") else 12
        when = "a year on" if later == year else f"{later} {unit}s on"
        sentences[0] += f", and {percent(_weighted(retention, later))} still buy {when}."
    else:
        sentences[0] += "."
    observed = retention[first].dropna()
    if len(observed) >= 4:
        half = len(observed) // 2
        early, late = observed.iloc[:half], observed.iloc[half:]
        w_early = sizes.reindex(early.index)
        w_late = sizes.reindex(late.index)
        early_rate = float(np.average(early, weights=w_early))
        late_rate = float(np.average(late, weights=w_late))
        if abs(late_rate - early_rate) >= 0.02:
            direction = "more" if late_rate > early_rate else "less"
            sentences.append(
                f"Recent groups come back {direction} often: {percent(late_rate)} buy again in "
                f"their next {unit}, against {percent(early_rate)} for the earlier groups."
            )
        else:
            sentences.append(
                f"Recent groups come back about as often as earlier ones ({percent(late_rate)} "
                f"against {percent(early_rate)} in the next {unit})."
            )
    if retention.attrs.get("left_out"):
        sentences.append(
            f"{count(retention.attrs['left_out'])} customers whose first purchase fell in a "
            f"{unit} with very few newcomers are left out of this view."
        )
    others = sizes.iloc[1:]
    if len(others) >= 2 and sizes.iloc[0] > 2 * others.median():
        sentences.append(
            f"The first group ({period_words(sizes.index[0], period)}, "
            f"{count(sizes.iloc[0])} customers) is large because it also holds every customer "
            "who was already buying when the data starts; its rates describe established "
            "customers rather than new ones."
        )
    return markdown(" ".join(sentences))


def segments_title(table: pd.DataFrame) -> str:
    """Chart title: what the best segment is worth relative to its size."""
    if "Champions" in table.index:
        row = table.loc["Champions"]
        name = "Champions"
    else:
        name = table["revenue_share"].idxmax()
        row = table.loc[name]
    return (
        f"{name} are {percent(row['customer_share'])} of customers and bring "
        f"{percent(row['revenue_share'])} of revenue"
    )


def segments(table: pd.DataFrame, *, currency: str = "$") -> str:
    """RFM segments in sentences: the best, the ones slipping away, the ones gone."""
    currency = escape_markdown(currency)  # user text in Markdown
    freq = table.attrs.get("freq", "W")
    unit = unit_words(freq)
    sentences = [
        "Customers are placed in segments by how recently and how often they bought "
        "(five levels each, from the bottom fifth to the top fifth of customers)."
    ]

    def group(names: list[str]) -> pd.DataFrame:
        return table.loc[[n for n in names if n in table.index]]

    best = group(["Champions", "Loyal"])
    if len(best):
        sentences.append(
            f"**Champions and Loyal customers** ({count(best['customers'].sum())}, "
            f"{percent(best['customer_share'].sum())} of customers) bring "
            f"{percent(best['revenue_share'].sum())} of all revenue."
        )
    risk = group(["At risk", "Can't lose them"])
    if len(risk):
        since = np.average(risk["periods_since_last"], weights=risk["customers"])
        sentences.append(
            f"**At risk and Can't lose them** ({count(risk['customers'].sum())} customers) "
            f"used to buy often but have not bought for {count(since)} {unit} on average; "
            f"they brought {percent(risk['revenue_share'].sum())} of revenue, which makes them "
            "the first group to win back."
        )
    new = group(["New", "Promising", "Potential loyalists"])
    if len(new):
        sentences.append(
            f"**New, Promising and Potential loyalists** ({count(new['customers'].sum())}) "
            "bought recently but only a few times: the group to turn into regulars."
        )
    gone = group(["Hibernating", "Lost"])
    if len(gone):
        sentences.append(
            f"**Hibernating and Lost** ({count(gone['customers'].sum())}, "
            f"{percent(gone['customer_share'].sum())} of customers) bought rarely and long "
            f"ago and brought {percent(gone['revenue_share'].sum())} of revenue."
        )
    return markdown(" ".join(sentences))


def customer_base_summary(
    data: Any,
    activity: pd.DataFrame,
    retention: pd.DataFrame,
    segment_table: pd.DataFrame,
    *,
    currency: str = "$",
) -> list[str]:
    """The headline sentences of the customer-base report, for the index page."""
    clean = data.transactions
    report = data.cleaning
    sentences = [
        f"{count(clean['customer_id'].nunique())} customers spent "
        f"{money(float(clean['amount'].sum()), currency)} between "
        f"{date_words(clean['timestamp'].min())} and {date_words(clean['timestamp'].max())}.",
        _usable_sentence(report),
        activity_title(activity, currency=currency) + ".",
    ]
    title = cohort_title(retention)
    if not title.startswith("Too little"):
        sentences.append(title + ".")
    sentences.append(segments_title(segment_table) + ".")
    return sentences


# --- 02 customer value ------------------------------------------------------------------------


def _span_words(split: pd.DataFrame) -> tuple[str, str, str]:
    calibration_end = pd.Timestamp(split.attrs["calibration_end"])
    observation_end = pd.Timestamp(split.attrs["observation_end"])
    duration = float(split["duration_holdout"].iloc[0]) if len(split) else 0.0
    unit = unit_words(split.attrs.get("freq", "W"), duration)
    return date_words(calibration_end), date_words(observation_end), f"{count(duration)} {unit}"


def model_comparison(comparison: pd.DataFrame, split: pd.DataFrame) -> str:
    """How the models were judged and which one predicted the holdout best."""
    cal_end, obs_end, holdout = _span_words(split)
    best = comparison.attrs.get("best_model", comparison.index[0])
    row = comparison.loc[best]
    names = ", ".join(str(m) for m in comparison.index)
    sentences = [
        f"Before trusting any prediction, each model ({names}) was fitted on the purchases up "
        f"to {cal_end} and asked to predict the following {holdout} (to {obs_end}), which it "
        "had not seen."
    ]
    direction = "more" if row["total_error"] > 0 else "fewer"
    sentences.append(
        f"**{best}** did best: it predicted {percent(abs(row['total_error']), decimals=1)} "
        f"{direction} repeat purchases in total than customers actually made, and was off by "
        f"{number(row['mae'], digits=2)} purchases per customer on average."
    )
    if "top_decile_capture" in row and pd.notna(row["top_decile_capture"]):
        sentences.append(
            f"The 10% of customers it ranked highest made "
            f"{percent(row['top_decile_capture'])} of all purchases in that period."
        )
    metric = comparison.attrs.get("metric", "rmse")
    values = comparison[metric].astype(float)
    if len(values) > 1 and values.min() > 0 and values.max() / values.min() - 1 < 0.02:
        sentences.append(
            "The models are within 2% of each other, so the choice matters little for the "
            "numbers below."
        )
    return markdown(" ".join(sentences))


def conditional_expectations(table: pd.DataFrame) -> str:
    """Whether the model gets light and heavy buyers right."""
    freq = table.attrs.get("freq", "W")
    gap = table["difference"].abs()
    worst = gap.idxmax()
    heavy = table.index[-1]
    return markdown(
        f"Grouped by how many repeat purchases customers made before the holdout, the model's "
        f"average prediction for the holdout is within "
        f"{number(gap.max(), digits=2)} purchases of what each group actually did (largest gap: "
        f"customers with {worst} repeat purchases). The heaviest buyers ({heavy} repeat "
        f"purchases, {count(table.loc[heavy, 'n_customers'])} customers) made "
        f"{number(table.loc[heavy, 'actual'], digits=2)} purchases each, against "
        f"{number(table.loc[heavy, 'predicted'], digits=2)} predicted. Time unit: "
        f"{unit_words(freq)}."
    )


def _value_basis(value_table: pd.DataFrame) -> str:
    margin = value_table.attrs.get("margin", 1.0)
    if value_table.attrs.get("value_basis") == "contribution" and isinstance(margin, int | float):
        return f"profit at a {percent(margin)} margin"
    if value_table.attrs.get("value_basis") == "contribution":
        return "profit after each customer's margin"
    return "revenue (no margin was given, so this is not profit)"


def value_overview(value_table: pd.DataFrame, *, currency: str = "$") -> str:
    """The value table in sentences: total expected value, who is still active."""
    currency = escape_markdown(currency)  # user text in Markdown
    horizon = horizon_words(value_table.attrs.get("horizon", "12M"))
    rate = value_table.attrs.get("annual_discount_rate", 0.1)
    total = float(value_table["clv"].sum())
    active = float((value_table["p_alive"] >= 0.5).mean())
    purchases = float(value_table["expected_purchases"].sum())
    return markdown(
        f"Over the next {horizon}, the {count(len(value_table))} customers are expected to make "
        f"{count(purchases)} purchases worth **{money(total, currency)}** in "
        f"{_value_basis(value_table)}, discounted at {percent(rate)} a year "
        f"({money(total / max(len(value_table), 1), currency)} per customer on average). "
        f"{percent(active)} of customers are more likely than not to still be buying."
    )


def top_customers_title(value_table: pd.DataFrame, n: int = 10, *, currency: str = "$") -> str:
    """Caption for the table of the most valuable customers."""
    top = value_table.nlargest(n, "clv")
    return (
        f"The {n} most valuable customers are expected to bring "
        f"{money(float(top['clv'].sum()), currency)} over the next "
        f"{horizon_words(value_table.attrs.get('horizon', '12M'))}"
    )


def concentration(result: Any, *, currency: str = "$") -> str:
    """How concentrated value is, and how much of the top customers' value is at risk."""
    currency = escape_markdown(currency)  # user text in Markdown
    shares = result.shares.set_index("top_share")["value_share"]
    parts = [f"the top {percent(k)} hold {percent(v)}" for k, v in shares.items()]
    listed = ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]
    sentences = [f"Expected value is concentrated: {listed} of it."]
    gini = float(result.gini)
    words = "very unequal" if gini >= 0.6 else "unequal" if gini >= 0.4 else "fairly even"
    sentences.append(f"(Gini {number(gini, digits=2)}: {words}.)")
    at_risk = result.at_risk
    high = result.assumptions.get("high_value_share", 0.2)
    if len(at_risk):
        sentences.append(
            f"{count(len(at_risk))} customers in the top {percent(high)} by value are more "
            f"likely than not to have stopped buying; together they hold "
            f"{money(float(at_risk['value'].sum()), currency)} of expected value "
            f"({money(float(at_risk['value_at_risk'].sum()), currency)} of it at risk). They "
            "are the first to win back (see the churn report)."
        )
    else:
        sentences.append(f"None of the top {percent(high)} by value looks likely to be lost.")
    return markdown(" ".join(sentences))


def intervals(value_table: pd.DataFrame, n: int = 100, *, currency: str = "$") -> str:
    """How certain the customer values are."""
    currency = escape_markdown(currency)  # user text in Markdown
    interval = value_table.attrs.get("interval", 0.8)
    if value_table["clv_lower"].isna().all():
        reason = value_table.attrs.get("ranges_note", "no parameter draws were made")
        return markdown(f"Each value is an estimate; no ranges are shown because {reason}.")
    top = value_table.nlargest(n, "clv")
    width = ((top["clv_upper"] - top["clv_lower"]) / top["clv"]).median()
    return markdown(
        f"Each value is an estimate. For the {count(len(top))} most valuable customers the "
        f"{percent(interval)} range is typically {percent(width)} of the estimate wide. The "
        "ranges reflect how precisely the model is estimated from this data; they do not "
        "cover changes in the business (prices, assortment, competitors)."
    )


_EFFECT_VERBS = {
    # process: (more, less) with {m} the multiplier, {share} the shortfall in percent
    "purchase": ("buy {m}x as often as", "buy {share} less often than"),
    "spend": ("spend {m}x as much per order as", "spend {share} less per order than"),
}
#: what each process is, for the effects without a clear difference
_EFFECT_WHAT = {"purchase": "how often customers buy", "spend": "spend per order"}


def _times(value: float) -> str:
    """A multiplier: one decimal from 0.95 on (1.6), two below (0.74)."""
    return f"{value:.1f}" if value >= 0.95 else f"{value:.2f}"


def _effect_sentence(process: str, who: str, than: str, row: pd.Series) -> str | None:
    """One effect in words, e.g. "Customers from the referral channel buy 1.6x as often as
    those from the direct channel (95% range 1.4x to 1.8x)."; None for processes without
    words here."""
    if process not in _EFFECT_VERBS:
        return None
    multiplier = float(row["multiplier"])
    more, less = _EFFECT_VERBS[process]
    verb = (more if multiplier >= 1 else less).format(
        m=_times(multiplier), share=percent(1.0 - multiplier)
    )
    interval = ""
    if np.isfinite(row["lower_95"]) and np.isfinite(row["upper_95"]):
        interval = f" (95% range {_times(row['lower_95'])}x to {_times(row['upper_95'])}x)"
    return f"{who} {verb} {than}{interval}."


def customer_attribute_effects(*models: Any, alpha: float = 0.05) -> str:
    """What the customer attributes say about buying and spending, in a marketer's words.

    For each model fitted with covariates (:func:`custval.covariate_effects`): every effect
    whose Wald test rejects "no difference" at ``alpha`` as a sentence ("Customers from the
    referral channel buy 1.6x as often as those from the direct channel (95% range 1.4x to
    1.8x)."), the others named in one closing sentence. Attribute names and levels are
    escaped (they come from the data).

    Parameters
    ----------
    *models : fitted models
        Transaction and spend models; those without covariates are skipped.
    alpha : float, default 0.05
        Significance level of the Wald tests.

    Returns
    -------
    str
        Markdown; a sentence saying no attributes were used when no model has covariates.

    Examples
    --------
    >>> from custval import BetaGeoModel
    >>> from custval.datasets import simulate_beta_geo_covariates
    >>> summary, customers = simulate_beta_geo_covariates(
    ...     0.5, 5.0, 0.8, 2.5, purchase={"channel[referral]": 0.5}, dropout={}, n=4000)
    >>> model = BetaGeoModel().fit(summary, customers=customers, purchase_covariates=["channel"])
    >>> print(customer_attribute_effects(model))  # doctest: +ELLIPSIS
    How the customer attributes relate to buying and spending...
    - Customers from the referral channel buy 1.6x as often as those from the direct channel...
    """
    from custval.models import covariate_effects

    sentences: list[str] = []
    unclear: dict[str, list[str]] = {}
    for model in models:
        if getattr(model, "covariates_", None) is None:
            continue
        encoding = model.covariates_.encoding
        for name, row in covariate_effects(model).iterrows():
            process, column = str(name).split(":", 1)
            if "[" in column and column.endswith("]"):
                covariate, level = column[:-1].split("[", 1)
                levels = encoding.columns.get(covariate) or []
                baseline = escape_markdown(levels[0]) if levels else "other"
                covariate_words = escape_markdown(covariate)
                who = f"Customers from the {escape_markdown(level)} {covariate_words}"
                than = f"those from the {baseline} {covariate_words}"
                label = f"{covariate_words} {escape_markdown(level)}"
            else:
                who = f"Customers with one more unit of {escape_markdown(column)}"
                than = "others"
                label = escape_markdown(column)
            sentence = _effect_sentence(process, who, than, row)
            if sentence is None:
                continue
            if row["p_value"] < alpha:
                sentences.append(sentence)
            else:
                unclear.setdefault(process, []).append(label)
    if not sentences and not unclear:
        return markdown(
            "No customer attributes (such as acquisition channel or region) were used: give a "
            "customer table with them to see how they relate to buying and spending."
        )
    lead = (
        "How the customer attributes relate to buying and spending (each compared with the "
        "first group of its attribute, the other attributes held fixed):"
    )
    parts = [lead, "\n".join(f"- {s}" for s in sentences) if sentences else ""]
    if unclear:
        groups = "; ".join(
            f"in {_EFFECT_WHAT[process]} for {', '.join(labels)}"
            for process, labels in unclear.items()
        )
        parts.append(
            f"The data show no clear difference (at the {percent(1 - alpha)} level) {groups}."
        )
    return markdown(parts)


def customer_value_summary(
    comparison: pd.DataFrame,
    value_table: pd.DataFrame,
    concentration_result: Any,
    *,
    currency: str = "$",
) -> list[str]:
    """The headline sentences of the customer-value report, for the index page."""
    best = comparison.attrs.get("best_model", comparison.index[0])
    row = comparison.loc[best]
    horizon = horizon_words(value_table.attrs.get("horizon", "12M"))
    sentences = [
        f"{best} predicted held-back purchases best, within "
        f"{percent(abs(row['total_error']), decimals=1)} in total.",
        f"Customers are expected to bring {money(float(value_table['clv'].sum()), currency)} "
        f"in {_value_basis(value_table).split(' (')[0]} over the next {horizon}.",
        concentration_result.headline + ".",
    ]
    if len(concentration_result.at_risk):
        sentences.append(
            f"{count(len(concentration_result.at_risk))} high-value customers have probably "
            f"stopped buying, holding {money(float(concentration_result.at_risk['value'].sum()), currency)} "  # noqa: E501
            "of expected value."
        )
    return sentences


# --- 03 churn risk ----------------------------------------------------------------------------

_MODEL_NAMES = {
    "logistic": "logistic regression",
    "gradient_boosting": "gradient boosting",
    "bgnbd": "the BG/NBD chance of being inactive",
    "bgnbd_no_purchase": "the BG/NBD chance of no purchase",
}


def model_name(model: str) -> str:
    """A churn model's name in words."""
    return _MODEL_NAMES.get(model, model)


def churn_backtest(result: Any, *, horizon: str = "90D") -> str:
    """How well the churn classifiers and the BG/NBD baseline rank who stops buying."""
    metrics = result.metrics
    means = metrics.groupby("model")[["roc_auc", "churn_rate", "brier"]].mean()
    cutoffs = sorted(metrics["cutoff"].unique())
    best = result.best_model("roc_auc")
    baseline = "bgnbd" if "bgnbd" in means.index else None
    sentences = [
        f"A customer counts as lost when they make no purchase in the "
        f"{horizon_words(horizon)} after a given date. The models were tested on "
        f"{count(len(cutoffs))} past date{'s' if len(cutoffs) != 1 else ''} "
        f"({', '.join(date_words(c) for c in cutoffs)}), trained only on what was known before "
        f"each, and scored against what customers then did: on average "
        f"{percent(means['churn_rate'].mean())} made no purchase."
    ]
    sentences.append(
        f"The best, **{model_name(best)}**, ranks a customer who stopped above one who kept "
        f"buying {percent(means.loc[best, 'roc_auc'])} of the time (50% would be guessing)"
    )
    from custval.reports._data import best_scoring_model

    used = best_scoring_model(result)
    if used != best:
        sentences[-1] += (
            f"; it cannot score customers today, so the chances below come from "
            f"{model_name(used)} ({percent(means.loc[used, 'roc_auc'])})"
        )
    if baseline is not None and baseline not in (best, used):
        sentences[-1] += (
            f", against {percent(means.loc[baseline, 'roc_auc'])} for {model_name(baseline)}."
        )
    else:
        sentences[-1] += "."
    return markdown(" ".join(sentences))


def churn_risk(scores: pd.Series, *, horizon: str = "90D") -> str:
    """How many customers are likely to stop buying."""
    likely = float((scores >= 0.5).mean())
    high = float((scores >= 0.8).mean())
    return markdown(
        f"Of {count(len(scores))} customers, {percent(likely)} are more likely than not to make "
        f"no purchase in the next {horizon_words(horizon)}, and {percent(high)} have a chance "
        "of 80% or more. Many of them bought once long ago; what matters is which of them are "
        "worth winning back."
    )


def value_risk_title(
    at_risk: pd.DataFrame, *, high_value_share: float = 0.2, currency: str = "$"
) -> str:
    """Chart title: how many valuable customers are at risk and what they are worth."""
    return (
        f"{count(len(at_risk))} customers in the top {percent(high_value_share)} by value are "
        f"likely to stop buying; they hold {money(float(at_risk['value'].sum()), currency)}"
    )


def valuable_at_risk(result: Any, *, currency: str = "$") -> str:
    """The valuable-and-at-risk group in sentences."""
    currency = escape_markdown(currency)  # user text in Markdown
    at_risk = result.at_risk
    high = result.assumptions.get("high_value_share", 0.2)
    threshold = result.assumptions.get("churn_threshold", 0.5)
    if at_risk.empty:
        return markdown(
            f"No customer in the top {percent(high)} by expected value has a churn chance of "
            f"{percent(threshold)} or more."
        )
    share = float(at_risk["value"].sum()) / max(result.total_value, 1e-12)
    return markdown(
        f"**{count(len(at_risk))} customers** are both in the top {percent(high)} by expected "
        f"value and at least {percent(threshold)} likely to stop buying. They hold "
        f"{money(float(at_risk['value'].sum()), currency)} ({percent(share)} of all expected "
        f"value), of which {money(float(at_risk['value_at_risk'].sum()), currency)} is expected "
        "to be lost without action. The table lists the most valuable of them."
    )


def churn_summary(
    result: Any,
    scores: pd.Series,
    concentration_result: Any,
    *,
    horizon: str = "90D",
    currency: str = "$",
) -> list[str]:
    """The headline sentences of the churn report, for the index page."""
    from custval.reports._data import best_scoring_model

    means = result.metrics.groupby("model")["roc_auc"].mean()
    used = best_scoring_model(result)
    sentences = [
        f"{percent(float((scores >= 0.5).mean()))} of customers are more likely than not to "
        f"make no purchase in the next {horizon_words(horizon)}.",
        f"These chances come from {model_name(used)}, which ranks leavers above stayers "
        f"{percent(means[used])} of the time in back-tests (50% would be guessing).",
    ]
    if "bgnbd" in means.index and used != "bgnbd":
        sentences.append(
            f"The BG/NBD chance of being inactive ranks them right {percent(means['bgnbd'])} of "
            "the time on the same test."
        )
    at_risk = concentration_result.at_risk
    sentences.append(
        f"{count(len(at_risk))} valuable customers are at risk, holding "
        f"{money(float(at_risk['value'].sum()), currency)} of expected value."
    )
    return sentences


# --- 04 relationship investment ---------------------------------------------------------------


def campaign(revenue: Any, purchase: Any, *, window: str = "90D", currency: str = "$") -> str:
    """What the randomized campaign did, in money and in buyers, with its uncertainty."""
    currency = escape_markdown(currency)  # user text in Markdown
    ate = revenue.ate.loc["difference in means"]
    buy = purchase.ate.loc["difference in means"]
    treated = int(revenue.groups.loc["treated", "n"]) if "treated" in revenue.groups.index else 0
    control = int(revenue.groups.loc["control", "n"]) if "control" in revenue.groups.index else 0
    sentences = [
        f"The campaign contacted {count(treated)} customers and held back {count(control)} "
        f"chosen at random, so the difference between the two groups over the "
        f"{horizon_words(window)} after contact is the campaign's effect."
    ]
    sentences.append(
        f"Contacted customers spent {money(ate['estimate'], currency)} more each (95% range "
        f"{money(ate['ci_lower'], currency)} to {money(ate['ci_upper'], currency)}), and "
        f"{percent(abs(buy['estimate']), decimals=1)} "
        f"{'more' if buy['estimate'] >= 0 else 'fewer'} of them bought at all."
    )
    if not revenue.distinguishable_from_zero:
        sentences.append(
            "This effect cannot be told apart from zero with this many customers: treat it "
            "as no proven effect."
        )
    return markdown(" ".join(sentences))


def save_rate(
    rate: float,
    source: str,
    *,
    churn_horizon: str | None = None,
    value_table: pd.DataFrame | None = None,
) -> str:
    """Where the save rate used for retention comes from, and what counts as lost."""
    text = (
        f"A contact is assumed to keep **{percent(rate, decimals=1)}** of the customers who "
        f"would otherwise have stopped buying ({source})."
    )
    if churn_horizon:
        text += (
            " The chance of losing each customer is the churn model's chance of no purchase in "
            f"the next {horizon_words(churn_horizon)} (see the churn report), and what is at "
            "stake is the customer's expected value"
        )
        if value_table is not None:
            text += f" in {_value_basis(value_table)}"
        text += "."
    return markdown(text)


def retention(roi: Any, *, currency: str = "$") -> str:
    """The retention budget in sentences: best target size, return, break-even."""
    currency = escape_markdown(currency)  # user text in Markdown
    best = roi.best
    sentences = [escape_markdown(roi.headline) + "."]
    if best["n_targeted"] > 0:
        sentences.append(
            f"That budget of {money(best['budget'], currency)} is expected to bring "
            f"{money(best['incremental_value'], currency)} of extra value, a profit of "
            f"{money(best['profit'], currency)}. Beyond the best "
            f"{count(best['n_targeted'])} customers each extra contact costs more than it "
            f"brings; contacts pay back only while the save rate stays above "
            f"{percent(best['break_even_save_rate'], decimals=1)}."
        )
    return markdown(" ".join(sentences))


def payback_story(result: Any, *, margin: float = 1.0, currency: str = "$") -> str:
    """Acquisition payback by channel in sentences (saying when it is measured on revenue)."""
    currency = escape_markdown(currency)  # user text in Markdown
    text = escape_markdown(result.headline) + "."
    if margin >= 1.0:
        text += (
            " This is measured on revenue because no margin was given; on profit every channel "
            "takes longer to pay back (run the report with the margin, e.g. --margin 0.3)."
        )
    return markdown(text)


def plan_story(result: Any) -> str:
    """The segment plan in one sentence, from the plan's own headline."""
    return markdown(escape_markdown(result.headline) + ".")


def campaign_payback(result: Any, *, currency: str = "$") -> str:
    """Whether the campaign paid back, overall and in each segment, in money with intervals."""
    sentences = [result.sentence(currency=currency)]
    rows = [r for r in result.summary.index if r != "all"]
    for row in rows:
        sentences.append(result.sentence(row, currency=currency))
    return markdown(" ".join(escape_markdown(t) for t in sentences))


def programme_payback(result: Any, effect: Any, *, currency: str = "$") -> str:
    """The programme's payback, labelled observational, with how the comparison was made."""
    a = effect.assumptions
    text = (
        f"{result.sentence(currency=currency)} The cost of "
        f"{money(result.assumptions['cost_per_contact'], currency, decimals=2)} a member a year "
        "is an assumption of this report (set it with the programme_cost_per_member parameter). "
        f"The comparison: customers who joined in the {horizon_words(a.get('join_window', ''))} "
        f"before {date_words(a['landmark'])} against customers who were active then but had "
        "not joined, weighted to buy alike before, and their spend over the "
        f"{horizon_words(a.get('outcome_window', ''))} after. Members chose to join, so this "
        "is an association that holds only if past purchasing, region and channel explain who "
        "joined; a randomized offer of membership would measure it."
    )
    return markdown(escape_markdown(text))


def _basis_words(targets: pd.DataFrame) -> str:
    if targets.attrs.get("basis") == "measured":
        words = "measured on the randomized campaign"
    else:
        words = "on an assumed save rate, not measured: no randomized campaign was given"
    if targets.attrs.get("gain") == "revenue":
        words += "; in revenue, not profit, as no margin was given"
    return words


def targeting(result: Any, *, currency: str = "$") -> str:
    """How targeting on measured response did on held-out customers, against random and churn
    risk."""
    c = result.comparison
    up, rnd = c.loc["by uplift"], c.loc["at random"]
    level = percent(1 - result.assumptions.get("alpha", 0.05))
    cost = money(result.assumptions["cost_per_contact"], currency, decimals=2)
    text = (
        f"Had the campaign contacted only the {count(result.n_contact)} customers whose "
        f"predicted extra profit exceeds the {cost} cost, it would have earned "
        f"{money(up['net_profit'], currency)} net ({level} range "
        f"{money(up['ci_lower'], currency)} to {money(up['ci_upper'], currency)}), against "
        f"{money(rnd['net_profit'], currency)} contacting as many at random"
    )
    if "by churn risk" in c.index:
        churn = money(c.loc["by churn risk", "net_profit"], currency)
        text += f" and {churn} contacting those most at risk of churning"
    text += (
        ". This is measured on customers the models had not seen (cross-fitting), from what "
        "contacted and held-back customers actually spent."
    )
    if result.assumptions.get("margin", 1.0) >= 1:
        text += " These amounts are revenue, not profit: no margin was given."
    if result.beats_random:
        text += " Targeting on measured response beats contacting at random"
        text += " and targeting by churn risk." if result.beats_churn_risk else "."
    else:
        text += (
            " Targeting on predicted response cannot be told apart from contacting at random "
            "here: the campaign shows no clear difference in who responds."
        )
    return markdown(escape_markdown(text))


def contact_list(
    targets: pd.DataFrame,
    downloads: Sequence[Mapping[str, str]] | None = None,
    *,
    currency: str = "$",
) -> str:
    """Who to contact next, what it is expected to bring, and the links to the CSV files."""
    n = int(targets.attrs.get("n_contact", int(targets["contact"].sum())))
    cost = float(targets.attrs.get("cost_per_contact", 0.0))
    profit = float(targets.attrs.get("incremental_profit", 0.0))
    net = float(targets.attrs.get("net_return", 0.0))
    if n:
        text = (
            f"Contact next the {count(n)} customers whose predicted extra profit exceeds the "
            f"{money(cost, currency, decimals=2)} a contact costs: together they are expected "
            f"to bring {money(profit, currency)} of profit for {money(n * cost, currency)} of "
            f"contacts, {money(net, currency)} net ({_basis_words(targets)})."
        )
    else:
        text = (
            f"No customer's predicted extra profit exceeds the {money(cost, currency, decimals=2)} "
            f"a contact costs ({_basis_words(targets)}): contacting anyone is expected to lose "
            "money."
        )
    parts = [escape_markdown(text)]
    if downloads:
        parts.append(
            "\n".join(
                f"- [{escape_markdown(d['label'])}]({quote(d['path'], safe='/')})"
                for d in downloads
            )
        )
    return markdown(parts)


def plan_from_targets(plan: pd.DataFrame, targets: pd.DataFrame, *, currency: str = "$") -> str:
    """The plan by segment in one sentence, from the same numbers as the contact list."""
    chosen = plan[plan["to_contact"] > 0]
    if chosen.empty:
        return markdown(
            escape_markdown(
                f"No segment has a customer worth contacting ({_basis_words(targets)})."
            )
        )
    text = (
        f"By segment, contact {_segment_contacts(plan)}: "
        f"{money(float(chosen['net_return'].sum()), currency)} net in all "
        f"({_basis_words(targets)})."
    )
    return markdown(escape_markdown(text))


def _segment_contacts(plan: pd.DataFrame) -> str:
    """'545 Champions, 272 Loyal, 35 Potential loyalists and 10 more'."""
    chosen = plan[plan["to_contact"] > 0]
    named = ", ".join(f"{count(r['to_contact'])} {name}" for name, r in chosen.head(3).iterrows())
    if len(chosen) > 3:
        named += f" and {count(int(chosen['to_contact'].iloc[3:].sum()))} more"
    return named


def investment_summary(
    revenue: Any | None,
    roi: Any,
    payback_result: Any | None,
    plan: Any,
    *,
    save_rate: float | None = None,
    currency: str = "$",
    campaign_payback: Any | None = None,
    targets: pd.DataFrame | None = None,
    targeting: Any | None = None,
    segment_plan: pd.DataFrame | None = None,
) -> list[str]:
    """The headline sentences of the investment report, for the index page (plain text).

    Did the campaign pay back (in money, with its interval), whom to contact next and what it
    returns, how that targeting did on held-out customers, acquisition payback, and the plan
    by segment: with ``targets`` and ``segment_plan`` the summary, the plan and the list use
    the same numbers.
    """
    sentences = []
    if campaign_payback is not None:
        sentences.append(campaign_payback.sentence(currency=currency))
    elif revenue is not None:
        ate = revenue.ate.loc["difference in means"]
        sentences.append(
            f"The randomized campaign raised spend by {money(ate['estimate'], currency)} per "
            f"contacted customer (95% range {money(ate['ci_lower'], currency)} to "
            f"{money(ate['ci_upper'], currency)})."
        )
    else:
        assumed = f" of {percent(save_rate)}" if save_rate is not None else ""
        sentences.append(
            "No randomized campaign was given, so whom to contact rests on an assumed "
            f"save rate{assumed}, not on a measured response."
        )
    if targets is not None:
        n = int(targets.attrs["n_contact"])
        cost = money(float(targets.attrs["cost_per_contact"]), currency, decimals=2)
        if n:
            sentences.append(
                f"Contact next the {count(n)} customers whose predicted extra profit exceeds "
                f"the {cost} cost: {money(float(targets.attrs['net_return']), currency)} net "
                f"expected ({_basis_words(targets)})."
            )
        else:
            sentences.append(
                f"No customer's predicted extra profit exceeds the {cost} a contact costs "
                f"({_basis_words(targets)})."
            )
    else:
        sentences.append(roi.headline + ".")
    if targeting is not None:
        c = targeting.comparison
        versus = f"{money(c.loc['at random', 'net_profit'], currency)} at random"
        if "by churn risk" in c.index:
            versus += f" and {money(c.loc['by churn risk', 'net_profit'], currency)} by churn risk"
        sentences.append(
            f"On held-out campaign customers, targeting on measured response earned "
            f"{money(c.loc['by uplift', 'net_profit'], currency)} net against {versus}."
        )
    if payback_result is not None:
        sentences.append(payback_result.headline + ".")
    elif targeting is None:
        sentences.append(
            "Payback by channel needs each customer's acquisition date, cost and channel, "
            "which this data does not include."
        )
    if segment_plan is not None and targets is not None:
        if int(segment_plan["to_contact"].sum()):
            sentences.append(f"By segment, the contacts are {_segment_contacts(segment_plan)}.")
    else:
        sentences.append(plan.headline + ".")
    return sentences[:5]
