"""Data for the reports: load the sample or the user's files, clean them, and the simple
aggregates the reports show (activity over time, acquisition cohorts, segment totals).

Everything here returns plain DataFrames with numbers; formatting for people is in
:mod:`custval.reports._tables` and the sentences in :mod:`custval.reports._story`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from custval._log import read_timestamps
from custval.errors import DataError

__all__ = [
    "CANDIDATES",
    "EXCLUDE_CODE_PRESETS",
    "TRANSACTION_KEYS",
    "ReportData",
    "ValueModels",
    "activity_by_period",
    "best_covariate_model",
    "best_scoring_model",
    "campaign_effects",
    "cohort_retention",
    "contact_targets",
    "customer_attributes",
    "customer_values",
    "default_calibration_end",
    "load_report_data",
    "margin_to_apply",
    "programme_effect",
    "refit",
    "retention_assumptions",
    "segment_summary",
    "spend_model",
    "targets_by_segment",
    "value_models",
    "value_table_with_ranges",
    "write_downloads",
]

#: Named lists of product codes that are not product sales, for ``cleaning={"exclude_codes":
#: "<name>"}`` (and ``custval report --exclude-codes <name>``).
EXCLUDE_CODE_PRESETS: dict[str, tuple[str, ...]] = {
    "sample": ("POST",),
}

#: The column roles a report's transactions may map (``columns={"customer_id": ...}``, and
#: ``custval report --customer-id ...``).
TRANSACTION_KEYS = (
    "customer_id",
    "timestamp",
    "amount",
    "quantity",
    "unit_price",
    "order_id",
    "product_code",
)
_INTEGRAL_FLOAT_TEXT = re.compile(r"^([+-]?\d+)\.0+$")


def _presets() -> dict[str, tuple[str, ...]]:
    from custval.transactions import ONLINE_RETAIL_NON_PRODUCT_CODES

    return {**EXCLUDE_CODE_PRESETS, "online-retail": tuple(ONLINE_RETAIL_NON_PRODUCT_CODES)}


@dataclass(frozen=True, eq=False)
class ReportData:
    """The cleaned data a report works on.

    Attributes
    ----------
    transactions : DataFrame
        The clean log (custval vocabulary, see :func:`custval.clean_transactions`).
    cleaning : CleaningReport
        Every row of the input kept or dropped for a counted reason.
    customers, campaign : DataFrame or None
        The optional customer table (``customer_id`` as text, ``*_date`` columns parsed) and
        randomized campaign table, or None when not given.
    source : str
        Where the data came from, in words, for the reports.
    observation_end : Timestamp
        The end of observation (the end of the last day with data).
    truth : dict or None
        The simulation's truth for the bundled sample, else None.
    """

    transactions: pd.DataFrame
    cleaning: Any
    customers: pd.DataFrame | None
    campaign: pd.DataFrame | None
    source: str
    observation_end: pd.Timestamp
    truth: dict[str, Any] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_sample(self) -> bool:
        """True for the bundled simulated sample."""
        return self.truth is not None


def load_report_data(
    transactions_path: str | os.PathLike[str] | None = None,
    customers_path: str | os.PathLike[str] | None = None,
    campaign_path: str | os.PathLike[str] | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    cleaning: Mapping[str, Any] | None = None,
) -> ReportData:
    """Load and clean the data of a report: the bundled sample, or the user's files.

    Parameters
    ----------
    transactions_path : path, optional
        A CSV (optionally compressed) or Parquet transaction log. Without it the bundled
        simulated sample (``data/sample``) is used with its customer and campaign tables, and
        postage lines (``POST``) are excluded as non-product lines.
    customers_path, campaign_path : path, optional
        Optional customer table (``customer_id`` plus e.g. ``channel``, ``acquisition_cost``)
        and randomized campaign table (``customer_id``, ``treatment`` 0/1, ``contact_date``,
        ``cost_per_contact``, optional ``segment``). The customer id column may also carry the
        name given in ``columns["customer_id"]``.
    columns : mapping, optional
        Column mapping of the transactions file: keyword arguments of
        :func:`custval.read_transactions` (``customer_id``, ``timestamp``, ``amount`` or
        ``quantity`` + ``unit_price``, ``order_id``, ``product_code``). Defaults to the custval
        names ``customer_id``, ``timestamp``, ``amount``.
    cleaning : mapping, optional
        Options of :func:`custval.clean_transactions` (``returns``, ``exclude_codes``,
        ``observation_end``, ...). ``exclude_codes`` may name a preset: ``"online-retail"``
        (the UCI Online Retail postage, fee and adjustment codes) or ``"sample"``.

    Returns
    -------
    ReportData

    Examples
    --------
    >>> from custval.reports import load_report_data
    >>> data = load_report_data()  # doctest: +SKIP
    >>> data.cleaning.reconciles  # doctest: +SKIP
    True
    """
    from custval.transactions import clean_transactions, read_transactions

    options = dict(cleaning or {})
    codes = options.get("exclude_codes")
    if isinstance(codes, str):
        presets = _presets()
        if codes not in presets:
            raise DataError(
                f"unknown exclude_codes preset {codes!r}; give a list of product codes or one "
                f"of {sorted(presets)}"
            )
        options["exclude_codes"] = presets[codes]
    if transactions_path is None:
        from custval.datasets import load_sample

        sample = load_sample()
        options.setdefault("exclude_codes", EXCLUDE_CODE_PRESETS["sample"])
        raw = sample.transactions[[c for c in TRANSACTION_KEYS if c != "unit_price"]]
        clean, report = clean_transactions(raw, **options)
        return ReportData(
            transactions=clean,
            cleaning=report,
            # loyalty_member is the status at the end of the data; the join date gives the
            # status at any earlier date without looking ahead, so only it is kept.
            customers=_ids_as_text(
                sample.customers.drop(columns=["loyalty_member"]), "customer_id"
            ),
            campaign=_ids_as_text(sample.campaign, "customer_id"),
            source="the simulated sample retailer (data/sample)",
            observation_end=_end_of_day(sample.observation_end),
            truth=sample.truth,
            settings={"cleaning": options},
        )

    mapping = {"customer_id": "customer_id", "timestamp": "timestamp"}
    mapping.update({k: v for k, v in dict(columns or {}).items() if v})
    unknown = sorted(set(mapping) - set(TRANSACTION_KEYS))
    if unknown:
        raise DataError(f"unknown column mapping key(s) {unknown}; use {list(TRANSACTION_KEYS)}")
    if "amount" not in mapping and not {"quantity", "unit_price"} <= set(mapping):
        mapping["amount"] = "amount"
    clean, report = read_transactions(transactions_path, **mapping, **options)
    if clean.empty:
        raise DataError(
            f"no transactions are left in {Path(transactions_path).name} after cleaning; "
            "check the column mapping and the cleaning options"
        )
    id_column = mapping["customer_id"]
    customers = _read_table(customers_path, "customers", id_column)
    campaign = _read_table(campaign_path, "campaign", id_column)
    return ReportData(
        transactions=clean,
        cleaning=report,
        customers=customers,
        campaign=campaign,
        source=Path(transactions_path).name,
        observation_end=_end_of_day(clean["timestamp"].max()),
        settings={"cleaning": options, "columns": mapping},
    )


def _end_of_day(moment: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(moment).normalize() + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)


def _id_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return pd.NA
    text = str(value).strip()
    match = _INTEGRAL_FLOAT_TEXT.match(text)
    text = match.group(1) if match else text
    return text or pd.NA


def _ids_as_text(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """A copy with ids as text, normalised like the clean log's ("17850.0" -> "17850")."""
    out = frame.copy()
    out[column] = pd.array([_id_text(v) for v in out[column].tolist()], dtype="str")
    return out


