"""Payback of acquisition spend per channel or cohort.

For every customer the cumulative contribution ``m`` periods after acquisition is

* observed, while ``m`` is within the customer's observed tenure: ``margin × amount`` of the
  purchases made before the end of period ``m`` (the first purchase included);
* after that, the observed total plus the expected future contribution from the value table
  (``clv``), spread evenly over the value table's horizon: a stated, deliberately simple
  projection (the model's expected purchases decline over time, so an even spread is
  conservative for the payback month).

A group's curve is the mean over its customers, its acquisition cost is the mean cost, and it
pays back in the first period in which the curve reaches the cost.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from custval._format import money
from custval._log import read_moment
from custval._units import DAYS_PER_UNIT, normalize_freq, parse_duration
from custval._validation import check_margin, check_margins, require_columns, require_numeric
from custval.errors import CustvalWarning, DataError
from custval.invest._campaign import _check_log
from custval.invest._common import (
    contribution_value,
    id_keys,
    read_dates,
    table_basis,
    value_table_context,
)

__all__ = ["PaybackResult", "payback"]


@dataclass(frozen=True)
class PaybackResult:
    """Result of :func:`payback`.

    Attributes
    ----------
    summary : DataFrame
        One row per group: ``customers``, ``acquisition_cost`` (mean per customer),
        ``observed_contribution`` (to date, per customer), ``expected_future_contribution``
        (per customer, from the value table), ``lifetime_contribution`` (their sum),
        ``clv_to_cac`` (lifetime contribution / acquisition cost), ``payback_period`` (periods
        after acquisition, NaN if not reached), ``payback_observed_share`` (share of the group's
        customers observed for at least that long: 1 means the payback is fully observed) and
        ``mean_tenure`` (periods observed).
    curves : DataFrame
        Long format: ``group``, ``period`` (0, 1, ...), ``cumulative_contribution`` (mean per
        customer), ``acquisition_cost``, ``net`` (their difference) and ``observed_share``.
    freq : str
        The period unit ("M" months by default).
    assumptions : dict
        Margin, projection rule and horizon, observation end, value basis.
    """

    summary: pd.DataFrame
    curves: pd.DataFrame = field(repr=False)
    freq: str
    assumptions: dict[str, Any]

    @property
    def headline(self) -> str:
        """One sentence for a chart title."""
        unit = {"M": "month", "W": "week", "D": "day", "Y": "year", "h": "hour"}[self.freq]
        s = self.summary.dropna(subset=["payback_period"])
        if s.empty:
            return "No group pays back its acquisition cost within the horizon"
        fastest = s.sort_values("payback_period").index[0]
        period = int(s.loc[fastest, "payback_period"])
        name = str(fastest)
        text = f"{name[:1].upper()}{name[1:]} customers pay back fastest ({unit} {period})"
        never = self.summary.index[self.summary["payback_period"].isna()]
        if len(never):
            text += f"; {', '.join(map(str, never))} never within the horizon"
        return text


def payback(
    customers: pd.DataFrame,
    value_table: pd.DataFrame,
    *,
    transactions: pd.DataFrame,
    margin: float | str,
    acquisition_cost: str = "acquisition_cost",
    acquisition_date: str = "acquisition_date",
    by: str | None = "channel",
    cohort_freq: str = "Q",
    freq: str = "M",
    value: str = "clv",
    projection_horizon: str | None = None,
    observation_end: str | pd.Timestamp | None = None,
    value_basis: str | None = None,
) -> PaybackResult:
    """Acquisition cost against cumulative contribution per channel or cohort; payback, CLV:CAC.

    Parameters
    ----------
    customers : DataFrame
        One row per customer with ``customer_id`` (column or index), the acquisition date, the
        acquisition cost and the grouping column.
    value_table : DataFrame
        Indexed by customer_id (:func:`custval.customer_value_table`); ``value`` is the expected
        future value after the observation end. Customers absent from it (no purchases) have no
        expected future value.
    transactions : DataFrame
        Clean log: ``customer_id``, ``timestamp``, ``amount`` (revenue).
    margin : float or str
        Contribution margin of the observed revenue: a fraction, or a column of ``customers``.
        It is applied to the value table only when that table is revenue
        (``attrs["value_basis"]``); a contribution table already carries its margin.
    acquisition_cost, acquisition_date : str
        Columns of ``customers``.
    by : str or None, default "channel"
        Grouping column of ``customers``; ``"cohort"`` groups by acquisition period
        (``cohort_freq``) unless ``customers`` has a ``cohort`` column; None: one group.
    cohort_freq : str, default "Q"
        pandas period frequency of the cohorts.
    freq : str, default "M"
        Period of the curves ("M" months, "W" weeks, "D" days).
    value : str, default "clv"
        Value-table column of expected future value.
    projection_horizon : str, optional
        Over how long the expected future value is spread; defaults to the value table's
        ``attrs["horizon"]`` (required when that is infinite).
    observation_end : date-like, optional
        Defaults to the value table's ``attrs["observation_end"]``, else the last transaction.
    value_basis : {"contribution", "revenue"}, optional
        Whether ``value`` is contribution or revenue; defaults to the value table's
        ``attrs["value_basis"]``. ``projection_horizon``, ``observation_end`` and ``value_basis``
        win over the table's attrs, which pandas drops in ``merge`` and ``join``.

    Returns
    -------
    PaybackResult
        ``summary``, ``curves``, ``freq`` and ``assumptions``.

    Examples
    --------
    >>> import pandas as pd
    >>> customers = pd.DataFrame({"customer_id": [1], "channel": ["search"],
    ...     "acquisition_date": pd.to_datetime(["2024-01-01"]), "acquisition_cost": [100.0]})
    >>> log = pd.DataFrame({"customer_id": [1] * 6, "amount": [50.0] * 6,
    ...     "timestamp": pd.date_range("2024-01-01", periods=6, freq="MS") + pd.Timedelta("14D")})
    >>> table = pd.DataFrame({"clv": [0.0]}, index=pd.Index([1], name="customer_id"))
    >>> table.attrs.update(value_basis="contribution", horizon="12M")
    >>> result = payback(customers, table, transactions=log, margin=0.4,
    ...                  observation_end="2024-07-01")
    >>> int(result.summary.loc["search", "payback_period"])
    5
    """
    unit = normalize_freq(freq)
    cust, acquired = _acquired_customers(customers, acquisition_cost, acquisition_date)
    groups, group_label = _payback_groups(cust, acquired, by, cohort_freq)
    m_cust, margin_shown = _observed_margins(cust, margin)
    f_cust, value_info, n_missing = _future_contribution(
        cust, value_table, value, margin, m_cust, margin_shown, value_basis
    )
    horizon_label = projection_horizon or value_table.attrs.get("horizon")
    horizon = _projection_periods(horizon_label, unit)
    log = _check_log(transactions)
    if observation_end is None:
        observation_end = value_table.attrs.get("observation_end") or log["timestamp"].max()
    end = read_moment(observation_end, "observation_end", wall_clock=True)
    tenure = _tenure(cust, acquired, end, unit)

    codes, labels = pd.factorize(groups, sort=True)
    n_groups = len(labels)
    n_per_group = np.bincount(codes, minlength=n_groups).astype(float)
    cost = cust[acquisition_cost].to_numpy(dtype=float)
    cac = np.bincount(codes, weights=cost, minlength=n_groups) / n_per_group
    row, period_of, contribution = _contributions(log, cust, acquired, m_cust, end, unit)
    observed_total = np.bincount(row, weights=contribution, minlength=len(cust))

    curve, observed_share = _cumulative_curves(
        codes, n_groups, row, period_of, contribution, tenure, f_cust, horizon
    )
    periods = np.arange(curve.shape[1])
    rows = []
    curve_frames = []
    for g, label in enumerate(labels):
        reached = np.nonzero(curve[g] >= cac[g] - 1e-9)[0]
        pb = int(reached[0]) if len(reached) else np.nan
        observed_mean = observed_total[codes == g].mean()
        future_mean = f_cust[codes == g].mean()
        lifetime = observed_mean + future_mean
        rows.append(
            {
                "group": label,
                "customers": int(n_per_group[g]),
                "acquisition_cost": cac[g],
                "observed_contribution": observed_mean,
                "expected_future_contribution": future_mean,
                "lifetime_contribution": lifetime,
                "clv_to_cac": lifetime / cac[g] if cac[g] > 0 else np.inf,
                "payback_period": pb,
                "payback_observed_share": observed_share[g, pb] if len(reached) else np.nan,
                "mean_tenure": float(tenure[codes == g].mean()),
            }
        )
        curve_frames.append(
            pd.DataFrame(
                {
                    "group": label,
                    "period": periods,
                    "cumulative_contribution": curve[g],
                    "acquisition_cost": cac[g],
                    "net": curve[g] - cac[g],
                    "observed_share": observed_share[g],
                }
            )
        )
    summary = pd.DataFrame(rows).set_index("group")
    summary.index.name = group_label
    curves = pd.concat(curve_frames, ignore_index=True)
    assumptions = {
        "group": group_label,
        "period": unit,
        "margin_on_observed_revenue": margin_shown,
        **value_info,
        "projection": f"expected future {value!r} spread evenly over {horizon_label} after "
        "each customer's observation end",
        "projection_horizon": horizon_label,
        "observation_end": end.isoformat(),
        "customers_without_value_row": n_missing,
        "acquisition_cost": f"mean of {acquisition_cost!r} per customer",
        **value_table_context(value_table),
    }
    if n_missing:
        assumptions["note"] = (
            f"{n_missing:,} customers have no row in the value table; their expected future "
            f"contribution is 0 ({money(0)})"
        )
    return PaybackResult(summary=summary, curves=curves, freq=unit, assumptions=assumptions)


# --- the steps of payback ----------------------------------------------------------------------


def _acquired_customers(
    customers: pd.DataFrame, acquisition_cost: str, acquisition_date: str
) -> tuple[pd.DataFrame, pd.Series]:
    """The customer table (``customer_id`` a column) and each customer's acquisition date."""
    cust = customers.reset_index() if "customer_id" not in customers.columns else customers
    require_columns(cust, ["customer_id", acquisition_cost, acquisition_date], what="customers")
    require_numeric(cust, [acquisition_cost], what="customers", nonnegative=True)
    if cust["customer_id"].duplicated().any():
        dup = cust["customer_id"][cust["customer_id"].duplicated()].head(5).tolist()
        raise DataError(
            f"customers has duplicated customer ids (first: {dup}); keep one row per customer"
        )
    acquired = read_dates(cust, acquisition_date, what="customers")
    if acquired.isna().any():
        missing = cust["customer_id"][acquired.isna()].head(5).tolist()
        raise DataError(
            f"customers column {acquisition_date!r} has {int(acquired.isna().sum()):,} missing "
            f"dates (customers {missing}); payback needs every customer's acquisition date"
        )
    return cust, acquired


