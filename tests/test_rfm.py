"""Tests of custval.rfm: summaries against lifetimes and Hardie's published CDNOW numbers,
invariants with hypothesis, RFM scores and segments, and every error message."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custval import DataError, calibration_holdout_split, rfm_scores, rfm_segments, rfm_summary
from custval.errors import CustvalWarning
from custval.rfm import _pair_keys, _parse_freq, _periods, decimal_units

SUMMARY = ["frequency", "recency", "T", "monetary_value"]
CAL_END, OBS_END = "1997-09-30", "1998-06-30"


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lifetimes_utils():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        utils = pytest.importorskip("lifetimes.utils")
    return utils


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def lifetimes_summary(utils, frame, freq, **kwargs):
    result = _quiet(
        utils.summary_data_from_transaction_data,
        frame,
        "customer_id",
        "timestamp",
        monetary_value_col="amount",
        freq=freq,
        **kwargs,
    )
    return result.rename_axis("customer_id")


def lifetimes_split(utils, frame, freq, calibration_end=CAL_END, observation_end=OBS_END):
    result = _quiet(
        utils.calibration_and_holdout_data,
        frame,
        "customer_id",
        "timestamp",
        calibration_period_end=calibration_end,
        observation_period_end=observation_end,
        freq=freq,
        monetary_value_col="amount",
    )
    result.columns = [c.removesuffix("_cal") for c in result.columns]
    return result.rename_axis("customer_id")


def lifetimes_period_summary(utils, frame, freq):
    """lifetimes' own period grouping (``_find_first_transactions``), with ages counted as
    differences of pandas Periods: what summary_data_from_transaction_data computes for
    freq "M", where it fails on current pandas (np.timedelta64(1, "M") has no length)."""
    end = frame["timestamp"].max().to_period(freq).to_timestamp()
    periods = _quiet(
        utils._find_first_transactions,
        frame,
        "customer_id",
        "timestamp",
        "amount",
        observation_period_end=end,
        freq=freq,
    )
    periods["ordinal"] = pd.PeriodIndex(periods["timestamp"]).asi8
    grouped = periods.groupby("customer_id")["ordinal"]
    first, last = grouped.min(), grouped.max()
    repeat = periods["amount"].where(~periods["first"])
    result = pd.DataFrame(
        {
            "frequency": grouped.count() - 1.0,
            "recency": (last - first).astype(float),
            "T": (end.to_period(freq).ordinal - first).astype(float),
            "monetary_value": repeat.groupby(periods["customer_id"]).mean().fillna(0.0),
        }
    )
    return result.rename_axis("customer_id")


def holdout_value_per_period(frame, freq, calibration_end=CAL_END, observation_end=OBS_END):
    """Independent pandas oracle: mean holdout spend per purchase period."""
    stamps = frame["timestamp"]
    holdout = frame[(stamps > calibration_end) & (stamps <= observation_end)]
    per_period = holdout.groupby(["customer_id", holdout["timestamp"].dt.to_period(freq)])[
        "amount"
    ].sum()
    return per_period.groupby(level="customer_id").mean()


def log(rows):
    """A transaction frame from (customer_id, timestamp string, amount) tuples."""
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601")
    return frame


@pytest.fixture(scope="module")
def cdnow_sample(cdnow_sample_path):
    frame = pd.read_csv(
        cdnow_sample_path,
        sep=r"\s+",
        header=None,
        dtype={"date": str},
        names=["master_id", "customer_id", "date", "cds", "amount"],
    )
    frame["timestamp"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@pytest.fixture(scope="module")
def hardie_summary(cdnow_sample_path):
    """Hardie's published 39-week calibration summary (ID, frequency, recency, T in weeks)."""
    path = cdnow_sample_path.parent / "cdnow_customers_summary.csv"
    if not path.exists():
        pytest.skip(f"published CDNOW summary not available: {path} is absent")
    return pd.read_csv(path, index_col="ID")


@pytest.fixture(scope="module")
def hardie_zbar(cdnow_sample_path):
    path = cdnow_sample_path.parent / "cdnow_customers_summary_with_transactions.csv"
    if not path.exists():
        pytest.skip(f"published CDNOW summary not available: {path} is absent")
    return pd.read_csv(path, index_col="ID")["zbar"]


