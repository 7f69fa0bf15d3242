"""Retention ROI: whom to contact, and whether contacting pays back.

For customer *i* the expected incremental value of acting is

* with an assumed save rate *s* (the share of would-be-lost customers the action keeps):
  ``churn_probability_i * s * value_at_stake_i - cost_i``;
* with a per-customer uplift estimated from a randomized campaign on a retention outcome
  (``uplift_kind="absolute"``, the default): ``uplift_i * value_at_stake_i - cost_i``. An absolute
  uplift is already a change in the probability of keeping the customer, so it is not multiplied
  by the churn probability again (that would count the risk twice). An uplift expressed as a save
  rate (``uplift_kind="save_rate"``) is treated like ``s`` above.

The value at stake is contribution: a contribution value table is used as is, a revenue table is
multiplied by ``margin`` (see :func:`custval.invest._common.contribution_value`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from custval._format import count, money, percent
from custval._validation import Options, validate_params
from custval.errors import DataError
from custval.invest._common import (
    check_fraction,
    churn_probability,
    contribution_value,
    per_customer,
    value_table_context,
)

__all__ = ["RetentionROI", "retention_roi"]

_DEFAULT_MULTIPLIERS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


@dataclass(frozen=True)
class RetentionROI:
    """Result of :func:`retention_roi`.

    Attributes
    ----------
    targets : DataFrame
        The recommended target list: customers whose expected net value is positive, best first
        (same columns as ``scores``).
    scores : DataFrame
        Every customer, ranked by expected net value: ``rank``, ``churn_probability``,
        ``effect`` (save rate or uplift), ``value_at_stake``, ``expected_incremental_value``
        (before cost), ``cost``, ``expected_net_value``, ``break_even_effect`` (the effect at
        which contacting this customer breaks even) and ``target``.
    profit_curve : DataFrame
        One row per number targeted (0..n, best first): ``n_targeted``, ``share_targeted``,
        ``budget`` (cumulative cost), ``incremental_value``, ``profit`` and ``roi``.
    best : dict
        The profit-maximizing plan: ``n_targeted``, ``budget``, ``incremental_value``,
        ``profit``, ``roi``; the break-even point of the curve (``break_even_n``,
        ``break_even_budget``: targeting more than this loses money overall); and
        ``break_even_effect_multiplier``: the fraction of the assumed effect at which the chosen
        plan only breaks even (``break_even_save_rate`` with a single assumed save rate).
    sensitivity : DataFrame
        The decision under other effects: ``effect_multiplier`` (1 = as assumed), ``save_rate``
        (for a single assumed rate), ``n_targeted`` and ``best_profit`` when re-optimized, and
        ``chosen_plan_profit``: the profit of the plan chosen at the assumed effect if the true
        effect were this one.
    assumptions : dict
        Every assumption: value column and basis, margin, churn source, effect, cost, the value
        table's horizon and discount rate.
    """

    targets: pd.DataFrame
    scores: pd.DataFrame = field(repr=False)
    profit_curve: pd.DataFrame = field(repr=False)
    best: dict[str, Any]
    sensitivity: pd.DataFrame
    assumptions: dict[str, Any]

    @property
    def headline(self) -> str:
        """One sentence for a chart title."""
        b = self.best
        if b["n_targeted"] == 0:
            return "No retention contact pays back under these assumptions"
        return (
            f"Contacting the top {count(b['n_targeted'])} customers is expected to return "
            f"{money(b['profit'])} on {money(b['budget'])}"
        )


def _profit_curve(net: np.ndarray, gross: np.ndarray, cost: np.ndarray) -> pd.DataFrame:
    n = len(net)
    budget = np.concatenate([[0.0], np.cumsum(cost)])
    incremental = np.concatenate([[0.0], np.cumsum(gross)])
    profit = incremental - budget
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = np.where(budget > 0, profit / np.where(budget > 0, budget, 1.0), np.nan)
    return pd.DataFrame(
        {
            "n_targeted": np.arange(n + 1),
            "share_targeted": np.arange(n + 1) / max(n, 1),
            "budget": budget,
            "incremental_value": incremental,
            "profit": profit,
            "roi": roi,
        }
    )


def _best(curve: pd.DataFrame) -> dict[str, Any]:
    profit = curve["profit"].to_numpy()
    k = int(np.argmax(profit))  # the first maximum: fewest contacts for the same profit
    after = np.nonzero(profit[k:] >= 0)[0]
    k_even = k + int(after.max()) if len(after) else k
    row = curve.iloc[k]
    return {
        "n_targeted": k,
        "share_targeted": float(row["share_targeted"]),
        "budget": float(row["budget"]),
        "incremental_value": float(row["incremental_value"]),
        "profit": float(row["profit"]),
        "roi": float(row["roi"]),
        "break_even_n": k_even,
        "break_even_budget": float(curve["budget"].iloc[k_even]),
    }


def _source(spec: object) -> str:
    return f"column {spec!r}" if isinstance(spec, str) else "Series"


def _rank(net: np.ndarray) -> np.ndarray:
    return np.argsort(-net, kind="stable")


@validate_params({"uplift_kind": Options(("absolute", "save_rate"))})
def retention_roi(
    value_table: pd.DataFrame,
    *,
    cost_per_contact: float | str | pd.Series,
    save_rate: float | str | pd.Series | None = None,
    uplift: pd.Series | str | None = None,
    uplift_kind: Literal["absolute", "save_rate"] = "absolute",
    margin: float | str | None = None,
    churn: str | pd.Series = "churn_probability",
    value: str = "clv",
    sensitivity_multipliers: Sequence[float] = _DEFAULT_MULTIPLIERS,
    value_basis: Literal["contribution", "revenue"] | None = None,
) -> RetentionROI:
    """Expected incremental value of a retention action per customer, target list and budget.

    Parameters
    ----------
    value_table : DataFrame
        Indexed by ``customer_id`` (from :func:`custval.customer_value_table`); its
        ``attrs["value_basis"]`` says whether ``value`` is revenue or contribution.
    cost_per_contact : float, str or Series
        Cost of acting on one customer (currency of the value table): a number, a column of the
        value table, or a Series by customer_id.
    save_rate : float, str or Series, optional
        Assumed share of would-be-lost customers the action keeps (0..1). Give exactly one of
        ``save_rate`` and ``uplift``.
    uplift : Series or str, optional
        Per-customer effect estimated from a randomized campaign (e.g.
        ``estimate_uplift(...).predict(frame)``). See ``uplift_kind``.
    uplift_kind : {"absolute", "save_rate"}, default "absolute"
        ``"absolute"``: the uplift is the change in the probability of keeping the customer, so
        incremental value = uplift × value at stake (the churn probability is already in it).
        ``"save_rate"``: the uplift is a share of would-be-lost customers kept, multiplied by the
        churn probability like ``save_rate``.
    margin : float or str, optional
        Only for a revenue value table (``attrs["value_basis"] == "revenue"``): the contribution
        margin (fraction or column). Refused for a contribution table, where it would count the
        margin twice.
    churn : str or Series, default "churn_probability"
        Probability of losing each customer: a column, ``"1 - p_alive"``, or a Series by
        customer_id (:func:`custval.churn_scores`).
    value : str, default "clv"
        Column with the value at stake (e.g. ``"clv"``, ``"clv_lower"`` for a cautious plan).
    sensitivity_multipliers : sequence of float
        Multiples of the assumed effect for the sensitivity table.
    value_basis : {"contribution", "revenue"}, optional
        Whether ``value`` is contribution or revenue; defaults to ``attrs["value_basis"]``
        (which pandas drops in ``merge`` and ``join``: pass it here then). The explicit value
        wins.

    Returns
    -------
    RetentionROI
        ``targets``, ``scores``, ``profit_curve``, ``best``, ``sensitivity``, ``assumptions``.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"clv": [100.0, 50.0, 10.0], "churn_probability": [0.5, 0.4, 0.9]},
    ...                      index=pd.Index(["a", "b", "c"], name="customer_id"))
    >>> table.attrs["value_basis"] = "contribution"
    >>> roi = retention_roi(table, cost_per_contact=2.0, save_rate=0.2)
    >>> roi.targets["expected_net_value"].round(2).tolist()
    [8.0, 2.0]
    >>> roi.best["n_targeted"], roi.best["profit"]
    (2, 10.0)
    """
    if (save_rate is None) == (uplift is None):
        raise DataError(
            "give exactly one of save_rate= (an assumed share of would-be-lost customers the "
            "action keeps) and uplift= (per-customer effect estimated from a campaign)"
        )
    value_at_stake, value_info = contribution_value(value_table, value, margin, value_basis)
    p_loss, churn_label = churn_probability(value_table, churn)
    cost = per_customer(cost_per_contact, value_table, name="cost_per_contact", nonnegative=True)
    effect, multiply_churn, effect_label, formula = _effect(
        save_rate, uplift, uplift_kind, value_table
    )
    base = (p_loss if multiply_churn else 1.0) * value_at_stake  # value moved per unit effect
    base_np = base.to_numpy(dtype=float)
    effect_np = effect.to_numpy(dtype=float)
    cost_np = cost.to_numpy(dtype=float)
    gross = base_np * effect_np
    net = gross - cost_np
    order = _rank(net)
    with np.errstate(divide="ignore", invalid="ignore"):
        break_even = np.where(base_np > 0, cost_np / np.where(base_np > 0, base_np, 1.0), np.inf)
    scores = pd.DataFrame(
        {
            "churn_probability": p_loss.to_numpy(),
            "effect": effect_np,
            "value_at_stake": value_at_stake.to_numpy(),
            "expected_incremental_value": gross,
            "cost": cost_np,
            "expected_net_value": net,
            "break_even_effect": break_even,
        },
        index=value_table.index,
    ).iloc[order]
    scores.insert(0, "rank", np.arange(1, len(scores) + 1))
    scores["target"] = scores["expected_net_value"] > 0
    curve = _profit_curve(net[order], gross[order], cost_np[order])
    best = _best(curve)
    targets = scores.iloc[: best["n_targeted"]]

    chosen = np.zeros(len(net), dtype=bool)
    chosen[order[: best["n_targeted"]]] = True
    chosen_gross = float(gross[chosen].sum())
    chosen_cost = float(cost_np[chosen].sum())
    best["break_even_effect_multiplier"] = (
        chosen_cost / chosen_gross if chosen_gross > 0 else float("nan")
    )
    scalar_rate = (
        float(save_rate)
        if save_rate is not None and not isinstance(save_rate, str | pd.Series)
        else None
    )
    if scalar_rate is not None:
        best["break_even_save_rate"] = best["break_even_effect_multiplier"] * scalar_rate
    sensitivity = _sensitivity(
        sensitivity_multipliers, effect_np, base_np, cost_np, chosen, multiply_churn, scalar_rate
    )
    assumptions = {
        "formula": formula,
        "effect": effect_label,
        "save_rate": scalar_rate,
        "churn": churn_label,
        "cost_per_contact": float(cost_per_contact)
        if isinstance(cost_per_contact, int | float)
        else f"per customer ({_source(cost_per_contact)})",
        **value_info,
        **value_table_context(value_table),
        "ranking": "by expected net value, ties in table order",
        "customers": len(value_table),
    }
    return RetentionROI(
        targets=targets,
        scores=scores,
        profit_curve=curve,
        best=best,
        sensitivity=sensitivity,
        assumptions=assumptions,
    )


# --- the steps of retention_roi ----------------------------------------------------------------


def _effect(
    save_rate: float | str | pd.Series | None,
    uplift: pd.Series | str | None,
    uplift_kind: str,
    value_table: pd.DataFrame,
) -> tuple[pd.Series, bool, str, str]:
    """The per-customer effect of a contact, whether it multiplies the churn probability, and
    the words and formula the result reports."""
    if save_rate is not None:
        if isinstance(save_rate, int | float) and not isinstance(save_rate, bool):
            check_fraction("save_rate", save_rate)
        effect = per_customer(save_rate, value_table, name="save_rate", fraction=True)
        multiply_churn = True
        effect_label = (
            f"assumed save rate {percent(float(save_rate), decimals=1)}"
            if not isinstance(save_rate, str | pd.Series)
            else f"assumed save rate per customer ({_source(save_rate)})"
        )
        formula = "churn_probability × save_rate × value_at_stake − cost"
    else:
        effect = per_customer(uplift, value_table, name="uplift")
        multiply_churn = uplift_kind == "save_rate"
        effect_label = f"per-customer uplift estimated from a campaign ({uplift_kind})"
        formula = (
            "churn_probability × uplift × value_at_stake − cost"
            if multiply_churn
            else "uplift × value_at_stake − cost (an absolute uplift already includes the "
            "chance of losing the customer)"
        )
    return effect, multiply_churn, effect_label, formula


def _sensitivity(
    multipliers: Sequence[float],
    effect: np.ndarray,
    base: np.ndarray,
    cost: np.ndarray,
    chosen: np.ndarray,
    multiply_churn: bool,
    scalar_rate: float | None,
) -> pd.DataFrame:
    """Best profit, and the chosen plan's profit, when the effect is ``multiplier`` times the
    assumed or estimated one."""
    rows = []
    for mult in multipliers:
        mult = float(mult)
        if not (mult >= 0 and np.isfinite(mult)):
            raise DataError(f"sensitivity multipliers must be >= 0, got {mult!r}")
        eff = effect * mult
        if multiply_churn:
            eff = np.minimum(eff, 1.0)  # a save rate cannot exceed 1
        gross = base * eff
        net = gross - cost
        order = _rank(net)
        best = _best(_profit_curve(net[order], gross[order], cost[order]))
        rows.append(
            {
                "effect_multiplier": mult,
                "save_rate": min(scalar_rate * mult, 1.0) if scalar_rate is not None else np.nan,
                "n_targeted": best["n_targeted"],
                "best_profit": best["profit"],
                "chosen_plan_profit": float(net[chosen].sum()),
            }
        )
    return pd.DataFrame(rows)