def _read_table(
    path: str | os.PathLike[str] | None, what: str, id_column: str
) -> pd.DataFrame | None:
    if path is None:
        return None
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path)
    if "customer_id" not in frame.columns and id_column in frame.columns:
        frame = frame.rename(columns={id_column: "customer_id"})
    if "customer_id" not in frame.columns:
        raise DataError(
            f"the {what} table {path.name} has no 'customer_id' column (columns: "
            f"{list(frame.columns)}); name the customer id column customer_id or "
            f"{id_column!r} like in the transactions"
        )
    for column in frame.columns:
        if column.endswith("_date"):  # empty cells stay NaT; text that is not a date is refused
            frame[column] = read_timestamps(
                frame[column], what=f"{what} table", column=column, frame=frame, allow_missing=True
            )
    return _ids_as_text(frame, "customer_id")


# --- aggregates -------------------------------------------------------------------------------


def _orders(transactions: pd.DataFrame) -> pd.Series:
    """An order key per row: the order id when present, else customer and timestamp."""
    if "order_id" in transactions.columns:
        return transactions["customer_id"].astype(str) + "|" + transactions["order_id"].astype(str)
    return transactions["customer_id"].astype(str) + "|" + transactions["timestamp"].astype(str)


def choose_period(start: pd.Timestamp, end: pd.Timestamp, *, cohorts: bool = False) -> str:
    """Months for short histories, quarters for long ones (cohorts switch earlier)."""
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    limit = 18 if cohorts else 48
    return "M" if months <= limit else "Q"


