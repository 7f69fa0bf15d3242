"""rfm_summary, calibration_holdout_split, fitting and scoring on Spark (local[2]) equal pandas.

One Spark session serves the whole module (they take seconds to start); all Spark tests live
here and share one xdist group, so a run on two workers starts one JVM.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from _engine_data import assert_same_cleaning, assert_same_table, dirty_log, generated_log
from conftest import shared_file
from custval import (
    BetaGeoModel,
    EngineSummary,
    GammaGammaModel,
    calibration_holdout_split,
    customer_value_table,
    load_cdnow,
    rfm_summary,
    summary_patterns,
)

pytestmark = pytest.mark.xdist_group("spark")


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime (17 or newer) and none is installed here")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this interpreter
    session = (
        SparkSession.builder.master("local[2]")
        .appName("custval-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def to_spark(spark, frame: pd.DataFrame):
    with warnings.catch_warnings():  # pyspark warns that it does not yet "fully" support pandas 3
        warnings.simplefilter("ignore", FutureWarning)
        return spark.createDataFrame(frame)


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return generated_log(n_customers=800, seed=1)


@pytest.fixture(scope="module")
def spark_log(spark, log):
    return to_spark(spark, log).cache()


def assert_same(expected: pd.DataFrame, engine: EngineSummary) -> None:
    assert isinstance(engine, EngineSummary) and engine.engine == "spark"
    got = engine.to_pandas()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.attrs == expected.attrs


@pytest.mark.parametrize("freq", ["D", "W", "M", "h"])
def test_summary_equals_pandas(log, spark_log, freq):
    for amount in ("amount", None):
        for end in (None, "2022-01-15 13:30"):
            expected = rfm_summary(log, freq=freq, amount=amount, observation_end=end)
            engine = rfm_summary(spark_log, freq=freq, amount=amount, observation_end=end)
            assert_same(expected, engine)


@pytest.mark.parametrize(
    "amounts",
    [
        [0.125, 2.675, 1.005, 0.5, 2.5, -2.5, 12.25],  # halves at fewer places; 3 places fit
        [0.5, 1.5, 2.5, -0.5, 3.0, 7.5, 10.5],  # whole halves: 1 place, never a tie there
        [0.1, 0.2, 0.3, 1e-6, 123.456789, 2.0, 3.0],  # 6 places
    ],
)
def test_whole_units_round_as_the_pandas_path(spark, amounts):
    """Spark rounds the scaled amounts half to even (``rint``, as numpy), DuckDB half away
    from zero: the places found and the sums agree with pandas, because a scaled amount that
    ends in exactly .5 fails the places test under either rule."""
    from custval import clean_transactions

    log = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c", "c"],
            "timestamp": pd.to_datetime([f"2024-01-{d:02d}" for d in (1, 2, 3, 5, 1, 2, 7)]),
            "amount": amounts,
        }
    )
    expected = rfm_summary(log)
    assert_same(expected, rfm_summary(to_spark(spark, log)))
    assert_same_cleaning(clean_transactions(log), clean_transactions(to_spark(spark, log)))


def test_explicit_freq_in_any_spelling_equals_pandas(log, spark_log):
    """An explicit ``freq=`` in pandas' other spellings is the unit of the Spark summary and
    split (the canonical unit in ``attrs``), as on the pandas path."""
    for freq in ("weeks", "W-SUN", "MS"):
        expected = rfm_summary(log, freq=freq)
        assert expected.attrs["freq"] != "D"
        assert_same(expected, rfm_summary(spark_log, freq=freq))
        kwargs = dict(calibration_end="2021-12-31 18:00", freq=freq)
        assert_same(
            calibration_holdout_split(log, **kwargs),
            calibration_holdout_split(spark_log, **kwargs),
        )


@pytest.mark.parametrize("freq", ["D", "W", "M"])
def test_split_equals_pandas(log, spark_log, freq):
    for amount in ("amount", None):
        kwargs = dict(calibration_end="2021-12-31 18:00", freq=freq, amount=amount)
        assert_same(
            calibration_holdout_split(log, **kwargs),
            calibration_holdout_split(spark_log, **kwargs),
        )
    kwargs = dict(calibration_end="2021-12-31", observation_end="2022-06-30 12:00", freq=freq)
    assert_same(
        calibration_holdout_split(log, **kwargs), calibration_holdout_split(spark_log, **kwargs)
    )


@pytest.mark.slow
def test_cdnow_summary_split_and_fit_equal_pandas(spark):
    cdnow = load_cdnow(shared_file("cdnow", "CDNOW_master.txt"))
    frame = to_spark(spark, cdnow).cache()
    for freq in ("D", "W", "M"):
        assert_same(rfm_summary(cdnow, freq=freq), rfm_summary(frame, freq=freq))
    kwargs = dict(calibration_end="1997-09-30", freq="W")
    expected = calibration_holdout_split(cdnow, **kwargs)
    assert_same(expected, calibration_holdout_split(frame, **kwargs))
    engine = rfm_summary(frame, freq="W", observation_end="1997-09-30")
    pandas_summary = rfm_summary(cdnow, freq="W", observation_end="1997-09-30")
    pd.testing.assert_frame_equal(
        summary_patterns(engine), summary_patterns(pandas_summary), check_exact=True
    )
    fitted = BetaGeoModel().fit(engine)
    reference = BetaGeoModel().fit(pandas_summary)
    np.testing.assert_allclose(fitted.params_, reference.params_, rtol=1e-6)


@pytest.mark.slow
def test_value_table_scored_in_spark_equals_pandas(spark):
    cdnow = load_cdnow(shared_file("cdnow", "CDNOW_master.txt"))
    paid = cdnow[(cdnow["amount"] > 0) & (cdnow["customer_id"] <= 8_000)]  # a third, for time
    summary = rfm_summary(paid, freq="W", observation_end="1997-09-30")
    bgnbd, gg = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
    engine = rfm_summary(to_spark(spark, paid), freq="W", observation_end="1997-09-30")
    table = customer_value_table(bgnbd, gg, engine, n_draws=40)
    expected = customer_value_table(bgnbd, gg, summary, n_draws=40, progress=False)
    assert_same_table(table.to_pandas(), expected)


@pytest.mark.slow
def test_score_command_on_spark(spark, tmp_path, capsys):
    from custval.cli import main

    cdnow = load_cdnow(shared_file("cdnow", "CDNOW_master.txt"))
    paid = cdnow[(cdnow["amount"] > 0) & (cdnow["customer_id"] <= 5_000)]
    # Spark reads microsecond timestamps from Parquet (pandas writes nanoseconds by default)
    paid.to_parquet(tmp_path / "log.parquet", coerce_timestamps="us")
    out = tmp_path / "values"
    args = ["score", "--engine", "spark", "--transactions", str(tmp_path / "log.parquet")]
    assert main([*args, "--out", str(out), "--n-draws", "30"]) == 0
    assert "Wrote the value table (spark" in capsys.readouterr().out
    written = pd.read_parquet(out).set_index("customer_id").sort_index()
    summary = rfm_summary(paid, freq="W")
    assert written.index.equals(summary.index)
    assert (written["clv_lower"] <= written["clv_upper"]).all()
    assert written["value_rank"].sort_values().tolist() == list(range(1, len(summary) + 1))


@pytest.mark.parametrize("returns", ["net", "drop"])
def test_cleaning_equals_pandas(spark, log, returns):
    """The DuckDB cleaning's SQL in Spark: the same report and clean log, bit for bit."""
    from custval import clean_transactions

    dirty = dirty_log(log)
    kwargs = dict(returns=returns, observation_end="2022-03-01", exclude_codes=["POST"])
    assert_same_cleaning(
        clean_transactions(dirty, **kwargs), clean_transactions(to_spark(spark, dirty), **kwargs)
    )
    formatted = dict(kwargs, timestamp_format="%Y-%m-%d %H:%M:%S")
    assert_same_cleaning(
        clean_transactions(dirty, **formatted),
        clean_transactions(to_spark(spark, dirty), **formatted),
    )
