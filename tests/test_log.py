"""The shared transaction log and timestamp reader (custval._log), and the explicit unit and money
basis arguments that replace attrs lost in a merge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval import (
    BetaGeoModel,
    DataError,
    calibration_holdout_split,
    churn_labels,
    customer_lifetime_value,
    customer_value_table,
    rfm_summary,
)
from custval import evaluation as ev
from custval._log import read_log, read_moment, read_timestamps
from custval.invest import campaign_outcomes, payback, retention_roi


def _log(n_customers: int = 40, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 8, n_customers)
    ids = np.repeat(np.arange(n_customers), counts)
    days = rng.integers(0, 365, ids.size)
    return pd.DataFrame(
        {
            "customer_id": ids.astype(str),
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"),
            "amount": rng.gamma(2.0, 15.0, ids.size).round(2),
        }
    )


def _merged(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` joined with another table by customer, as users do: pandas drops the attrs."""
    other = pd.DataFrame({"region": "north"}, index=table.index)
    merged = table.merge(other, left_index=True, right_index=True)
    assert merged.attrs == {} and table.attrs
    return merged


# --- the log type ---------------------------------------------------------------------------


def test_read_log_codes_follow_sorted_ids_and_keep_wall_clock_time():
    frame = pd.DataFrame(
        {
            "customer_id": ["b", "a", "b", "c"],
            "timestamp": pd.to_datetime(
                ["2024-03-31 23:30", "2024-01-01 00:00", "2024-02-01 00:00", "2024-02-02 00:00"]
            ).tz_localize("Europe/Berlin"),
            "amount": [1.0, 2.0, 3.0, 4.0],
            "order_id": ["o1", "o2", "o3", "o4"],
        }
    )
    log = read_log(frame, optional=("order_id", "quantity"))
    assert log.codes.tolist() == [1, 0, 1, 2]
    assert log.ids(log.codes).tolist() == frame["customer_id"].tolist()
    assert log.customers.tolist() == ["a", "b", "c"]
    assert str(log.tz) == "Europe/Berlin"
    # local clock time, not UTC (which would be 21:30)
    assert pd.Timestamp(log.times[0]) == pd.Timestamp("2024-03-31 23:30")
    assert log.ticks.dtype == np.int64 and log.amount.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert list(log.columns) == ["order_id"]  # quantity is absent
    # compact integer ids are their own codes; dense codes on request
    ints = frame.assign(customer_id=[12, 10, 12, 11])
    assert read_log(ints).codes.tolist() == [2, 0, 2, 1]
    assert read_log(ints, compact_ids=False).customers.tolist() == [10, 11, 12]


def test_rfm_churn_and_invest_refuse_a_bad_log_with_the_same_message():
    log = _log().iloc[:6].reset_index(drop=True)
    campaign = pd.DataFrame(
        {"customer_id": ["0"], "treatment": [1], "contact_date": pd.to_datetime(["2024-03-01"])}
    )
    bad_logs = {
        r"column 'customer_id' has 1 missing customer ids \(rows 2": log.assign(
            customer_id=log["customer_id"].where(log.index != 2)
        ),
        r"column 'timestamp' has 1 missing timestamps \(NaT\) \(rows 3": log.assign(
            timestamp=log["timestamp"].where(log.index != 3)
        ),
        r"column 'amount' has 1 non-numeric values \(rows 1": log.assign(
            amount=log["amount"].astype(object).where(log.index != 1, "ten")
        ),
    }
    calls = (
        lambda t: rfm_summary(t),
        lambda t: churn_labels(t, cutoff="2024-06-01", horizon="30D"),
        lambda t: campaign_outcomes(t, campaign, window="30D"),
    )
    for message, bad in bad_logs.items():
        for call in calls:
            with pytest.raises(DataError, match=message):
                call(bad)


def test_read_timestamps_parses_text_and_refuses_numbers_and_non_dates():
    text = pd.Series(["2024-01-01", "2024-01-02T10:30:00", None])
    parsed = read_timestamps(text, what="customers", column="signup", allow_missing=True)
    assert parsed.tolist()[:2] == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02 10:30")]
    assert parsed.isna().tolist() == [False, False, True]
    with pytest.raises(DataError, match=r"column 'signup' has 1 missing timestamps \(NaT\)"):
        read_timestamps(text, what="customers", column="signup")
    with pytest.raises(DataError, match=r"column 'signup' holds numbers \(int64\), not times"):
        read_timestamps(pd.Series([1, 2]), what="customers", column="signup")
    with pytest.raises(DataError, match=r"has 1 values that are not dates \(rows 1 \('later'\)"):
        read_timestamps(pd.Series(["2024-01-01", "later"]), what="customers", column="signup")
    with pytest.raises(DataError, match=r"customers column 'signup' must hold datetimes"):
        read_timestamps(text, what="customers", column="signup", text=False)
    aware = pd.Series(pd.to_datetime(["2024-01-01 09:00"]).tz_localize("US/Eastern"))
    local = read_timestamps(aware, what="x", column="t", wall_clock=True)
    assert local.dt.tz is None and local[0] == pd.Timestamp("2024-01-01 09:00")


def test_read_moment_names_the_argument():
    assert read_moment("2024-05-01", "cutoff") == pd.Timestamp("2024-05-01")
    aware = read_moment(pd.Timestamp("2024-05-01 08:00", tz="UTC"), "cutoff", wall_clock=True)
    assert aware.tz is None and aware.hour == 8
    with pytest.raises(DataError, match=r"cannot read cutoff='soon' as a date.*cutoff must be"):
        read_moment("soon", "cutoff")
    with pytest.raises(DataError, match=r"observation_end is missing \(NaT"):
        read_moment(pd.NaT, "observation_end")


# --- explicit unit and money basis ------------------------------------------------------------