@pytest.fixture(scope="module")
def cdnow_master(cdnow_master_path):
    frame = pd.read_csv(cdnow_master_path, sep=r"\s+", dtype={"date": str})
    frame["timestamp"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame.rename(columns={"dollar_value": "amount"})


# --- agreement with lifetimes on CDNOW --------------------------------------------------------


@pytest.mark.parametrize("freq", ["D", "W", "h"])
def test_summary_equals_lifetimes_on_cdnow_master(cdnow_master, lifetimes_utils, freq):
    ours = rfm_summary(cdnow_master, freq=freq)
    reference = lifetimes_summary(lifetimes_utils, cdnow_master, freq)
    assert len(ours) == 23_570
    pd.testing.assert_frame_equal(ours, reference, check_exact=False, rtol=1e-12)
    assert ours.attrs == {"freq": freq, "observation_end": "1998-06-30T00:00:00"}


def test_monthly_summary_equals_lifetimes_periods_on_cdnow(cdnow_master, lifetimes_utils):
    ours = rfm_summary(cdnow_master, freq="M")
    reference = lifetimes_period_summary(lifetimes_utils, cdnow_master, "M")
    pd.testing.assert_frame_equal(ours, reference, check_exact=False, rtol=1e-12)
    assert ours["T"].max() == 17  # January 1997 to June 1998, in calendar months


@pytest.mark.parametrize("freq", ["D", "W"])
def test_split_equals_lifetimes_on_cdnow(cdnow_master, lifetimes_utils, freq):
    ours = calibration_holdout_split(
        cdnow_master, calibration_end=CAL_END, observation_end=OBS_END, freq=freq
    )
    reference = lifetimes_split(lifetimes_utils, cdnow_master, freq)[ours.columns]
    same = ours.columns.drop("monetary_value_holdout")
    pd.testing.assert_frame_equal(ours[same], reference[same], check_exact=False, rtol=1e-12)
    assert ours.attrs == {
        "freq": freq,
        "calibration_end": "1997-09-30T00:00:00",
        "observation_end": "1998-06-30T00:00:00",
    }
    # The documented difference: mean value per holdout purchase period, not per line item.
    expected = holdout_value_per_period(cdnow_master, freq).reindex(ours.index, fill_value=0.0)
    np.testing.assert_allclose(ours["monetary_value_holdout"], expected, rtol=1e-12)
    differs = ~np.isclose(ours["monetary_value_holdout"], reference["monetary_value_holdout"])
    assert differs.sum() > 100  # customers with several line items in one holdout period
    agree = ~differs
    assert agree.sum() > 20_000


def test_split_calibration_equals_summary_on_cdnow(cdnow_master):
    split = calibration_holdout_split(
        cdnow_master, calibration_end=CAL_END, observation_end=OBS_END, freq="W"
    )
    calibration = cdnow_master[cdnow_master["timestamp"] <= CAL_END]
    expected = rfm_summary(calibration, freq="W", observation_end=CAL_END)
    pd.testing.assert_frame_equal(split[SUMMARY], expected, check_exact=True)


# --- Hardie's published CDNOW summary -----------------------------------------------------------


def test_hardie_summary_is_the_daily_summary_in_weeks(cdnow_sample, hardie_summary):
    published = hardie_summary
    split = calibration_holdout_split(
        cdnow_sample, calibration_end=CAL_END, observation_end=OBS_END, freq="D"
    )
    assert len(split) == len(published) == 2357
    assert (split.index == published.index).all()
    assert (split["frequency"] == published["frequency"]).all()
    assert ((split["recency"] / 7).round(2) == published["recency"]).all()
    assert ((split["T"] / 7).round(2) == published["T"]).all()
    assert split["frequency"].sum() == 2457
    assert split["frequency_holdout"].sum() == 1882
    assert split["duration_holdout"].iloc[0] == 273  # = 39 weeks


def test_hardie_summary_is_not_the_calendar_week_summary(cdnow_sample, hardie_summary):
    published = hardie_summary
    weekly = calibration_holdout_split(
        cdnow_sample, calibration_end=CAL_END, observation_end=OBS_END, freq="W"
    )
    assert weekly["frequency"].sum() == 2216  # purchases in one calendar week merge
    assert weekly["frequency_holdout"].sum() == 1788
    assert (weekly["T"] != published["T"]).sum() == 1987  # whole weeks, not days / 7


def test_hardie_zbar_is_the_daily_monetary_value(cdnow_sample, hardie_zbar):
    daily = rfm_summary(
        cdnow_sample[cdnow_sample["timestamp"] <= CAL_END], freq="D", observation_end=CAL_END
    )
    half_up = np.floor(daily["monetary_value"] * 100 + 0.5 + 1e-9) / 100
    np.testing.assert_allclose(half_up, hardie_zbar, atol=1e-9)  # rounded half up


# --- hand-built cases -------------------------------------------------------------------------


def test_same_period_purchases_merge_and_amounts_add():
    frame = log(
        [
            (1, "2024-01-01 09:00", 10.0),
            (1, "2024-01-01 18:00", 5.0),
            (1, "2024-01-04", 20.0),
            (1, "2024-01-04", 4.0),
            (1, "2024-01-09", 6.0),
            (2, "2024-01-08", 7.0),
        ]
    )
    daily = rfm_summary(frame)
    assert daily.loc[1, SUMMARY].tolist() == [2.0, 8.0, 8.0, 15.0]  # (24 + 6) / 2
    assert daily.loc[2, SUMMARY].tolist() == [0.0, 0.0, 1.0, 0.0]
    weekly = rfm_summary(frame, freq="W")  # Mon 1 Jan ... Sun 7 Jan; Mon 8 Jan ...
    assert weekly.loc[1, SUMMARY].tolist() == [1.0, 1.0, 1.0, 6.0]
    assert weekly.loc[2, SUMMARY].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_weeks_run_monday_to_sunday_and_anchors_move_them():
    frame = log(
        [
            (1, "2024-01-07", 1.0),
            (1, "2024-01-08", 2.0),
            (2, "2024-01-01", 1.0),
            (2, "2024-01-07 23:59", 3.0),
        ]
    )
    weekly = rfm_summary(frame, freq="W")  # 2024-01-07 is a Sunday
    assert weekly["frequency"].tolist() == [1.0, 0.0]
    ending_saturday = rfm_summary(frame, freq="W-SAT")
    assert ending_saturday["frequency"].tolist() == [0.0, 1.0]
    assert ending_saturday.attrs["freq"] == "W"


def test_months_are_calendar_months():
    frame = log(
        [
            (1, "2024-01-01", 1.0),
            (1, "2024-01-31", 2.0),
            (1, "2024-02-01", 4.0),
            (2, "2023-12-31 23:59", 1.0),
            (2, "2024-03-01", 3.0),
        ]
    )
    monthly = rfm_summary(frame, freq="M")
    assert monthly.loc[1, SUMMARY].tolist() == [1.0, 1.0, 2.0, 4.0]
    assert monthly.loc[2, SUMMARY].tolist() == [1.0, 3.0, 3.0, 3.0]
    yearly = rfm_summary(frame, freq="Y")
    assert yearly.loc[2, SUMMARY].tolist() == [1.0, 1.0, 1.0, 3.0]


@pytest.mark.parametrize("freq", ["h", "D", "W", "W-MON", "W-WED", "M", "Y"])
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_period_codes_follow_pandas_periods(freq, unit):
    rng = np.random.default_rng(7)
    seconds = rng.integers(-40 * 365 * 86400, 60 * 365 * 86400, size=2000)
    stamps = pd.DatetimeIndex(seconds.astype("datetime64[s]").astype(f"datetime64[{unit}]"))
    for sample in (stamps, stamps[:3]):  # the look-up table path and the direct path
        ours = _periods(sample.asi8, unit, _parse_freq(freq))
        expected = sample.to_period(freq).asi8
        assert (ours - expected == ours[0] - expected[0]).all()
        assert np.array_equal(np.argsort(ours, kind="stable"), np.argsort(expected, kind="stable"))


def test_hourly_summary_equals_lifetimes_with_times_of_day(lifetimes_utils):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 40, 600),
            "timestamp": pd.Timestamp("2024-03-01")
            + pd.to_timedelta(rng.integers(0, 20 * 86400, 600), unit="s"),
            "amount": rng.gamma(2.0, 10.0, 600).round(2),
        }
    )
    for freq in ["h", "D", "W"]:
        pd.testing.assert_frame_equal(
            rfm_summary(frame, freq=freq),
            lifetimes_summary(lifetimes_utils, frame, freq),
            check_exact=False,
            rtol=1e-12,
        )


