"""Did a relationship investment pay back, in money: incremental profit per contact against its
cost, net return and ROI with intervals, overall and by segment.

For a randomized campaign the incremental revenue per contacted customer is the difference in
mean outcome between the contacted and the held-back customers (the campaign's average effect on
the treated, which randomization makes the average effect), with its Neyman standard error. For
an observational programme effect (:func:`custval.invest.relationship_effect`) it is the
propensity-weighted difference and its bootstrap interval, labelled as observational: it holds
only if the covariates capture why customers joined.

Per contact, with margin ``m`` and cost ``c``::

    incremental profit = m × uplift            net return = m × uplift − c
    ROI = (m × uplift − c) / c                 payback multiple = m × uplift / c

The cost is a known number, so each interval is the interval of the uplift carried through these
increasing maps: the bounds of profit, net return, ROI and the multiple are the same maps of the
uplift's bounds (exact for a normal interval of a linear function).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from custval._format import money, percent
from custval._validation import OPEN_PROBABILITY, Interval, Margin, validate_params
from custval.errors import DataError

__all__ = ["CampaignPayback", "campaign_payback"]

_COST_FIX = "give what one contact costs, in the outcome's currency"

_COLUMNS = [
    "n_contacted",
    "n_held_back",
    "incremental_revenue",
    "incremental_revenue_lower",
    "incremental_revenue_upper",
    "incremental_profit",
    "incremental_profit_lower",
    "incremental_profit_upper",
    "cost_per_contact",
    "net_return",
    "net_return_lower",
    "net_return_upper",
    "roi",
    "roi_lower",
    "roi_upper",
    "payback_multiple",
    "total_cost",
    "total_net_return",
    "total_net_return_lower",
    "total_net_return_upper",
    "verdict",
]


@dataclass(frozen=True)
class CampaignPayback:
    """Result of :func:`campaign_payback`.

    Attributes
    ----------
    summary : DataFrame
        One row ``"all"`` and, when grouped, one per segment. Per contacted customer:
        ``incremental_revenue``, ``incremental_profit`` (× margin), ``cost_per_contact``,
        ``net_return`` (profit − cost), ``roi`` (net return / cost) and ``payback_multiple``
        (profit / cost), each money column with ``_lower``/``_upper`` bounds; totals over the
        contacted customers: ``total_cost``, ``total_net_return`` (with bounds); counts
        ``n_contacted``, ``n_held_back``; and ``verdict``: ``"paid back"`` when the whole
        interval of the net return is above zero, ``"did not pay back"`` when it is below,
        ``"not clear"`` otherwise.
    design : str
        ``"randomized"`` or ``"observational"``.
    level : float
        Confidence level of the intervals (0.95).
    assumptions : dict
        Margin, cost, where the effect comes from, the estimator and the caveat.
    """

    summary: pd.DataFrame
    design: str
    level: float
    assumptions: dict[str, Any]

    @property
    def overall(self) -> pd.Series:
        """The ``"all"`` row of :attr:`summary`."""
        return self.summary.loc["all"]

    @property
    def paid_back(self) -> bool | None:
        """True when it paid back, False when it did not, None when the interval says neither."""
        return {"paid back": True, "did not pay back": False}.get(self.overall["verdict"])

    def sentence(self, row: str = "all", *, currency: str = "$") -> str:
        """One plain sentence: what each contact cost and brought, and whether it paid back.

        Examples
        --------
        ``"Each $2.50 contact brought $3.83 of profit (95% range $2.66 to $5.01): the
        campaign paid back 1.5 times its cost."``
        """
        r = self.summary.loc[row]
        what = "campaign" if self.design == "randomized" else "programme"
        if row != "all":
            what += f" among {str(row).replace('_', ' ')} customers"
        level = percent(self.level)
        # a margin of 1 counts revenue as the gain: say so rather than call it profit
        gain = "profit" if self.assumptions["margin"] < 1 else "revenue (no margin applied)"
        cost = money(r["cost_per_contact"], currency, decimals=2)
        brought = (
            f"Each {cost} contact brought {money(r['incremental_profit'], currency, decimals=2)} "
            f"of {gain} ({level} range {money(r['incremental_profit_lower'], currency, decimals=2)}"
            f" to {money(r['incremental_profit_upper'], currency, decimals=2)})"
        )
        if self.design != "randomized":
            brought = (
                f"Each {cost} spent per member went with "
                f"{money(r['incremental_profit'], currency, decimals=2)} of extra {gain} per "
                f"member ({level} range "
                f"{money(r['incremental_profit_lower'], currency, decimals=2)} to "
                f"{money(r['incremental_profit_upper'], currency, decimals=2)}; observational: "
                "a comparison of similar members and non-members, not an experiment)"
            )
        multiple = f"{r['payback_multiple']:.1f}"
        if r["verdict"] == "paid back":
            verdict = f"the {what} paid back {multiple} times its cost"
        elif r["verdict"] == "did not pay back":
            verdict = f"the {what} did not pay back: it returned {multiple} times its cost"
        else:
            verdict = (
                f"the {what} may not have paid back: the range includes the {cost} it cost "
                f"(best estimate {multiple} times its cost)"
            )
        return f"{brought}: {verdict}."


def _row(
    estimate: float,
    lower: float,
    upper: float,
    n_contacted: int,
    n_held_back: int,
    *,
    margin: float,
    cost: float,
) -> dict[str, Any]:
    profit = margin * np.array([estimate, lower, upper])
    net = profit - cost
    roi = net / cost if cost > 0 else np.full(3, np.nan)
    if net[1] > 0:
        verdict = "paid back"
    elif net[2] < 0:
        verdict = "did not pay back"
    else:
        verdict = "not clear"
    return {
        "n_contacted": int(n_contacted),
        "n_held_back": int(n_held_back),
        "incremental_revenue": estimate,
        "incremental_revenue_lower": lower,
        "incremental_revenue_upper": upper,
        "incremental_profit": profit[0],
        "incremental_profit_lower": profit[1],
        "incremental_profit_upper": profit[2],
        "cost_per_contact": cost,
        "net_return": net[0],
        "net_return_lower": net[1],
        "net_return_upper": net[2],
        "roi": roi[0],
        "roi_lower": roi[1],
        "roi_upper": roi[2],
        "payback_multiple": profit[0] / cost if cost > 0 else np.nan,
        "total_cost": cost * n_contacted,
        "total_net_return": net[0] * n_contacted,
        "total_net_return_lower": net[1] * n_contacted,
        "total_net_return_upper": net[2] * n_contacted,
        "verdict": verdict,
    }


@validate_params(
    {
        "margin": Margin(),
        "cost_per_contact": Interval(Real, 0, None, closed="neither", fix=_COST_FIX),
        "n_members": [Interval(Integral, 1, None), None],
        "alpha": OPEN_PROBABILITY,
    }
)
def campaign_payback(
    effect: Any,
    *,
    margin: float,
    cost_per_contact: float,
    by: str | None = "segment",
    n_members: int | None = None,
    alpha: float = 0.05,
) -> CampaignPayback:
    """Whether a campaign (or a programme) paid back: profit per contact against its cost.

    Parameters
    ----------
    effect : UpliftResult or RelationshipEffect
        The effect on revenue per customer: :func:`custval.invest.estimate_uplift` on a
        randomized campaign (``outcome="revenue"``), or :func:`custval.invest.relationship_effect`
        for an observational programme (labelled as such; no segments).
    margin : float
        Contribution margin as a fraction of revenue (in (0, 1]); use 1 when the outcome is
        already profit.
    cost_per_contact : float
        What one contact (or one member's programme) costs, in the outcome's currency.
    by : str or None, default "segment"
        A column of the campaign frame to break the result down by (skipped when absent).
    n_members : int, optional
        For an observational effect: how many members the programme serves, for the totals
        (without it the totals are NaN).
    alpha : float, default 0.05
        ``1 - alpha`` is the level of the intervals.

    Returns
    -------
    CampaignPayback

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from custval.invest import campaign_payback, estimate_uplift
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"treatment": rng.integers(0, 2, 4000), "x": rng.normal(size=4000)})
    >>> frame["revenue"] = rng.gamma(2.0, 10.0, 4000) + 12.0 * frame["treatment"]
    >>> effect = estimate_uplift(frame, outcome="revenue", features=["x"], n_bootstrap=0,
    ...                          n_folds=2, progress=False)
    >>> result = campaign_payback(effect, margin=0.3, cost_per_contact=2.5, by=None)
    >>> result.overall["verdict"]
    'paid back'
    """
    margin, cost = float(margin), float(cost_per_contact)
    z = float(stats.norm.ppf(1 - alpha / 2))
    rows: dict[str, dict[str, Any]] = {}
    if hasattr(effect, "ate") and hasattr(effect, "effect_by"):
        design = "randomized"
        ate = effect.ate.loc["difference in means"]
        est, se = float(ate["estimate"]), float(ate["std_error"])
        groups = effect.groups
        rows["all"] = _row(
            est,
            est - z * se,
            est + z * se,
            int(groups.loc["treated", "n"]),
            int(groups.loc["control", "n"]),
            margin=margin,
            cost=cost,
        )
        if by is not None and by in effect._frame.columns:
            table = effect.effect_by(by, alpha=alpha)
            for name, r in table.sort_index().iterrows():
                rows[str(name)] = _row(
                    float(r["observed_uplift"]),
                    float(r["ci_lower"]),
                    float(r["ci_upper"]),
                    int(r["n_treated"]),
                    int(r["n_control"]),
                    margin=margin,
                    cost=cost,
                )
        estimator = "difference in means with its Neyman standard error (normal interval)"
        caveat = "randomized: the difference between contacted and held-back customers is caused "
        caveat += "by the contact"
        outcome = effect.outcome
    elif hasattr(effect, "estimates") and "propensity weighted" in effect.estimates.index:
        design = "observational"
        r = effect.estimates.loc["propensity weighted"]
        lower, upper = float(r["ci_lower"]), float(r["ci_upper"])
        if not (np.isfinite(lower) and np.isfinite(upper)):
            raise DataError(
                "the relationship effect has no interval; call relationship_effect with "
                "n_bootstrap > 0 so the payback can carry its uncertainty"
            )
        rows["all"] = _row(
            float(r["estimate"]), lower, upper, n_members or 0, 0, margin=margin, cost=cost
        )
        if not n_members:
            for key in ("total_cost", "total_net_return"):
                for suffix in ("", "_lower", "_upper"):
                    if key + suffix in rows["all"]:
                        rows["all"][key + suffix] = np.nan
        estimator = "propensity-weighted difference with its bootstrap interval"
        caveat = (
            "observational: members chose to join, so the difference holds only if the "
            "covariates capture why they joined"
        )
        outcome = "outcome of relationship_effect"
    else:
        raise DataError(
            f"effect must be the result of estimate_uplift or relationship_effect, got "
            f"{type(effect).__name__}"
        )
    summary = pd.DataFrame.from_dict(rows, orient="index")[_COLUMNS]
    summary.index.name = by if (by is not None and len(rows) > 1) else "group"
    return CampaignPayback(
        summary=summary,
        design=design,
        level=1 - alpha,
        assumptions={
            "margin": margin,
            "cost_per_contact": cost,
            "outcome": outcome,
            "design": design,
            "estimator": estimator,
            "caveat": caveat,
            "alpha": alpha,
        },
    )