def activity_by_period(
    transactions: pd.DataFrame,
    *,
    period: str | None = None,
    observation_end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Revenue, orders, active and new customers per calendar month (or quarter).

    Parameters
    ----------
    transactions : DataFrame
        A clean log.
    period : {"M", "Q"}, optional
        Calendar months or quarters; by default months up to four years of data, else quarters.
    observation_end : Timestamp, optional
        End of observation (default: the last timestamp); a period not fully inside the data
        is flagged ``partial``.

    Returns
    -------
    DataFrame
        Indexed by the period's first day: ``revenue``, ``orders``, ``active_customers``,
        ``new_customers``, ``partial`` (bool), ``days`` (days of the period with data).
    """
    times = transactions["timestamp"]
    start, end = times.min(), times.max() if observation_end is None else observation_end
    period = period or choose_period(start, end)
    periods = times.dt.to_period(period)
    first = transactions.groupby("customer_id")["timestamp"].transform("min").dt.to_period(period)
    frame = pd.DataFrame(
        {
            "period": periods,
            "customer_id": transactions["customer_id"],
            "amount": transactions["amount"],
            "order": _orders(transactions),
            "new": (periods == first).to_numpy(),
        }
    )
    grouped = frame.groupby("period", sort=True)
    result = pd.DataFrame(
        {
            "revenue": grouped["amount"].sum(),
            "orders": grouped["order"].nunique(),
            "active_customers": grouped["customer_id"].nunique(),
            "new_customers": frame[frame["new"]].groupby("period")["customer_id"].nunique(),
        }
    )
    full = pd.period_range(result.index.min(), result.index.max(), freq=period)
    result = result.reindex(full, fill_value=0)
    result["new_customers"] = result["new_customers"].fillna(0).astype(int)
    period_start = full.start_time
    period_end = full.end_time
    data_start = pd.Timestamp(start).normalize()
    data_end = pd.Timestamp(end)
    covered_start = np.maximum(period_start.to_numpy(), data_start.to_datetime64())
    covered_end = np.minimum(period_end.to_numpy(), data_end.to_datetime64())
    days = (covered_end - covered_start) / np.timedelta64(1, "D")
    length = (period_end - period_start) / pd.Timedelta(days=1)
    result["days"] = np.round(days, 1)
    result["partial"] = (days + 1.0) < np.asarray(length) - 0.5
    result.index = period_start
    result.index.name = "period"
    result.attrs["period"] = period
    return result


def cohort_retention(
    transactions: pd.DataFrame,
    *,
    period: str | None = None,
    observation_end: pd.Timestamp | None = None,
    min_size: int = 20,
) -> pd.DataFrame:
    """Share of each acquisition cohort that buys in each period after its first purchase.

    A customer's cohort is the calendar month (or quarter) of the first purchase in the data.
    Column 0 is the acquisition period itself (always 100%); column ``k`` is the share of the
    cohort with a purchase ``k`` periods later. Periods after the end of the data are missing
    (NaN), and the last period is dropped when it is only partly observed. Cohorts of fewer
    than ``min_size`` customers are left out (their shares would be noise); how many customers
    that leaves out is in ``attrs["left_out"]``.

    Returns
    -------
    DataFrame
        Index: the cohort's first day; columns 0, 1, 2, ...; ``attrs["sizes"]`` holds the
        cohort sizes (Series), ``attrs["period"]`` the period code and
        ``attrs["left_censored"]`` whether the first cohort contains customers who may have
        bought before the data starts (always assumed: the data cannot tell).
    """
    times = transactions["timestamp"]
    end = times.max() if observation_end is None else observation_end
    period = period or choose_period(times.min(), end, cohorts=True)
    periods = times.dt.to_period(period)
    codes = _period_codes(periods)
    cohort = (
        pd.Series(codes, index=transactions.index)
        .groupby(transactions["customer_id"])
        .transform("min")
    )
    frame = pd.DataFrame(
        {
            "customer_id": transactions["customer_id"].to_numpy(),
            "cohort": cohort.to_numpy(),
            "age": (codes - cohort.to_numpy()),
        }
    ).drop_duplicates()
    last = _period_codes(pd.Series([pd.Timestamp(end)]).dt.to_period(period))[0]
    end_of_last = pd.Period(pd.Timestamp(end), freq=period).end_time
    if pd.Timestamp(end) < end_of_last.normalize():
        last -= 1  # the last period is only partly observed
    frame = frame[frame["cohort"] + frame["age"] <= last]
    sizes = frame[frame["age"] == 0].groupby("cohort")["customer_id"].nunique()
    small = sizes < min_size
    left_out = int(sizes[small].sum())
    sizes = sizes[~small]
    frame = frame[frame["cohort"].isin(sizes.index)]
    active = frame.groupby(["cohort", "age"])["customer_id"].nunique().unstack("age")
    active = active.reindex(sizes.index)
    shares = active.div(sizes, axis=0)
    ages = np.arange(max(last - int(sizes.index.min()), 0) + 1 if len(sizes) else 1)
    shares = shares.reindex(columns=ages)
    observable = (last - shares.index.to_numpy()[:, None]) >= ages[None, :]
    shares = shares.fillna(0.0).where(observable)
    # A cohort with no observed period after its first is left out (nothing to show yet).
    followed = shares.drop(columns=0, errors="ignore").notna().any(axis=1)
    if len(shares.columns) > 1:
        shares, sizes = shares[followed], sizes[followed.to_numpy()]
    starts = _code_starts(shares.index.to_numpy(), period)
    shares.index = pd.DatetimeIndex(starts, name="cohort")
    sizes.index = shares.index
    shares.columns.name = "periods_after"
    shares.attrs = {
        "sizes": sizes,
        "period": period,
        "left_censored": True,
        "left_out": left_out,
    }
    return shares


def _period_codes(periods: pd.Series) -> np.ndarray:
    """Integer codes of periods that differ by one for consecutive periods."""
    start = periods.dt.start_time
    months = start.dt.year.to_numpy() * 12 + start.dt.month.to_numpy() - 1
    if periods.dt.freq.freqstr.startswith("Q"):
        return months // 3
    return months


def _code_starts(codes: np.ndarray, period: str) -> list[pd.Timestamp]:
    months = codes * 3 if period.startswith("Q") else codes
    return [pd.Timestamp(year=int(m // 12), month=int(m % 12) + 1, day=1) for m in months]


def segment_summary(
    segments: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Customers, revenue and purchase habits per RFM segment.

    Parameters
    ----------
    segments : DataFrame
        :func:`custval.rfm_segments` output (indexed by customer, with the summary columns).
    transactions : DataFrame
        The clean log the summary was made from (for the revenue of each customer).

    Returns
    -------
    DataFrame
        One row per segment (best first; empty segments left out): ``customers``,
        ``customer_share``, ``revenue``, ``revenue_share``, ``revenue_per_customer``,
        ``repeat_purchases`` (mean frequency) and ``periods_since_last`` (mean of
        ``T - recency``, in the summary's unit, recorded in ``attrs["freq"]``).
    """
    revenue = transactions.groupby("customer_id")["amount"].sum()
    frame = segments.assign(
        revenue=revenue.reindex(segments.index).fillna(0.0).to_numpy(),
        since=(segments["T"] - segments["recency"]).to_numpy(),
    )
    grouped = frame.groupby("segment", observed=False, sort=False)
    table = pd.DataFrame(
        {
            "customers": grouped.size(),
            "revenue": grouped["revenue"].sum(),
            "repeat_purchases": grouped["frequency"].mean(),
            "periods_since_last": grouped["since"].mean(),
        }
    )
    categories = list(order or getattr(segments["segment"].dtype, "categories", table.index))
    table = table.reindex([c for c in categories if c in table.index])
    table = table[table["customers"] > 0]
    table["customer_share"] = table["customers"] / table["customers"].sum()
    total = table["revenue"].sum()
    table["revenue_share"] = table["revenue"] / total if total else 0.0
    table["revenue_per_customer"] = table["revenue"] / table["customers"]
    table.index.name = "segment"
    table.attrs["freq"] = segments.attrs.get("freq", "")
    return table[
        [
            "customers",
            "customer_share",
            "revenue",
            "revenue_share",
            "revenue_per_customer",
            "repeat_purchases",
            "periods_since_last",
        ]
    ]


def default_calibration_end(
    transactions: pd.DataFrame, observation_end: pd.Timestamp, *, holdout_share: float = 0.25
) -> pd.Timestamp:
    """The end of the calibration period: the last ``holdout_share`` of the data is held out
    (at least 8 weeks, at most a year), ending at midnight of a day."""
    start = transactions["timestamp"].min()
    span = pd.Timestamp(observation_end) - start
    holdout = min(max(span * holdout_share, pd.Timedelta(weeks=8)), pd.Timedelta(days=365))
    return (pd.Timestamp(observation_end) - holdout).normalize()


#: The transaction models every report compares; the best on the holdout values the customers.
CANDIDATES = {
    "BG/NBD": "BetaGeoModel",
    "MBG/NBD": "ModifiedBetaGeoModel",
    "Pareto/NBD": "ParetoNBDModel",
}


@dataclass(eq=False)
class ValueModels:
    """The models behind a report's customer values, chosen in one place (:func:`value_models`)
    so the value, churn and investment reports value customers with the same model.

    Attributes
    ----------
    split : DataFrame
        The calibration/holdout split the candidates were compared on.
    split_attributes : DataFrame or None
        The customer attributes of the split's customers (None without a customer table).
    fitted : dict
        Every candidate fitted on the calibration period (and the best with attributes).
    comparison : DataFrame
        :func:`custval.evaluation.compare_models` of ``fitted`` on the holdout.
    best : str
        The chosen model's name (``comparison.attrs["best_model"]``).
    summary : DataFrame
        The RFM summary of the whole history.
    attributes : DataFrame or None
        The customer attributes of ``summary``'s customers.
    transaction_model, spend_model : fitted models
        The chosen model refitted on the whole history, and the spend model.
    """

    split: pd.DataFrame
    split_attributes: pd.DataFrame | None
    fitted: dict[str, Any]
    comparison: pd.DataFrame
    best: str
    summary: pd.DataFrame
    attributes: pd.DataFrame | None
    transaction_model: Any
    spend_model: Any


def value_models(data: ReportData, *, freq: str = "W", calibration_end: Any = None) -> ValueModels:
    """Compare the candidate models on a holdout and refit the best on the whole history.

    The candidates are :data:`CANDIDATES`, plus the best of them with the customer attributes
    (channel, region, ...) when the data has a customer table; the best by
    :func:`custval.evaluation.compare_models` values the customers (Gamma-Gamma for spend).

    Parameters
    ----------
    data : ReportData
    freq : str, default "W"
        Summary unit.
    calibration_end : timestamp, optional
        End of the calibration period (default :func:`default_calibration_end`).

    Returns
    -------
    ValueModels
    """
    import custval
    from custval.evaluation import compare_models

    if calibration_end is None:
        calibration_end = default_calibration_end(data.transactions, data.observation_end)
    split = custval.calibration_holdout_split(
        data.transactions,
        calibration_end=calibration_end,
        observation_end=data.observation_end,
        freq=freq,
    )
    candidates = {name: getattr(custval, kind)() for name, kind in CANDIDATES.items()}
    fitted = {name: model.fit(split) for name, model in candidates.items()}
    split_attributes = customer_attributes(data, split.index)
    fitted.update(best_covariate_model(candidates, split, split_attributes))
    comparison = compare_models(fitted, split, customers=split_attributes)
    best = comparison.attrs["best_model"]
    summary = custval.rfm_summary(
        data.transactions, freq=freq, observation_end=data.observation_end
    )
    attributes = customer_attributes(data, summary.index)
    return ValueModels(
        split=split,
        split_attributes=split_attributes,
        fitted=fitted,
        comparison=comparison,
        best=best,
        summary=summary,
        attributes=attributes,
        transaction_model=refit(fitted[best], summary, attributes),
        spend_model=spend_model(summary, attributes),
    )


def customer_values(
    data: ReportData,
    *,
    freq: str = "W",
    horizon: str = "12M",
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
    n_draws: int = 0,
    models: ValueModels | None = None,
) -> pd.DataFrame:
    """The customer value table of a report, valued by the model :func:`value_models` chooses.

    Every report builds its values here, so the value, churn and investment reports agree on
    the model (the value table's ``attrs["transaction_model"]`` names it).

    Parameters
    ----------
    data : ReportData
    freq, horizon, annual_discount_rate, margin, n_draws
        As :func:`value_table_with_ranges`.
    models : ValueModels, optional
        The models to use (default: :func:`value_models` on ``data`` and ``freq``).
    """
    if models is None:
        models = value_models(data, freq=freq)
    return value_table_with_ranges(
        models.transaction_model,
        models.spend_model,
        models.summary,
        horizon=horizon,
        annual_discount_rate=annual_discount_rate,
        margin=margin,
        n_draws=n_draws,
        customers=models.attributes,
    )


def margin_to_apply(value_table: pd.DataFrame, margin: float) -> float | None:
    """The margin the investment functions still have to apply: ``margin`` when the value
    table is in revenue (a margin of 1 was given), None when it is already contribution."""
    return margin if value_table.attrs.get("value_basis") == "revenue" else None


def best_scoring_model(result: Any, metric: str = "roc_auc") -> str:
    """The back-tested churn model with the best mean ``metric`` among those
    :func:`custval.churn_scores` can score now."""
    scorable = ("logistic", "gradient_boosting", "bgnbd", "bgnbd_no_purchase")
    metrics = result.metrics[result.metrics["model"].isin(scorable)]
    means = metrics.groupby("model")[metric].mean()
    lower_is_better = metric in {"brier", "log_loss"}
    return str(means.idxmin() if lower_is_better else means.idxmax())


# --- customer attributes as covariates (notebook 02) -------------------------------------------

#: The most levels a customer attribute may have to enter a covariate model (channel, region...).
MAX_ATTRIBUTE_LEVELS = 12
#: The level of customers without a row or a value in the customer table.
UNKNOWN_LEVEL = "unknown"
#: How the report names a model fitted with the customer attributes.
WITH_ATTRIBUTES = "{} with customer attributes"


def customer_attributes(
    data: ReportData, index: pd.Index, *, max_levels: int = MAX_ATTRIBUTE_LEVELS
) -> pd.DataFrame | None:
    """The customer attributes a covariate model can use, for the customers of ``index``.

    The text columns of the customer table with 2 to ``max_levels`` levels (channel,
    region, ...); identifiers, dates, numbers and free text are left out. Customers without
    a row or a value get the level ``"unknown"``.

    Parameters
    ----------
    data : ReportData
        From :func:`load_report_data`.
    index : Index
        The customers (a summary's or split's index, customer ids as text).
    max_levels : int, default 12
        Columns with more distinct values are not attributes but identifiers or free text.

    Returns
    -------
    DataFrame or None
        Indexed like ``index``, one text column per attribute; None without a customer table
        or without such columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval.reports import ReportData, customer_attributes
    >>> customers = pd.DataFrame({"customer_id": ["1", "2", "3"], "channel": ["web", "shop", "web"],
    ...                           "acquisition_cost": [3.0, 5.0, 4.0]})
    >>> data = ReportData(pd.DataFrame(), None, customers, None, "example", pd.Timestamp("2024"))
    >>> customer_attributes(data, pd.Index(["1", "3", "4"], name="customer_id"))["channel"].tolist()
    ['web', 'web', 'unknown']
    """
    customers = data.customers
    if customers is None or "customer_id" not in customers.columns:
        return None
    table = customers.drop_duplicates("customer_id").set_index("customer_id")
    table.index = table.index.astype(str)
    columns = []
    for column in table.columns:
        values = table[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
            continue
        if str(column).endswith("_date") or str(column).lower() in {"id", "email", "name"}:
            continue
        if 2 <= values.dropna().nunique() <= max_levels:
            columns.append(column)
    if not columns:
        return None
    aligned = table[columns].reindex(pd.Index(index).astype(str))
    attributes = aligned.astype(object).where(aligned.notna(), UNKNOWN_LEVEL).astype(str)
    return attributes.set_axis(index)


def _fit_quietly(model: Any, summary: pd.DataFrame, **options: Any) -> Any:
    """``model.fit(summary, **options)`` with the fit's warnings (a ridge, a boundary) kept
    off the report; None when the model cannot be fitted on these data."""
    import warnings

    from custval.errors import ConvergenceError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return model.fit(summary, **options)
        except (ConvergenceError, DataError):
            return None


def best_covariate_model(
    candidates: Mapping[str, Any],
    split: pd.DataFrame,
    attributes: pd.DataFrame | None,
    *,
    metric: str = "rmse",
) -> dict[str, Any]:
    """The candidates refitted with the customer attributes acting on the purchase rate, and
    the one that predicts the holdout best by ``metric``, as ``{name: fitted model}``.

    Only the models whose new-customer predictions take covariates (BG/NBD, MBG/NBD) are
    refitted, so the report's tracking chart works for the chosen model; empty without
    attributes or when no refit succeeds. The name is the candidate's with "with customer
    attributes" (:data:`WITH_ATTRIBUTES`).
    """
    import inspect

    from custval.evaluation import compare_models

    if attributes is None:
        return {}
    fitted = {}
    for name, model in candidates.items():
        takes = inspect.signature(model.expected_purchases_new_customer).parameters
        if "customers" not in takes:
            continue
        refitted = _fit_quietly(
            type(model)(), split, customers=attributes, purchase_covariates=list(attributes)
        )
        if refitted is not None:
            fitted[WITH_ATTRIBUTES.format(name)] = refitted
    if not fitted:
        return {}
    best = compare_models(fitted, split, metric=metric, customers=attributes).attrs["best_model"]
    return {best: fitted[best]}


def refit(model: Any, summary: pd.DataFrame, attributes: pd.DataFrame | None) -> Any:
    """A fresh model of ``model``'s kind fitted on ``summary``, with the same covariates (and
    ``attributes`` as the customers' covariates) if ``model`` has them."""
    fresh = type(model)()
    spec = getattr(model, "covariates_", None)
    if spec is None:
        return fresh.fit(summary)
    groups = {f"{group}_covariates": list(names) for group, names in spec.groups.items()}
    return fresh.fit(summary, customers=attributes, **groups)


def spend_model(summary: pd.DataFrame, attributes: pd.DataFrame | None) -> Any:
    """Gamma-Gamma spend per order, with the customer attributes as spend covariates when
    they are given and improve the fit (lower AIC), else without."""
    from custval import GammaGammaModel

    plain = GammaGammaModel().fit(summary)
    if attributes is None:
        return plain
    with_attributes = _fit_quietly(
        GammaGammaModel(), summary, customers=attributes, spend_covariates=list(attributes)
    )
    if with_attributes is None or not with_attributes.aic < plain.aic:
        return plain
    return with_attributes


def value_table_with_ranges(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    *,
    n_draws: int = 200,
    **options: Any,
) -> pd.DataFrame:
    """:func:`custval.customer_value_table`, falling back to no ranges when a model's parameter
    uncertainty is unknown (a singular Hessian, e.g. a parameter at its boundary).

    ``customers=`` (the customer attributes) is passed on only when a model has covariates.

    ``attrs["ranges_note"]`` then says why the ranges are missing; the point values are the
    same either way.
    """
    from custval import customer_value_table

    options.setdefault("progress", False)
    if not any(
        getattr(m, "covariates_", None) is not None for m in (transaction_model, spend_model)
    ):
        options.pop("customers", None)  # the attributes matter only to models fitted with them
    try:
        return customer_value_table(
            transaction_model, spend_model, summary, n_draws=n_draws, **options
        )
    except DataError as error:
        if n_draws == 0 or "variance matrix" not in str(error):
            raise
    table = customer_value_table(transaction_model, spend_model, summary, n_draws=0, **options)
    table.attrs["ranges_note"] = (
        "the uncertainty of the fitted model could not be estimated on this data (its "
        "likelihood is flat in some direction, typically a parameter at its limit)"
    )
    return table


def campaign_effects(
    data: ReportData,
    *,
    window: str = "90D",
    n_bootstrap: int = 200,
    n_folds: int = 5,
) -> tuple[Any, Any]:
    """Effects of the randomized campaign on spend and on buying at all (``None, None``
    without a campaign table), from :func:`custval.invest.estimate_uplift` on the outcomes
    of :func:`custval.invest.campaign_outcomes` with the pre-contact history as features."""
    from custval.invest import campaign_outcomes, estimate_uplift

    if data.campaign is None:
        return None, None
    outcomes = campaign_outcomes(
        data.transactions, data.campaign, window=window, observation_end=data.observation_end
    )
    features = [c for c in outcomes.columns if c.startswith("pre_")]
    features += [c for c in ("segment",) if c in outcomes.columns]
    effects = [
        estimate_uplift(
            outcomes,
            outcome=outcome,
            features=features,
            n_bootstrap=n_bootstrap,
            n_folds=n_folds,
            progress=False,
        )
        for outcome in ("revenue", "purchase")
    ]
    return effects[0], effects[1]


def retention_assumptions(
    data: ReportData,
    purchase_effect: Any,
    *,
    save_rate: float | None = None,
    assumed_save_rate: float = 0.10,
    cost_per_contact: float | None = None,
    assumed_cost_per_contact: float = 2.50,
) -> tuple[float, str, float]:
    """The save rate and contact cost of the retention analysis, and where the rate comes from.

    Given values win. Otherwise the save rate is measured from the randomized campaign, as its
    effect on buying at all divided by the control group's no-purchase rate (the share of
    would-be non-buyers a contact turned into buyers), and the cost is the campaign's cost per
    contact; without a campaign both are the stated assumptions.

    Returns
    -------
    (save_rate, source, cost_per_contact)
    """
    if save_rate is not None:
        source = "given for this report"
    elif purchase_effect is not None:
        effect = float(purchase_effect.ate.loc["difference in means", "estimate"])
        control_lost = 1.0 - float(purchase_effect.groups.loc["control", "mean"])
        save_rate = max(effect, 0.0) / control_lost if control_lost > 0 else 0.0
        source = (
            "measured: the campaign's effect on buying, over the control group's no-purchase rate"
        )
    else:
        save_rate = assumed_save_rate
        source = "an assumption, not measured: a randomized campaign table would measure it"
    if cost_per_contact is None:
        if data.campaign is not None and "cost_per_contact" in data.campaign.columns:
            cost_per_contact = float(data.campaign["cost_per_contact"].mean())
        else:
            cost_per_contact = assumed_cost_per_contact
    return float(save_rate), source, float(cost_per_contact)


#: Columns of the list of customers to contact, in order.
TARGET_COLUMNS = [
    "segment",
    "clv",
    "clv_lower",
    "clv_upper",
    "churn_probability",
    "predicted_incremental_profit",
    "net_value",
    "contact",
    "reason",
]


def contact_targets(
    data: ReportData,
    value_table: pd.DataFrame,
    revenue_effect: Any | None,
    *,
    margin: float,
    cost_per_contact: float,
    save_rate: float,
    churn_horizon: str = "90D",
    n_bootstrap: int = 200,
    currency: str = "$",
) -> tuple[pd.DataFrame, Any | None]:
    """Whom to contact next, one row per customer of the value table, and how that targeting
    did on the campaign's held-out customers.

    With a randomized campaign the predicted incremental profit of a contact is the uplift in
    spend predicted from each customer's recent history (models fitted on the campaign, see
    :func:`custval.invest.estimate_uplift`) times the margin, over the campaign's outcome
    window; the targeting is checked with :func:`custval.invest.uplift_targeting` against
    contacting at random and by churn risk at the contact date. Without a campaign it is the
    retention value of :func:`custval.invest.retention_roi` with the *assumed* save rate
    (churn risk × save rate × value at stake), and the second value is None.

    Returns
    -------
    (targets, targeting)
        ``targets`` indexed by customer_id with :data:`TARGET_COLUMNS`, sorted by ``net_value``
        (highest first); ``attrs``: ``basis`` ("measured" or "assumed"), ``cost_per_contact``,
        ``n_contact``, ``net_return`` (of contacting those with ``contact``).
    """
    from custval._format import money, percent
    from custval.churn import churn_scores
    from custval.invest import history_features, retention_roi, uplift_targeting

    cost = float(cost_per_contact)
    targets = pd.DataFrame(index=value_table.index)
    targets["segment"] = value_table["segment"].astype(str) if "segment" in value_table else ""
    for column in ("clv", "clv_lower", "clv_upper", "churn_probability"):
        targets[column] = value_table[column] if column in value_table else np.nan
    targeting = None
    if revenue_effect is not None:
        frame = revenue_effect._frame
        contact_date = pd.Timestamp(data.campaign["contact_date"].min())
        at_contact = churn_scores(
            data.transactions,
            horizon=churn_horizon,
            cutoff=contact_date,
            customers=data.customers,
            n_threads=1,
        )
        risk = at_contact.reindex(frame.index.astype(str)).fillna(1.0)
        risk.index = frame.index
        targeting = uplift_targeting(
            revenue_effect,
            margin=margin,
            cost_per_contact=cost,
            churn=risk,
            n_bootstrap=n_bootstrap,
        )
        features = list(revenue_effect.assumptions["features"])
        lookback = frame.attrs.get("lookback", "365D")
        anchors = pd.Series(data.observation_end, index=value_table.index)
        now = history_features(data.transactions, anchors, lookback=lookback)
        for column in features:
            if column not in now.columns and column in data.campaign.columns:
                by_id = data.campaign.set_index(data.campaign["customer_id"].astype(str))[column]
                now[column] = by_id.reindex(value_table.index.astype(str)).to_numpy()
        uplift = revenue_effect.predict(now[features])
        targets["predicted_incremental_profit"] = margin * uplift.to_numpy()
        reasons = [
            f"predicted to spend {money(u, currency)} more if contacted "
            f"({money(margin * u, currency)} of profit against the {money(cost, currency)} "
            "contact), as similar customers did in the randomized campaign"
            for u in uplift.to_numpy()
        ]
        basis = "measured"
        gain = "revenue" if margin >= 1 else "profit"
    else:
        roi = retention_roi(
            value_table,
            cost_per_contact=cost,
            save_rate=save_rate,
            margin=margin_to_apply(value_table, margin),
        )
        scores = roi.scores.reindex(value_table.index)
        targets["predicted_incremental_profit"] = scores["expected_incremental_value"]
        reasons = [
            f"{percent(p)} chance of losing {money(v, currency)}; a contact is assumed to keep "
            f"{percent(save_rate, decimals=1)} of such customers (an assumed save rate: no "
            "campaign measured it)"
            for p, v in zip(scores["churn_probability"], scores["value_at_stake"], strict=True)
        ]
        basis = "assumed"
        gain = "revenue" if value_table.attrs.get("value_basis") == "revenue" else "profit"
    targets["net_value"] = targets["predicted_incremental_profit"] - cost
    targets["contact"] = targets["net_value"] > 0
    targets["reason"] = reasons
    targets = targets[TARGET_COLUMNS].sort_values("net_value", ascending=False, kind="stable")
    contacted = targets[targets["contact"]]
    targets.attrs.update(
        basis=basis,
        gain=gain,
        cost_per_contact=cost,
        n_contact=len(contacted),
        net_return=float(contacted["net_value"].sum()),
        incremental_profit=float(contacted["predicted_incremental_profit"].sum()),
        horizon=value_table.attrs.get("horizon"),
        interval=value_table.attrs.get("interval", 0.8),
    )
    return targets, targeting


def targets_by_segment(targets: pd.DataFrame) -> pd.DataFrame:
    """The plan by segment from the same per-customer numbers as the contact list.

    Returns one row per segment, most net return first: ``customers``, ``to_contact``,
    ``incremental_profit`` and ``cost`` of contacting them, ``net_return`` (their sum of
    ``net_value``) and ``action``. Summed over segments, ``to_contact`` and ``net_return``
    equal the list's ``attrs["n_contact"]`` and ``attrs["net_return"]``.
    """
    cost = float(targets.attrs.get("cost_per_contact", 0.0))
    chosen = targets["contact"].astype(bool)
    data = targets.assign(
        _profit=np.where(chosen, targets["predicted_incremental_profit"], 0.0),
        _net=np.where(chosen, targets["net_value"], 0.0),
    )
    g = data.groupby("segment", sort=False, observed=True)
    plan = pd.DataFrame(
        {
            "customers": g.size(),
            "to_contact": g["contact"].sum().astype(int),
            "incremental_profit": g["_profit"].sum(),
        }
    )
    plan["cost"] = plan["to_contact"] * cost
    plan["net_return"] = g["_net"].sum()
    plan["action"] = [
        f"contact {n:,} of them" if n else "no contact pays back"
        for n in plan["to_contact"].to_numpy()
    ]
    plan.index.name = "segment"
    return plan.sort_values(["net_return", "customers"], ascending=False, kind="stable")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) get a
    leading apostrophe, so a list from a CRM cannot run code in whoever opens it."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = [
                f"'{v}" if isinstance(v, str) and v.startswith(_FORMULA_START) else v
                for v in out[column]
            ]
    if out.index.dtype == object or pd.api.types.is_string_dtype(out.index):
        out.index = pd.Index(
            [
                f"'{v}" if isinstance(v, str) and v.startswith(_FORMULA_START) else v
                for v in out.index
            ],
            name=out.index.name,
        )
    return out


