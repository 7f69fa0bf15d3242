"""Shared plumbing of the plot functions: axes handling and axis formatters."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from custval._format import money, percent


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
