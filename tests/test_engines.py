"""rfm_summary and calibration_holdout_split on DuckDB equal the pandas path, bit for bit."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from _engine_data import assert_same_cleaning, assert_same_table, dirty_log, generated_log
from conftest import shared_file
from custval import (
    BetaGeoModel,
    DataError,
    EngineSummary,
    GammaGammaModel,
    ParetoNBDModel,
    _engines,
    calibration_holdout_split,
    customer_value_table,
    load_cdnow,
    rfm_summary,
    summary_patterns,
)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow(shared_file("cdnow", "CDNOW_master.txt"))


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return generated_log()


@pytest.fixture(scope="module")
def parquet_glob(log, tmp_path_factory) -> str:
    """The generated log in three Parquet files whose sorted names keep the row order."""
    folder = tmp_path_factory.mktemp("orders")
    for part, rows in enumerate(np.array_split(np.arange(len(log)), 3)):
        log.iloc[rows].to_parquet(folder / f"part-{part:02d}.parquet", index=False)
    return str(folder / "*.parquet")


def assert_same(expected: pd.DataFrame, engine: EngineSummary) -> None:
    assert isinstance(engine, EngineSummary)
    got = engine.to_pandas()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.attrs == expected.attrs


def test_decimal_amounts_are_summed_exactly_in_any_order(log):
    """Amounts in cents are summed as whole cents: the same means whatever the row order (a
    row-order float64 sum of the same log differs in the last bits), equal to the exact mean of
    the decimals rounded once, and the engine's plain sum gives the very same bits."""
    forward = rfm_summary(log)
    backward_log = log.iloc[::-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(rfm_summary(backward_log), forward, check_exact=True)
    assert_same(forward, rfm_summary(duckdb.from_df(backward_log)))
    # the log can tell the order of float additions apart
    floats = {}
    for name, frame in (("forward", log), ("backward", backward_log)):
        spend = np.zeros(log["customer_id"].nunique())
        codes = pd.Index(sorted(log["customer_id"].unique())).get_indexer(frame["customer_id"])
        np.add.at(spend, codes, frame["amount"].to_numpy())
        floats[name] = spend
    assert (floats["forward"] != floats["backward"]).sum() > 10


def test_other_amounts_are_added_in_row_order(log):
    """Amounts that are no decimals of a few places (thirds) keep the pandas path's row-order
    float64 additions, which the engines reproduce: there the order shows in the last bits."""
    thirds = log.assign(amount=log["amount"] / 3.0)
    forward = rfm_summary(thirds)
    backward_log = thirds.iloc[::-1].reset_index(drop=True)
    backward = rfm_summary(backward_log)
    assert (forward["monetary_value"] != backward["monetary_value"]).sum() > 10
    assert_same(backward, rfm_summary(duckdb.from_df(backward_log)))
    assert_same(forward, rfm_summary(duckdb.from_df(thirds)))


@pytest.mark.parametrize("freq", ["D", "W", "M", "h", "W-WED", "Y"])
@pytest.mark.parametrize("amount", ["amount", None])
@pytest.mark.parametrize("end", [None, "2022-01-15 13:30"])
def test_summary_of_a_relation_equals_pandas(log, freq, amount, end):
    expected = rfm_summary(log, freq=freq, amount=amount, observation_end=end)
    assert_same(
        expected, rfm_summary(duckdb.from_df(log), freq=freq, amount=amount, observation_end=end)
    )


@pytest.mark.parametrize("span", [1, 127, 128, 254, 762, 763])
def test_distinct_periods_at_the_bitmap_word_edges_equal_pandas(span, monkeypatch):
    """DuckDB counts a customer's distinct periods in bitmaps of 127 periods per word while
    the log spans at most 6 words (762 days) and groups (customer, period) pairs beyond: both
    equal pandas with periods on the words' edges, several rows in a customer's first period
    (the spend of the first period is then joined back) or in a later one."""
    offsets = [o for o in (0, 0, 126, 127, 127, 253, 254, 508, 761, span - 1) if o < span]
    days = [*offsets, span - 1, 0, 0, 0, span // 2, span // 2]
    ids = ["a"] * len(offsets) + ["b"] + ["c"] * 3 + ["d"] * 2
    log = pd.DataFrame(
        {
            "customer_id": ids,
            "timestamp": pd.Timestamp("2020-01-01 10:00") + pd.to_timedelta(days, unit="D"),
            "amount": np.round(np.linspace(1.25, 99.5, len(ids)), 2),
        }
    )
    calls = []
    bitmap = _engines._bitmap_ctes
    monkeypatch.setattr(_engines, "_bitmap_ctes", lambda *a: calls.append(a) or bitmap(*a))
    for amount in ("amount", None):
        expected = rfm_summary(log, amount=amount)
        assert_same(expected, rfm_summary(duckdb.from_df(log), amount=amount))
    assert expected.loc["a", "frequency"] == len(set(offsets)) - 1
    assert len(calls) == (2 if span <= 762 else 0)


@pytest.mark.parametrize("freq", ["w", "weeks", "W-SUN", "months", "MS", "ME", "H", "year"])
def test_explicit_freq_in_any_spelling_equals_pandas(log, parquet_glob, freq):
    """An explicit ``freq=`` in any spelling pandas takes is the unit of the engine summary and
    split too (not the default days): the same cells, the canonical unit in ``attrs``."""
    expected = rfm_summary(log, freq=freq)
    engine = rfm_summary(duckdb.from_df(log), freq=freq)
    assert_same(expected, engine)
    assert_same(expected, rfm_summary(parquet_glob, freq=freq))
    assert engine.attrs["freq"] == expected.attrs["freq"] != "D"
    assert not engine.to_pandas().equals(rfm_summary(duckdb.from_df(log)).to_pandas())
    kwargs = dict(calibration_end="2021-12-31 18:00", freq=freq)
    split = calibration_holdout_split(duckdb.from_df(log), **kwargs)
    assert_same(calibration_holdout_split(log, **kwargs), split)
    assert split.attrs["freq"] == expected.attrs["freq"]


@pytest.mark.parametrize("freq", ["D", "W", "M"])
@pytest.mark.parametrize("amount", ["amount", None])
def test_summary_of_a_parquet_glob_equals_pandas(log, parquet_glob, freq, amount):
    assert_same(
        rfm_summary(log, freq=freq, amount=amount),
        rfm_summary(parquet_glob, freq=freq, amount=amount),
    )


def test_parquet_folder_and_single_file(log, parquet_glob, tmp_path):
    folder = parquet_glob.rsplit("/", 1)[0]
    assert_same(rfm_summary(log, freq="W"), rfm_summary(folder, freq="W"))
    log.to_parquet(tmp_path / "one.parquet")
    assert_same(rfm_summary(log), rfm_summary(tmp_path / "one.parquet"))


@pytest.mark.parametrize("freq", ["D", "W", "M"])
@pytest.mark.parametrize("amount", ["amount", None])
@pytest.mark.parametrize("end", [None, "2022-06-30 12:00"])
def test_split_equals_pandas(log, parquet_glob, freq, amount, end):
    kwargs = dict(calibration_end="2021-12-31 18:00", observation_end=end, freq=freq, amount=amount)
    expected = calibration_holdout_split(log, **kwargs)
    assert_same(expected, calibration_holdout_split(duckdb.from_df(log), **kwargs))
    assert_same(expected, calibration_holdout_split(parquet_glob, **kwargs))


@pytest.mark.parametrize("freq", ["D", "W", "M"])
def test_cdnow_summary_and_split_equal_pandas(cdnow, freq):
    relation = duckdb.from_df(cdnow)
    for end in (None, "1997-09-30"):
        assert_same(
            rfm_summary(cdnow, freq=freq, observation_end=end),
            rfm_summary(relation, freq=freq, observation_end=end),
        )
    assert_same(
        rfm_summary(cdnow, freq=freq, amount=None), rfm_summary(relation, freq=freq, amount=None)
    )
    kwargs = dict(calibration_end="1997-09-30", freq=freq)
    assert_same(
        calibration_holdout_split(cdnow, **kwargs), calibration_holdout_split(relation, **kwargs)
    )


def test_string_and_integer_ids_keep_their_pandas_dtypes(cdnow):
    for frame in (cdnow, cdnow.assign(customer_id=cdnow["customer_id"].astype("str"))):
        assert_same(rfm_summary(frame), rfm_summary(duckdb.from_df(frame)))


@pytest.mark.parametrize(
    "ids",
    [
        ["z", "é", "😀", "\uffff", "a", "Z", "ab", "a b"],  # code-point order beyond ASCII
        [3.5, -0.0, 2.0, -1.5, 10.0],
        [2**62, -5, 7, 0, -(2**62)],
    ],
    ids=["unicode", "float", "int"],
)
def test_collected_summary_is_in_pandas_order(ids):
    """DuckDB sorts; the collected frame is in the pandas path's order, whatever the ids."""
    n = len(ids)
    frame = pd.DataFrame(
        {
            "customer_id": ids * 2,
            "timestamp": pd.date_range("2024-01-01", periods=2 * n, freq="D"),
            "amount": np.arange(1, 2 * n + 1, dtype=float),
        }
    )
    assert_same(rfm_summary(frame), rfm_summary(duckdb.from_df(frame)))


def test_errors_name_the_column_and_the_fix(log):
    with pytest.raises(DataError, match=r"missing required column\(s\) 'spend'.*amount="):
        rfm_summary(duckdb.from_df(log), amount="spend")
    bad = log.copy()
    bad.loc[3, "amount"] = np.nan
    with pytest.raises(DataError, match=r"amount column has 1 missing or infinite amounts"):
        rfm_summary(duckdb.from_df(bad))
    text = log.assign(timestamp=log["timestamp"].astype(str))
    with pytest.raises(DataError, match=r"'timestamp' holds VARCHAR values.*CAST"):
        rfm_summary(duckdb.from_df(text))
    with pytest.raises(DataError, match="no Parquet file found"):
        rfm_summary("/nonexistent/folder/*.parquet")
    with pytest.raises(DataError, match="must be after calibration_end"):
        calibration_holdout_split(
            duckdb.from_df(log), calibration_end="2022-01-01", observation_end="2021-06-01"
        )
    with pytest.raises(DataError, match="no transaction on or before calibration_end"):
        calibration_holdout_split(duckdb.from_df(log), calibration_end="2000-01-01")


def test_write_parquet_round_trips(log, tmp_path):
    summary = rfm_summary(duckdb.from_df(log), freq="W")
    summary.write_parquet(tmp_path / "summary.parquet")
    back = pd.read_parquet(tmp_path / "summary.parquet").set_index("customer_id").sort_index()
    expected = rfm_summary(log, freq="W")
    pd.testing.assert_frame_equal(back, expected, check_exact=True, check_index_type=False)


# --- fitting from patterns ------------------------------------------------------------------


def test_patterns_count_every_customer_once(log):
    engine = rfm_summary(duckdb.from_df(log))
    patterns = summary_patterns(engine)
    expected = summary_patterns(rfm_summary(log))
    pd.testing.assert_frame_equal(patterns, expected, check_exact=True)
    assert patterns["weight"].sum() == log["customer_id"].nunique()
    assert len(patterns) < patterns["weight"].sum()
    assert patterns.attrs["freq"] == "D"


@pytest.mark.parametrize("model", [BetaGeoModel, ParetoNBDModel])
def test_fit_on_an_engine_summary_equals_a_pandas_fit(cdnow, model):
    pandas_fit = model().fit(rfm_summary(cdnow, freq="W", observation_end="1997-09-30"))
    engine_fit = model().fit(
        rfm_summary(duckdb.from_df(cdnow), freq="W", observation_end="1997-09-30")
    )
    np.testing.assert_allclose(engine_fit.params_, pandas_fit.params_, rtol=1e-6)
    np.testing.assert_allclose(engine_fit.log_likelihood_, pandas_fit.log_likelihood_, rtol=1e-10)
    assert engine_fit.freq_ == "W"


def test_gamma_gamma_fit_from_engine_patterns(cdnow):
    paid = cdnow[cdnow["amount"] > 0]  # one CDNOW repeat buyer spent nothing
    summary = rfm_summary(paid, observation_end="1997-09-30")
    engine = rfm_summary(duckdb.from_df(paid), observation_end="1997-09-30")
    pandas_fit = GammaGammaModel().fit(summary)
    engine_fit = GammaGammaModel().fit(engine)
    np.testing.assert_allclose(engine_fit.params_, pandas_fit.params_, rtol=1e-6)


def test_fit_refuses_weights_with_an_engine_summary(log):
    with pytest.raises(DataError, match="weights"):
        BetaGeoModel().fit(rfm_summary(duckdb.from_df(log)), weights=np.ones(3))


# --- scoring ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(cdnow):
    paid = cdnow[cdnow["amount"] > 0]
    summary = rfm_summary(paid, freq="W", observation_end="1997-09-30")
    return summary, BetaGeoModel().fit(summary), GammaGammaModel().fit(summary), paid


def test_value_table_scored_in_chunks_equals_pandas(fitted):
    summary, bgnbd, gg, paid = fitted
    expected = customer_value_table(bgnbd, gg, summary, progress=False)
    engine = rfm_summary(duckdb.from_df(paid), freq="W", observation_end="1997-09-30")
    got = _engines.customer_value_table(bgnbd, gg, engine, chunk_size=4_000).to_pandas()
    assert_same_table(got, expected)
    assert set(got["segment"]) > {"Champions", "Lost"}


def test_value_table_dispatch_and_seed_rule(fitted):
    summary, bgnbd, gg, paid = fitted
    engine = rfm_summary(duckdb.from_df(paid), freq="W", observation_end="1997-09-30")
    table = customer_value_table(bgnbd, gg, engine, horizon="52W", n_draws=50, random_state=3)
    expected = customer_value_table(
        bgnbd, gg, summary, horizon="52W", n_draws=50, random_state=3, progress=False
    )
    assert_same_table(table.to_pandas(), expected)
    with pytest.raises(DataError, match="random_state must be an integer seed"):
        customer_value_table(bgnbd, gg, engine, random_state=np.random.default_rng(0))


def test_engine_scoring_honours_an_explicit_freq_and_observation_end(fitted):
    """The engine scorer passes ``freq=`` and ``observation_end=`` to every chunk: the table of
    the pandas path with the same arguments, and a unit the model was not fitted in refused
    with the pandas message."""
    summary, bgnbd, gg, paid = fitted
    engine = rfm_summary(duckdb.from_df(paid), freq="W", observation_end="1997-09-30")
    kwargs = dict(horizon="52W", n_draws=30, random_state=1, observation_end="1997-10-31")
    expected = customer_value_table(bgnbd, gg, summary, freq="weeks", progress=False, **kwargs)
    got = _engines.customer_value_table(bgnbd, gg, engine, freq="weeks", **kwargs)
    assert_same_table(got.to_pandas(), expected)
    assert got.attrs["observation_end"] == "1997-10-31T00:00:00"
    with pytest.raises(DataError, match="fitted in unit 'W' but the summary is in unit 'D'"):
        _engines.customer_value_table(bgnbd, gg, engine, freq="D", horizon="52W")


def test_value_table_of_an_engine_summary_honours_an_explicit_freq(fitted):
    _, bgnbd, gg, paid = fitted
    engine = rfm_summary(duckdb.from_df(paid), freq="W", observation_end="1997-09-30")
    with pytest.raises(DataError, match="fitted in unit 'W' but the summary is in unit 'D'"):
        customer_value_table(bgnbd, gg, engine, freq="D", horizon="52W")


def test_score_command_writes_the_value_table(fitted, tmp_path, capsys):
    from custval.cli import main

    summary, bgnbd, gg, paid = fitted
    paid.to_parquet(tmp_path / "log.parquet")
    paid.to_csv(tmp_path / "log.csv", index=False)
    args = ["--freq", "W", "--observation-end", "1997-09-30", "--n-draws", "40"]
    engine = rfm_summary(duckdb.from_df(paid), freq="W", observation_end="1997-09-30")
    bgnbd, gg = BetaGeoModel().fit(engine), GammaGammaModel().fit(engine)  # as the command
    expected = customer_value_table(bgnbd, gg, summary, n_draws=40, progress=False)
    for source, out in (("log.parquet", "values.parquet"), ("log.csv", "values.csv")):
        code = main(
            ["score", "--transactions", str(tmp_path / source), "--out", str(tmp_path / out), *args]
        )
        assert code == 0
        assert "Wrote the value table" in capsys.readouterr().out
    parquet = pd.read_parquet(tmp_path / "values.parquet").set_index("customer_id")
    parquet = parquet.sort_index()
    assert list(parquet.columns) == list(expected.columns)
    np.testing.assert_allclose(parquet["clv"], expected["clv"], rtol=1e-13)
    np.testing.assert_array_equal(parquet["clv_lower"], expected["clv_lower"])
    assert (parquet["segment"] == expected["segment"]).all()
    csv = pd.read_csv(tmp_path / "values.csv").set_index("customer_id").sort_index()
    np.testing.assert_allclose(csv["clv"], expected["clv"], rtol=1e-12)
    assert (csv["segment"].to_numpy() == expected["segment"].to_numpy()).all()


def test_score_command_reports_bad_columns(tmp_path, capsys, log):
    from custval.cli import main

    log.to_parquet(tmp_path / "log.parquet")
    code = main(["score", "--transactions", str(tmp_path / "log.parquet"), "--out", "x.csv",
                 "--amount", "revenue"])  # fmt: skip
    assert code == 2
    assert "missing required column(s) 'revenue'" in capsys.readouterr().err


@pytest.mark.slow
def test_readme_duckdb_example_runs(fitted, tmp_path, monkeypatch):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    (block,) = [b for b in blocks if '"orders/*.parquet"' in b]
    paid = fitted[3]
    (tmp_path / "orders").mkdir()
    for part, rows in enumerate(np.array_split(np.arange(len(paid)), 2)):
        paid.iloc[rows].to_parquet(tmp_path / "orders" / f"part-{part}.parquet")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    written = pd.read_parquet(tmp_path / "customer_value.parquet")
    assert len(written) == paid["customer_id"].nunique()
    assert namespace["summary"].attrs["freq"] == "W"


# --- cleaning -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dirty(log) -> pd.DataFrame:
    return dirty_log(log)


@pytest.mark.parametrize("returns", ["net", "drop", "keep"])
@pytest.mark.parametrize("end", [None, "2022-03-01"])
def test_cleaning_equals_pandas(dirty, returns, end):
    from custval import clean_transactions

    kwargs = dict(returns=returns, observation_end=end)
    result = clean_transactions(dirty, **kwargs)
    _, report = result
    assert report.rows_dropped["duplicate"] and report.rows_dropped["zero_amount"]
    assert report.rows_dropped["invalid_amount"] and report.rows_dropped["invalid_timestamp"]
    if returns == "net":
        for key in ("return_unmatched", "return_netted", "purchase_netted_to_zero"):
            assert report.rows_dropped[key] > 0, key
        assert report.rows_dropped["cancellation_not_negative"] > 0
    assert_same_cleaning(result, clean_transactions(duckdb.from_df(dirty), **kwargs))


def test_cleaning_options_equal_pandas(dirty, tmp_path):
    from custval import clean_transactions

    kwargs = dict(
        exclude_codes=["POST"],
        duplicates="keep",
        zero_amounts="keep",
        cancellation_prefix=None,
        timestamp_format="%Y-%m-%d %H:%M:%S",
    )
    assert_same_cleaning(
        clean_transactions(dirty, **kwargs), clean_transactions(duckdb.from_df(dirty), **kwargs)
    )
    dirty.to_parquet(tmp_path / "dirty.parquet")
    assert_same_cleaning(
        clean_transactions(dirty), clean_transactions(str(tmp_path / "dirty.parquet"))
    )


def test_strict_cleaning_raises_like_pandas(dirty):
    from custval import clean_transactions

    with pytest.raises(DataError, match="missing customer ids"):
        clean_transactions(dirty, strict=True)
    with pytest.raises(DataError, match=r"'customer_id' has 50 missing customer ids.*strict=False"):
        clean_transactions(duckdb.from_df(dirty), strict=True)
    valid = dirty[dirty["customer_id"].str.strip().ne("") & dirty["customer_id"].notna()]
    count = clean_transactions(valid)[1].rows_dropped["invalid_timestamp"]
    with pytest.raises(DataError, match=rf"'timestamp' has {count} missing or unreadable"):
        clean_transactions(duckdb.from_df(valid), strict=True)
    _, report = clean_transactions(duckdb.from_df(dirty), strict=False)
    assert report.rows_dropped["missing_customer_id"] == 50


def test_cleaning_cdnow_equals_pandas(cdnow):
    from custval import clean_transactions

    for kwargs in ({}, {"observation_end": "1997-09-30", "returns": "drop"}):
        assert_same_cleaning(
            clean_transactions(cdnow, **kwargs),
            clean_transactions(duckdb.from_df(cdnow), **kwargs),
        )


@pytest.mark.slow
def test_cleaning_online_retail_equals_pandas():
    """UCI Online Retail as text, amounts quantity * price to the price's three decimals:
    netted against the same invoices, the same report to the last bit."""
    from custval import ONLINE_RETAIL_NON_PRODUCT_CODES, clean_transactions

    raw = pd.read_csv(shared_file("online_retail", "online_retail.csv.gz"), dtype=str)
    amount = pd.to_numeric(raw["Quantity"]) * pd.to_numeric(raw["UnitPrice"])
    frame = pd.DataFrame(
        {
            "customer_id": raw["CustomerID"],
            "timestamp": raw["InvoiceDate"],
            "amount": amount.round(3),
            "order_id": raw["InvoiceNo"],
            "quantity": raw["Quantity"],
            "product_code": raw["StockCode"],
            "Country": raw["Country"],
        }
    )
    kwargs = dict(exclude_codes=ONLINE_RETAIL_NON_PRODUCT_CODES)
    result = clean_transactions(frame, **kwargs)
    assert result[1].rows_dropped["return_netted"] > 1_000
    assert_same_cleaning(result, clean_transactions(duckdb.from_df(frame), **kwargs))


def test_engine_netting_needs_decimal_amounts(log):
    from custval import clean_transactions

    thirds = log.assign(amount=log["amount"] / 3)
    with pytest.raises(DataError, match=r"returns='net' on DuckDB or Spark needs amounts.*round"):
        clean_transactions(duckdb.from_df(thirds))
    _, report = clean_transactions(duckdb.from_df(thirds), returns="drop")
    _, expected = clean_transactions(thirds, returns="drop")
    assert dict(report.rows_dropped) == dict(expected.rows_dropped)
    assert report.amount_kept == pytest.approx(expected.amount_kept, rel=1e-12)