def test_transactions_after_observation_end_are_excluded(lifetimes_utils):
    # 2024-01-10 is a Wednesday; the Friday of that week is after observation_end.
    frame = log(
        [
            (1, "2024-01-01", 10.0),
            (1, "2024-01-09", 20.0),
            (1, "2024-01-12", 40.0),
            (2, "2024-01-11", 5.0),
        ]
    )
    ours = rfm_summary(frame, freq="W", observation_end="2024-01-10")
    assert ours.index.tolist() == [1]  # customer 2 first bought after the end
    assert ours.loc[1, SUMMARY].tolist() == [1.0, 1.0, 1.0, 20.0]
    assert ours.attrs["observation_end"] == "2024-01-10T00:00:00"
    # lifetimes keeps the rest of the end's week (the documented difference)
    theirs = lifetimes_summary(lifetimes_utils, frame, "W", observation_period_end="2024-01-10")
    assert theirs.loc[1, "monetary_value"] == 60.0
    assert 2 in theirs.index
    # a time of day on the end date is after a date-only end
    late = log([(1, "2024-01-01", 1.0), (1, "2024-01-10 08:00", 2.0)])
    assert rfm_summary(late, observation_end="2024-01-10")["frequency"].tolist() == [0.0]
    assert rfm_summary(late, observation_end="2024-01-10 08:00")["frequency"].tolist() == [1.0]


def test_holdout_value_is_per_purchase_period_not_per_line(lifetimes_utils):
    frame = log(
        [
            (1, "2024-01-01", 8.0),
            (1, "2024-01-10", 10.0),
            (1, "2024-01-10", 30.0),
            (1, "2024-01-20", 20.0),
            (2, "2024-01-02", 9.0),
            (2, "2024-01-03", 11.0),
            (3, "2024-01-03", 5.0),
            (3, "2024-01-15", 7.0),
            (4, "2024-01-25", 3.0),
        ]
    )
    split = calibration_holdout_split(frame, calibration_end="2024-01-05")
    assert split.index.tolist() == [1, 2, 3]  # customer 4 first bought in the holdout
    assert split["frequency_holdout"].tolist() == [2.0, 0.0, 1.0]
    assert split["monetary_value_holdout"].tolist() == [30.0, 0.0, 7.0]  # (40 + 20) / 2
    assert split["duration_holdout"].tolist() == [20.0] * 3
    assert split.loc[2, SUMMARY].tolist() == [1.0, 1.0, 3.0, 11.0]
    theirs = lifetimes_split(lifetimes_utils, frame, "D", "2024-01-05", "2024-01-25")
    assert theirs.loc[1, "monetary_value_holdout"] == 20.0  # (10 + 30 + 20) / 3 line items
    assert theirs.loc[3, "monetary_value_holdout"] == 7.0
    same = split.columns.drop("monetary_value_holdout")
    pd.testing.assert_frame_equal(split[same], theirs[same])


