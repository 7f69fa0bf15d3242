"""Shared plumbing of the charts of :mod:`custval.plotting` and :mod:`custval.reports`: axes
handling, axis formatters and the pieces that share-against-share charts (ROC, calibration,
gains, concentration) have in common."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from custval._format import money, percent

#: Plural words of the canonical time units (``custval._units.normalize_freq``), for axis labels.
UNIT_WORDS = {"h": "hours", "D": "days", "W": "weeks", "M": "months", "Y": "years"}


def get_ax(ax: Axes | None, figsize: tuple[float, float] = (7.0, 4.5)) -> Axes:
    """Return ``ax``, or a new Axes on a new figure when ``ax`` is None."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def money_axis(ax: Axes, axis: str = "y", currency: str = "$") -> None:
    """Format an axis's tick labels as money."""
    formatter = FuncFormatter(lambda value, _pos: money(value, currency))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def percent_axis(ax: Axes, axis: str = "y", decimals: int = 0) -> None:
    """Format an axis's tick labels as percentages of shares (0.25 -> 25%)."""
    formatter = FuncFormatter(lambda value, _pos: percent(value, decimals=decimals))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def reference_diagonal(ax: Axes, label: str) -> None:
    """Draw the grey ``y = x`` reference line (random ranking, perfect calibration, equality)."""
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, label=label)


def label_share_axes(ax: Axes, xlabel: str, ylabel: str, legend: str) -> Axes:
    """Label both axes, format them as percentages and place the legend at ``legend``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    percent_axis(ax, "x")
    percent_axis(ax, "y")
    ax.legend(loc=legend, fontsize=8)
    return ax


def lorenz_from_top(lorenz: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A Lorenz curve read from the most valuable customer: (share of customers, share of value)."""
    customers = 1.0 - lorenz["customer_share"].to_numpy()[::-1]
    value = 1.0 - lorenz["value_share"].to_numpy()[::-1]
    return customers, value