def write_downloads(
    folder: str | os.PathLike[str] | None,
    *,
    targets: pd.DataFrame,
    value_table: pd.DataFrame,
) -> list[dict[str, str]]:
    """Write the CSV files a marketer downloads next to the reports.

    ``contact-list.csv``: the customers to contact (``contact`` true), most net value first,
    with segment, value and its range, churn risk, predicted incremental profit, net value and
    the reason; ``customer-values.csv``: the full value table. Text cells that a spreadsheet
    would read as a formula are prefixed with an apostrophe. Nothing is written when
    ``folder`` is None (a notebook opened by hand).

    Returns
    -------
    list of dict
        One ``{"label": ..., "path": ...}`` per file, the path relative to the report folder
        (``downloads/contact-list.csv``) and the label the link shows ("Download the 104
        customers to contact (CSV)"); empty when nothing was written.
    """
    if folder is None:
        return []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chosen = targets[targets["contact"].astype(bool)].drop(columns="contact")
    _csv_safe(chosen).to_csv(folder / "contact-list.csv", index_label="customer_id")
    _csv_safe(value_table).to_csv(folder / "customer-values.csv", index_label="customer_id")
    return [
        {
            "label": f"Download the {len(chosen):,} customers to contact (CSV)",
            "path": f"{folder.name}/contact-list.csv",
        },
        {
            "label": f"Download the value table of all {len(value_table):,} customers (CSV)",
            "path": f"{folder.name}/customer-values.csv",
        },
    ]