@pytest.fixture(scope="module")
def valued():
    summary = rfm_summary(_log(), freq="W")
    model = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, freq="W")
    return model, summary


def test_clv_of_a_merged_summary_needs_freq_and_gives_the_same_numbers(valued):
    model, summary = valued
    expected = customer_lifetime_value(model, 20.0, summary, horizon="26W", margin=0.3)
    merged = _merged(summary)
    with pytest.raises(DataError, match=r"attrs\['freq'\] is missing.*pass freq="):
        customer_lifetime_value(model, 20.0, merged, horizon="26W", margin=0.3)
    got = customer_lifetime_value(
        model, 20.0, merged, horizon="26W", margin=0.3, freq="W", observation_end="2024-12-30"
    )
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())
    assert got.attrs["freq"] == "W" and got.attrs["observation_end"] == "2024-12-30T00:00:00"
    # the explicit unit wins over the recorded one: months give another value
    monthly = customer_lifetime_value(
        BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, freq="M"),
        20.0,
        summary,
        horizon="26W",
        margin=0.3,
        freq="M",
    )
    assert monthly.attrs["freq"] == "M" and not np.allclose(monthly, expected)
    table = customer_value_table(model, 20.0, merged, n_draws=0, segments=False, freq="W")
    np.testing.assert_allclose(
        table["clv"].to_numpy(),
        customer_value_table(model, 20.0, summary, n_draws=0, segments=False)["clv"].to_numpy(),
    )


def test_retention_roi_of_a_merged_value_table_takes_value_basis(valued):
    model, summary = valued
    table = customer_value_table(model, 20.0, summary, n_draws=0, segments=False, margin=0.3)
    table["churn_probability"] = 1.0 - table["p_alive"]
    expected = retention_roi(table, cost_per_contact=0.5, save_rate=0.2)
    merged = _merged(table)
    with pytest.raises(DataError, match=r"attrs\['value_basis'\] is missing.*pass value_basis="):
        retention_roi(merged, cost_per_contact=0.5, save_rate=0.2)
    got = retention_roi(merged, cost_per_contact=0.5, save_rate=0.2, value_basis="contribution")
    pd.testing.assert_frame_equal(got.scores, expected.scores)
    assert got.best == expected.best
    # the explicit basis wins: as revenue the table needs a margin, and gives 0.5x the value
    with pytest.raises(DataError, match=r"is revenue.*pass margin="):
        retention_roi(table, cost_per_contact=0.5, save_rate=0.2, value_basis="revenue")
    half = retention_roi(
        table, cost_per_contact=0.5, save_rate=0.2, value_basis="revenue", margin=0.5
    )
    np.testing.assert_allclose(
        half.scores["expected_incremental_value"].sort_index(),
        0.5 * expected.scores["expected_incremental_value"].sort_index(),
    )
    with pytest.raises(DataError, match=r"value_basis must be 'contribution' or 'revenue'"):
        retention_roi(table, cost_per_contact=0.5, save_rate=0.2, value_basis="profit")


def test_payback_of_a_merged_value_table_takes_explicit_arguments():
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "channel": ["email", "email"],
            "acquisition_date": pd.to_datetime(["2024-01-01"] * 2),
            "acquisition_cost": [90.0, 110.0],
        }
    )
    monthly = pd.date_range("2024-01-01", periods=6, freq="MS") + pd.Timedelta("14D")
    log = pd.DataFrame(
        {"customer_id": ["1"] * 6 + ["2"] * 6, "timestamp": list(monthly) * 2, "amount": 50.0}
    )
    table = pd.DataFrame({"clv": [30.0, 60.0]}, index=pd.Index(["1", "2"], name="customer_id"))
    table.attrs.update(value_basis="contribution", horizon="12M", observation_end="2024-07-01")
    expected = payback(customers, table, transactions=log, margin=0.4)
    merged = _merged(table)
    with pytest.raises(DataError, match=r"pass\s+value_basis="):
        payback(customers, merged, transactions=log, margin=0.4, projection_horizon="12M")
    got = payback(
        customers,
        merged,
        transactions=log,
        margin=0.4,
        value_basis="contribution",
        projection_horizon="12M",
        observation_end="2024-07-01",
    )
    pd.testing.assert_frame_equal(got.summary, expected.summary)
    pd.testing.assert_frame_equal(got.curves, expected.curves)


def test_evaluation_of_a_merged_split_takes_freq_and_the_split_dates():
    log = _log(n_customers=60, seed=8)
    split = calibration_holdout_split(
        log, calibration_end="2024-08-31", observation_end="2024-12-31", freq="W"
    )
    model = BetaGeoModel.from_params(r=0.5, alpha=6.0, a=0.8, b=2.5, freq="W")
    merged = _merged(split)
    with pytest.raises(DataError, match=r"attrs\['freq'\] is missing.*pass freq="):
        ev.error_metrics(model, merged)
    with pytest.raises(DataError, match=r"attrs\['calibration_end'\].*pass calibration_end="):
        ev.tracking(model, log, merged, freq="W")
    pd.testing.assert_series_equal(
        ev.error_metrics(model, merged, freq="W"), ev.error_metrics(model, split)
    )
    pd.testing.assert_frame_equal(
        ev.compare_models({"bg": model}, merged, freq="W"), ev.compare_models({"bg": model}, split)
    )
    pd.testing.assert_frame_equal(
        ev.alive_calibration(model, merged, bins=4, freq="W"),
        ev.alive_calibration(model, split, bins=4),
    )
    pd.testing.assert_frame_equal(
        ev.tracking(
            model,
            log,
            merged,
            freq="W",
            calibration_end="2024-08-31",
            observation_end="2024-12-31",
        ),
        ev.tracking(model, log, split),
    )
