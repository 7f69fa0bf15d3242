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
