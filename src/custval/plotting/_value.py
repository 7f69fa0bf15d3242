"""Customer value and model evaluation figures.

Each figure draws the output of a public function (:mod:`custval.evaluation`,
:func:`custval.customer_value_table`, :func:`custval.value_concentration`) or a model's public
predictions, and states its finding in the title.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from custval._charts import (
    UNIT_WORDS,
    get_ax,
    label_share_axes,
    lorenz_from_top,
    money_axis,
    reference_diagonal,
)
from custval._format import count, money, number, percent
from custval._metrics import BY_ABSOLUTE, SMALLER_IS_BETTER
from custval._units import normalize_freq, parse_duration
from custval.errors import DataError

__all__ = [
    "plot_alive_calibration",
    "plot_clv_distribution",
    "plot_conditional_expectations",
    "plot_frequency_recency_matrix",
    "plot_model_comparison",
    "plot_probability_alive_matrix",
    "plot_tracking",
    "plot_value_concentration",
]

_METRIC_LABELS = {
    "aic": "AIC",
    "bic": "BIC",
    "log_likelihood": "log-likelihood",
    "mae": "MAE",
    "rmse": "RMSE",
    "msle": "MSLE",
    "bias": "bias",
    "total_error": "total error",
    "spearman": "Spearman correlation",
    "top_decile_capture": "top-decile capture",
    "top_decile_lift": "top-decile lift",
    "normalized_gini": "normalized Gini",
    "roc_auc": "ROC AUC",
    "brier": "Brier score",
}


def _units(freq: Any) -> str:
    try:
        return UNIT_WORDS[normalize_freq(freq)]
    except (DataError, KeyError):
        return "periods"


def _unit(freq: Any) -> str:
    return _units(freq)[:-1] if _units(freq).endswith("s") else _units(freq)


def _plain(text: str) -> str:
    """Text shown as is: currency signs must not start matplotlib's mathtext."""
    return text.replace("$", r"\$")


def _require(frame: Any, columns: list[str], what: str, source: str) -> None:
    if not isinstance(frame, pd.DataFrame) or any(c not in frame.columns for c in columns):
        raise DataError(f"{what} needs the table from {source} (columns {columns})")


def _model_matrix(
    model: Any, big_t: Any, max_frequency: int, points: int, predict: Any
) -> tuple[Any, ...]:
    """``predict(grid)`` (a Series) on the frequency-recency grid of customers of age
    ``big_t`` as a matrix (frequency by recency), with the axes: ``(matrix, frequency,
    recency, big_t, freq)``."""
    freq = getattr(model, "freq_", None)
    if freq is None:
        raise DataError(
            "the model does not record its time unit (freq_ is None); fit it on a summary from "
            "custval.rfm_summary or use from_params(..., freq=...)"
        )
    if isinstance(big_t, str):
        big_t = parse_duration(big_t, to=freq)
    big_t = float(big_t)
    if not (big_t > 0 and math.isfinite(big_t)):
        raise DataError(f"T must be a positive age such as '52W' or 52, got {big_t!r}")
    whole = isinstance(max_frequency, int | np.integer) and not isinstance(max_frequency, bool)
    if not whole or max_frequency < 1:
        raise DataError(f"max_frequency must be a whole number >= 1, got {max_frequency!r}")
    frequency = np.arange(1, max_frequency + 1, dtype=float)
    recency = np.linspace(big_t / points, big_t, points)  # recency > 0 for repeat buyers
    x, tx = np.meshgrid(frequency, recency, indexing="ij")
    valid = np.ones(x.shape, dtype=bool)
    grid = pd.DataFrame({"frequency": x[valid], "recency": tx[valid], "T": big_t})
    grid.attrs["freq"] = freq
    matrix = np.full(valid.shape, np.nan)
    matrix[valid] = predict(grid).to_numpy(dtype=float)
    return matrix, frequency, recency, big_t, freq