def test_split_without_amount_and_empty_holdout():
    frame = log([(1, "2024-01-01", 1.0), (1, "2024-01-03", 1.0)])
    with pytest.warns(
        CustvalWarning,
        match=r"no transaction between calibration_end "
        r"\(2024-01-03T00:00:00\) and observation_end",
    ):
        split = calibration_holdout_split(
            frame.drop(columns="amount"),
            amount=None,
            calibration_end="2024-01-03",
            observation_end="2024-01-31",
        )
    assert split.columns.tolist() == [
        "frequency",
        "recency",
        "T",
        "frequency_holdout",
        "duration_holdout",
    ]
    assert split.loc[1].tolist() == [1.0, 2.0, 2.0, 0.0, 28.0]


def test_summary_without_amount_ids_and_dtypes():
    frame = log([("b", "2024-01-01", 1.0), ("a", "2024-01-02", 1.0), ("b", "2024-01-05", 1.0)])
    summary = rfm_summary(frame.drop(columns="amount"), amount=None)
    assert summary.columns.tolist() == ["frequency", "recency", "T"]
    assert summary.index.tolist() == ["a", "b"]
    assert summary.index.name == "customer_id"
    assert (summary.dtypes == "float64").all()
    sparse = frame.assign(customer_id=frame["customer_id"].map({"a": 2**62 + 5, "b": -(2**40)}))
    assert rfm_summary(sparse).index.tolist() == [-(2**40), 2**62 + 5]
    renamed = frame.rename(columns={"customer_id": "cust", "timestamp": "ts", "amount": "v"})
    pd.testing.assert_frame_equal(
        rfm_summary(renamed, customer_id="cust", timestamp="ts", amount="v"), rfm_summary(frame)
    )


def test_timestamp_units_time_zones_and_strings_agree():
    frame = log(
        [(1, "2024-01-01 23:30", 1.0), (1, "2024-01-02 00:30", 2.0), (2, "2024-01-03", 3.0)]
    )
    expected = rfm_summary(frame)
    for unit in ["s", "ms", "us", "ns"]:
        as_unit = frame.assign(timestamp=frame["timestamp"].astype(f"datetime64[{unit}]"))
        pd.testing.assert_frame_equal(rfm_summary(as_unit), expected)
    # time zones: periods follow local wall-clock time
    zoned = frame.assign(timestamp=frame["timestamp"].dt.tz_localize("America/New_York"))
    pd.testing.assert_frame_equal(rfm_summary(zoned), expected)
    utc_end = pd.Timestamp("2024-01-03 05:00", tz="UTC")  # midnight in New York
    assert rfm_summary(zoned, observation_end=utc_end).attrs["observation_end"] == (
        "2024-01-03T00:00:00"
    )
    as_text = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M"))
    pd.testing.assert_frame_equal(rfm_summary(as_text), expected)
    mixed_iso = frame.assign(timestamp=["2024-01-01T23:30", "2024-01-02 00:30", "2024-01-03"])
    pd.testing.assert_frame_equal(rfm_summary(mixed_iso), expected)


def test_empty_input_and_end_before_all_data():
    frame = log([(1, "2024-01-05", 1.0)])
    empty = rfm_summary(frame.iloc[:0])
    assert empty.columns.tolist() == SUMMARY
    assert len(empty) == 0
    assert empty.index.name == "customer_id"
    early = rfm_summary(frame, observation_end="2024-01-01")
    assert len(early) == 0
    assert early.attrs["observation_end"] == "2024-01-01T00:00:00"


def test_input_frame_is_not_modified(cdnow_sample):
    before = cdnow_sample.copy(deep=True)
    rfm_summary(cdnow_sample, freq="W")
    calibration_holdout_split(cdnow_sample, calibration_end=CAL_END)
    pd.testing.assert_frame_equal(cdnow_sample, before)


# --- hypothesis invariants --------------------------------------------------------------------

FREQS = ["h", "D", "W", "M"]


@st.composite
def transactions(draw, min_rows=1):
    n = draw(st.integers(min_rows, 40))
    ids = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    minutes = draw(st.lists(st.integers(0, 400 * 24 * 60), min_size=n, max_size=n))
    cents = draw(st.lists(st.integers(1, 100_000), min_size=n, max_size=n))
    text = draw(st.booleans())
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in ids] if text else ids,
            "timestamp": pd.Timestamp("2023-02-27") + pd.to_timedelta(minutes, unit="min"),
            "amount": np.array(cents) / 100.0,
        }
    )
    return frame


HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(frame=transactions(), freq=st.sampled_from(FREQS))
def test_summary_invariants(frame, freq):
    before = frame.copy(deep=True)
    summary = rfm_summary(frame, freq=freq)
    pd.testing.assert_frame_equal(frame, before)  # input untouched
    assert (summary["recency"] >= 0).all()
    assert (summary["recency"] <= summary["T"]).all()
    distinct = frame.groupby("customer_id")["timestamp"].apply(
        lambda s: s.dt.to_period(freq).nunique()
    )
    assert (summary["frequency"] <= distinct - 1).all()
    assert (summary["frequency"] == distinct - 1).all()
    assert (summary["monetary_value"] >= 0).all()
    assert ((summary["monetary_value"] == 0) == (summary["frequency"] == 0)).all()
    assert sorted(summary.index) == summary.index.tolist()


