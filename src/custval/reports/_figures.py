"""Report charts that :mod:`custval.plotting` does not draw (activity over time, cohorts, RFM
segments). Same rules as the plotting package: ``ax=None`` makes a new figure, the Axes are
returned, numbers come from :mod:`custval.reports._data`, titles state the finding (from
:mod:`custval.reports._story`), axes carry their units.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from custval._charts import get_ax, percent_axis
from custval._format import chart_text, money
from custval.reports import _story as story

__all__ = ["activity", "cohorts", "segments", "show", "value_risk"]

_BLUE = "#2563eb"
_LIGHT = "#93c5fd"
_GREY = "#9ca3af"
_ORANGE = "#f59e0b"


def show(artist: Any, *, alt: str | None = None, scale: float = 2.0) -> None:
    """Display a chart in a report and close it: a sharp PNG whose alternative text is its
    title (the finding), so no object repr is printed and screen readers get the finding.

    Parameters
    ----------
    artist : Axes, array of Axes or Figure
        What a plot function returned.
    alt : str, optional
        Alternative text; default the chart titles.
    scale : float, default 2.0
        Pixels per displayed pixel (2 = sharp on high-density screens).
    """
    import io

    from IPython.display import Image, display

    figure = _figure_of(artist)
    if alt is None:
        titles = [figure.get_suptitle()] if figure.get_suptitle() else []
        titles += [ax.get_title() or ax.get_title("left") for ax in figure.axes]
        alt = " / ".join(t for t in titles if t) or "Chart"
    buffer = io.BytesIO()
    dpi = figure.dpi * scale
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(figure)
    image = Image(data=buffer.getvalue(), format="png", alt=alt)
    width = image.width or _png_width(buffer.getvalue())
    image.width = round(width / scale)
    display(image)


def _png_width(data: bytes) -> int:
    return int.from_bytes(data[16:20], "big")


def _figure_of(artist: Any) -> Figure:
    if isinstance(artist, Figure):
        return artist
    if isinstance(artist, np.ndarray):
        artist = artist.flat[0]
    if isinstance(artist, list | tuple):
        artist = artist[0]
    return artist.figure


def _text(text: str) -> str:
    """Chart text shown as it is (matplotlib would read $...$ as math)."""
    return chart_text(text)


def _money_ticks(ax: Axes, axis: str = "y", currency: str = "$") -> None:
    """Money tick labels without cents: $0, $20,000, $150k, $1.20M."""

    def label(value: float, _pos: int) -> str:
        if abs(value) < 1e-9:
            return f"{currency}0"
        if abs(value) < 1:
            return f"{currency}{value:.2f}"
        return money(value, currency) if abs(value) >= 1e5 else money(value, currency, decimals=0)

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(plt.FuncFormatter(label))


def _date_ticks(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))


def activity(
    activity: pd.DataFrame, *, currency: str = "$", axes: np.ndarray | None = None
) -> np.ndarray:
    """Revenue (top) and customers (bottom) per month or quarter; partial periods hatched."""
    if axes is None:
        _fig, axes = plt.subplots(
            2, 1, figsize=(9, 6), sharex=True, layout="constrained", height_ratios=[3, 2]
        )
    top, bottom = axes
    period = activity.attrs.get("period", "M")
    unit = "month" if period == "M" else "quarter"
    x = activity.index
    width = 25 if period == "M" else 80
    partial = activity["partial"].to_numpy()
    bars = top.bar(x, activity["revenue"], width=width, color=_BLUE, align="edge")
    for bar, is_partial in zip(bars, partial, strict=True):
        if is_partial:
            bar.set_facecolor("white")
            bar.set_edgecolor(_BLUE)
            bar.set_hatch("///")
    _money_ticks(top, "y", currency)
    top.set_ylabel(_text(f"Revenue per {unit} ({currency})"))
    top.set_title(_text(story.activity_title(activity, currency=currency)))
    if partial.any():
        top.legend(
            handles=[Patch(facecolor="white", edgecolor=_BLUE, hatch="///")],
            labels=["Only partly covered by the data"],
            loc="upper left",
        )
    bottom.plot(
        x + pd.Timedelta(days=width / 2),
        activity["active_customers"],
        color=_BLUE,
        marker="o",
        markersize=3,
        label="Customers who bought",
    )
    bottom.bar(
        x,
        activity["new_customers"],
        width=width,
        color=_LIGHT,
        align="edge",
        label="of whom first-time buyers",
    )
    bottom.set_ylabel(f"Customers per {unit}")
    bottom.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _p: f"{v:,.0f}"))
    bottom.legend(loc="upper left", ncols=2)
    bottom.set_ylim(0, activity["active_customers"].max() * 1.25)
    _date_ticks(bottom)
    return axes


def cohorts(retention: pd.DataFrame, *, ax: Axes | None = None, max_columns: int = 12) -> Axes:
    """Heat map: share of each acquisition group buying 1, 2, ... periods after the first."""
    period = retention.attrs.get("period", "M")
    unit = "month" if period == "M" else "quarter"
    columns = [c for c in retention.columns if c >= 1][:max_columns]
    values = retention[columns].to_numpy(dtype=float)
    ax = get_ax(ax, figsize=(9, 0.42 * len(retention) + 1.6))
    masked = np.ma.masked_invalid(values)
    vmax = np.nanmax(values) if np.isfinite(values).any() else 1.0
    image = ax.imshow(masked, cmap="Blues", vmin=0, vmax=max(vmax, 0.05), aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                dark = values[i, j] > 0.6 * vmax
                ax.text(
                    j,
                    i,
                    f"{100 * values[i, j]:.0f}%",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "#1f2933",
                )
    sizes = retention.attrs["sizes"]
    ax.set_yticks(
        range(len(retention)),
        [f"{story.period_words(i, period)} ({n:,})" for i, n in sizes.items()],
    )
    ax.set_xticks(range(len(columns)), [str(c) for c in columns])
    ax.set_xlabel(f"{unit.capitalize()}s after the first purchase")
    ax.set_ylabel("First purchase in (customers)")
    ax.set_title(_text(story.cohort_title(retention)))
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    colorbar = ax.figure.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    colorbar.set_label(f"Share of the group buying in that {unit}")
    colorbar.formatter = plt.FuncFormatter(lambda v, _p: f"{100 * v:.0f}%")
    colorbar.update_ticks()
    return ax


def segments(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Share of customers and share of revenue per RFM segment (best segment on top)."""
    ax = get_ax(ax, figsize=(9, 0.45 * len(table) + 1.4))
    y = np.arange(len(table))
    height = 0.38
    ax.barh(y - height / 2, table["customer_share"], height, color=_GREY, label="Customers")
    ax.barh(y + height / 2, table["revenue_share"], height, color=_BLUE, label="Revenue")
    for yi, share in zip(y, table["revenue_share"], strict=True):
        ax.text(share + 0.005, yi + height / 2, f"{100 * share:.0f}%", va="center", fontsize=8)
    ax.set_yticks(y, table.index.astype(str))
    ax.invert_yaxis()
    percent_axis(ax, "x")
    ax.set_xlabel("Share of all customers / of all revenue")
    ax.set_title(_text(story.segments_title(table)))
    ax.legend(loc="lower right")
    return ax