def _heat_map(ax: Axes | None, grid: tuple[Any, ...], label: str, **style: Any) -> Axes:
    """Draw a frequency (rows) by recency (columns) matrix with its colour bar and axis labels;
    ``grid`` as :func:`_model_matrix` returns it."""
    matrix, frequency, _, big_t, freq = grid
    ax = get_ax(ax, figsize=(7.0, 5.0))
    image = ax.imshow(
        matrix,
        origin="lower",
        aspect="auto",
        extent=(0, big_t, 0.5, frequency[-1] + 0.5),
        **style,
    )
    colorbar = ax.figure.colorbar(image, ax=ax)
    colorbar.set_label(label)
    ax.set_xlabel(f"Recency: age at last purchase ({_units(freq)}; customer age {number(big_t)})")
    ax.set_ylabel("Repeat purchases (frequency)")
    return ax


def plot_tracking(table: pd.DataFrame, *, cumulative: bool = True, ax: Axes | None = None) -> Axes:
    """Predicted vs actual repeat transactions per period (FHL 2005, figure 2).

    The title compares the holdout forecast with what happened.

    Parameters
    ----------
    table : DataFrame
        From :func:`custval.evaluation.tracking`.
    cumulative : bool, default True
        Cumulative totals; False for transactions per period.
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_tracking
    >>> ax = plot_tracking(custval.evaluation.tracking(model, log, split))  # doctest: +SKIP
    """
    columns = ["actual", "predicted", "actual_cumulative", "predicted_cumulative", "holdout"]
    _require(table, columns, "plot_tracking", "custval.evaluation.tracking")
    ax = get_ax(ax)
    unit = _unit(table.attrs.get("freq"))
    suffix = "_cumulative" if cumulative else ""
    periods = table.index.to_numpy()
    ax.plot(periods, table[f"actual{suffix}"], color="black", label="Actual")
    ax.plot(
        periods,
        table[f"predicted{suffix}"],
        color="C0",
        linestyle="--",
        label=f"Predicted ({table.attrs.get('model', 'model')})",
    )
    calibration = int(table.attrs.get("calibration_periods", (~table["holdout"]).sum()))
    ax.axvline(calibration, color="grey", linewidth=0.8, linestyle=":")
    ax.annotate(
        "end of calibration",
        xy=(calibration, 0.02),
        xycoords=("data", "axes fraction"),
        fontsize=8,
        color="grey",
        ha="right",
        rotation=90,
    )
    holdout = table["holdout"].to_numpy()
    if holdout.any():
        actual = float(table.loc[holdout, "actual"].sum())
        predicted = float(table.loc[holdout, "predicted"].sum())
        gap = (predicted - actual) / actual if actual else math.nan
        direction = "under" if gap < 0 else "over"
        title = (
            f"Forecast {count(predicted)} holdout repeat purchases vs {count(actual)} actual "
            f"({percent(abs(gap), decimals=1)} {direction})"
        )
    else:
        title = f"Model tracks {count(table['actual'].sum())} repeat purchases"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"{unit.capitalize()}s since the cohort's first purchase")
    ax.set_ylabel("Repeat purchases (cumulative)" if cumulative else f"Repeat purchases per {unit}")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: count(value)))
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_conditional_expectations(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Mean holdout purchases per calibration group, actual vs predicted (FHL 2005, figure 4).

    Parameters
    ----------
    table : DataFrame
        From :func:`custval.evaluation.conditional_expectations`.
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_conditional_expectations
    >>> ax = plot_conditional_expectations(table)  # doctest: +SKIP
    """
    _require(
        table,
        ["n_customers", "actual", "predicted", "relative_error"],
        "plot_conditional_expectations",
        "custval.evaluation.conditional_expectations",
    )
    ax = get_ax(ax)
    by = table.attrs.get("by", table.index.name or "frequency")
    units = _units(table.attrs.get("freq"))
    positions = np.arange(len(table))
    ax.plot(positions, table["actual"], color="black", marker="o", label="Actual")
    ax.plot(
        positions,
        table["predicted"],
        color="C0",
        marker="s",
        linestyle="--",
        label=f"Predicted ({table.attrs.get('model', 'model')})",
    )
    ax.set_xticks(positions, [str(label) for label in table.index])
    errors = table["relative_error"].abs()
    if errors.notna().any() and float(errors.max()) <= 0.10:
        title = f"Holdout purchases predicted within {percent(errors.max())} in every {by} group"
    elif errors.notna().any():
        worst = errors.idxmax()
        row = table.loc[worst]
        if by == "frequency":
            group = f"{worst} repeat purchase{'' if str(worst) == '1' else 's'} before the holdout"
        else:
            group = f"recency {worst}"
        title = (
            f"Largest gap: customers with {group} bought {number(row['actual'])} vs "
            f"{number(row['predicted'])} predicted"
        )
    else:
        title = "Holdout purchases by calibration group"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(
        "Repeat purchases in the calibration period"
        if by == "frequency"
        else f"Recency in the calibration period ({units})"
    )
    duration = table.attrs.get("duration")
    span = f" in {number(duration)} {units}" if duration else ""
    ax.set_ylabel(f"Mean holdout purchases per customer{span}")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_frequency_recency_matrix(
    model: Any,
    *,
    T: float | str,
    horizon: float | str,
    max_frequency: int = 20,
    points: int = 60,
    ax: Axes | None = None,
) -> Axes:
    """Expected purchases in the next ``horizon`` by frequency and recency (heat map).

    Each cell is ``model.expected_purchases`` for a customer of age ``T`` with that frequency
    (1 to ``max_frequency`` repeat purchases) and recency.

    Parameters
    ----------
    model : fitted model
        With ``expected_purchases(summary, t)`` and ``freq_``.
    T : float or str
        Customer age at the end of observation (``"52W"``, or periods of the model's unit).
    horizon : float or str
        Prediction horizon (``"52W"``, or periods of the model's unit).
    max_frequency : int, default 20
    points : int, default 60
        Recency grid points from 0 to ``T``.
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> import custval
    >>> from custval.plotting import plot_frequency_recency_matrix
    >>> model = custval.BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426,
    ...                                          freq="W")
    >>> ax = plot_frequency_recency_matrix(model, T="39W", horizon="52W")
    >>> ax.get_title().startswith("Recent frequent buyers")
    True
    """
    expected = _model_matrix(
        model, T, max_frequency, points, lambda grid: model.expected_purchases(grid, horizon)
    )
    matrix, _, _, _, freq = expected
    label = horizon if isinstance(horizon, str) else f"{number(horizon)} {_units(freq)}"
    ax = _heat_map(ax, expected, f"Expected purchases in the next {label}", cmap="viridis")
    best = float(np.nanmax(matrix[-1]))
    lapsed = float(matrix[-1, 0])
    ax.set_title(
        f"Recent frequent buyers expect up to {best:.1f} purchases in the next {label}; "
        f"lapsed ones {lapsed:.2f}",
        fontsize=10,
    )
    return ax


def plot_probability_alive_matrix(
    model: Any,
    *,
    T: float | str,
    max_frequency: int = 20,
    points: int = 60,
    ax: Axes | None = None,
) -> Axes:
    """P(alive) by frequency and recency for customers of age ``T`` (heat map).

    The title says how long the most frequent buyers can go without a purchase before they are
    more likely gone than active.

    Parameters
    ----------
    model : fitted model
        With ``probability_alive(summary)`` and ``freq_``.
    T : float or str
        Customer age at the end of observation.
    max_frequency : int, default 20
    points : int, default 60
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> import custval
    >>> from custval.plotting import plot_probability_alive_matrix
    >>> model = custval.BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426,
    ...                                          freq="W")
    >>> ax = plot_probability_alive_matrix(model, T="39W", max_frequency=10)
    >>> "10 repeat purchases" in ax.get_title()
    True
    """
    alive = _model_matrix(model, T, max_frequency, points, model.probability_alive)
    matrix, frequency, recency, big_t, freq = alive
    title = "Probability still active (P(alive))"
    ax = _heat_map(ax, alive, title, cmap="RdYlGn", vmin=0.0, vmax=1.0)
    top = matrix[-1]
    gone = np.flatnonzero((top < 0.5) & np.isfinite(top))
    units = _units(freq)
    x_top = int(frequency[-1])
    if gone.size:
        silence = big_t - recency[gone.max()]
        title = (
            f"Customers with {x_top} repeat purchases are more likely gone than active after "
            f"{number(silence)} {units} without buying"
        )
    else:
        title = f"Customers with {x_top} repeat purchases stay more likely active than gone"
    ax.set_title(title, fontsize=10)
    return ax


def plot_alive_calibration(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Share of customers active in the holdout against their P(alive), by bin.

    Points below the diagonal are expected even for a good model: an active customer need not
    buy in a short holdout. The title reports how well P(alive) ranks holdout buyers (AUC).

    Parameters
    ----------
    table : DataFrame
        From :func:`custval.evaluation.alive_calibration`.
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_alive_calibration
    >>> table = custval.evaluation.alive_calibration(model, split)  # doctest: +SKIP
    >>> ax = plot_alive_calibration(table)  # doctest: +SKIP
    """
    _require(
        table,
        ["n_customers", "mean_p_alive", "share_active"],
        "plot_alive_calibration",
        "custval.evaluation.alive_calibration",
    )
    ax = get_ax(ax, figsize=(6.0, 5.0))
    sizes = 20 + 200 * table["n_customers"] / table["n_customers"].max()
    ax.scatter(table["mean_p_alive"], table["share_active"], s=sizes, color="C0", zorder=3)
    reference_diagonal(ax, "P(alive) = share active")
    auc = table.attrs.get("roc_auc", math.nan)
    if not math.isfinite(auc):
        title = "P(alive) against holdout activity"
    elif auc >= 0.7:
        title = f"P(alive) separates holdout buyers from non-buyers well (ROC AUC {auc:.2f})"
    elif auc >= 0.5:
        title = f"P(alive) separates holdout buyers only weakly (ROC AUC {auc:.2f})"
    else:
        title = f"P(alive) ranks holdout buyers worse than chance (ROC AUC {auc:.2f})"
    ax.set_title(title, fontsize=10)
    duration = table.attrs.get("duration")
    span = f" {number(duration)} {_units(table.attrs.get('freq'))}" if duration else ""
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    return label_share_axes(
        ax,
        "Mean P(alive) at the end of calibration",
        f"Share who bought in the{span} holdout",
        "upper left",
    )


def plot_value_concentration(
    value_table: pd.DataFrame, *, value: str = "clv", ax: Axes | None = None
) -> Axes:
    """Concentration curve: share of value held by the most valuable customers.

    Customers are sorted from most to least valuable; the curve shows the cumulative share of
    value (the Lorenz curve read from the top), with the top 10% marked. Numbers come from
    :func:`custval.value_concentration`.

    Parameters
    ----------
    value_table : DataFrame
        From :func:`custval.customer_value_table`.
    value : str, default "clv"
        Value column.
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_value_concentration
    >>> ax = plot_value_concentration(table)  # doctest: +SKIP
    """
    from custval.invest import value_concentration

    churn = "1 - p_alive" if "p_alive" in getattr(value_table, "columns", []) else None
    kwargs = {"churn": churn} if churn else {}
    result = value_concentration(value_table, value=value, top=(0.1,), **kwargs)
    customers, held = lorenz_from_top(result.lorenz)
    ax = get_ax(ax, figsize=(6.0, 5.0))
    ax.plot(customers, held, color="C0", label="Customers, most valuable first")
    reference_diagonal(ax, "Equal value per customer")
    top = result.share_of_top(0.1)
    ax.scatter([0.1], [top], color="C3", zorder=3)
    ax.annotate(
        f"top 10% hold {percent(top)}",
        xy=(0.1, top),
        xytext=(12, -14),
        textcoords="offset points",
        fontsize=8,
    )
    ax.set_title(result.headline, fontsize=10)
    basis = value_table.attrs.get("value_basis", "value")
    horizon = value_table.attrs.get("horizon")
    return label_share_axes(
        ax,
        "Share of customers (most valuable first)",
        f"Share of expected {basis}" + (f" over {horizon}" if horizon else "") + f" ({value})",
        "lower right",
    )


def plot_clv_distribution(
    value_table: pd.DataFrame,
    *,
    value: str = "clv",
    currency: str = "$",
    bins: int = 40,
    ax: Axes | None = None,
) -> Axes:
    """Histogram of customer lifetime value (log scale when values span orders of magnitude).

    Parameters
    ----------
    value_table : DataFrame
        From :func:`custval.customer_value_table` (``clv`` and ``value_decile`` columns).
    value : str, default "clv"
    currency : str, default "$"
    bins : int, default 40
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_clv_distribution
    >>> ax = plot_clv_distribution(table)  # doctest: +SKIP
    """
    _require(
        value_table,
        [value, "value_decile"],
        "plot_clv_distribution",
        "custval.customer_value_table",
    )
    values = value_table[value].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise DataError(f"value table column {value!r} has no finite values to plot")
    ax = get_ax(ax)
    median = float(np.median(values))
    top = value_table.loc[value_table["value_decile"] == 1, value].mean()
    positive = values[values > 0]
    log_scale = positive.size > 0 and positive.max() / max(np.median(positive), 1e-12) > 50
    if log_scale:
        low = max(positive.min(), positive.max() * 1e-4)
        edges = np.geomspace(low, positive.max(), bins + 1)
        ax.hist(np.clip(values, low, None), bins=edges, color="C0", alpha=0.8)
        ax.set_xscale("log")
    else:
        ax.hist(values, bins=bins, color="C0", alpha=0.8)
    ax.axvline(
        max(median, 1e-12) if log_scale else median,
        color="black",
        linestyle="--",
        linewidth=1,
        label=_plain(f"median {money(median, currency)}"),
    )
    horizon = value_table.attrs.get("horizon", "")
    basis = value_table.attrs.get("value_basis", "value")
    over = f" over {horizon}" if horizon else ""
    ax.set_title(
        _plain(
            f"Median customer is worth {money(median, currency)}{over}; the top 10% average "
            f"{money(float(top), currency)}"
        ),
        fontsize=10,
    )
    ax.set_xlabel(_plain(f"Customer lifetime value{over} ({currency}, {basis})"))
    ax.set_ylabel("Customers")
    money_axis(ax, "x", currency)
    ax.legend(fontsize=8)
    return ax


def plot_model_comparison(
    comparison: pd.DataFrame, *, metric: str | None = None, ax: Axes | None = None
) -> Axes:
    """One bar per model for a holdout metric, the best highlighted.

    Parameters
    ----------
    comparison : DataFrame
        From :func:`custval.evaluation.compare_models`.
    metric : str, optional
        Column to show; default the one the comparison was sorted by.
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> from custval.plotting import plot_model_comparison
    >>> comparison = custval.evaluation.compare_models(models, split)  # doctest: +SKIP
    >>> ax = plot_model_comparison(comparison)  # doctest: +SKIP
    """
    if not isinstance(comparison, pd.DataFrame) or "best_model" not in comparison.attrs:
        raise DataError("plot_model_comparison needs the table from compare_models")
    metric = metric or comparison.attrs["metric"]
    if metric not in comparison.columns or metric not in SMALLER_IS_BETTER:
        raise DataError(f"metric {metric!r} is not a column of the comparison")
    values = comparison[metric].astype(float)
    key = values.abs() if metric in BY_ABSOLUTE else values
    ordered = key.sort_values(ascending=SMALLER_IS_BETTER[metric], na_position="last")
    best = ordered.index[0]
    ax = get_ax(ax, figsize=(6.5, 0.6 * len(values) + 1.8))
    names = list(ordered.index)[::-1]
    positions = np.arange(len(names))
    shown = values.loc[names].to_numpy()
    colors = ["C3" if name == best else "C0" for name in names]
    ax.hlines(positions, np.nanmin(shown), shown, color="lightgrey", linewidth=1)
    ax.scatter(shown, positions, color=colors, s=60, zorder=3)
    ax.set_yticks(positions, names)
    spread = float(np.nanmax(shown) - np.nanmin(shown)) or abs(float(np.nanmax(shown))) or 1.0
    ax.set_xlim(np.nanmin(shown) - 0.25 * spread, np.nanmax(shown) + 0.25 * spread)
    label = _METRIC_LABELS.get(metric, metric)
    if len(ordered) > 1:
        second = ordered.index[1]
        title = (
            f"{best} is best by {label} ({values[best]:.4g} vs {values[second]:.4g} for {second})"
        )
    else:
        title = f"{best}: {label} {values[best]:.4g}"
    ax.set_title(title, fontsize=10)
    direction = "lower is better" if SMALLER_IS_BETTER[metric] else "higher is better"
    scope = "holdout purchases per customer" if metric in ("mae", "rmse", "bias", "msle") else ""
    ax.set_xlabel(f"{label} ({direction}{'; ' + scope if scope else ''})")
    ax.set_ylabel("Model")
    return ax