@HYPOTHESIS
@given(frame=transactions(), freq=st.sampled_from(FREQS), seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(frame, freq, seed):
    shuffled = frame.sample(frac=1.0, random_state=seed)
    pd.testing.assert_frame_equal(
        rfm_summary(shuffled, freq=freq),
        rfm_summary(frame, freq=freq),
        check_exact=False,
        rtol=1e-12,
    )


@HYPOTHESIS
@given(frame=transactions(min_rows=2), freq=st.sampled_from(FREQS), cut=st.floats(0.05, 0.95))
def test_split_calibration_equals_summary_of_calibration_data(frame, freq, cut):
    stamps = frame["timestamp"].sort_values()
    calibration_end = stamps.iloc[int(cut * (len(stamps) - 1))]
    observation_end = stamps.iloc[-1] + pd.Timedelta(minutes=1)
    before = frame.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustvalWarning)
        split = calibration_holdout_split(
            frame, calibration_end=calibration_end, observation_end=observation_end, freq=freq
        )
    pd.testing.assert_frame_equal(frame, before)
    calibration = frame[frame["timestamp"] <= calibration_end]
    expected = rfm_summary(calibration, freq=freq, observation_end=calibration_end)
    pd.testing.assert_frame_equal(split[SUMMARY], expected)
    assert (split["frequency_holdout"] >= 0).all()
    assert ((split["monetary_value_holdout"] > 0) == (split["frequency_holdout"] > 0)).all()
    assert split.attrs["freq"] == freq


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=transactions(min_rows=2), freq=st.sampled_from(["h", "D", "W"]))
def test_random_logs_equal_lifetimes(frame, freq, lifetimes_utils):
    pd.testing.assert_frame_equal(
        rfm_summary(frame, freq=freq),
        lifetimes_summary(lifetimes_utils, frame, freq),
        check_exact=False,
        rtol=1e-12,
        check_index_type=False,
    )
    stamps = frame["timestamp"].sort_values()
    calibration_end = stamps.iloc[len(stamps) // 2]
    if calibration_end < stamps.iloc[-1]:
        ours = calibration_holdout_split(frame, calibration_end=calibration_end, freq=freq)
        theirs = lifetimes_split(lifetimes_utils, frame, freq, calibration_end, stamps.iloc[-1])[
            ours.columns
        ]
        same = ours.columns.drop("monetary_value_holdout")
        pd.testing.assert_frame_equal(
            ours[same],
            theirs[same],
            check_exact=False,
            rtol=1e-12,
            check_index_type=False,
            check_dtype=False,
        )


# --- scores and segments ----------------------------------------------------------------------


def summary_of(since_last, frequency, monetary=None, T=100.0):
    since_last = np.asarray(since_last, dtype=float)
    frequency = np.asarray(frequency, dtype=float)
    monetary = frequency * 10.0 if monetary is None else np.asarray(monetary, dtype=float)
    index = pd.Index([f"c{i}" for i in range(len(since_last))], name="customer_id")
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": T - since_last,
            "T": np.full(len(since_last), T),
            "monetary_value": monetary,
        },
        index=index,
    )