def value_risk(
    value_table: pd.DataFrame,
    concentration: Any,
    *,
    currency: str = "$",
    ax: Axes | None = None,
) -> Axes:
    """Expected value against churn probability; the valuable-and-at-risk corner highlighted."""
    ax = get_ax(ax, figsize=(9, 5))
    churn = concentration.assumptions
    high = churn.get("high_value_share", 0.2)
    threshold = churn.get("churn_threshold", 0.5)
    probability = value_table["churn_probability"]
    value = value_table["clv"].clip(lower=0.01)
    cut = float(value.quantile(1 - high))
    flagged = value_table.index.isin(concentration.at_risk.index)
    ax.scatter(
        value[~flagged], probability[~flagged], s=6, color=_GREY, alpha=0.5, label="Other customers"
    )
    ax.scatter(
        value[flagged], probability[flagged], s=12, color=_ORANGE, label="Valuable and at risk"
    )
    ax.axvline(cut, color="#4b5563", linestyle=":", linewidth=1)
    ax.axhline(threshold, color="#4b5563", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(left=max(float(value.quantile(0.01)), 0.01))
    _money_ticks(ax, "x", currency)
    percent_axis(ax, "y")
    ax.set_ylim(0, 1)
    ax.set_xlabel(_text(f"Expected value per customer ({currency}, log scale)"))
    ax.set_ylabel("Chance of no purchase in the churn window")
    ax.set_title(
        _text(
            story.value_risk_title(concentration.at_risk, high_value_share=high, currency=currency)
        )
    )
    ax.legend(loc="lower left", markerscale=2)
    return ax
