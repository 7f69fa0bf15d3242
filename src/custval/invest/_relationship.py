"""Observational effect of a relationship programme (loyalty, membership) on customer value.

Members choose to join, so a plain member/non-member difference mixes the programme's effect
with who joins. The estimate here reweights non-members to look like members on behaviour
measured *before* enrolment:

1. propensity ``e(x) = P(member | x)`` from a logistic regression on standardized pre-enrolment
   covariates (categorical ones one-hot encoded);
2. overlap trimming: customers with ``e`` outside ``[trim, 1 - trim]`` are dropped (Crump, Hotz,
   Imbens & Mitnik 2009, Biometrika 96(1), use 0.1 as a rule of thumb);
3. normalized (Hájek) inverse-probability weights: for the effect on members (ATT) members weigh
   1 and non-members ``e / (1 - e)``; for the average effect (ATE) ``1 / e`` and ``1 / (1 - e)``;
4. the weighted difference in mean outcomes, with a bootstrap interval that refits the propensity
   model in every resample;
5. a balance table: standardized mean differences of each covariate before and after weighting
   (Austin 2009, Stat. Med. 28(25); |SMD| < 0.1 is the usual standard).

It is **observational**: it removes selection on the covariates given, not on anything else
(motivation, word of mouth). Where a randomized estimate exists it is shown next to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm  # text bars: tqdm.auto warns in Jupyter without ipywidgets

from custval._validation import (
    Interval,
    Options,
    refuse_rows,
    require_columns,
    require_numeric,
    validate_params,
)
from custval.errors import DataError
from custval.invest._common import UNCERTAINTY_CONSTRAINTS, percentile_interval

__all__ = ["RelationshipEffect", "relationship_effect"]


@dataclass(frozen=True)
class RelationshipEffect:
    """Result of :func:`relationship_effect`.

    Attributes
    ----------
    estimates : DataFrame
        Rows ``"naive difference"`` (members − non-members, unweighted), ``"propensity
        weighted"`` and, when given, ``"randomized"``; columns ``design`` ("observational" or
        "randomized"), ``estimate``, ``std_error`` (naive only), ``ci_lower``, ``ci_upper``,
        ``customers``.
    balance : DataFrame
        Per covariate column (after one-hot encoding): ``smd_before``, ``smd_after`` and
        ``balanced_after`` (|SMD| < 0.1).
    propensity : Series
        Estimated probability of membership per customer (all customers, before trimming).
    weights : Series
        Normalized weights of the customers kept (0 for the trimmed).
    trimmed : int
        Customers dropped for lack of overlap.
    message : str
        A plain statement of the estimate, labelled observational.
    assumptions : dict
        Estimand, covariates, trimming, bootstrap, the caveat.
    """

    estimates: pd.DataFrame
    balance: pd.DataFrame
    propensity: pd.Series = field(repr=False)
    weights: pd.Series = field(repr=False)
    trimmed: int
    message: str
    assumptions: dict[str, Any]

    @property
    def estimate(self) -> float:
        """The propensity-weighted estimate."""
        return float(self.estimates.loc["propensity weighted", "estimate"])


def _design_matrix(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    parts = []
    for c in covariates:
        s = frame[c]
        if pd.api.types.is_bool_dtype(s) or (
            pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype)
        ):
            values = s.astype(float)
            bad = ~np.isfinite(values.to_numpy())
            refuse_rows(
                frame,
                bad,
                c,
                "missing or infinite values",
                "fill them (e.g. a 'no history' indicator and 0) before weighting",
            )
            parts.append(values.rename(c).to_frame())
        else:
            dummies = pd.get_dummies(s.astype("string"), prefix=c, drop_first=True, dtype=float)
            parts.append(dummies)
    return pd.concat(parts, axis=1)


def _propensity(X: np.ndarray, z: np.ndarray, C: float) -> np.ndarray:
    mean, sd = X.mean(axis=0), X.std(axis=0)
    sd[sd == 0] = 1.0
    model = LogisticRegression(C=C, max_iter=1000)
    model.fit((X - mean) / sd, z)
    return model.predict_proba((X - mean) / sd)[:, 1]


def _weights(e: np.ndarray, z: np.ndarray, estimand: str) -> np.ndarray:
    if estimand == "ATT":
        return np.where(z == 1, 1.0, e / (1 - e))
    return np.where(z == 1, 1 / e, 1 / (1 - e))


def _weighted_difference(y: np.ndarray, z: np.ndarray, w: np.ndarray) -> float:
    t, c = z == 1, z == 0
    return float(np.average(y[t], weights=w[t]) - np.average(y[c], weights=w[c]))


def _estimate(
    X: np.ndarray, z: np.ndarray, y: np.ndarray, estimand: str, trim: float, C: float
) -> tuple[float, np.ndarray, np.ndarray]:
    e = _propensity(X, z, C)
    keep = (e >= trim) & (e <= 1 - trim)
    if (z[keep] == 1).sum() < 2 or (z[keep] == 0).sum() < 2:
        return float("nan"), e, keep
    w = _weights(e[keep], z[keep], estimand)
    return _weighted_difference(y[keep], z[keep], w), e, keep


def _smd(x: np.ndarray, z: np.ndarray, w: np.ndarray, sd: np.ndarray) -> np.ndarray:
    t, c = z == 1, z == 0
    diff = np.average(x[t], weights=w[t], axis=0) - np.average(x[c], weights=w[c], axis=0)
    return diff / sd


@validate_params(
    {
        "estimand": Options(("ATT", "ATE")),
        "trim": Interval(Real, 0, 0.5, closed="left"),
        **UNCERTAINTY_CONSTRAINTS,
    }
)
def relationship_effect(
    frame: pd.DataFrame,
    *,
    member: str = "loyalty_member",
    outcome: str = "clv",
    covariates: Sequence[str],
    estimand: Literal["ATT", "ATE"] = "ATT",
    trim: float = 0.05,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    randomized: Mapping[str, float] | Any | None = None,
    C: float = 1e4,
    random_state: int = 0,
    progress: bool = True,
) -> RelationshipEffect:
    """Difference in value between programme members and comparable non-members (observational).

    Parameters
    ----------
    frame : DataFrame
        One row per customer: the membership indicator, the outcome (e.g. ``clv`` or spend after
        enrolment) and covariates measured *before* enrolment (see :func:`history_features`).
    member : str, default "loyalty_member"
        Column with 1/True for members and 0/False for non-members.
    outcome : str, default "clv"
        Outcome column (numeric).
    covariates : sequence of str
        Pre-enrolment covariates for the propensity model. Never use behaviour after enrolment:
        it is partly the programme's effect.
    estimand : {"ATT", "ATE"}, default "ATT"
        Effect on the members (ATT) or on everyone (ATE).
    trim : float, default 0.05
        Drop customers whose propensity lies outside ``[trim, 1 - trim]`` (0 keeps all).
    n_bootstrap : int, default 200
        Bootstrap resamples (propensity refitted each time); 0 skips the interval.
    alpha : float, default 0.05
        1 - confidence level.
    randomized : mapping or UpliftResult, optional
        A randomized estimate to show alongside: a mapping with ``estimate``, ``ci_lower``,
        ``ci_upper`` (optionally ``std_error``, ``customers``), or an
        :class:`UpliftResult` (its difference in means).
    C : float, default 1e4
        Inverse L2 penalty of the logistic regression (large: essentially unpenalized).
    random_state : int, default 0
        Seeds the bootstrap.
    progress : bool, default True
        Show a progress bar for the bootstrap.

    Returns
    -------
    RelationshipEffect

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=4000)
    >>> joined = rng.uniform(size=4000) < 1 / (1 + np.exp(-2 * x))
    >>> value = 10 + 5 * x + 2 * joined + rng.normal(size=4000)
    >>> frame = pd.DataFrame({"member": joined, "value": value, "x": x})
    >>> result = relationship_effect(frame, member="member", outcome="value", covariates=["x"],
    ...                              n_bootstrap=0, progress=False)
    >>> round(result.estimate)
    2
    """
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    if not covariates:
        raise DataError("covariates is empty; name the pre-enrolment behaviour to balance on")
    require_columns(frame, [member, outcome, *covariates], what="frame")
    if {member, outcome} & set(covariates):
        raise DataError("covariates must not include the membership or the outcome column")
    require_numeric(frame, [outcome], what="frame")
    z = _membership(frame, member)
    y = frame[outcome].to_numpy(dtype=float)
    design = _design_matrix(frame, covariates)
    X = design.to_numpy(dtype=float)

    est, e, keep = _estimate(X, z, y, estimand, trim, C)
    if np.isnan(est):
        raise DataError(
            f"after trimming propensities outside [{trim}, {1 - trim}] fewer than 2 members or "
            "non-members remain: members and non-members do not overlap on these covariates; "
            "lower trim or reconsider the comparison"
        )
    weights, balance = _balance(X, z, e, keep, estimand, design.columns)

    z_t, z_c = y[z == 1], y[z == 0]
    naive = float(z_t.mean() - z_c.mean())
    naive_se = float(np.sqrt(z_t.var(ddof=1) / len(z_t) + z_c.var(ddof=1) / len(z_c)))
    zq = stats.norm.ppf(1 - alpha / 2)

    lo, hi = _bootstrap_interval(
        X, z, y, estimand, trim, C, n_bootstrap, alpha, random_state, progress
    )
    rows = {
        "naive difference": {
            "design": "observational",
            "estimate": naive,
            "std_error": naive_se,
            "ci_lower": naive - zq * naive_se,
            "ci_upper": naive + zq * naive_se,
            "customers": len(z),
        },
        "propensity weighted": {
            "design": "observational",
            "estimate": est,
            "std_error": np.nan,
            "ci_lower": float(lo),
            "ci_upper": float(hi),
            "customers": int(keep.sum()),
        },
    }
    if randomized is not None:
        rows["randomized"] = {"design": "randomized", **_randomized_row(randomized)}
    estimates = pd.DataFrame.from_dict(rows, orient="index")
    estimates.index.name = "estimator"
    level = f"{100 * (1 - alpha):g}%"
    target = "members" if estimand == "ATT" else "all customers"
    message = (
        f"Observational estimate: membership is associated with {est:+.4g} in {outcome} for "
        f"{target} after weighting on pre-enrolment behaviour ({level} bootstrap CI "
        f"{lo:.4g} to {hi:.4g}), against a naive difference of {naive:+.4g}. It assumes no "
        "unmeasured difference between members and non-members beyond the covariates."
    )
    if not balance["balanced_after"].all():
        worst = balance["smd_after"].abs().idxmax()
        message += f" Balance is incomplete: |SMD| of {worst!r} is still "
        message += f"{abs(balance.loc[worst, 'smd_after']):.2f} after weighting."
    assumptions = {
        "design": "observational (propensity weighting); not a randomized comparison",
        "estimand": estimand,
        "covariates": covariates,
        "propensity_model": f"logistic regression on standardized covariates, C={C:g}",
        "trim": f"propensity in [{trim:g}, {1 - trim:g}]",
        "weights": "normalized (Hájek) inverse-probability weights",
        "n_bootstrap": n_bootstrap,
        "bootstrap": "resampling within members and non-members; propensity refitted",
        "alpha": alpha,
        "random_state": random_state,
        "caveat": "assumes no unmeasured confounding given the pre-enrolment covariates",
    }
    return RelationshipEffect(
        estimates=estimates,
        balance=balance,
        propensity=pd.Series(e, index=frame.index, name="propensity"),
        weights=pd.Series(weights, index=frame.index, name="weight"),
        trimmed=int((~keep).sum()),
        message=message,
        assumptions=assumptions,
    )


# --- the steps of relationship_effect -----------------------------------------------------------


def _membership(frame: pd.DataFrame, member: str) -> np.ndarray:
    """The membership column as 0/1 integers, with at least 2 customers on each side."""
    raw = frame[member]
    if pd.api.types.is_bool_dtype(raw):
        z = raw.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    else:
        z = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(z, [0.0, 1.0])
    refuse_rows(frame, bad, member, "values other than 0/1", "code members 1 and non-members 0")
    z = z.astype(int)
    if min((z == 1).sum(), (z == 0).sum()) < 2:
        raise DataError(
            f"need at least 2 members and 2 non-members, got {(z == 1).sum()} and {(z == 0).sum()}"
        )
    return z


def _balance(
    X: np.ndarray,
    z: np.ndarray,
    e: np.ndarray,
    keep: np.ndarray,
    estimand: str,
    names: pd.Index,
) -> tuple[np.ndarray, pd.DataFrame]:
    """The normalized (Hájek) weights of every customer (0 when trimmed), and the standardized
    mean differences of the covariates before and after weighting."""
    w_keep = _weights(e[keep], z[keep], estimand)
    weights = np.zeros(len(z))
    weights[keep] = w_keep
    for arm in (0, 1):  # normalize within arm (Hájek)
        mask = keep & (z == arm)
        weights[mask] /= weights[mask].sum()

    sd = np.sqrt((X[z == 1].var(axis=0, ddof=1) + X[z == 0].var(axis=0, ddof=1)) / 2)
    sd[sd == 0] = np.nan
    balance = pd.DataFrame(
        {
            "smd_before": _smd(X, z, np.ones(len(z)), sd),
            "smd_after": _smd(X[keep], z[keep], w_keep, sd),
        },
        index=pd.Index(names, name="covariate"),
    )
    balance["balanced_after"] = balance["smd_after"].abs() < 0.1
    return weights, balance


def _bootstrap_interval(
    X: np.ndarray,
    z: np.ndarray,
    y: np.ndarray,
    estimand: str,
    trim: float,
    C: float,
    n_bootstrap: int,
    alpha: float,
    random_state: int,
    progress: bool,
) -> tuple[float, float]:
    """Percentile interval of the weighted estimate, resampling within members and
    non-members and refitting the propensity (NaN without resamples)."""
    lo = hi = float("nan")
    if n_bootstrap:
        rng = np.random.default_rng(random_state)
        draws = []
        idx_t, idx_c = np.nonzero(z == 1)[0], np.nonzero(z == 0)[0]
        for _ in tqdm(range(n_bootstrap), desc="relationship: bootstrap", disable=not progress):
            idx = np.concatenate([rng.choice(idx_t, len(idx_t)), rng.choice(idx_c, len(idx_c))])
            draws.append(_estimate(X[idx], z[idx], y[idx], estimand, trim, C)[0])
        lo, hi = percentile_interval(np.asarray(draws), alpha)
    return float(lo), float(hi)


def _randomized_row(randomized: Mapping[str, float] | Any) -> dict[str, Any]:
    """The randomized comparison's row, from an UpliftResult or a mapping."""
    if hasattr(randomized, "ate"):
        row = randomized.ate.loc["difference in means"]
        return {
            "estimate": row["estimate"],
            "std_error": row["std_error"],
            "ci_lower": row["ci_lower"],
            "ci_upper": row["ci_upper"],
            "customers": int(randomized.groups["n"].sum()),
        }
    if isinstance(randomized, Mapping) and "estimate" in randomized:
        return {
            "estimate": float(randomized["estimate"]),
            "std_error": float(randomized.get("std_error", np.nan)),
            "ci_lower": float(randomized.get("ci_lower", np.nan)),
            "ci_upper": float(randomized.get("ci_upper", np.nan)),
            "customers": randomized.get("customers", np.nan),
        }
    raise DataError(
        "randomized must be an UpliftResult or a mapping with 'estimate' (and 'ci_lower', "
        "'ci_upper'), e.g. {'estimate': 1.2, 'ci_lower': 0.4, 'ci_upper': 2.0}"
    )
