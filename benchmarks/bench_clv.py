"""Customer lifetime value with intervals vs lifetimes' ``customer_lifetime_value``.

Simulates a seeded customer base with BG/NBD purchasing and Gamma-Gamma spend at CDNOW's
published parameters, fits custval's BG/NBD and Gamma-Gamma on it, gives lifetimes the same
parameters, and times, side by side in one process:

- lifetimes 0.11.3 ``GammaGammaFitter.customer_lifetime_value`` (12 months, a monthly loop
  over ``conditional_expected_number_of_purchases_up_to_time``);
- custval ``customer_lifetime_value`` (exact discounted integral, 12 months, 10% a year);
- custval ``customer_lifetime_value`` + ``clv_interval`` (80% intervals from 200 parameter
  draws of both models): "CLV with intervals", the headline ratio (target >= 10x);
- custval ``customer_value_table`` (everything: P(alive), expected purchases and spend, CLV
  with intervals, ranks, deciles, RFM segments).

Two data shapes: ``weeks`` (a CDNOW-like cohort acquired over 12 weeks, ages in days / 7, 39
weeks of history) and ``days`` (acquired over two years, integer days). Peak memory is the
extra peak resident memory of each call (Linux ``VmHWM``, reset before the call). custval's
per-draw work is done in blocks of about one million float32 values (``chunk_size`` caps
it), so its peak is the O(customers) inputs and outputs, not customers x draws. Times are wall
and CPU (process) seconds with BLAS/OpenMP limited to one thread for both libraries; on a shared
machine the CPU ratio is the steadier one, so both are printed with the load average.

It also checks that custval in lifetimes' own convention (``step`` of one lifetimes month,
the equivalent annual rate) reproduces lifetimes' numbers on all customers.

Usage::

    .venv/bin/python benchmarks/bench_clv.py            # 1,000,000 customers
    .venv/bin/python benchmarks/bench_clv.py --quick    # 100,000 customers
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from custval import (  # noqa: E402
    BetaGeoModel,
    GammaGammaModel,
    clv_interval,
    customer_lifetime_value,
    customer_value_table,
)

BGNBD_WEEKS = (0.243, 4.414, 0.793, 2.426)
GAMMA_GAMMA = (6.25, 3.74, 15.44)
MONTHLY_RATE = 0.01  # lifetimes' default discount_rate (per month)
LIFETIMES_MONTH = {"W": 4.345, "D": 30.0}  # lifetimes' hard-coded month length


def simulate(n: int, shape: str, seed: int = 0) -> pd.DataFrame:
    """BG/NBD purchases and Gamma-Gamma spend; ``shape`` "weeks" or "days" (see the module)."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = BGNBD_WEEKS
    if shape == "weeks":
        big_t = 39.0 - rng.integers(0, 84, n) / 7.0
        resolution = 7.0  # ages are whole days, in weeks
    else:
        alpha = alpha * 7.0
        big_t = rng.integers(1, 731, n).astype(float)
        resolution = 1.0
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    arrivals = rng.poisson(lam * big_t)
    x = np.minimum(arrivals, rng.geometric(p))
    buyer = x > 0
    t_x = np.zeros(n)
    t_x[buyer] = big_t[buyer] * rng.beta(x[buyer], arrivals[buyer] - x[buyer] + 1)
    t_x = np.where(buyer, np.clip(np.ceil(t_x * resolution) / resolution, 1 / resolution, big_t), 0)
    pp, q, gamma = GAMMA_GAMMA
    nu = rng.gamma(q, 1.0 / gamma, n)
    m = np.zeros(n)
    m[buyer] = np.maximum(np.round(rng.gamma(pp * x[buyer], 1.0 / (nu[buyer] * x[buyer])), 2), 0.01)
    summary = pd.DataFrame(
        {"frequency": x.astype(float), "recency": t_x, "T": big_t, "monetary_value": m},
        index=pd.RangeIndex(n, name="customer_id"),
    )
    summary.attrs["freq"] = "W" if shape == "weeks" else "D"
    return summary


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def measure(call: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """Result, wall seconds, CPU (process) seconds and extra peak resident memory (MB; NaN off
    Linux) of ``call()``.

    CPU time is what counts on a shared machine, where the wall time depends on the load.

    The peak is the process's resident high-water mark (``VmHWM``), reset just before the
    call through ``/proc/self/clear_refs``, minus the resident size before it: no tracing
    overhead (``tracemalloc`` slows pandas-heavy code like lifetimes' loop several-fold).
    """
    gc.collect()
    before = _status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        before = None
    start, cpu_start = time.perf_counter(), time.process_time()
    result = call()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = _status_kb("VmHWM")
    extra = (peak - before) / 1024 if before is not None and peak is not None else float("nan")
    return result, seconds, cpu, extra


def _load_average() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def lifetimes_models(bgnbd: BetaGeoModel, spend: GammaGammaModel) -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(bgnbd.params_.to_dict())
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # set by fit()
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series(
        {"p": spend.params_["p"], "q": spend.params_["q"], "v": spend.params_["gamma"]}
    )
    return bgf, ggf


def run_case(n: int, shape: str, n_draws: int) -> list[dict[str, Any]]:
    summary = simulate(n, shape)
    freq = summary.attrs["freq"]
    bgnbd = BetaGeoModel().fit(summary)
    spend = GammaGammaModel().fit(summary)
    bgf, ggf = lifetimes_models(bgnbd, spend)
    patterns = len(summary.drop_duplicates())
    print(
        f"\n[{shape}] {n:,} customers ({(summary['frequency'] > 0).mean():.0%} repeat buyers, "
        f"{patterns:,} distinct customer rows), unit {freq!r}"
    )

    def lifetimes_clv() -> pd.Series:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ggf.customer_lifetime_value(
                bgf,
                summary["frequency"],
                summary["recency"],
                summary["T"],
                summary["monetary_value"],
                time=12,
                discount_rate=MONTHLY_RATE,
                freq=freq,
            )

    def point() -> pd.Series:
        return customer_lifetime_value(bgnbd, spend, summary, horizon="12M")

    def with_intervals() -> tuple[pd.Series, pd.DataFrame]:
        return point(), clv_interval(
            bgnbd, spend, summary, horizon="12M", n_draws=n_draws, progress=False
        )

    def table() -> pd.DataFrame:
        return customer_value_table(
            bgnbd, spend, summary, horizon="12M", n_draws=n_draws, progress=False
        )

    reference, lt_seconds, lt_cpu, lt_peak = measure(lifetimes_clv)
    rows = [
        {
            "case": shape,
            "call": "lifetimes customer_lifetime_value (12 monthly steps)",
            "seconds": lt_seconds,
            "cpu_s": lt_cpu,
            "peak_mb": lt_peak,
            "ratio": 1.0,
            "cpu_ratio": 1.0,
        }
    ]
    for label, call in [
        ("custval customer_lifetime_value (exact)", point),
        (f"custval CLV + clv_interval ({n_draws} draws, 80%)", with_intervals),
        (f"custval customer_value_table ({n_draws} draws)", table),
    ]:
        _, seconds, cpu, peak = measure(call)
        rows.append(
            {
                "case": shape,
                "call": label,
                "seconds": seconds,
                "cpu_s": cpu,
                "peak_mb": peak,
                "ratio": lt_seconds / seconds,
                "cpu_ratio": lt_cpu / cpu,
            }
        )

    # the same numbers in lifetimes' convention: one lifetimes month per step, monthly rate
    month = LIFETIMES_MONTH[freq]
    months_per_year = 365.2425 / (7.0 if freq == "W" else 1.0) / month
    grid = customer_lifetime_value(
        bgnbd,
        spend,
        summary,
        horizon=f"{12 * month}{freq}",
        annual_discount_rate=(1 + MONTHLY_RATE) ** months_per_year - 1,
        step=f"{month}{freq}",
    )
    difference = float(np.max(np.abs(grid.to_numpy() / reference.to_numpy() - 1.0)))
    print(f"  lifetimes convention reproduced: max relative difference {difference:.1e}")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 customers")
    parser.add_argument("--customers", type=int, help="number of customers (overrides --quick)")
    parser.add_argument("--draws", type=int, default=200, help="parameter draws (default 200)")
    parser.add_argument("--shapes", nargs="+", default=["weeks", "days"], choices=["weeks", "days"])
    args = parser.parse_args(argv)
    n = args.customers or (100_000 if args.quick else 1_000_000)
    print(
        f"custval CLV benchmark: {n:,} customers, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}"
    )
    print(f"BLAS/OpenMP limited to 1 thread for both libraries; load average {_load_average()}")
    rows = []
    with threadpool_limits(limits=1):
        for shape in args.shapes:
            rows.extend(run_case(n, shape, args.draws))
    frame = pd.DataFrame(rows)
    print()
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(
            frame.to_string(
                index=False,
                formatters={
                    "seconds": "{:.2f}".format,
                    "cpu_s": "{:.2f}".format,
                    "peak_mb": "{:,.0f}".format,
                    "ratio": "{:.1f}x".format,
                    "cpu_ratio": "{:.1f}x".format,
                },
            )
        )
    headline = frame[frame["call"].str.contains("clv_interval")]
    worst = float(headline["ratio"].min())
    worst_cpu = float(headline["cpu_ratio"].min())
    verdict = "meets" if min(worst, worst_cpu) >= 10 else "misses"
    print(
        f"\nCLV with intervals vs lifetimes: {worst:.1f}x wall, {worst_cpu:.1f}x CPU at worst "
        f"({verdict} the 10x target); load average {_load_average()}"
    )


if __name__ == "__main__":
    main()
