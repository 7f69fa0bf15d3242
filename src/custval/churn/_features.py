"""Churn features at a cutoff: one row per customer, from data at or before the cutoff only."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from custval._validation import require_columns
from custval.churn._data import _datetimes, _Log, _prepare_log, _timedelta, _timestamp
from custval.errors import ConvergenceError, CustvalWarning, DataError

__all__ = ["churn_features"]

_DAY = np.timedelta64(1, "D").astype("timedelta64[ns]").astype(np.int64)


def churn_features(
    transactions: pd.DataFrame,
    *,
    cutoff: str | pd.Timestamp,
    customers: pd.DataFrame | None = None,
    touchpoints: pd.DataFrame | None = None,
    windows: Sequence[str] = ("30D", "90D", "365D"),
    model_features: bool = True,
    horizon: str = "90D",
) -> pd.DataFrame:
    """Features describing each customer as seen at ``cutoff``, for churn classifiers.

    Every feature is computed from rows with ``timestamp <= cutoff`` only (and customer dates on
    or before the cutoff), so changing, adding or removing later transactions changes nothing.
    The rows are the customers with a purchase on or before the cutoff, exactly the customers
    :func:`churn_labels` labels at that cutoff. Durations are in days.

    Features (``{w}`` is each of ``windows``):

    * recency and tenure: ``recency_days`` (since the last purchase), ``tenure_days`` (since the
      first);
    * RFM totals: ``orders`` (orders, or distinct purchase times without ``order_id``),
      ``spend`` (net of returns), ``orders_per_30d`` over the tenure;
    * RFM by window: ``orders_{w}``, ``spend_{w}``, and the trend of the last window against
      the one before it, ``orders_trend_{w}`` = (recent - earlier) / (recent + earlier), in
      [-1, 1];
    * inter-purchase times: ``gap_mean_days``, ``gap_std_days``, ``last_gap_days`` and
      ``overdue`` (``recency_days / gap_mean_days``: above 1 the customer is late);
    * spend variability: ``order_value_mean``, ``order_value_std``, ``order_value_cv``;
    * returns: ``return_rate`` (share of lines that are returns), ``returned_share`` (returned
      value over purchased value);
    * baskets, where the columns exist: ``items_per_order`` (``quantity``), ``lines_per_order``
      (``order_id``), ``products`` and ``product_variety`` (``product_code``: distinct products,
      and distinct products per line);
    * customer attributes (``customers``): every column but the id; text and boolean columns
      become categoricals, datetime columns become ``days_since_{column}`` (missing when the
      date is after the cutoff, because it was not known then);
    * touchpoints (``touchpoints``: ``customer_id``, ``timestamp`` and optionally ``kind``):
      ``touchpoints_{w}``, ``days_since_touchpoint`` and, with ``kind``,
      ``touchpoints_{kind}`` over the longest window;
    * BG/NBD (``model_features=True``): a BG/NBD model fitted on the daily summary at the cutoff
      gives ``p_alive``, ``expected_purchases`` over ``horizon`` and ``p_no_purchase``, the
      model's probability of no purchase within ``horizon`` (the churn label's event).

    Parameters
    ----------
    transactions : DataFrame
        Clean log: ``customer_id``, ``timestamp`` (datetime), ``amount``; optional ``order_id``,
        ``quantity``, ``product_code``. Negative amounts or quantities are returns. Not modified.
        Clean it with ``custval.clean_transactions(..., returns="keep")`` (or ``"drop"``), not
        ``"net"``: netting sets each return against earlier purchases, so a return after the
        cutoff would change (or remove) purchases before it, and the past would know the future.
    cutoff : str or Timestamp
        The moment the features describe; rows exactly at the cutoff belong to the past.
    customers : DataFrame, optional
        One row per customer with ``customer_id`` (column or index name) and attributes known at
        the cutoff. Do not pass attributes recorded later (e.g. a status "at the end"): they leak.
    touchpoints : DataFrame, optional
        Relationship contacts (calls, e-mails, visits) with ``customer_id`` and ``timestamp``.
    windows : sequence of str, default ("30D", "90D", "365D")
        Look-back windows, each a duration with unit.
    model_features : bool, default True
        Add the BG/NBD features.
    horizon : str, default "90D"
        Horizon of ``expected_purchases``; use the churn label horizon.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted); float64 columns and categoricals.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import churn_features
    >>> log = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-02-01", "2024-01-20"]),
    ...     "amount": [10.0, 20.0, 30.0, 5.0],
    ... })
    >>> features = churn_features(log, cutoff="2024-01-31", model_features=False)
    >>> features.loc["a", ["recency_days", "orders", "spend"]].tolist()
    [20.0, 2.0, 30.0]
    >>> features.loc["b", ["recency_days", "orders", "spend"]].tolist()
    [11.0, 1.0, 5.0]
    """
    log = _prepare_log(transactions)
    spec = _FeatureSpec.build(
        log, customers=customers, touchpoints=touchpoints, windows=windows, horizon=horizon
    )
    return _features_at(log, _timestamp(cutoff, "cutoff"), spec, model_features=model_features)


# ------------------------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class _FeatureSpec:
    """Everything about the feature set that does not depend on the cutoff."""

    windows: tuple[tuple[str, pd.Timedelta], ...]
    horizon: pd.Timedelta
    customers: pd.DataFrame | None
    touch_codes: np.ndarray | None  # customer code of each touchpoint (sorted by time)
    touch_times: np.ndarray | None
    touch_kinds: np.ndarray | None  # kind code of each touchpoint
    kind_names: tuple[str, ...]

    @classmethod
    def build(
        cls,
        log: _Log,
        *,
        customers: pd.DataFrame | None,
        touchpoints: pd.DataFrame | None,
        windows: Sequence[str],
        horizon: str,
    ) -> _FeatureSpec:
        if isinstance(windows, str) or len(windows) == 0:
            raise DataError(
                f"windows must be a non-empty sequence of durations such as ('30D', '90D'), "
                f"got {windows!r}"
            )
        parsed = tuple(
            sorted(((w, _timedelta(w, "each window")) for w in windows), key=lambda item: item[1])
        )
        touch = _touchpoints(log, touchpoints)
        return cls(
            windows=parsed,
            horizon=_timedelta(horizon, "horizon"),
            customers=None if customers is None else _customer_table(customers, log),
            touch_codes=touch[0],
            touch_times=touch[1],
            touch_kinds=touch[2],
            kind_names=touch[3],
        )


def _customer_table(customers: pd.DataFrame, log: _Log) -> pd.DataFrame:
    """Attributes indexed by customer id; text/boolean columns as categoricals."""
    if not isinstance(customers, pd.DataFrame):
        raise DataError(f"customers must be a pandas DataFrame, got {type(customers).__name__}")
    if "customer_id" in customers.columns:
        table = customers.set_index("customer_id")
    elif customers.index.name == "customer_id":
        table = customers
    else:
        raise DataError(
            "customers needs a 'customer_id' column (or index) to join on; rename its id column"
        )
    if table.index.has_duplicates:
        dupes = table.index[table.index.duplicated()].unique()[:5].tolist()
        raise DataError(
            f"customers has {table.index.duplicated().sum():,} duplicated customer_id values "
            f"(e.g. {dupes}); keep one row per customer"
        )
    table = table.set_axis(_align_ids(table.index, log.customers, "customers"), axis=0)
    out = {}
    for column in table.columns:
        values = table[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            out[column] = values
        elif pd.api.types.is_bool_dtype(values) or not (
            pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)
        ):
            out[column] = values.astype("category")
        elif pd.api.types.is_datetime64_any_dtype(values):
            out[column] = _datetimes(values, "customers", column).astype("datetime64[ns]")
        else:
            out[column] = values.astype(float)
    return pd.DataFrame(out, index=table.index)


def _align_ids(ids: pd.Index, reference: pd.Index, what: str) -> pd.Index:
    """Match ``ids`` to the transactions' ids, reading integer ids as text when the log's ids
    are text (``clean_transactions`` turns 17850 into "17850")."""
    if len(ids) == 0 or len(ids.intersection(reference)):
        return ids
    text_log = pd.api.types.is_string_dtype(reference) or reference.dtype == object
    if text_log and pd.api.types.is_integer_dtype(ids):
        as_text = ids.astype(str)
        if len(as_text.intersection(reference)):
            return as_text.rename(ids.name)
    raise DataError(
        f"no customer_id in {what} matches one in transactions (e.g. {ids[0]!r} vs "
        f"{reference[0]!r}); check that the ids have the same type and format"
    )


def _touchpoints(
    log: _Log, touchpoints: pd.DataFrame | None
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, tuple[str, ...]]:
    if touchpoints is None:
        return None, None, None, ()
    require_columns(
        touchpoints,
        ("customer_id", "timestamp"),
        what="touchpoints",
        hint="one row per contact with the customer and when it happened",
    )
    times = _datetimes(touchpoints["timestamp"], "touchpoints", "timestamp")
    ids = _align_ids(pd.Index(touchpoints["customer_id"]), log.customers, "touchpoints")
    codes = log.customers.get_indexer(ids)
    keep = (codes >= 0) & times.notna().to_numpy()
    if "kind" in touchpoints.columns:
        kinds = touchpoints["kind"]
        if isinstance(kinds.dtype, pd.CategoricalDtype):
            names = tuple(str(c) for c in kinds.cat.categories)
            kind_codes = kinds.cat.codes.to_numpy().astype(np.int64)
        else:
            kind_codes, uniques = pd.factorize(kinds, sort=True)
            names = tuple(str(u) for u in uniques)
        keep &= kind_codes >= 0
    else:
        kind_codes, names = np.zeros(len(touchpoints), dtype=np.int64), ()
    stamps = times.to_numpy(dtype="datetime64[ns]")[keep]
    order = np.argsort(stamps, kind="stable")
    return codes[keep][order], stamps[order], np.asarray(kind_codes)[keep][order], names


# ------------------------------------------------------------------------------------ features
def _features_at(
    log: _Log, cutoff: pd.Timestamp, spec: _FeatureSpec, *, model_features: bool
) -> pd.DataFrame:
    past = log.before(cutoff)
    codes_all = past["code"].to_numpy()
    is_return = past["is_return"].to_numpy()
    population = np.unique(codes_all[~is_return])
    if population.size == 0:
        raise DataError(
            f"no customer has a purchase on or before the cutoff {cutoff} (the data starts "
            f"{log.start}); choose a later cutoff"
        )
    n = population.size
    cut = cutoff.to_datetime64().astype("datetime64[ns]").astype(np.int64)
    # Rows of customers in the population (customers with only returns so far drop out).
    pos_all = np.searchsorted(population, codes_all)
    pos_all[pos_all >= n] = 0
    member = population[pos_all] == codes_all
    rows = past[member]
    pos_rows = pos_all[member]
    rows_return = is_return[member]
    amount = rows["amount"].to_numpy()
    times_rows = rows["timestamp"].to_numpy().astype(np.int64)

    orders = _orders(log, rows[~rows_return], pos_rows[~rows_return])
    pos_o, time_o, value_o = orders["pos"], orders["time"], orders["amount"]
    features: dict[str, np.ndarray] = {}

    n_orders = np.bincount(pos_o, minlength=n).astype(float)
    starts = np.searchsorted(pos_o, np.arange(n), "left")
    ends = np.searchsorted(pos_o, np.arange(n), "right") - 1
    first, last = time_o[starts], time_o[ends]
    features["recency_days"] = (cut - last) / _DAY
    features["tenure_days"] = (cut - first) / _DAY
    features["orders"] = n_orders
    features["spend"] = np.bincount(pos_rows, weights=amount, minlength=n)
    features["orders_per_30d"] = n_orders / np.maximum(features["tenure_days"], 30.0) * 30.0

    for name, width in spec.windows:
        start = cut - width.value
        previous = start - width.value
        recent = np.bincount(pos_o[time_o > start], minlength=n).astype(float)
        earlier = np.bincount(pos_o[(time_o > previous) & (time_o <= start)], minlength=n).astype(
            float
        )
        features[f"orders_{name}"] = recent
        window_rows = times_rows > start
        features[f"spend_{name}"] = np.bincount(
            pos_rows[window_rows], weights=amount[window_rows], minlength=n
        )
        total = recent + earlier
        features[f"orders_trend_{name}"] = np.divide(
            recent - earlier, total, out=np.zeros(n), where=total > 0
        )

    # Inter-purchase times between consecutive orders of the same customer.
    same = pos_o[1:] == pos_o[:-1]
    gaps = (time_o[1:] - time_o[:-1])[same] / _DAY
    pos_gap = pos_o[1:][same]
    n_gaps = np.bincount(pos_gap, minlength=n).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap_mean = np.bincount(pos_gap, weights=gaps, minlength=n) / n_gaps
        gap_sq = np.bincount(pos_gap, weights=gaps**2, minlength=n) / n_gaps
        gap_var = np.maximum(gap_sq - gap_mean**2, 0.0) * n_gaps / (n_gaps - 1)
        features["gap_mean_days"] = gap_mean
        features["gap_std_days"] = np.where(n_gaps > 1, np.sqrt(gap_var), np.nan)
        features["last_gap_days"] = np.where(
            n_gaps > 0, (time_o[ends] - time_o[np.maximum(ends - 1, 0)]) / _DAY, np.nan
        )
        features["overdue"] = np.where(gap_mean > 0, features["recency_days"] / gap_mean, np.nan)
        value_mean = np.bincount(pos_o, weights=value_o, minlength=n) / n_orders
        value_sq = np.bincount(pos_o, weights=value_o**2, minlength=n) / n_orders
        value_var = np.maximum(value_sq - value_mean**2, 0.0) * n_orders / (n_orders - 1)
        value_std = np.where(n_orders > 1, np.sqrt(value_var), np.nan)
        features["order_value_mean"] = value_mean
        features["order_value_std"] = value_std
        features["order_value_cv"] = np.where(
            np.abs(value_mean) > 0, value_std / np.abs(value_mean), np.nan
        )
        n_lines = np.bincount(pos_rows, minlength=n).astype(float)
        n_return_lines = np.bincount(pos_rows[rows_return], minlength=n).astype(float)
        bought = np.bincount(
            pos_rows[~rows_return], weights=np.abs(amount[~rows_return]), minlength=n
        )
        returned = np.bincount(
            pos_rows[rows_return], weights=np.abs(amount[rows_return]), minlength=n
        )
        features["return_rate"] = n_return_lines / n_lines
        features["returned_share"] = np.where(bought > 0, returned / bought, np.nan)
        purchase_lines = n_lines - n_return_lines
        if log.has_quantity:
            quantity = rows["quantity"].to_numpy()[~rows_return]
            features["items_per_order"] = (
                np.bincount(pos_rows[~rows_return], weights=quantity, minlength=n) / n_orders
            )
        if log.has_orders:
            features["lines_per_order"] = purchase_lines / n_orders
        if log.has_products:
            product = rows["product_code"].to_numpy()[~rows_return]
            n_codes = int(log.frame["product_code"].max()) + 1
            pairs = np.unique(pos_rows[~rows_return] * n_codes + product)
            distinct = np.bincount(pairs // n_codes, minlength=n).astype(float)
            features["products"] = distinct
            features["product_variety"] = distinct / purchase_lines

    if spec.touch_codes is not None:
        features.update(_touch_features(spec, population, cut))

    index = pd.Index(log.customers[population], name="customer_id")
    frame = pd.DataFrame(features, index=index)
    if spec.customers is not None:
        attributes = _attributes_at(spec.customers, index, cutoff)
        clash = frame.columns.intersection(attributes.columns).tolist()
        if clash:
            raise DataError(
                f"customers has column(s) {clash} with the names of churn features; rename "
                "them (e.g. with a 'customer_' prefix)"
            )
        frame = frame.join(attributes)
    if model_features:
        frame = frame.join(
            _bgnbd_features(rows[~rows_return], pos_rows[~rows_return], index, cutoff, spec.horizon)
        )
    return frame


def _orders(log: _Log, purchases: pd.DataFrame, pos: np.ndarray) -> dict[str, np.ndarray]:
    """One row per order, sorted by customer then time: position, time (first line), value.

    An order is an ``order_id`` when the log has one, otherwise the lines of a customer at the
    same timestamp.
    """
    times = purchases["timestamp"].to_numpy().astype(np.int64)
    key = purchases["order_id"].to_numpy() if log.has_orders else times
    grouped = pd.DataFrame(
        {"pos": pos, "key": key, "time": times, "amount": purchases["amount"].to_numpy()}
    )
    table = grouped.groupby(["pos", "key"], sort=False).agg(
        time=("time", "min"), amount=("amount", "sum")
    )
    pos_o = table.index.get_level_values("pos").to_numpy()
    time_o = table["time"].to_numpy()
    order = np.lexsort((time_o, pos_o))
    return {"pos": pos_o[order], "time": time_o[order], "amount": table["amount"].to_numpy()[order]}


def _touch_features(spec: _FeatureSpec, population: np.ndarray, cut: np.int64) -> dict:
    n = population.size
    stop = int(np.searchsorted(spec.touch_times.astype(np.int64), cut, "right"))
    codes, times = spec.touch_codes[:stop], spec.touch_times[:stop].astype(np.int64)
    kinds = spec.touch_kinds[:stop]
    pos = np.searchsorted(population, codes)
    pos[pos >= n] = 0
    member = population[pos] == codes
    pos, times, kinds = pos[member], times[member], kinds[member]
    out: dict[str, np.ndarray] = {}
    for name, width in spec.windows:
        out[f"touchpoints_{name}"] = np.bincount(
            pos[times > cut - width.value], minlength=n
        ).astype(float)
    latest = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(latest, pos, times)
    out["days_since_touchpoint"] = np.where(
        latest > np.iinfo(np.int64).min, (cut - latest) / _DAY, np.nan
    )
    longest = spec.windows[-1][1].value
    recent = times > cut - longest
    for k, kind in enumerate(spec.kind_names):
        out[f"touchpoints_{kind}"] = np.bincount(pos[recent & (kinds == k)], minlength=n).astype(
            float
        )
    return out


def _attributes_at(table: pd.DataFrame, index: pd.Index, cutoff: pd.Timestamp) -> pd.DataFrame:
    rows = table.reindex(index)
    out = {}
    for column in rows.columns:
        values = rows[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            days = (cutoff - values) / pd.Timedelta(days=1)
            out[f"days_since_{column}"] = days.where(values <= cutoff).astype(float)
        else:
            out[column] = values
    return pd.DataFrame(out, index=index)


# ------------------------------------------------------------------------------------ BG/NBD
def _bgnbd_features(
    purchases: pd.DataFrame,
    pos: np.ndarray,
    index: pd.Index,
    cutoff: pd.Timestamp,
    horizon: pd.Timedelta,
) -> pd.DataFrame:
    """P(alive) and expected purchases over the horizon from a BG/NBD fitted at the cutoff."""
    from custval.models import BetaGeoModel
    from custval.rfm import rfm_summary

    log = pd.DataFrame(
        {
            "customer_id": pos,
            "timestamp": purchases["timestamp"].to_numpy(),
            "amount": purchases["amount"].to_numpy(),
        }
    )
    summary = rfm_summary(log, freq="D", observation_end=cutoff)
    out = pd.DataFrame(
        {"p_alive": np.nan, "expected_purchases": np.nan, "p_no_purchase": np.nan},
        index=index,
        dtype=float,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CustvalWarning)  # standard errors are not needed
            model = BetaGeoModel().fit(summary)
    except (ConvergenceError, DataError) as error:
        warnings.warn(
            f"the BG/NBD model could not be fitted at cutoff {cutoff} ({error}); p_alive and "
            "expected_purchases are missing there",
            CustvalWarning,
            stacklevel=4,
        )
        return out
    days = horizon / pd.Timedelta(days=1)
    order = summary.index.to_numpy(dtype=np.int64)
    for column, values in enumerate(_bgnbd_predict(model, summary, days)):
        out.iloc[order, column] = values
    return out


def _bgnbd_predict(
    model, summary: pd.DataFrame, t: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(alive), E[purchases in (T, T + t]] and P(no purchase in (T, T + t]) under BG/NBD.

    The first two are the model's own predictions. Given alive at ``T``, the posterior of the
    purchase rate is ``Gamma(r + x, alpha + T)`` (Fader, Hardie & Lee 2005), so the chance of no
    purchase in the next ``t`` is ``E[exp(-lambda t)] = ((alpha + T) / (alpha + T + t))^(r + x)``
    and ``P(no purchase) = 1 - P(alive) + P(alive) ((alpha + T) / (alpha + T + t))^(r + x)``.
    """
    p_alive = model.probability_alive(summary).to_numpy()
    expected = model.expected_purchases(summary, t).to_numpy()
    r, alpha = model.params_[["r", "alpha"]].to_numpy()
    x = summary["frequency"].to_numpy(dtype=float)
    big_t = summary["T"].to_numpy(dtype=float)
    silent = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t)))
    no_purchase = 1.0 - p_alive + p_alive * silent
    return p_alive, np.where(np.isfinite(expected), expected, np.nan), no_purchase
