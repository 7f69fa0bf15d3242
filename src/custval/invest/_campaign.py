"""Campaign outcomes measured from the transaction log, and behaviour before a date."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from custval._log import read_log, read_moment
from custval._units import parse_duration
from custval._validation import bad_values_message, require_columns
from custval.errors import CustvalWarning, DataError
from custval.invest._common import id_keys, read_dates

__all__ = ["campaign_outcomes", "history_features"]

_DAY = pd.Timedelta(days=1)


def _check_log(transactions: pd.DataFrame) -> pd.DataFrame:
    """The log as read by :func:`custval._log.read_log`, with a text key per customer (to join
    the campaign and customer tables) and an order key per row."""
    log = read_log(
        transactions,
        optional=("order_id",),
        compact_ids=False,
        hint="clean the log with custval.clean_transactions first",
    )
    order = (
        log.columns["order_id"].astype(str).to_numpy()
        if "order_id" in log.columns
        else log.ticks  # without order ids, one order per timestamp
    )
    return pd.DataFrame(
        {
            "key": id_keys(log.customers)[log.codes],
            "timestamp": log.times,
            "amount": log.amount,
            "order": order,
        }
    )


def _required_dates(frame: pd.DataFrame, column: str, *, what: str, fix: str) -> pd.Series:
    """``frame[column]`` as datetimes, refusing values that are not dates or are missing."""
    dates = read_dates(frame, column, what=what)
    if dates.isna().any():
        raise DataError(
            bad_values_message(frame, dates.isna().to_numpy(), column, "missing dates", fix)
        )
    return dates


def _orders_and_revenue(rows: pd.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct orders and summed amount of ``rows`` per position ``pos`` in ``0..n-1``."""
    orders = np.zeros(n, dtype=int)
    revenue = np.zeros(n)
    if len(rows):
        grouped = rows.groupby("pos")
        o = grouped["order"].nunique()
        orders[o.index.to_numpy()] = o.to_numpy()
        r = grouped["amount"].sum()
        revenue[r.index.to_numpy()] = r.to_numpy()
    return orders, revenue


def _window_days(duration: str | None, name: str) -> float | None:
    if duration is None:
        return None
    days = parse_duration(duration, to="D")
    if not days > 0:
        raise DataError(f"{name} must be a positive duration such as '90D', got {duration!r}")
    return days


def history_features(
    transactions: pd.DataFrame,
    anchors: pd.Series,
    *,
    lookback: str | None = "365D",
    prefix: str = "pre_",
) -> pd.DataFrame:
    """Each customer's purchasing before an anchor date (a contact, an enrolment).

    Parameters
    ----------
    transactions : DataFrame
        Clean log: ``customer_id``, ``timestamp``, ``amount``, optional ``order_id``.
    anchors : Series
        Anchor date per customer, indexed by customer_id. Only purchases strictly before the
        anchor are used.
    lookback : str or None, default "365D"
        Window before the anchor for the order and revenue counts (None: all history).
    prefix : str, default "pre_"
        Prefix of the output columns.

    Returns
    -------
    DataFrame
        Indexed like ``anchors``: ``{prefix}orders`` and ``{prefix}revenue`` within the
        lookback, ``{prefix}recency_days`` (days from the last purchase to the anchor) and
        ``{prefix}tenure_days`` (days from the first purchase), NaN without earlier purchases.

    Examples
    --------
    >>> import pandas as pd
    >>> log = pd.DataFrame({"customer_id": [1, 1, 2], "amount": [10.0, 20.0, 5.0],
    ...                     "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01",
    ...                                                  "2024-03-01"])})
    >>> anchors = pd.Series(pd.to_datetime(["2024-03-01", "2024-03-01"]), index=[1, 2])
    >>> history_features(log, anchors)[["pre_orders", "pre_revenue"]].to_dict("list")
    {'pre_orders': [2, 0], 'pre_revenue': [30.0, 0.0]}
    """
    log = _check_log(transactions)
    if not isinstance(anchors, pd.Series):
        raise DataError(
            "anchors must be a Series of dates indexed by customer_id, got "
            f"{type(anchors).__name__}"
        )
    anchor_values = _required_dates(
        anchors.rename("anchor").to_frame(),
        "anchor",
        what="anchors",
        fix="give every customer an anchor date or leave the customer out",
    )
    days = _window_days(lookback, "lookback")
    keys = id_keys(anchors.index)
    if len(set(keys)) != len(keys):
        raise DataError("anchors has duplicated customer ids; give one anchor per customer")
    table = pd.DataFrame(
        {"key": keys, "anchor": anchor_values.to_numpy(), "pos": np.arange(len(keys))}
    )
    merged = log.merge(table, on="key", how="inner")
    before = merged.loc[merged["timestamp"] < merged["anchor"]]
    elapsed = (before["anchor"] - before["timestamp"]) / _DAY
    in_window = before.loc[elapsed <= days] if days is not None else before
    n = len(keys)
    orders, revenue = _orders_and_revenue(in_window, n)
    recency = np.full(n, np.nan)
    tenure = np.full(n, np.nan)
    if len(before):
        g = elapsed.groupby(before["pos"])
        recency[g.min().index.to_numpy()] = g.min().to_numpy()
        tenure[g.max().index.to_numpy()] = g.max().to_numpy()
    out = pd.DataFrame(
        {
            f"{prefix}orders": orders,
            f"{prefix}revenue": revenue,
            f"{prefix}recency_days": recency,
            f"{prefix}tenure_days": tenure,
        },
        index=anchors.index,
    )
    out.attrs["lookback"] = lookback
    return out


