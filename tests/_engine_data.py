"""A generated transaction log for the engine tests (DuckDB and Spark), shared by both modules."""

from __future__ import annotations

import numpy as np
import pandas as pd


def generated_log(n_customers: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """String ids of mixed length, several purchases a day, times of day, and amounts from
    cents to millions (some negative), so that the order of additions shows in the sums."""
    rng = np.random.default_rng(seed)
    counts = rng.geometric(0.25, n_customers)
    customer = np.repeat(np.arange(n_customers), counts)
    first_day = rng.integers(0, 500, n_customers)[customer]
    day = first_day + rng.integers(0, 200, customer.size) // rng.integers(1, 20, customer.size)
    seconds = rng.integers(0, 86_400, customer.size)
    start = np.datetime64("2021-03-01T00:00:00", "s")
    timestamp = start + day.astype("timedelta64[D]") + seconds.astype("timedelta64[s]")
    magnitude = 10.0 ** rng.integers(-2, 7, customer.size)
    amount = np.round(rng.random(customer.size) * magnitude, 2)
    amount[rng.random(customer.size) < 0.03] *= -1
    log = pd.DataFrame(
        {
            "customer_id": pd.array([f"c{c}" for c in customer * 7 % 100_003], dtype="str"),
            "timestamp": timestamp.astype("datetime64[ns]"),
            "amount": amount,
        }
    )
    return log.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def assert_same_table(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal, except ``clv`` to 1e-13 (the kernel's sums run over the distinct patterns of a
    chunk, in chunk order) and so the ranks among customers whose ``clv`` ties up to that."""
    exact = [c for c in expected.columns if c not in ("clv", "value_rank", "value_decile")]
    pd.testing.assert_frame_equal(got[exact], expected[exact], check_exact=True)
    np.testing.assert_allclose(got["clv"], expected["clv"], rtol=1e-13, atol=0)
    assert got.attrs == expected.attrs
    # the engine's ranks sort the pandas values (up to ties at 1e-13), each rank once
    by_rank = expected["clv"].to_numpy()[np.argsort(got["value_rank"].to_numpy())]
    assert np.all(by_rank[1:] <= by_rank[:-1] * (1 + 1e-12))
    assert sorted(got["value_rank"]) == list(range(1, len(got) + 1))
    n = len(got)
    assert got["value_decile"].tolist() == ((got["value_rank"] - 1) * 10 // n + 1).tolist()
    assert got["value_rank"].dtype == expected["value_rank"].dtype == np.int64


def dirty_log(log: pd.DataFrame) -> pd.DataFrame:
    """The generated log with every problem the cleaning counts: missing and blank ids, ids
    written as floats, missing and unreadable timestamps, missing and non-numeric amounts,
    copies, zero amounts, returns (some larger than what they can net), cancellations marked
    by the order id (one with a positive amount), product codes, quantities and an extra
    column."""
    rng = np.random.default_rng(5)
    n = min(4_000, len(log))
    frame = log.head(n).copy()
    frame["customer_id"] = frame["customer_id"].astype(object)
    frame.loc[rng.choice(n, 30, replace=False), "customer_id"] = None
    frame.loc[rng.choice(n, 20, replace=False), "customer_id"] = "  "
    frame.loc[rng.choice(n, 20, replace=False), "customer_id"] = " 17850.0 "
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S").astype(object)
    frame.loc[rng.choice(n, 25, replace=False), "timestamp"] = None
    frame.loc[rng.choice(n, 5, replace=False), "timestamp"] = "not a date"
    frame["amount"] = frame["amount"].astype(object)
    frame.loc[rng.choice(n, 25, replace=False), "amount"] = None
    frame.loc[rng.choice(n, 5, replace=False), "amount"] = "12,50"
    frame.loc[rng.choice(n, 40, replace=False), "amount"] = 0.0
    frame["amount"] = frame["amount"].map(lambda v: v if v is None else str(v))
    order = rng.integers(100_000, 999_999, n).astype(str).astype(object)
    cancelled = rng.random(n) < 0.05
    order[cancelled] = "C" + order[cancelled]
    frame["order_id"] = order
    frame["product_code"] = rng.choice(["A1", "B2", "C3", "POST", None], n).astype(object)
    frame["quantity"] = rng.integers(1, 12, n).astype(float)
    frame["channel"] = rng.choice(["web", "shop"], n)
    copies = frame.sample(60, random_state=1)
    return pd.concat([frame, copies], ignore_index=True).astype(
        {c: "str" for c in ("timestamp", "amount", "order_id", "product_code", "channel")}
    )


def engine_frame(clean) -> pd.DataFrame:
    """An engine's clean log as pandas, with pandas' dtypes (text ids, nanosecond times)."""
    frame = clean.df() if hasattr(clean, "df") else clean.toPandas()
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns]")
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("str")
    return frame


def assert_same_cleaning(pandas_result, engine_result) -> None:
    """Every count and amount of the report and every cell of the clean log, exactly."""
    (clean, report), (engine_clean, engine_report) = pandas_result, engine_result
    for field in ("rows_in", "rows_kept", "amount_in", "amount_kept", "amount_netted"):
        assert getattr(engine_report, field) == getattr(report, field), field
    assert dict(engine_report.rows_dropped) == dict(report.rows_dropped)
    assert dict(engine_report.amount_dropped) == dict(report.amount_dropped)
    assert engine_report.reconciles
    settings = dict(engine_report.settings)
    assert settings.pop("engine") in ("duckdb", "spark")
    assert settings == dict(report.settings)
    got = engine_frame(engine_clean)
    expected = clean.astype({c: "str" for c in clean.columns if clean[c].dtype == object})
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=False)
