"""The customer summary on DuckDB and Spark, side by side with pandas and lifetimes.

Four measurements, each in this one run (ratios are against the reference measured here; on a
shared machine give part 1 ``--repeat 3``: best of three runs of each):

1. **String ids in memory**: ``rfm_summary`` of a pandas log with string customer ids, through
   DuckDB (``duckdb.from_df``, result collected to pandas), the pandas path and lifetimes'
   ``summary_data_from_transaction_data``; the outputs are checked equal. The CPU seconds of
   the DuckDB-table run and of lifetimes are printed too: the wall-clock ratio depends on
   whether DuckDB gets both cores.
2. **A Parquet log larger than the pandas path likes**: the log is generated *by DuckDB* into
   one Parquet file, then summarized by DuckDB from the file; peak resident memory (VmHWM) of
   each run is measured in a fresh process, for DuckDB and for the pandas path
   (``pd.read_parquet`` + ``rfm_summary``), or the size at which pandas fails.
3. **Spark local[2]** on the same Parquet log: the session start-up is timed on its own, then
   the summary (collected to pandas), next to DuckDB and pandas.
4. **Fitting from patterns**: a weekly summary of many simulated BG/NBD customers lives in
   DuckDB; BG/NBD is fitted from its distinct (frequency, recency, T) patterns; the time to
   collect them and to fit, the fitted and the true parameters, and the peak RSS.

Usage::

    .venv/bin/python benchmarks/bench_engines.py            # 10M, 100M, 10M, 50M
    .venv/bin/python benchmarks/bench_engines.py --quick    # 1M, 5M, 1M, 2M

The machine is shared: the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_rfm import make_transactions  # noqa: E402
from custval import BetaGeoModel, EngineSummary, rfm_summary  # noqa: E402


def timed_cpu(function, *args, repeat: int = 1):
    """``(wall, cpu, result)``: the best wall-clock time of ``repeat`` runs and the CPU time of
    this process (every thread, so DuckDB's too) in that run."""
    best, cpu, result = float("inf"), float("nan"), None
    for _ in range(repeat):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function(*args)
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - start_cpu
    return best, cpu, result


def timed(function, *args, repeat: int = 1):
    best, _, result = timed_cpu(function, *args, repeat=repeat)
    return best, result


def load() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


# --- 1. string ids in memory --------------------------------------------------------------------


def lifetimes_summary(frame: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes.utils import summary_data_from_transaction_data

        return summary_data_from_transaction_data(
            frame, "customer_id", "timestamp", monetary_value_col="amount", freq="D"
        )


def string_ids(n_rows: int, repeat: int) -> None:
    import duckdb

    frame = make_transactions(n_rows, ids="str")
    relation = duckdb.from_df(frame)
    duck_s, duck = timed(lambda: rfm_summary(relation).to_pandas(), repeat=repeat)
    connection = duckdb.connect()
    connection.register("pandas_log", frame)
    load_s, _ = timed(lambda: connection.execute("CREATE TABLE log AS SELECT * FROM pandas_log"))
    table = connection.table("log")
    table_s, table_cpu, in_table = timed_cpu(lambda: rfm_summary(table).to_pandas(), repeat=repeat)
    pd.testing.assert_frame_equal(in_table, duck, check_exact=True)
    pandas_s, reference = timed(rfm_summary, frame, repeat=repeat)
    pd.testing.assert_frame_equal(duck, reference, check_exact=True)
    life_s, life_cpu, life = timed_cpu(lifetimes_summary, frame, repeat=repeat)
    pd.testing.assert_frame_equal(
        duck, life.rename_axis("customer_id"), check_exact=False, rtol=1e-9, check_index_type=False
    )
    print(
        f"1. {n_rows:,} rows, string ids, {len(duck):,} customers (load {load()}): "
        f"DuckDB over the pandas frame {duck_s:.2f} s, over a DuckDB table {table_s:.2f} s "
        f"(loaded in {load_s:.2f} s), pandas path {pandas_s:.2f} s, lifetimes {life_s:.2f} s "
        f"-> DuckDB {life_s / duck_s:.1f}x / {life_s / table_s:.1f}x lifetimes, pandas path "
        f"{life_s / pandas_s:.1f}x lifetimes; CPU seconds (all threads): DuckDB table "
        f"{table_cpu:.2f}, lifetimes {life_cpu:.2f} (DuckDB equal to pandas bit for bit; to "
        "lifetimes at 1e-9)",
        flush=True,
    )


# --- 2. a Parquet log, out of core -----------------------------------------------------------


def write_parquet_log(path: Path, n_rows: int, seed: int = 0) -> None:
    """About 10 rows per customer, string ids, two years of timestamps, amounts in cents;
    generated and written by DuckDB in parallel, so no Python process holds the rows."""
    import duckdb

    n_customers = max(n_rows // 10, 1)
    connection = duckdb.connect()
    connection.execute(f"SELECT setseed({0.5 / (seed + 1)})")
    connection.execute(
        f"""COPY (
            SELECT 'C' || CAST(1000000 + (hash(i) % {n_customers}) AS VARCHAR) AS customer_id,
                   TIMESTAMP '2022-01-01' + to_seconds(CAST(hash(i + 1) % (730 * 86400)
                       AS BIGINT)) AS timestamp,
                   round(exp(3.2 + 0.8 * (CAST(hash(i + 2) % 1000000 AS DOUBLE) / 1e6 - 0.5)
                       * 3.4), 2) AS amount
            FROM range({n_rows}) t(i)
        ) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)"""
    )
    connection.close()


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM), in MB."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024


def _peak_child(kind: str, path: str) -> None:
    """Run one summary of ``path`` and print the peak RSS of the process (VmHWM) as JSON."""
    start = time.perf_counter()
    if kind == "duckdb":
        summary = rfm_summary(path)
        summary.write_parquet(path + ".summary.parquet")
        customers = None
    else:
        import pyarrow.parquet as pq

        _, _, limit = kind.partition(":")
        if limit:  # the first row groups holding ``limit`` rows
            file = pq.ParquetFile(path)
            groups, rows = [], 0
            while rows < int(limit):
                rows += file.metadata.row_group(len(groups)).num_rows
                groups.append(len(groups))
            frame = file.read_row_groups(groups).to_pandas()
        else:
            frame = pd.read_parquet(path)
        customers = len(rfm_summary(frame))
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_rss_mb(), "customers": customers}))