def _payback_groups(
    cust: pd.DataFrame, acquired: pd.Series, by: str | None, cohort_freq: str
) -> tuple[pd.Series, str]:
    """Each customer's group label, and the name of the grouping."""
    if by == "cohort" and "cohort" not in cust.columns:
        return acquired.dt.to_period(cohort_freq).astype(str), f"acquisition cohort ({cohort_freq})"
    if by is None:
        return pd.Series("all customers", index=cust.index), "all customers"
    require_columns(cust, [by], what="customers")
    return cust[by].astype(str), by


def _observed_margins(cust: pd.DataFrame, margin: float | str) -> tuple[np.ndarray, Any]:
    """The margin on each customer's observed revenue, and how to show it."""
    if isinstance(margin, str):
        require_columns(cust, [margin], what="customers")
        return check_margins(cust, margin, what="customers"), f"column {margin!r} of customers"
    return np.full(len(cust), check_margin(margin)), float(margin)


def _future_contribution(
    cust: pd.DataFrame,
    value_table: pd.DataFrame,
    value: str,
    margin: float | str,
    m_cust: np.ndarray,
    margin_shown: Any,
    value_basis: str | None = None,
) -> tuple[np.ndarray, dict[str, Any], int]:
    """Each customer's expected future contribution (0 without a value-table row), what it is,
    and how many customers have no row. A revenue table gets the customers' margins here."""
    basis = table_basis(value_table, value_basis)
    if basis == "revenue":
        table_margin = (
            pd.Series(m_cust, index=id_keys(cust["customer_id"]))
            .reindex(id_keys(value_table.index))
            .fillna(float(np.mean(m_cust)))
            .to_numpy()
        )
        future, value_info = contribution_value(value_table, value, 1.0, basis)
        future = future * table_margin
        value_info["margin_applied_here"] = margin_shown
    else:
        future, value_info = contribution_value(value_table, value, None, basis)
        table_margin_attr = value_table.attrs.get("margin")
        if isinstance(table_margin_attr, int | float) and not isinstance(margin, str):
            if not math.isclose(float(table_margin_attr), float(margin), rel_tol=1e-9):
                warnings.warn(
                    f"margin={margin!r} for observed revenue differs from the value table's "
                    f"margin {table_margin_attr!r}; observed and expected contribution are on "
                    "different margins",
                    CustvalWarning,
                    stacklevel=3,
                )
    future_by_key = pd.Series(future.to_numpy(dtype=float), index=id_keys(value_table.index))
    f_cust = future_by_key.reindex(id_keys(cust["customer_id"]))
    n_missing = int(f_cust.isna().sum())
    return f_cust.fillna(0.0).to_numpy(), value_info, n_missing