def campaign_outcomes(
    transactions: pd.DataFrame,
    campaign: pd.DataFrame,
    *,
    window: str = "90D",
    lookback: str | None = "365D",
    observation_end: str | pd.Timestamp | None = None,
    contact_date: str = "contact_date",
    treatment: str = "treatment",
) -> pd.DataFrame:
    """Outcomes of a campaign measured after each contact, with behaviour before it.

    The outcome window of a customer is ``contact_date <= timestamp < contact_date + window``.

    Parameters
    ----------
    transactions : DataFrame
        Clean log (:func:`custval.clean_transactions`): ``customer_id``, ``timestamp``,
        ``amount``, optional ``order_id``. Decide returns, postage and duplicates there: every
        row counts as a purchase here.
    campaign : DataFrame
        One row per contacted or control customer: ``customer_id``, ``treatment`` (0/1),
        ``contact_date`` and any other columns (segment, cost), which are kept.
    window : str, default "90D"
        Length of the outcome window, with its unit.
    lookback : str or None, default "365D"
        Window before the contact for the pre-campaign features (None: all history).
    observation_end : date-like, optional
        The end of the transaction data; defaults to the last timestamp. Windows that end after
        it are incomplete and raise a :class:`~custval.CustvalWarning`.
    contact_date, treatment : str
        Column names in ``campaign``.

    Returns
    -------
    DataFrame
        Indexed by customer_id in the campaign's order: the campaign columns, ``purchase``
        (1 if any order in the window), ``orders`` (distinct orders), ``revenue`` (sum of
        ``amount``), and the pre-contact features of :func:`history_features` (``pre_orders``,
        ``pre_revenue``, ``pre_recency_days``, ``pre_tenure_days``). ``attrs`` records the window.

    Examples
    --------
    >>> import pandas as pd
    >>> log = pd.DataFrame({"customer_id": ["1", "1", "2"], "amount": [10.0, 20.0, 5.0],
    ...                     "timestamp": pd.to_datetime(["2023-12-01", "2024-01-10",
    ...                                                  "2024-06-01"])})
    >>> campaign = pd.DataFrame({"customer_id": [1, 2], "treatment": [1, 0],
    ...                          "contact_date": pd.to_datetime(["2024-01-01", "2024-01-01"])})
    >>> out = campaign_outcomes(log, campaign, window="90D")
    >>> out[["purchase", "revenue", "pre_orders"]].to_dict("list")
    {'purchase': [1, 0], 'revenue': [20.0, 0.0], 'pre_orders': [1, 0]}
    """
    log = _check_log(transactions)
    require_columns(campaign, ["customer_id", treatment, contact_date], what="campaign")
    dup = campaign["customer_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataError(
            bad_values_message(
                campaign,
                dup,
                "customer_id",
                "duplicated customer ids",
                "keep one campaign row per customer (the first contact)",
            )
        )
    contacts = _required_dates(
        campaign,
        contact_date,
        what="campaign",
        fix="every randomized customer needs a contact date (controls: the date they would "
        "have been contacted)",
    )
    window_days = _window_days(window, "window")
    span = pd.Timedelta(days=window_days)
    end = (
        read_moment(observation_end, "observation_end", wall_clock=True)
        if observation_end is not None
        else pd.Timestamp(log["timestamp"].max())
    )
    incomplete = (contacts + span > end + _DAY).to_numpy()
    if incomplete.any():
        warnings.warn(
            f"{int(incomplete.sum()):,} customers' outcome windows end after the data end "
            f"({end.date()}); their outcomes are incomplete (first: "
            f"{campaign['customer_id'][incomplete].head(5).tolist()}). Use a shorter window or "
            "wait for more data",
            CustvalWarning,
            stacklevel=2,
        )
    keys = id_keys(campaign["customer_id"])
    table = pd.DataFrame({"key": keys, "contact": contacts.to_numpy(), "pos": np.arange(len(keys))})
    merged = log.merge(table, on="key", how="inner")
    inside = merged.loc[
        (merged["timestamp"] >= merged["contact"])
        & (merged["timestamp"] < merged["contact"] + span)
    ]
    orders, revenue = _orders_and_revenue(inside, len(campaign))
    out = campaign.set_index("customer_id")
    out = out.assign(purchase=(orders > 0).astype(int), orders=orders, revenue=revenue)
    anchors = pd.Series(contacts.to_numpy(), index=out.index)
    features = history_features(transactions, anchors, lookback=lookback)
    out = out.join(features)
    out.attrs.update(
        {
            "window": window,
            "window_rule": f"{contact_date} <= timestamp < {contact_date} + {window}",
            "lookback": lookback,
            "observation_end": end.isoformat(),
        }
    )
    return out
