"""Relationship-investment figures, drawn from the results of :mod:`custval.invest`.

Lorenz curve (:func:`~custval.invest.value_concentration`), profit curve
(:func:`~custval.invest.retention_roi`), uplift curve and uplift by decile
(:func:`~custval.invest.estimate_uplift`), payback curves (:func:`~custval.invest.payback`) and
the segment plan (:func:`~custval.invest.investment_plan`) and targeting on measured response
(:func:`~custval.invest.uplift_targeting`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from custval._charts import (
    UNIT_WORDS,
    get_ax,
    lorenz_from_top,
    money_axis,
    percent_axis,
)
from custval._format import count, money, number, percent
from custval.errors import DataError

__all__ = [
    "plot_investment_plan",
    "plot_lorenz_curve",
    "plot_payback_curves",
    "plot_profit_curve",
    "plot_qini_curve",
    "plot_targeting_curves",
    "plot_uplift_by_decile",
]

_PLAN_COLORS = {"invest": "C2", "maintain": "0.6", "go transactional": "C1"}


def _title(ax: Axes, text: str, **kwargs) -> None:
    """Set the title as plain text: money signs are not mathtext delimiters."""
    ax.set_title(text[:1].upper() + text[1:], parse_math=False, **kwargs)


def _require(result: object, attributes: tuple[str, ...], maker: str) -> None:
    missing = [a for a in attributes if not hasattr(result, a)]
    if missing:
        raise DataError(
            f"expected the result of custval.invest.{maker}(...), got {type(result).__name__} "
            f"(missing {', '.join(missing)})"
        )


def plot_lorenz_curve(concentration, *, ax: Axes | None = None) -> Axes:
    """Lorenz curve of expected value, with the top shares marked.

    Parameters
    ----------
    concentration : ValueConcentration
        From :func:`custval.invest.value_concentration`.
    ax : Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    Axes
        Titled with the finding, e.g. "Top 10% of customers hold 58% of expected value".

    Examples
    --------
    >>> import pandas as pd
    >>> from custval.invest import value_concentration
    >>> table = pd.DataFrame({"clv": [1.0, 2.0, 3.0, 94.0], "churn_probability": 0.5})
    >>> ax = plot_lorenz_curve(value_concentration(table))
    """
    _require(concentration, ("lorenz", "gini", "shares"), "value_concentration")
    ax = get_ax(ax)
    # Drawn from the most valuable customer: x = share of customers (top first), y = share of value.
    x, y = lorenz_from_top(concentration.lorenz)
    ax.plot(x, y, color="C0", lw=2, label=f"Customers by value (Gini {concentration.gini:.2f})")
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="Equal value per customer")
    for _, row in concentration.shares.iterrows():
        ax.plot(row["top_share"], row["value_share"], "o", color="C3", ms=5)
        ax.annotate(
            f"top {percent(row['top_share'])}: {percent(row['value_share'])}",
            (row["top_share"], row["value_share"]),
            textcoords="offset points",
            xytext=(8, -12),
            fontsize=8,
        )
    percent_axis(ax, "x")
    percent_axis(ax, "y")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Share of customers, most valuable first")
    ax.set_ylabel("Share of expected value")
    ax.legend(loc="lower right", frameon=False)
    _title(ax, concentration.headline)
    return ax


def plot_profit_curve(roi, *, currency: str = "$", ax: Axes | None = None) -> Axes:
    """Expected profit of a retention action by number of customers targeted.

    Parameters
    ----------
    roi : RetentionROI
        From :func:`custval.invest.retention_roi`.
    currency : str, default "$"
        Currency symbol of the value table.
    ax : Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    Axes
        With the best budget and the break-even point marked.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval.invest import retention_roi
    >>> table = pd.DataFrame({"clv": [100.0, 50.0, 10.0], "churn_probability": [.5, .4, .9]})
    >>> table.attrs["value_basis"] = "contribution"
    >>> ax = plot_profit_curve(retention_roi(table, cost_per_contact=2.0, save_rate=0.2))
    """
    _require(roi, ("profit_curve", "best", "assumptions"), "retention_roi")
    ax = get_ax(ax)
    curve = roi.profit_curve
    best = roi.best
    ax.plot(curve["n_targeted"], curve["profit"], color="C0", lw=2, label="Expected profit")
    ax.axhline(0, color="0.4", lw=0.8)
    ax.plot(
        best["n_targeted"],
        best["profit"],
        "o",
        color="C2",
        ms=7,
        label=f"Best: {count(best['n_targeted'])} customers, budget "
        f"{money(best['budget'], currency)}",
    )
    if best["break_even_n"] > best["n_targeted"]:
        ax.axvline(
            best["break_even_n"],
            color="C3",
            ls=":",
            lw=1.2,
            label=f"Break-even: {count(best['break_even_n'])} customers",
        )
    money_axis(ax, "y", currency)
    ax.set_xlabel("Customers targeted, highest expected net value first")
    ax.set_ylabel(f"Expected profit ({currency})")
    ax.legend(loc="best", frameon=False, fontsize=8)
    _title(ax, f"{roi.headline.replace('$', currency)}\n{roi.assumptions['effect']}", fontsize=10)
    return ax


def _outcome_axis(ax: Axes, uplift, currency: str | None) -> str:
    if uplift.outcome_type == "binary":
        percent_axis(ax, "y", decimals=1)
        return f"{uplift.outcome} rate (points)"
    if currency is not None:
        money_axis(ax, "y", currency)
        return f"{uplift.outcome} ({currency})"
    return uplift.outcome


def _effect_text(value: float, uplift, currency: str | None) -> str:
    if uplift.outcome_type == "binary":
        return f"{100 * value:+.2f} points"
    if currency is not None:
        return ("+" if value >= 0 else "") + money(value, currency, decimals=2)
    return f"{value:+.3g}"


def plot_qini_curve(
    uplift, *, at: float = 0.2, currency: str | None = None, ax: Axes | None = None
) -> Axes:
    """Uplift (Qini) curve: cumulative incremental outcome by share targeted, against random.

    Parameters
    ----------
    uplift : UpliftResult
        From :func:`custval.invest.estimate_uplift`.
    at : float, default 0.2
        Share targeted quoted in the title.
    currency : str, optional
        Currency of a money outcome (axis formatting).
    ax : Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    Axes

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from custval.invest import estimate_uplift
    >>> rng = np.random.default_rng(0)
    >>> x, t = rng.uniform(size=600), rng.integers(0, 2, size=600)
    >>> frame = pd.DataFrame({"x": x, "treatment": t, "y": 3 * x * t + rng.normal(size=600)})
    >>> result = estimate_uplift(frame, outcome="y", features=["x"], n_bootstrap=20,
    ...                          progress=False, fit_final=False)
    >>> ax = plot_qini_curve(result)
    """
    _require(uplift, ("qini", "qini_area", "qini_area_ci", "outcome"), "estimate_uplift")
    ax = get_ax(ax)
    q = uplift.qini
    frac = q["fraction_targeted"].to_numpy()
    ax.plot(frac, q["incremental_outcome"], color="C0", lw=2, label="Targeting by predicted uplift")
    if q["ci_lower"].notna().any():
        ax.fill_between(frac, q["ci_lower"], q["ci_upper"], color="C0", alpha=0.15, lw=0)
    ax.plot(frac, q["random_targeting"], color="0.5", ls="--", lw=1, label="Random targeting")
    percent_axis(ax, "x")
    if currency is not None and uplift.outcome_type != "binary":
        money_axis(ax, "y", currency)
    ax.set_xlabel("Share of customers targeted, highest predicted uplift first")
    unit = "" if currency is None or uplift.outcome_type == "binary" else f" ({currency})"
    what = "extra" if uplift.outcome_type == "binary" else "incremental"
    ax.set_ylabel(f"Cumulative {what} {uplift.outcome}{unit}")
    total = float(q["incremental_outcome"].iloc[-1])
    k = int(np.argmin(np.abs(frac - at)))
    share = float(q["incremental_outcome"].iloc[k]) / total if total > 0 else np.nan
    lo = uplift.qini_area_ci[0]
    if np.isfinite(lo) and lo > 0:
        verdict = "beats random targeting"
    elif np.isfinite(lo):
        verdict = "is not distinguishable from random targeting"
    else:
        verdict = "vs random targeting (no interval)"
    head = (
        f"Top {percent(frac[k])} by predicted uplift deliver {percent(share)} of the incremental "
        f"{uplift.outcome}"
        if total > 0
        else f"The campaign shows no incremental {uplift.outcome} overall"
    )
    _title(
        ax,
        f"{head}\nRanking {verdict} (Qini area {number(uplift.qini_area)} per customer)",
        fontsize=10,
    )
    ax.legend(loc="best", frameon=False, fontsize=8)
    return ax


def plot_uplift_by_decile(uplift, *, currency: str | None = None, ax: Axes | None = None) -> Axes:
    """Observed uplift per decile of out-of-fold predicted uplift, with intervals.

    Parameters
    ----------
    uplift : UpliftResult
        From :func:`custval.invest.estimate_uplift`.
    currency : str, optional
        Currency of a money outcome (axis formatting).
    ax : Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    Axes

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from custval.invest import estimate_uplift
    >>> rng = np.random.default_rng(0)
    >>> x, t = rng.uniform(size=600), rng.integers(0, 2, size=600)
    >>> frame = pd.DataFrame({"x": x, "treatment": t, "y": 3 * x * t + rng.normal(size=600)})
    >>> result = estimate_uplift(frame, outcome="y", features=["x"], n_bootstrap=20,
    ...                          progress=False, fit_final=False)
    >>> ax = plot_uplift_by_decile(result)
    """
    _require(uplift, ("by_decile", "ate", "outcome"), "estimate_uplift")
    ax = get_ax(ax)
    d = uplift.by_decile
    deciles = d.index.to_numpy()
    observed = d["observed_uplift"].to_numpy()
    lower = np.where(np.isfinite(d["ci_lower"]), observed - d["ci_lower"], 0.0)
    upper = np.where(np.isfinite(d["ci_upper"]), d["ci_upper"] - observed, 0.0)
    ax.bar(deciles, observed, color="C0", alpha=0.8, label="Observed uplift (treated − control)")
    ax.errorbar(deciles, observed, yerr=[lower, upper], fmt="none", ecolor="0.2", capsize=3)
    ax.plot(deciles, d["predicted_uplift"], "o-", color="C1", ms=4, label="Predicted uplift")
    ate = float(uplift.ate.loc["difference in means", "estimate"])
    ax.axhline(ate, color="0.4", ls="--", lw=1, label="Average effect")
    ax.axhline(0, color="0.2", lw=0.8)
    ax.set_xticks(deciles)
    ax.set_xlabel("Decile of predicted uplift (1 = highest; out of fold)")
    ax.set_ylabel(f"Uplift in {_outcome_axis(ax, uplift, currency)}")
    ax.legend(loc="best", frameon=False, fontsize=8)
    top = float(observed[0])
    _title(
        ax,
        f"Top decile: {_effect_text(top, uplift, currency)} {uplift.outcome} vs "
        f"{_effect_text(ate, uplift, currency)} on average",
        fontsize=10,
    )
    return ax


def plot_payback_curves(payback, *, currency: str = "$", ax: Axes | None = None) -> Axes:
    """Cumulative contribution per customer against acquisition cost, one line per group.

    Solid where at least half the group's customers are observed that long, dashed where the
    curve is mostly the projection of expected value.

    Parameters
    ----------
    payback : PaybackResult
        From :func:`custval.invest.payback`.
    currency : str, default "$"
        Currency symbol.
    ax : Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from custval.invest import payback
    >>> customers = pd.DataFrame({"customer_id": [1], "channel": ["search"],
    ...     "acquisition_date": pd.to_datetime(["2024-01-01"]), "acquisition_cost": [100.0]})
    >>> log = pd.DataFrame({"customer_id": [1] * 3, "amount": [50.0] * 3,
    ...     "timestamp": pd.to_datetime(["2024-01-02", "2024-02-02", "2024-03-02"])})
    >>> table = pd.DataFrame({"clv": [60.0]}, index=pd.Index([1], name="customer_id"))
    >>> table.attrs.update(value_basis="contribution", horizon="12M")
    >>> ax = plot_payback_curves(payback(customers, table, transactions=log, margin=0.4))
    """
    _require(payback, ("curves", "summary", "freq"), "payback")
    ax = get_ax(ax)
    unit = UNIT_WORDS[payback.freq]
    for i, (group, part) in enumerate(payback.curves.groupby("group", sort=False)):
        color = f"C{i % 10}"
        x = part["period"].to_numpy()
        y = part["cumulative_contribution"].to_numpy()
        observed = part["observed_share"].to_numpy() >= 0.5
        last = int(np.nonzero(observed)[0].max()) if observed.any() else 0
        ax.plot(x[: last + 1], y[: last + 1], color=color, lw=2, label=str(group))
        ax.plot(x[last:], y[last:], color=color, lw=2, ls="--")
        ax.axhline(part["acquisition_cost"].iloc[0], color=color, lw=0.8, ls=":")
        period = payback.summary.loc[group, "payback_period"]
        if np.isfinite(period):
            ax.plot(period, y[int(period)], "o", color=color, ms=6)
    handles, labels = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="0.3", lw=2, ls="--"),
        Line2D([], [], color="0.3", lw=0.8, ls=":"),
        Line2D([], [], color="0.3", marker="o", ls="none"),
    ]
    labels += ["mostly projected", "acquisition cost", "payback"]
    ax.legend(handles, labels, loc="best", frameon=False, fontsize=8)
    money_axis(ax, "y", currency)
    ax.set_xlabel(f"Time since acquisition ({unit})")
    ax.set_ylabel(f"Cumulative contribution per customer ({currency})")
    _title(ax, payback.headline, fontsize=10)
    return ax


def plot_investment_plan(plan, *, currency: str = "$", ax: Axes | None = None) -> Axes:
    """Expected return of acting on each segment, coloured by recommendation.

    Parameters
    ----------
    plan : InvestmentPlan
        From :func:`custval.invest.investment_plan`.
    currency : str, default "$"
        Currency symbol.
    ax : Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from custval.invest import investment_plan
    >>> table = pd.DataFrame({"clv": [200.0, 3.0], "churn_probability": [0.6, 0.9],
    ...                       "segment": ["At risk", "Lost"]})
    >>> table.attrs["value_basis"] = "contribution"
    >>> ax = plot_investment_plan(investment_plan(table, cost_per_contact=5.0, save_rate=0.2))
    """
    _require(plan, ("plan", "rules"), "investment_plan")
    ax = get_ax(ax)
    p = plan.plan.iloc[::-1]  # largest return at the top
    names = [
        f"{name}\n{count(row['customers'])} customers, "
        f"{money(row['value_at_stake'], currency)} at stake"
        for name, row in p.iterrows()
    ]
    colors = [_PLAN_COLORS.get(r, "C0") for r in p["recommendation"]]
    ax.barh(np.arange(len(p)), p["expected_return"], color=colors)
    ax.set_yticks(np.arange(len(p)), names, fontsize=8, parse_math=False)
    ax.axvline(0, color="0.2", lw=0.8)
    money_axis(ax, "x", currency)
    ax.set_xlabel(f"Expected return of acting on the whole segment ({currency}, net of cost)")
    ax.set_ylabel(str(plan.plan.index.name or "segment"))
    present = list(dict.fromkeys(plan.plan["recommendation"]))
    ax.legend(
        [Patch(color=_PLAN_COLORS[r]) for r in present],
        present,
        loc="upper left",
        frameon=False,
        fontsize=8,
    )
    _title(ax, plan.headline.replace("$", currency), fontsize=10)
    return ax


def plot_targeting_curves(targeting, *, currency: str = "$", ax: Axes | None = None) -> Axes:
    """Net profit of contacting the top customers by predicted response, at random and by churn
    risk, measured on the campaign's held-out customers.

    Parameters
    ----------
    targeting : UpliftTargeting
        From :func:`custval.invest.uplift_targeting`.
    currency : str, default "$"
        Currency of the money axis.
    ax : Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    Axes

    Examples
    --------
    >>> ax = plot_targeting_curves(targeting)  # doctest: +SKIP
    """
    _require(targeting, ("curves", "comparison", "n_contact"), "uplift_targeting")
    ax = get_ax(ax)
    c = targeting.curves
    x = c["n_targeted"].to_numpy()
    ax.plot(x, c["by_uplift"], color="C0", linewidth=2, label="By predicted response")
    if c["by_uplift_lower"].notna().any():
        ax.fill_between(
            x, c["by_uplift_lower"], c["by_uplift_upper"], color="C0", alpha=0.15, linewidth=0
        )
    ax.plot(x, c["at_random"], color="0.5", linestyle="--", label="At random")
    if "by_churn_risk" in c:
        ax.plot(x, c["by_churn_risk"], color="C1", label="By churn risk")
    ax.axhline(0.0, color="0.3", linewidth=0.6)
    ax.axvline(targeting.n_contact, color="C0", linestyle=":", linewidth=1)
    ax.set_xlabel("Customers contacted (most promising first)")
    ax.set_ylabel("Net profit of the contacts")
    money_axis(ax, "y", currency)
    ax.legend(loc="lower left", fontsize=8)
    row = targeting.comparison.loc["by uplift"]
    random = targeting.comparison.loc["at random"]
    _title(
        ax,
        f"Contacting the {count(targeting.n_contact)} most responsive earned "
        f"{money(row['net_profit'], currency)} net, against "
        f"{money(random['net_profit'], currency)} at random",
    )
    return ax