def _projection_periods(horizon_label: str | None, unit: str) -> float:
    """The horizon over which the expected value accrues, in periods of ``unit``."""
    if horizon_label is None:
        raise DataError(
            "the value table does not record its horizon (attrs['horizon']); pass "
            "projection_horizon='12M' (the period over which the expected value accrues)"
        )
    horizon = parse_duration(horizon_label, to=unit)
    if not math.isfinite(horizon) or horizon <= 0:
        raise DataError(
            f"cannot spread the expected value over the horizon {horizon_label!r}; pass "
            "projection_horizon= with a finite duration such as '36M'"
        )
    return horizon


def _tenure(cust: pd.DataFrame, acquired: pd.Series, end: pd.Timestamp, unit: str) -> np.ndarray:
    """Periods from each customer's acquisition to the observation end."""
    tenure = ((end - acquired) / pd.Timedelta(days=DAYS_PER_UNIT[unit])).to_numpy(dtype=float)
    if np.any(tenure < 0):
        first = cust["customer_id"][tenure < 0].head(5).tolist()
        raise DataError(
            f"{int((tenure < 0).sum()):,} customers were acquired after the observation end "
            f"{end.date()} (first: {first}); drop them or pass a later observation_end"
        )
    return tenure


def _contributions(
    log: pd.DataFrame,
    cust: pd.DataFrame,
    acquired: pd.Series,
    m_cust: np.ndarray,
    end: pd.Timestamp,
    unit: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The observed purchases of the customers between acquisition and ``end``: each one's
    customer row, period since acquisition (a purchase in ``[k-1, k)`` counts from period
    ``k``) and contribution."""
    pos = pd.Series(np.arange(len(cust)), index=id_keys(cust["customer_id"]))
    merged = log.assign(pos=pos.reindex(log["key"]).to_numpy())
    merged = merged.loc[merged["pos"].notna()]
    row = merged["pos"].to_numpy(dtype=int)
    elapsed = (
        (merged["timestamp"].to_numpy() - acquired.to_numpy()[row])
        / pd.Timedelta(days=DAYS_PER_UNIT[unit])
    ).astype(float)
    keep = (elapsed >= 0) & (merged["timestamp"].to_numpy() <= end)
    row, elapsed = row[keep], elapsed[keep]
    contribution = merged["amount"].to_numpy(dtype=float)[keep] * m_cust[row]
    return row, np.floor(elapsed).astype(int) + 1, contribution


def _cumulative_curves(
    codes: np.ndarray,
    n_groups: int,
    row: np.ndarray,
    period_of: np.ndarray,
    contribution: np.ndarray,
    tenure: np.ndarray,
    f_cust: np.ndarray,
    horizon: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative contribution per customer of each group by period since acquisition
    (observed, then the expected future value spread evenly over ``horizon`` after each
    customer's observation end), and the share of the group observed that long."""
    n_per_group = np.bincount(codes, minlength=n_groups).astype(float)
    n_periods = math.ceil(np.max(tenure) + horizon) if len(tenure) else 0
    periods = np.arange(n_periods + 1)
    observed = np.zeros((n_groups, n_periods + 1))
    np.add.at(observed, (codes[row], np.minimum(period_of, n_periods)), contribution)
    observed = np.cumsum(observed, axis=1)
    projected = np.zeros((n_groups, n_periods + 1))
    observed_count = np.zeros((n_groups, n_periods + 1))
    for m in periods:
        ramp = np.clip((m - tenure) / horizon, 0.0, 1.0)
        projected[:, m] = np.bincount(codes, weights=f_cust * ramp, minlength=n_groups)
        observed_count[:, m] = np.bincount(codes, weights=tenure >= m, minlength=n_groups)
    curve = (observed + projected) / n_per_group[:, None]
    return curve, observed_count / n_per_group[:, None]