#: A child is stopped when its resident memory passes this (the machine is shared; 24 GiB).
MEMORY_CAP_MB = 12 * 1024


def _rss_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmRSS:\s+(\d+)", text)
    return int(found.group(1)) / 1024 if found else 0.0


def peak(kind: str, path: Path, cap_mb: float = MEMORY_CAP_MB) -> dict:
    """Run one summary in a fresh process, stopped (and reported) if its RSS passes ``cap_mb``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", kind, str(path)], stdout=out, stderr=err
        )
        highest = 0.0
        while child.poll() is None:
            highest = max(highest, _rss_mb(child.pid))
            if highest > cap_mb:
                child.kill()
                child.wait()
                return {"failed": f"stopped at {highest:,.0f} MB resident (cap {cap_mb:,.0f} MB)"}
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        lines, errors = out.read().strip().splitlines(), err.read().strip().splitlines()
    if child.returncode != 0 or not lines:
        return {"failed": errors[-1] if errors else f"exit code {child.returncode}"}
    return json.loads(lines[-1])


def parquet_out_of_core(path: Path, n_rows: int, pandas_too: bool) -> None:
    start = time.perf_counter()
    write_parquet_log(path, n_rows)
    written = time.perf_counter() - start
    size = path.stat().st_size / 2**30
    duck = peak("duckdb", path)
    line = (
        f"2. {n_rows:,} rows of Parquet ({size:.2f} GiB, generated in {written:.0f} s; load "
        f"{load()}): DuckDB {duck['seconds']:.1f} s, peak RSS {duck['peak_mb']:,.0f} MB"
    )
    if pandas_too:
        # the whole file, then (while it does not fit under the cap) its first half, quarter...
        rows = n_rows
        while True:
            result = peak("pandas" if rows == n_rows else f"pandas:{rows}", path)
            if "failed" not in result:
                line += (
                    f"; pandas path (read_parquet + rfm_summary) of {rows:,} rows "
                    f"{result['seconds']:.1f} s, peak RSS {result['peak_mb']:,.0f} MB"
                )
                break
            line += f"; pandas path of {rows:,} rows failed: {result['failed']}"
            rows //= 2
            if rows < n_rows // 8:
                break
    print(line, flush=True)


# --- 3. Spark local[2] -----------------------------------------------------------------------


def spark_local(path: Path, n_rows: int) -> None:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    start = time.perf_counter()
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.driver.memory", "4g")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.range(1).count()
    startup = time.perf_counter() - start
    frame = spark.read.parquet(str(path))
    spark_s, via_spark = timed(lambda: rfm_summary(frame).to_pandas())
    duck_s, via_duck = timed(lambda: rfm_summary(str(path)).to_pandas())
    pandas_s, reference = timed(lambda: rfm_summary(pd.read_parquet(path)))
    pd.testing.assert_frame_equal(via_spark, reference, check_exact=True)
    pd.testing.assert_frame_equal(via_duck, reference, check_exact=True)
    spark.stop()
    print(
        f"3. Spark local[2], {n_rows:,} rows of Parquet to a pandas summary (load {load()}): "
        f"Spark {spark_s:.1f} s (+ {startup:.1f} s session start-up, once per process), "
        f"DuckDB {duck_s:.1f} s, pandas path (read + summary) {pandas_s:.1f} s; "
        "all three equal bit for bit",
        flush=True,
    )


# --- 4. fitting from patterns ------------------------------------------------------------------


#: BG/NBD parameters of the simulated customers (Fader, Hardie & Lee 2005, CDNOW, weeks).
TRUE_BGNBD = (0.243, 4.414, 0.793, 2.426)


def simulated_summary(connection, n_customers: int, chunk: int = 5_000_000) -> None:
    """A weekly summary table ``summary`` of ``n_customers`` BG/NBD customers in DuckDB.

    Simulated in chunks of ``chunk`` customers (``simulate_beta_geo``, parameters
    ``TRUE_BGNBD``, ages of 1 to 78 whole weeks), recency rounded up to whole weeks as
    ``rfm_summary`` counts periods, and appended to a DuckDB table; string ids are made by
    DuckDB. Python holds one chunk at a time (about 0.5 GB)."""
    import pyarrow as pa

    from custval.datasets import simulate_beta_geo

    connection.execute(
        "CREATE TABLE summary (customer_id VARCHAR, frequency DOUBLE, recency DOUBLE, T DOUBLE)"
    )
    for number, first in enumerate(range(0, n_customers, chunk)):
        size = min(chunk, n_customers - first)
        ages = np.random.default_rng(number).integers(1, 79, size).astype(np.float64)
        sim = simulate_beta_geo(*TRUE_BGNBD, ages, random_state=1000 + number)
        recency = np.where(sim["frequency"] > 0, np.ceil(sim["recency"].to_numpy()), 0.0)
        part = pa.table(
            {
                "i": np.arange(first, first + size, dtype=np.int64),
                "frequency": sim["frequency"].to_numpy(np.float64),
                "recency": recency,
                "T": ages,
            }
        )
        connection.register("part", part)
        connection.execute(
            "INSERT INTO summary SELECT 'C' || CAST(i AS VARCHAR), frequency, recency, T FROM part"
        )
        connection.unregister("part")
        del sim, part


def patterns_fit(n_customers: int) -> None:
    """BG/NBD fitted on the distinct patterns of a summary of ``n_customers`` in DuckDB."""
    import duckdb

    from custval import summary_patterns

    connection = duckdb.connect()
    start = time.perf_counter()
    simulated_summary(connection, n_customers)
    made = time.perf_counter() - start
    summary = EngineSummary(
        frame=connection.table("summary"),
        attrs={"freq": "W", "observation_end": None},
        engine="duckdb",
        columns=("frequency", "recency", "T"),
        id_type="VARCHAR",
        _keep=connection,
    )
    collect_s, patterns = timed(summary_patterns, summary)
    assert patterns["weight"].sum() == n_customers
    fit_s, model = timed(
        lambda: BetaGeoModel().fit(patterns, weights=patterns["weight"].to_numpy())
    )
    fitted = ", ".join(f"{v:.3f}" for v in model.params_)
    truth = ", ".join(f"{v:.3f}" for v in TRUE_BGNBD)
    print(
        f"4. BG/NBD from the patterns of {n_customers:,} simulated customers in DuckDB (load "
        f"{load()}; simulated in {made:.0f} s): {len(patterns):,} distinct patterns collected "
        f"in {collect_s:.2f} s, fitted in {fit_s:.2f} s (total {collect_s + fit_s:.2f} s); "
        f"r, alpha, a, b = {fitted} (simulated with {truth}; recency in whole weeks); peak RSS "
        f"{_peak_rss_mb():,.0f} MB",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--only", nargs="+", choices=["1", "2", "3", "4"], help="parts to run")
    parser.add_argument("--no-pandas-memory", action="store_true", help="skip pandas in part 2")
    parser.add_argument(
        "--sizes", nargs=4, type=int, metavar="N", help="rows of parts 1-3, customers of part 4"
    )
    parser.add_argument(
        "--repeat", type=int, help="best of this many runs in part 1 (default 1, --quick 2)"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _peak_child(*args.child)
        return
    import duckdb
    import lifetimes
    import pyspark

    sizes = (
        (1_000_000, 5_000_000, 1_000_000, 2_000_000)
        if args.quick
        else (10_000_000, 100_000_000, 10_000_000, 50_000_000)
    )
    if args.sizes:
        sizes = tuple(args.sizes)
    parts = set(args.only or ["1", "2", "3", "4"])
    print(
        f"engines: DuckDB {duckdb.__version__}, PySpark {pyspark.__version__}, lifetimes "
        f"{lifetimes.__version__}, pandas {pd.__version__}, numpy {np.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores",
        flush=True,
    )
    if "1" in parts:
        string_ids(sizes[0], repeat=args.repeat or (2 if args.quick else 1))
    with tempfile.TemporaryDirectory(prefix="custval-bench-") as folder:
        if "2" in parts:
            parquet_out_of_core(Path(folder) / "big.parquet", sizes[1], not args.no_pandas_memory)
        if "3" in parts:
            path = Path(folder) / "spark.parquet"
            write_parquet_log(path, sizes[2], seed=1)
            spark_local(path, sizes[2])
    if "4" in parts:
        patterns_fit(sizes[3])


if __name__ == "__main__":
    main()