def programme_effect(
    data: ReportData,
    *,
    join_column: str = "loyalty_join_date",
    join_window: str = "180D",
    outcome_window: str = "365D",
    n_bootstrap: int = 200,
) -> tuple[Any | None, int]:
    """The observational effect of a programme (loyalty membership) on spend, or ``(None, 0)``
    when the customer table has no join dates.

    A landmark comparison, so that nothing after joining leaks into the comparison: at the
    landmark ``observation_end − outcome_window``, customers who joined during the
    ``join_window`` before it are compared with customers who had not joined by then, both
    acquired before the window and with a purchase inside it (members join at a purchase, so
    both groups are known to be active). :func:`custval.invest.relationship_effect` weights
    them on their purchasing before the window (orders, revenue, recency, tenure) and on
    region and channel when present; the outcome is revenue in the ``outcome_window`` after the
    landmark. It is observational: it holds only if these explain who joined.

    Returns
    -------
    (effect, n_members)
        The :class:`custval.invest.RelationshipEffect` (outcome ``revenue_after``) and the
        number of members of the programme at the end of observation, for totals.
    """
    from custval._units import parse_duration
    from custval.invest import history_features, relationship_effect

    customers = data.customers
    if customers is None or join_column not in customers.columns:
        return None, 0
    customers = customers.set_index(customers["customer_id"].astype(str))
    join = read_timestamps(
        customers[join_column], what="customers", column=join_column, allow_missing=True
    )
    window = pd.Timedelta(days=parse_duration(join_window, to="D"))
    horizon = pd.Timedelta(days=parse_duration(outcome_window, to="D"))
    landmark = (data.observation_end - horizon).normalize()
    start = landmark - window
    log = data.transactions
    ids = log["customer_id"].astype(str)
    first = log.groupby(ids)["timestamp"].min().reindex(customers.index)
    active = log.loc[(log["timestamp"] >= start) & (log["timestamp"] < landmark)]
    active_ids = set(active["customer_id"].astype(str))
    member = (join >= start) & (join < landmark)
    not_yet = join.isna() | (join >= landmark)
    keep = (first < start) & customers.index.isin(list(active_ids)) & (member | not_yet)
    frame = pd.DataFrame({"member": member[keep].astype(int)}, index=customers.index[keep])
    if frame["member"].sum() < 20 or (1 - frame["member"]).sum() < 20:
        return None, 0
    history = history_features(log, pd.Series(start, index=frame.index), lookback="365D")
    frame = frame.join(history)
    for column in ("pre_recency_days", "pre_tenure_days"):
        frame[column] = frame[column].fillna(frame[column].max())
    covariates = ["pre_orders", "pre_revenue", "pre_recency_days", "pre_tenure_days"]
    for column in ("region", "channel"):
        if column in customers.columns:
            frame[column] = customers.loc[frame.index, column].astype(str)
            covariates.append(column)
    after = log.loc[(log["timestamp"] >= landmark) & (log["timestamp"] < landmark + horizon)]
    revenue = after.groupby(after["customer_id"].astype(str))["amount"].sum()
    frame["revenue_after"] = revenue.reindex(frame.index).fillna(0.0).to_numpy()
    effect = relationship_effect(
        frame,
        member="member",
        outcome="revenue_after",
        covariates=covariates,
        n_bootstrap=n_bootstrap,
        progress=False,
    )
    effect.assumptions.update(
        landmark=landmark.date().isoformat(),
        join_window=join_window,
        outcome_window=outcome_window,
    )
    return effect, int(join.notna().sum())
