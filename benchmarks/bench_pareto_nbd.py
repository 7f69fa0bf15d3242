"""custval's Pareto/NBD against lifetimes' ParetoNBDFitter: fit and prediction time, agreement.

Simulates a seeded customer base in *daily* units with integer ``recency`` and ``T`` (what
``rfm_summary(freq="D")`` produces): first purchases spread over two years (``T`` in 1..730
days), Pareto/NBD purchasing and dropout with CDNOW's weekly estimates rescaled to days
(r, alpha, s, beta = 0.553, 74.0, 0.606, 81.7), the last purchase rounded up to a whole day.
Then, in one process and on the same arrays:

- lifetimes fits with its defaults (Nelder-Mead), custval with its defaults (L-BFGS-B with the
  analytic gradient on compressed patterns, standard errors included in its time);
- parameters "agree" when each matches lifetimes' to 3 significant figures (relative
  difference < 5e-4);
- predictions (P(alive) and expected purchases in the next 365 days for every customer) are
  timed and compared (relative 1e-6 where lifetimes is finite); custval's DERT is timed too;
- peak memory (``--memory``): each fit runs a second time under ``tracemalloc`` (numpy and
  Python allocations), which is not timed: tracing slows Python-heavy code such as
  lifetimes' Nelder-Mead loop several-fold.

Usage::

    .venv/bin/python benchmarks/bench_pareto_nbd.py            # 100,000 customers, both
    .venv/bin/python benchmarks/bench_pareto_nbd.py --full     # and 1,000,000 (lifetimes ~6 min)
    .venv/bin/python benchmarks/bench_pareto_nbd.py --full --quick   # 1M with custval only
    .venv/bin/python benchmarks/bench_pareto_nbd.py --quick    # 100,000, both (same as default)
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from custval import ParetoNBDModel  # noqa: E402

DAILY = {"r": 0.553, "alpha": 10.578 * 7, "s": 0.606, "beta": 11.669 * 7}
HORIZON_DAYS = 365.0


def make_summary(n_customers: int, seed: int = 0) -> pd.DataFrame:
    """Seeded Pareto/NBD customers in days with integer recency and T."""
    rng = np.random.default_rng(seed)
    big_t = rng.integers(1, 731, size=n_customers).astype(float)
    lam = rng.gamma(DAILY["r"], 1.0 / DAILY["alpha"], n_customers)
    mu = rng.gamma(DAILY["s"], 1.0 / DAILY["beta"], n_customers)
    observed = np.minimum(rng.exponential(1.0 / mu), big_t)
    x = rng.poisson(lam * observed).astype(float)
    last = observed * rng.random(n_customers) ** (1.0 / np.maximum(x, 1.0))
    recency = np.where(x > 0, np.minimum(np.ceil(last), big_t), 0.0)
    summary = pd.DataFrame({"frequency": x, "recency": recency, "T": big_t})
    summary.attrs["freq"] = "D"
    return summary


MEMORY = False  # set by --memory


def timed(func: Callable[[], Any], memory: bool = False) -> tuple[Any, float, float]:
    """Result and seconds of ``func()``, and (``memory`` and ``--memory``) the peak traced
    memory in MB of a second, untimed run (nan otherwise)."""
    start = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - start
    peak = float("nan")
    if memory and MEMORY:
        tracemalloc.start()
        func()
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return result, seconds, peak


def megabytes(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.1f} MB"


def agree_3sf(ours: np.ndarray, theirs: np.ndarray) -> bool:
    return bool(np.all(np.abs(ours / theirs - 1.0) < 5e-4))


def run_case(n_customers: int, with_lifetimes: bool) -> dict[str, Any]:
    summary = make_summary(n_customers)
    x, t_x, big_t = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    print(f"\n== {n_customers:,} customers ({(x > 0).mean():.0%} repeat buyers), daily units")
    model, fit_s, fit_mb = timed(lambda: ParetoNBDModel().fit(summary), memory=True)
    ours = model.params_.to_numpy()
    print(
        f"custval   fit {fit_s:8.2f} s  peak {megabytes(fit_mb)}  {model.n_patterns_:,} patterns, "
        f"{model.n_iter_} iterations, log-lik {model.log_likelihood_:.2f}"
    )
    print("          params " + ", ".join(f"{k}={v:.4g}" for k, v in model.params_.items()))
    print(
        "          std errors "
        + ", ".join(f"{k}={v:.3g}" for k, v in model.summary["std_error"].items())
    )
    _, alive_s, _ = timed(lambda: model.probability_alive(summary))
    _, exp_s, _ = timed(lambda: model.expected_purchases(summary, HORIZON_DAYS))
    _, dert_s, _ = timed(lambda: model.discounted_expected_residual_transactions(summary, 3e-4))
    print(
        f"          predict: P(alive) {alive_s:.2f} s, expected purchases {exp_s:.2f} s, "
        f"DERT {dert_s:.2f} s"
    )
    row: dict[str, Any] = {"n": n_customers, "custval_fit_s": fit_s}
    if MEMORY:
        row["custval_mb"] = fit_mb
    if not with_lifetimes:
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import ParetoNBDFitter

        fitter, lt_s, lt_mb = timed(lambda: ParetoNBDFitter().fit(x, t_x, big_t), memory=True)
        theirs = fitter.params_[["r", "alpha", "s", "beta"]].to_numpy()
        with np.errstate(all="ignore"):
            fitter.params_ = model.params_.copy()  # compare predictions at the same parameters
            lt_alive, lt_alive_s, _ = timed(
                lambda: fitter.conditional_probability_alive(x, t_x, big_t)
            )
            lt_exp, lt_exp_s, _ = timed(
                lambda: fitter.conditional_expected_number_of_purchases_up_to_time(
                    HORIZON_DAYS, x, t_x, big_t
                )
            )
    print(f"lifetimes fit {lt_s:8.2f} s  peak {megabytes(lt_mb)}")
    print(
        "          params "
        + ", ".join(f"{k}={v:.4g}" for k, v in zip(model.params_.index, theirs, strict=True))
    )
    print(f"          predict: P(alive) {lt_alive_s:.2f} s, expected purchases {lt_exp_s:.2f} s")
    ll_theirs = float(ParetoNBDFitter._conditional_log_likelihood(theirs, x, t_x, big_t).sum())
    agree = agree_3sf(ours, theirs)
    finite = np.isfinite(lt_alive) & np.isfinite(lt_exp)
    same_alive = np.allclose(model.probability_alive(summary)[finite], lt_alive[finite], rtol=1e-6)
    same_exp = np.allclose(
        model.expected_purchases(summary, HORIZON_DAYS)[finite], lt_exp[finite], rtol=1e-6
    )
    print(
        f"speed-up: fit {lt_s / fit_s:.1f}x (target >= 50x), P(alive) "
        f"{lt_alive_s / alive_s:.1f}x, expected purchases {lt_exp_s / exp_s:.1f}x"
    )
    print(
        f"parameters agree to 3 significant figures: {agree} (max relative difference "
        f"{np.max(np.abs(ours / theirs - 1)):.1e}; log-lik custval {model.log_likelihood_:.2f}, "
        f"lifetimes {ll_theirs:.2f})"
    )
    print(
        f"predictions equal (rtol 1e-6) on the {finite.mean():.2%} of customers where lifetimes "
        f"is finite: P(alive) {same_alive}, expected purchases {same_exp}"
    )
    row.update(lifetimes_fit_s=lt_s, ratio=lt_s / fit_s, agree=agree)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run 1,000,000 customers")
    parser.add_argument(
        "--quick", action="store_true", help="skip lifetimes at 1,000,000 (compare at 100k only)"
    )
    parser.add_argument(
        "--memory", action="store_true", help="trace peak memory of each fit (an extra run)"
    )
    args = parser.parse_args(argv)
    global MEMORY
    MEMORY = args.memory
    rows = [run_case(100_000, with_lifetimes=True)]
    if args.full:
        rows.append(run_case(1_000_000, with_lifetimes=not args.quick))
    print("\n" + pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
