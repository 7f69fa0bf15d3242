"""custval's models against lifetimes' fitters: fit and prediction time, parameter agreement.

Simulates a seeded customer base in *daily* units with integer ``recency`` and ``T`` (what
``rfm_summary(freq="D")`` produces): first purchases spread over two years, BG/NBD purchasing
with CDNOW's weekly parameters rescaled to days (r, alpha, a, b = 0.243, 30.9, 0.793, 2.426),
recency rounded up to whole days, and Gamma-Gamma average spend (p, q, gamma = 6.25, 3.74,
15.44) rounded to cents. About half the customers are repeat buyers. Then, in one process:

- each case runs lifetimes once and custval ``--repeat`` times (best time), on the same arrays
  (custval fits the raw customer table and compresses patterns itself); prediction cases run
  both ``--repeat`` times; BLAS/OpenMP are limited to one thread for both, and the speed-up is
  printed in wall-clock and in CPU (process) time, with the load average;
- parameters "agree" when every fitted parameter matches lifetimes' to 3 significant figures
  (relative difference < 5e-4); predictions are compared to a relative 1e-6;
- peak memory (unless ``--no-memory``): each case runs again in a fresh subprocess that builds
  the same data, and reports its extra peak RSS (``VmHWM`` reset through
  ``/proc/self/clear_refs``; Linux only, ``-`` elsewhere).

The cases are a list (``CASES``) of :class:`Case`; to add a model (e.g. Pareto/NBD) append a
``Case`` with its two runners and the target ratio.

Usage::

    .venv/bin/python benchmarks/bench_models.py            # 1,000,000 customers
    .venv/bin/python benchmarks/bench_models.py --quick    # 100,000 customers
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
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from _simulate_models import simulate_beta_geo, simulate_gamma_gamma  # noqa: E402
from custval import BetaGeoModel, GammaGammaModel, ModifiedBetaGeoModel  # noqa: E402

BGNBD_DAILY = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
HORIZON_DAYS = 365.0


def make_summary(n_customers: int, seed: int = 0) -> pd.DataFrame:
    """Seeded customer summary in days: integer recency and T, spend to the cent."""
    rng = np.random.default_rng(seed)
    big_t = rng.integers(1, 731, size=n_customers).astype(float)
    sim = simulate_beta_geo(**BGNBD_DAILY, T=big_t, random_state=seed + 1)
    repeat = sim["frequency"].to_numpy() > 0
    recency = np.where(repeat, np.minimum(np.ceil(sim["recency"].to_numpy()), big_t), 0.0)
    spend = simulate_gamma_gamma(**GAMMA_GAMMA, frequency=sim["frequency"], random_state=seed + 2)
    spend = np.where(repeat, np.maximum(np.round(spend, 2), 0.01), 0.0)
    summary = pd.DataFrame(
        {
            "frequency": sim["frequency"].to_numpy(),
            "recency": recency,
            "T": big_t,
            "monetary_value": spend,
        },
        index=pd.RangeIndex(n_customers, name="customer_id"),
    )
    summary.attrs["freq"] = "D"
    return summary


# --- the cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    """One row of the table: the same computation in lifetimes and in custval.

    Each runner takes the summary and returns a 1-d array to compare: fitted parameters (in
    ``names`` order) for fits, predictions for predictions.
    """

    name: str
    target: float  # the speed-up we aim for
    lifetimes: Callable[[pd.DataFrame], np.ndarray]
    custval: Callable[[pd.DataFrame], np.ndarray]
    kind: str = "fit"  # "fit": compare to 3 significant figures; "predict": to rtol 1e-6
    names: tuple[str, ...] = ()


def _lifetimes_fit(fitter_name: str, columns: tuple[str, ...], repeat_only: bool = False):
    def run(summary: pd.DataFrame) -> np.ndarray:
        import lifetimes

        data = summary[summary["frequency"] > 0] if repeat_only else summary
        fitter = getattr(lifetimes, fitter_name)()
        fitter.fit(*(data[c] for c in columns))
        return fitter.params_.to_numpy()

    return run


def _custval_fit(model_class: type) -> Callable[[pd.DataFrame], np.ndarray]:
    def run(summary: pd.DataFrame) -> np.ndarray:
        return model_class().fit(summary).params_.to_numpy()

    return run


def _lifetimes_predictions(fitter_name: str) -> Callable[[pd.DataFrame], np.ndarray]:
    def run(summary: pd.DataFrame) -> np.ndarray:
        import lifetimes

        fitter = getattr(lifetimes, fitter_name)()
        fitter.params_ = pd.Series(BGNBD_DAILY)
        x, t_x, big_t = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
        expected = fitter.conditional_expected_number_of_purchases_up_to_time(
            HORIZON_DAYS, x, t_x, big_t
        )
        alive = fitter.conditional_probability_alive(x, t_x, big_t)
        return np.concatenate([np.asarray(expected), np.asarray(alive)])

    return run


def _custval_predictions(model_class: type) -> Callable[[pd.DataFrame], np.ndarray]:
    def run(summary: pd.DataFrame) -> np.ndarray:
        model = model_class.from_params(**BGNBD_DAILY, freq="D")
        expected = model.expected_purchases(summary, "365D")
        alive = model.probability_alive(summary)
        return np.concatenate([expected.to_numpy(), alive.to_numpy()])

    return run


BETA_GEO_COLUMNS = ("frequency", "recency", "T")

CASES: list[Case] = [
    Case(
        "BG/NBD fit",
        20.0,
        _lifetimes_fit("BetaGeoFitter", BETA_GEO_COLUMNS),
        _custval_fit(BetaGeoModel),
        names=("r", "alpha", "a", "b"),
    ),
    Case(
        "MBG/NBD fit",
        20.0,
        _lifetimes_fit("ModifiedBetaGeoFitter", BETA_GEO_COLUMNS),
        _custval_fit(ModifiedBetaGeoModel),
        names=("r", "alpha", "a", "b"),
    ),
    Case(
        "Gamma-Gamma fit",
        10.0,
        _lifetimes_fit("GammaGammaFitter", ("frequency", "monetary_value"), repeat_only=True),
        _custval_fit(GammaGammaModel),
        names=("p", "q", "gamma"),
    ),
    Case(
        "BG/NBD E[purchases 365D] + P(alive)",
        5.0,
        _lifetimes_predictions("BetaGeoFitter"),
        _custval_predictions(BetaGeoModel),
        kind="predict",
    ),
    Case(
        "MBG/NBD E[purchases 365D] + P(alive)",
        5.0,
        _lifetimes_predictions("ModifiedBetaGeoFitter"),
        _custval_predictions(ModifiedBetaGeoModel),
        kind="predict",
    ),
]


# --- measurement -------------------------------------------------------------------------------


def timed(
    function: Callable[[pd.DataFrame], np.ndarray], summary: pd.DataFrame, repeat: int
) -> tuple[float, float, Any]:
    """Best wall and CPU (process) time of ``repeat`` runs and the result (None on error)."""
    best_wall, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = function(summary)
        except Exception as error:  # a failed fit is a result of the benchmark, not a crash
            print(f"    {function.__qualname__} failed: {type(error).__name__}: {error}".strip())
            return time.perf_counter() - wall, time.process_time() - cpu, None
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def agreement(case: Case, ours: np.ndarray | None, reference: np.ndarray | None) -> str:
    if ours is None or reference is None or ours.shape != reference.shape:
        return "failed"
    with np.errstate(all="ignore"):
        relative = np.abs(ours / reference - 1.0)
    worst = float(np.nanmax(np.where(np.isfinite(relative), relative, np.inf)))
    if case.kind == "fit":
        return f"{'yes' if worst < 5e-4 else 'NO'} ({worst:.0e})"
    return f"{'equal' if worst < 1e-6 else 'DIFFER'} ({worst:.0e})"


def _status_mb() -> dict[str, float]:
    text = Path("/proc/self/status").read_text()
    return {key: int(value) / 1024 for key, value in re.findall(r"(VmRSS|VmHWM):\s+(\d+)", text)}


def _child(case_index: int, impl: str, n_customers: int) -> None:
    case = CASES[case_index]
    summary = make_summary(n_customers)
    function = getattr(case, impl)
    import lifetimes  # noqa: F401  (imported outside the measurement, as in the timing)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
            before = _status_mb()["VmRSS"]
            function(summary)
            print(json.dumps({"rss_mb": _status_mb()["VmHWM"] - before}))
        except OSError:
            print(json.dumps({"rss_mb": None}))


def peak_memory(case_index: int, impl: str, n_customers: int) -> str:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(case_index), impl, str(n_customers)],
        check=True,
        capture_output=True,
        text=True,
    )
    value = json.loads(out.stdout.strip().splitlines()[-1])["rss_mb"]
    return "-" if value is None else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 customers")
    parser.add_argument("--customers", type=int, help="number of customers (overrides --quick)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of custval")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--cases", help="comma-separated indices of CASES to run")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        index, impl, n_customers = args.child
        _child(int(index), impl, int(n_customers))
        return

    import lifetimes

    n_customers = args.customers or (100_000 if args.quick else 1_000_000)
    summary = make_summary(n_customers)
    repeat_buyers = int((summary["frequency"] > 0).sum())
    patterns = len(summary[["frequency", "recency", "T"]].drop_duplicates())
    print(
        f"custval models vs lifetimes {lifetimes.__version__} | {n_customers:,} customers "
        f"(daily, integer recency/T; {repeat_buyers:,} repeat buyers; {patterns:,} distinct "
        f"frequency/recency/T patterns) | numpy {np.__version__}, pandas {pd.__version__}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"time: lifetimes once (predictions: best of {args.repeat}), custval best of "
        f"{args.repeat}, in one process, one BLAS/OpenMP thread; wall-clock "
        "seconds, and the speed-up in wall-clock and in CPU (process) time, which is what "
        "counts on a shared machine; memory: extra peak RSS (MB) of the call in a fresh process"
    )
    header = (
        f"{'case':<38} {'lifetimes s':>11} {'custval s':>10} {'speed-up':>9} {'(CPU)':>7} "
        f"{'target':>7} {'lifetimes MB':>12} {'custval MB':>10}  agreement"
    )
    print(header)
    print("-" * len(header))
    indices = [int(i) for i in args.cases.split(",")] if args.cases else list(range(len(CASES)))
    for index in indices:
        with threadpool_limits(limits=1):  # both libraries single-threaded: a fair CPU comparison
            run_case(index, summary, n_customers, args)
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


def run_case(index: int, summary: pd.DataFrame, n_customers: int, args: argparse.Namespace) -> None:
    """Time one case (lifetimes once, custval best of --repeat) and print its row."""
    case = CASES[index]
    # predictions take seconds in lifetimes too: best of the same number of runs for both
    reference_repeat = args.repeat if case.kind == "predict" else 1
    reference_wall, reference_cpu, reference = timed(case.lifetimes, summary, reference_repeat)
    ours_wall, ours_cpu, ours = timed(case.custval, summary, args.repeat)
    verdict = agreement(
        case,
        None if ours is None else np.asarray(ours),
        None if reference is None else np.asarray(reference),
    )
    if args.no_memory:
        memory = {"lifetimes": "-", "custval": "-"}
    else:
        memory = {impl: peak_memory(index, impl, n_customers) for impl in ("lifetimes", "custval")}
    print(
        f"{case.name:<38} {reference_wall:>11.2f} {ours_wall:>10.3f} "
        f"{reference_wall / ours_wall:>8.1f}x {reference_cpu / ours_cpu:>6.1f}x "
        f"{case.target:>6.0f}x {memory['lifetimes']:>12} {memory['custval']:>10}  {verdict}",
        flush=True,
    )
    if case.kind == "fit":
        print(
            f"{'':<38} lifetimes {np.array2string(np.asarray(reference), precision=5)}  "
            f"custval {np.array2string(np.asarray(ours), precision=5)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
