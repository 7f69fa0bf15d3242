"""Whom to contact, on measured response: predicted incremental profit against the cost, checked on
held-out customers against contacting at random and against contacting by churn risk.

A customer is worth contacting when the predicted uplift in spend (cross-fitted: the models that
predict a customer never saw that customer) times the margin exceeds the cost of the contact.
Whether ranking by predicted uplift really earns more is measured on the campaign itself: for the
top ``k`` customers by a score, the incremental outcome is (mean of the contacted − mean of the
held back among them) × k, the uplift (Qini) curve of Radcliffe (2007, "Using control groups to
target on predicted lift", DMA Analytics Annual Journal) in its "incremental outcome" form; in
money it is ``margin × incremental outcome − cost × k``. Contacting at random earns the average
effect on every contact. Bootstrap intervals resample customers within each arm with the
out-of-fold predictions held fixed, as in :func:`custval.invest.estimate_uplift`.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from custval._validation import Interval, Margin, validate_params
from custval.errors import DataError
from custval.invest._common import UNCERTAINTY_CONSTRAINTS, percentile_interval

__all__ = ["UpliftTargeting", "uplift_targeting"]

_GRID = 101


@dataclass(frozen=True)
class UpliftTargeting:
    """Result of :func:`uplift_targeting`.

    Attributes
    ----------
    scores : DataFrame
        Per campaign customer (the campaign frame's index): ``predicted_uplift`` (out of fold),
        ``predicted_incremental_profit`` (× margin), ``net_value`` (− cost) and ``contact``
        (net value > 0).
    curves : DataFrame
        Net profit of contacting the top ``n_targeted`` customers (101 points), measured on the
        held-out campaign customers: ``by_uplift`` (ranked by predicted uplift, with
        ``by_uplift_lower``/``_upper``), ``at_random`` and, when churn risk was given,
        ``by_churn_risk``.
    comparison : DataFrame
        At the chosen number of contacts (every customer whose predicted incremental profit
        exceeds the cost): ``n_targeted``, ``net_profit`` with ``ci_lower``/``ci_upper``, for
        ``by uplift``, ``at random`` and ``by churn risk``; and ``advantage`` of ranking by uplift
        over each (with ``advantage_lower``/``_upper``).
    n_contact : int
        Customers worth contacting (predicted incremental profit above the cost).
    assumptions : dict
        Margin, cost, the curve's definition, bootstrap.
    """

    scores: pd.DataFrame
    curves: pd.DataFrame
    comparison: pd.DataFrame
    n_contact: int
    assumptions: dict[str, Any]

    @property
    def beats_random(self) -> bool:
        """Whether ranking by predicted uplift earned more than contacting as many at random
        (the interval of the advantage above zero)."""
        return bool(self.comparison.loc["at random", "advantage_lower"] > 0)

    @property
    def beats_churn_risk(self) -> bool | None:
        """The same against ranking by churn risk (None when no churn risk was given)."""
        if "by churn risk" not in self.comparison.index:
            return None
        return bool(self.comparison.loc["by churn risk", "advantage_lower"] > 0)


def _net_at(
    order: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    ks: np.ndarray,
    margin: float,
    cost: float,
) -> np.ndarray:
    """Net profit of contacting the first ``ks`` customers of ``order`` (bootstrap weights w)."""
    t, y, w = t[order], y[order], w[order]
    wt, wc = w * t, w * (1 - t)
    zero = np.zeros(1)
    cnt_t = np.concatenate([zero, np.cumsum(wt)])[ks]
    cnt_c = np.concatenate([zero, np.cumsum(wc)])[ks]
    sum_t = np.concatenate([zero, np.cumsum(wt * y)])[ks]
    sum_c = np.concatenate([zero, np.cumsum(wc * y)])[ks]
    size = np.concatenate([zero, np.cumsum(w)])[ks]
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where((cnt_t > 0) & (cnt_c > 0), sum_t / cnt_t - sum_c / cnt_c, 0.0)
    return margin * diff * size - cost * size


@validate_params(
    {"margin": Margin(), "cost_per_contact": Interval(Real, 0, None), **UNCERTAINTY_CONSTRAINTS}
)
def uplift_targeting(
    effect: Any,
    *,
    margin: float,
    cost_per_contact: float,
    churn: pd.Series | None = None,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    random_state: int = 0,
) -> UpliftTargeting:
    """Contact the customers whose predicted incremental profit exceeds the cost, and check on
    held-out customers that this beats contacting at random and contacting by churn risk.

    Parameters
    ----------
    effect : UpliftResult
        :func:`custval.invest.estimate_uplift` on the randomized campaign, outcome in money
        (revenue); its out-of-fold ``cate`` is the predicted uplift.
    margin : float
        Contribution margin as a fraction of revenue, in (0, 1] (1 when the outcome is profit).
    cost_per_contact : float
        What one contact costs.
    churn : Series, optional
        Churn risk of the campaign customers at the contact date, indexed like the campaign
        frame (e.g. :func:`custval.churn_scores` with ``cutoff`` the contact date): the
        targeting to beat besides random.
    n_bootstrap : int, default 200
        Resamples for the intervals (0: none).
    alpha : float, default 0.05
        ``1 - alpha`` is the level of the intervals.
    random_state : int, default 0
        Seed of the bootstrap.

    Returns
    -------
    UpliftTargeting

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from custval.invest import estimate_uplift, uplift_targeting
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"treatment": rng.integers(0, 2, 4000), "x": rng.normal(size=4000)})
    >>> frame["revenue"] = rng.gamma(2.0, 10.0, 4000) + 20.0 * (frame["x"] > 0) * frame["treatment"]
    >>> effect = estimate_uplift(frame, outcome="revenue", features=["x"], n_bootstrap=0,
    ...                          n_folds=2, progress=False)
    >>> result = uplift_targeting(effect, margin=0.3, cost_per_contact=2.5, n_bootstrap=50)
    >>> result.beats_random
    True
    """
    margin, cost = float(margin), float(cost_per_contact)
    if not (hasattr(effect, "cate") and hasattr(effect, "_frame")):
        raise DataError(
            f"effect must be the result of estimate_uplift, got {type(effect).__name__}"
        )
    if effect.outcome_type != "continuous":
        raise DataError(
            f"the uplift is on {effect.outcome!r}, a yes/no outcome; target on money: estimate "
            "the uplift on revenue (outcome='revenue')"
        )
    frame = effect._frame
    t = frame[effect._treatment].to_numpy(dtype=float)
    y = frame[effect.outcome].to_numpy(dtype=float)
    tau = effect.cate.to_numpy(dtype=float)
    n = len(t)
    profit = margin * tau
    net = profit - cost
    n_contact = int((net > 0).sum())
    scores = pd.DataFrame(
        {
            "predicted_uplift": tau,
            "predicted_incremental_profit": profit,
            "net_value": net,
            "contact": net > 0,
        },
        index=frame.index,
    )

    orders = {"by uplift": np.argsort(-tau, kind="stable")}
    if churn is not None:
        risk = pd.Series(churn).reindex(frame.index)
        if risk.isna().any():
            raise DataError(
                f"churn has no value for {int(risk.isna().sum()):,} campaign customers; give a "
                "churn risk for every customer of the campaign"
            )
        orders["by churn risk"] = np.argsort(-risk.to_numpy(dtype=float), kind="stable")
    grid = np.round(np.linspace(0.0, 1.0, _GRID) * n).astype(int)
    ks = np.concatenate([grid, [n_contact]])

    def evaluate(w: np.ndarray) -> dict[str, np.ndarray]:
        out = {name: _net_at(o, t, y, w, ks, margin, cost) for name, o in orders.items()}
        wt, wc = w * t, w * (1 - t)
        dim = (wt @ y) / wt.sum() - (wc @ y) / wc.sum()
        size = np.concatenate([[0.0], np.cumsum(w)])[ks]
        out["at random"] = (margin * dim - cost) * size
        return out

    point = evaluate(np.ones(n))
    draws: dict[str, list[np.ndarray]] = {name: [] for name in point}
    if n_bootstrap:
        rng = np.random.default_rng(random_state)
        pos_t, pos_c = np.nonzero(t == 1)[0], np.nonzero(t == 0)[0]
        for _ in range(n_bootstrap):
            w = np.bincount(pos_t[rng.integers(0, len(pos_t), len(pos_t))], minlength=n)
            w = w + np.bincount(pos_c[rng.integers(0, len(pos_c), len(pos_c))], minlength=n)
            for name, value in evaluate(w.astype(float)).items():
                draws[name].append(value)

    def interval(values: list[np.ndarray] | np.ndarray) -> np.ndarray:
        if not n_bootstrap:
            return np.full((2, len(ks)), np.nan)
        return percentile_interval(np.asarray(values, dtype=float), alpha)

    uplift_ci = interval(draws["by uplift"])
    curves = pd.DataFrame(
        {
            "fraction_targeted": grid / max(n, 1),
            "n_targeted": grid,
            "by_uplift": point["by uplift"][:-1],
            "by_uplift_lower": uplift_ci[0][:-1],
            "by_uplift_upper": uplift_ci[1][:-1],
            "at_random": point["at random"][:-1],
        }
    )
    if "by churn risk" in point:
        curves["by_churn_risk"] = point["by churn risk"][:-1]
    rows = {}
    for name in point:
        ci = interval(draws[name])
        if name == "by uplift":
            adv = np.array([np.nan, np.nan, np.nan])
        else:
            diff = [a[-1] - b[-1] for a, b in zip(draws["by uplift"], draws[name], strict=True)]
            lo, hi = (
                percentile_interval(np.asarray(diff), alpha) if n_bootstrap else (np.nan, np.nan)
            )
            adv = np.array([point["by uplift"][-1] - point[name][-1], lo, hi])
        rows[name] = {
            "n_targeted": n_contact,
            "net_profit": point[name][-1],
            "ci_lower": ci[0][-1],
            "ci_upper": ci[1][-1],
            "advantage": adv[0],
            "advantage_lower": adv[1],
            "advantage_upper": adv[2],
        }
    comparison = pd.DataFrame.from_dict(rows, orient="index")
    comparison.index.name = "targeting"
    return UpliftTargeting(
        scores=scores,
        curves=curves,
        comparison=comparison,
        n_contact=n_contact,
        assumptions={
            "margin": margin,
            "cost_per_contact": cost,
            "rule": "contact when margin × predicted uplift (cross-fitted) > cost",
            "curve": "net profit of the top k = margin × (contacted mean − held-back mean among "
            "them) × k − cost × k, on out-of-fold predictions (held-out customers)",
            "n_bootstrap": n_bootstrap,
            "bootstrap": "resampling customers within arm; out-of-fold predictions held fixed",
            "alpha": alpha,
            "random_state": random_state,
        },
    )