def test_scores_are_equal_sized_bins_of_ranks_higher_is_better():
    scored = rfm_scores(summary_of(since_last=np.arange(10.0), frequency=np.arange(10.0)))
    assert scored["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # recent is better
    assert scored["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scored["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scored["rfm_score"].tolist()[0] == "511"
    assert scored["r_score"].dtype == np.int64
    four = rfm_scores(summary_of(np.arange(8.0), np.arange(8.0)), bins=4)
    assert four["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4]


def test_ties_share_a_score_and_a_bottom_tie_scores_one():
    frequency = [0, 0, 0, 0, 0, 0, 1, 1, 2, 7]
    scored = rfm_scores(summary_of(since_last=np.arange(10.0), frequency=frequency))
    assert scored["f_score"].tolist() == [1] * 6 + [4, 4, 5, 5]
    assert scored["m_score"].tolist() == [1] * 6 + [4, 4, 5, 5]
    # the frequency-1 customers beat 6 of the 8 customers with another value: 1 + 5 * 6 // 8
    top_tie = rfm_scores(summary_of(since_last=[0.0, 0.0, 0.0, 7.0], frequency=[3, 3, 3, 0]))
    assert top_tie["r_score"].tolist() == [5, 5, 5, 1]
    assert top_tie["f_score"].tolist() == [5, 5, 5, 1]
    middle_tie = rfm_scores(summary_of(np.arange(10.0), [0] + [1] * 8 + [2]))
    assert middle_tie["f_score"].tolist() == [1] + [3] * 8 + [5]


def test_scores_of_degenerate_bases():
    one = rfm_segments(summary_of([3.0], [2.0]))
    assert one["rfm_score"].tolist() == ["333"]
    assert one["segment"].tolist() == ["Needs attention"]
    equal = rfm_scores(summary_of([5.0] * 4, [1.0] * 4))
    assert equal["rfm_score"].unique().tolist() == ["333"]
    two = rfm_segments(summary_of([1.0, 50.0], [4.0, 0.0]))
    assert two["rfm_score"].tolist() == ["555", "111"]
    assert two["segment"].tolist() == ["Champions", "Lost"]
    three = rfm_scores(summary_of([1.0, 20.0, 50.0], [4.0, 2.0, 0.0]))
    assert three["rfm_score"].tolist() == ["555", "333", "111"]
    empty = rfm_segments(summary_of([], []))
    assert len(empty) == 0
    scores = ["r_score", "f_score", "m_score", "rfm_score", "segment"]
    assert empty.columns.tolist() == [*SUMMARY, *scores]
    assert len(empty["segment"].cat.categories) == 11


GRID = {  # (r_score, f_score) -> segment, written out cell by cell
    (5, 5): "Champions",
    (5, 4): "Champions",
    (4, 5): "Loyal",
    (4, 4): "Loyal",
    (3, 5): "Loyal",
    (3, 4): "Loyal",
    (5, 3): "Potential loyalists",
    (5, 2): "Potential loyalists",
    (4, 3): "Potential loyalists",
    (4, 2): "Potential loyalists",
    (5, 1): "New",
    (4, 1): "Promising",
    (3, 3): "Needs attention",
    (3, 2): "About to sleep",
    (3, 1): "About to sleep",
    (2, 5): "Can't lose them",
    (1, 5): "Can't lose them",
    (2, 4): "At risk",
    (2, 3): "At risk",
    (1, 4): "At risk",
    (1, 3): "At risk",
    (2, 2): "Hibernating",
    (2, 1): "Hibernating",
    (1, 2): "Lost",
    (1, 1): "Lost",
}


def test_segment_grid_cell_by_cell():
    # 25 customers: 5 recency levels x 5 frequency levels, so level k scores k + 1
    levels = [(r, f) for r in range(5) for f in range(5)]
    since_last = [40.0 - 10.0 * r for r, _ in levels]
    frequency = [float(f) for _, f in levels]
    segments = rfm_segments(summary_of(since_last, frequency))
    for (r, f), (_, row) in zip(levels, segments.iterrows(), strict=True):
        assert (row["r_score"], row["f_score"]) == (r + 1, f + 1)
        assert row["segment"] == GRID[(r + 1, f + 1)]
    assert segments["segment"].dtype == pd.CategoricalDtype(
        [
            "Champions",
            "Loyal",
            "Potential loyalists",
            "New",
            "Promising",
            "Needs attention",
            "About to sleep",
            "At risk",
            "Can't lose them",
            "Hibernating",
            "Lost",
        ],
        ordered=True,
    )
    assert segments.sort_values("segment")["segment"].iloc[[0, -1]].tolist() == [
        "Champions",
        "Lost",
    ]  # ordered best first


def test_known_customers_land_in_their_segment():
    customers = {  # name: (frequency, days since last purchase, T in days, monetary_value)
        "vip": (12, 2, 362, 80),
        "regular": (8, 60, 365, 60),
        "newbie": (0, 3, 3, 0),
        "recent_one_off": (0, 45, 45, 0),
        "warming_up": (2, 10, 200, 25),
        "filler_a": (3, 120, 330, 20),
        "filler_b": (1, 150, 300, 15),
        "fading_regular": (4, 250, 350, 30),
        "lapsed_star": (11, 300, 340, 70),
        "filler_c": (1, 220, 350, 10),
        "old_one_off": (0, 300, 300, 0),
        "oldest_one_off": (0, 360, 360, 0),
    }
    f, since, T, m = (np.array(v, dtype=float) for v in zip(*customers.values(), strict=True))
    base = pd.DataFrame(
        {"frequency": f, "recency": T - since, "T": T, "monetary_value": m},
        index=pd.Index(list(customers), name="customer_id"),
    )
    result = rfm_segments(base)
    expected = {
        "vip": ("555", "Champions"),
        "regular": ("455", "Loyal"),
        "newbie": ("511", "New"),
        "recent_one_off": ("411", "Promising"),
        "warming_up": ("534", "Potential loyalists"),
        "fading_regular": ("244", "At risk"),
        "lapsed_star": ("155", "Can't lose them"),
        "old_one_off": ("111", "Lost"),
        "oldest_one_off": ("111", "Lost"),
    }
    for name, (score, segment) in expected.items():
        assert (result.loc[name, "rfm_score"], result.loc[name, "segment"]) == (score, segment)


def test_scores_return_a_new_frame_and_keep_attrs(cdnow_sample):
    summary = rfm_summary(cdnow_sample, freq="W")
    before = summary.copy(deep=True)
    segments = rfm_segments(summary)
    pd.testing.assert_frame_equal(summary, before)
    assert segments.attrs["freq"] == "W"
    assert segments[SUMMARY].equals(summary)
    # every customer of one frequency shares its f_score; scores rise with frequency
    by_frequency = segments.groupby("frequency")["f_score"]
    assert (by_frequency.nunique() == 1).all()
    assert by_frequency.first().is_monotonic_increasing
    # one-time buyers score F = 1 and can only be New, Promising, About to sleep,
    # Hibernating or Lost; in CDNOW (first purchases all in Q1 1997) none of them is recent
    one_off = segments[segments["frequency"] == 0]
    assert (one_off["f_score"] == 1).all()
    assert set(one_off["segment"]) == {"About to sleep", "Hibernating", "Lost"}


@HYPOTHESIS
@given(values=st.lists(st.integers(0, 5), min_size=0, max_size=30), bins=st.integers(2, 9))
def test_score_properties(values, bins):
    summary = summary_of(since_last=values, frequency=values, monetary=values)
    scored = rfm_scores(summary, bins=bins)
    f = scored["f_score"].to_numpy()
    assert ((f >= 1) & (f <= bins)).all()
    order = np.argsort(values, kind="stable")
    assert (np.diff(f[order]) >= 0).all()  # higher value, higher score
    assert (np.diff(scored["r_score"].to_numpy()[order]) <= 0).all()  # older, lower score
    assert scored.groupby(np.asarray(values, dtype=float))["f_score"].nunique().le(1).all()
    if len(set(values)) > 1:
        assert f.min() == 1
        assert f.max() == bins


# --- errors -----------------------------------------------------------------------------------


def test_missing_columns_list_the_columns_present():
    frame = pd.DataFrame({"cust": [1], "timestamp": [pd.Timestamp("2024-01-01")], "amount": [1]})
    with pytest.raises(
        DataError,
        match=r"missing required column\(s\) 'customer_id'; columns "
        r"present: 'cust', 'timestamp', 'amount'",
    ):
        rfm_summary(frame)
    with pytest.raises(DataError, match=r"missing required column\(s\) 'value'.*amount=None"):
        rfm_summary(frame, customer_id="cust", amount="value")
    with pytest.raises(DataError, match="transactions must be a pandas DataFrame, got list"):
        rfm_summary([1, 2])


def test_bad_amounts_are_named():
    frame = log([(1, "2024-01-01", 1.0), (1, "2024-01-02", 2.0), (2, "2024-01-03", 3.0)])
    text = frame.assign(amount=["1.5", "n/a", "x"])
    with pytest.raises(
        DataError,
        match=r"column 'amount' has 2 non-numeric values \(rows "
        r"1 \('n/a'\), 2 \('x'\)\); transactions column 'amount' must be numeric",
    ):
        rfm_summary(text)
    with pytest.raises(
        DataError,
        match=r"column 'amount' holds numbers stored as .*"
        r"pd.to_numeric",
    ):
        rfm_summary(frame.assign(amount=["1", "2", "3"]))
    with pytest.raises(
        DataError,
        match=r"column 'amount' has 1 missing or infinite values "
        r"\(rows 1 \(nan\)\); fill or drop",
    ):
        rfm_summary(frame.assign(amount=[1.0, np.nan, 2.0]))


def test_bad_timestamps_are_named():
    frame = log([(1, "2024-01-01", 1.0), (1, "2024-01-02", 2.0), (2, "2024-01-03", 3.0)])
    with pytest.raises(
        DataError,
        match=r"column 'timestamp' has 1 missing timestamps \(NaT\) "
        r"\(rows 2 \(NaT\)\); drop those rows or fill in",
    ):
        rfm_summary(frame.assign(timestamp=[frame["timestamp"][0], frame["timestamp"][1], pd.NaT]))
    with pytest.raises(
        DataError,
        match=r"column 'timestamp' has 1 values that are not dates "
        r"\(rows 1 \('soon'\)\); parse the column yourself",
    ):
        rfm_summary(frame.assign(timestamp=["2024-01-01", "soon", "2024-01-03"]))
    with pytest.raises(
        DataError,
        match=r"column 'timestamp' holds numbers \(int64\), not "
        r"timestamps; convert it with pd.to_datetime",
    ):
        rfm_summary(frame.assign(timestamp=[1, 2, 3]))


def test_missing_customer_ids_are_named():
    frame = log([("a", "2024-01-01", 1.0), (None, "2024-01-02", 2.0)])
    with pytest.raises(
        DataError,
        match=r"column 'customer_id' has 1 missing customer ids "
        r"\(rows 1 \((None|nan)\)\); drop those rows",
    ):
        rfm_summary(frame)


def test_bad_freq_and_dates_are_refused():
    frame = log([(1, "2024-01-01", 1.0), (1, "2024-01-09", 2.0)])
    with pytest.raises(DataError, match=r"unsupported time unit 'Q'; use one of 'D'"):
        rfm_summary(frame, freq="Q")
    with pytest.raises(DataError, match=r"unknown week anchor in freq='W-XYZ'"):
        rfm_summary(frame, freq="W-XYZ")
    with pytest.raises(DataError, match=r"cannot read observation_end='someday' as a date"):
        rfm_summary(frame, observation_end="someday")
    with pytest.raises(
        DataError,
        match=r"observation_end=.* has a time zone but the timestamp "
        r"column has none",
    ):
        rfm_summary(frame, observation_end=pd.Timestamp("2024-01-05", tz="UTC"))


def test_split_errors():
    frame = log([(1, "2024-01-05", 1.0), (1, "2024-01-09", 2.0)])
    with pytest.raises(
        DataError,
        match=r"observation_end \(2024-01-09T00:00:00\) must be after "
        r"calibration_end \(2024-01-09T00:00:00\)",
    ):
        calibration_holdout_split(frame, calibration_end="2024-01-09")
    with pytest.raises(
        DataError,
        match=r"no transaction on or before calibration_end "
        r"\(2024-01-01T00:00:00\); the first one is at "
        r"2024-01-05T00:00:00",
    ):
        calibration_holdout_split(frame, calibration_end="2024-01-01")
    with pytest.raises(DataError, match="calibration_end is required"):
        calibration_holdout_split(frame, calibration_end=None)


def test_score_errors():
    summary = summary_of([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(
        DataError,
        match=r"summary is missing required column\(s\) "
        r"'monetary_value'; columns present: 'frequency'",
    ):
        rfm_scores(summary.drop(columns="monetary_value"))
    with pytest.raises(DataError, match=r"bins must be an integer from 2 to 9, got 10"):
        rfm_scores(summary, bins=10)
    with pytest.raises(DataError, match=r"column 'frequency' has 1 missing or infinite values"):
        rfm_segments(summary.assign(frequency=[np.nan, 1.0]))


# --- exact sums of decimal amounts -----------------------------------------------------------


def _cents_log(seed: int = 3, n: int = 6_000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    cents = rng.integers(-(10**8), 10**8, n) * (rng.random(n) < 0.5) + rng.integers(1, 999, n)
    log = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 400, n),
            "timestamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 90 * 86400, n), unit="s"),
            "amount": cents / 100,
        }
    )
    return log, cents


def test_monetary_value_is_the_exact_mean_of_decimal_amounts_rounded_once():
    """Cents from 0.01 to a million: the
    holdout and calibration means are the exact rational means of the decimals, rounded once,
    whatever the row order."""
    log, cents = _cents_log()
    split = calibration_holdout_split(log, calibration_end="2024-02-15")
    days = log["timestamp"].dt.floor("D")
    end = pd.Timestamp("2024-02-15")
    for customer, row in split.iterrows():
        mine = (log["customer_id"] == customer).to_numpy()
        cal = mine & (log["timestamp"] <= end).to_numpy()
        first = days[cal].min()
        repeat = cal & (days > first).to_numpy()
        if row["frequency"] > 0:
            truth = Fraction(int(cents[repeat].sum()), 100 * int(row["frequency"]))
            assert row["monetary_value"] == float(truth)
        hold = mine & ~cal
        if row["frequency_holdout"] > 0:
            truth = Fraction(int(cents[hold].sum()), 100 * int(row["frequency_holdout"]))
            assert row["monetary_value_holdout"] == float(truth)
    shuffled = log.sample(frac=1.0, random_state=1)
    again = calibration_holdout_split(shuffled, calibration_end="2024-02-15")
    pd.testing.assert_frame_equal(again, split, check_exact=True)


def test_decimal_units_rule():
    units, scale = decimal_units(np.array([1.5, -2.25, 3.0]))
    assert scale == 100.0 and units.tolist() == [150.0, -225.0, 300.0]
    units, scale = decimal_units(np.array([1.0, -2.0, 7.0]))
    assert scale == 1.0 and units.tolist() == [1.0, -2.0, 7.0]
    # 0.1 + 0.2 as float64 is not a decimal of up to six places
    assert decimal_units(np.array([0.1 + 0.2])) == (None, None)
    # in range per row, but a million such rows could sum past 2**53 units
    assert decimal_units(np.full(1_000_000, 1e10)) == (None, None)
    assert decimal_units(np.full(1_000, 1e10))[1] == 1.0


def test_amounts_that_are_not_decimals_are_added_in_row_order():
    log, _ = _cents_log()
    thirds = log.assign(amount=log["amount"] / 3)
    summary = rfm_summary(thirds)
    codes = pd.Index(np.sort(thirds["customer_id"].unique())).get_indexer(thirds["customer_id"])
    days = thirds["timestamp"].dt.floor("D")
    first = days.groupby(thirds["customer_id"]).transform("min")
    spend = np.zeros(len(summary))
    np.add.at(spend, codes, np.where(days > first, thirds["amount"], 0.0))
    frequency = summary["frequency"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(frequency > 0, spend / frequency, 0.0)
    np.testing.assert_array_equal(summary["monetary_value"].to_numpy(), expected)


@pytest.mark.parametrize(
    ("customers", "dtype"), [(2**21, np.int32), (2**21 + 1, np.int64)], ids=["int32", "int64"]
)
def test_pair_keys_are_exact_on_both_sides_of_the_int32_limit(customers, dtype):
    """1,024 periods take 10 bits: 2**21 customers fill 31 bits (int32 keys), one more does not.
    The periods sit far from zero, as days since 1970 do, so only their offsets may be packed."""
    rng = np.random.default_rng(0)
    codes = np.concatenate([[0, customers - 1], rng.integers(0, customers, 3_000)])
    periods = np.concatenate([[20_000, 20_000 + 1_023], rng.integers(20_000, 21_024, 3_000)])
    key, shift, low = _pair_keys(codes.astype(np.int32), periods.astype(np.int32))
    assert key.dtype == dtype and shift == 10 and low == 20_000
    pairs = np.unique(np.stack([codes, periods], axis=1), axis=0)
    np.testing.assert_array_equal(key >> shift, pairs[:, 0])
    np.testing.assert_array_equal((key & ((1 << shift) - 1)) + low, pairs[:, 1])
