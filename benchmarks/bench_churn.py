"""Churn at scale: features, labels, a rolling backtest and current scores on a synthetic log.

Default size: about 1,000,000 transaction lines (665,000 orders) of 100,000 customers over three
years (seeded); ``--quick`` is 10x smaller. Prints per stage the wall and CPU seconds and the
extra peak resident memory (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` before the
stage, minus the resident size before it; no tracing overhead). There is no reference library
to compare with (lifetimes has no churn classifiers), so no ratios: the target is "a few
minutes on 2 cores". On a machine shared with other work, ``--threads 1`` is usually faster
than 2 (gradient boosting's OpenMP threads spin while waiting for a busy core).

Run: ``.venv/bin/python benchmarks/bench_churn.py [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

import custval


def synthetic_log(n_customers: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A BG/NBD-like retailer: Poisson orders until an exponential death, 1 + Poisson(0.5)
    lines per order, 5% returned lines; about 10 lines per customer."""
    rng = np.random.default_rng(seed)
    days = 3 * 365.0
    first = rng.uniform(0, 700, n_customers)
    rate = rng.gamma(0.8, 1 / 70.0, n_customers)  # orders per day while alive
    stop = np.minimum(first + rng.exponential(900, n_customers), days)
    repeat = rng.poisson(rate * (stop - first))
    owner = np.concatenate([np.arange(n_customers), np.repeat(np.arange(n_customers), repeat)])
    when = np.concatenate([first, rng.uniform(first.repeat(repeat), stop.repeat(repeat))])
    lines = 1 + rng.poisson(0.5, owner.size)
    order = np.repeat(np.arange(owner.size), lines)
    n = order.size
    returned = rng.uniform(size=n) < 0.05
    quantity = np.where(returned, -1, rng.integers(1, 4, n))
    price = np.round(rng.gamma(2.0, 6.0, n), 2)
    transactions = pd.DataFrame(
        {
            "customer_id": owner[order],
            "timestamp": pd.Timestamp("2022-01-01")
            + pd.to_timedelta(np.round(when[order] * 86400 + returned * 86400 * 7), unit="s"),
            "order_id": order,
            "product_code": rng.integers(0, 3000, n),
            "quantity": quantity.astype(float),
            "amount": quantity * price,
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(n_customers),
            "channel": rng.choice(["search", "social", "referral", "direct"], n_customers),
            "region": rng.choice(["north", "south", "east", "west"], n_customers),
        }
    )
    return transactions, customers


def _status_kb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def stage(name: str, function: Callable[[], Any]) -> Any:
    """Run ``function``; print its wall and CPU seconds and its extra peak resident memory."""
    gc.collect()
    before = _status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")  # reset the high-water mark VmHWM to the current RSS
    except OSError:
        before = None
    started, cpu_started = time.perf_counter(), time.process_time()
    result = function()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak = _status_kb("VmHWM")
    extra = (peak - before) / 1024 if before is not None and peak is not None else float("nan")
    print(f"{name:<42} {seconds:8.1f} s {cpu:8.1f} s {extra:10.0f} MiB", flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller (10,000 customers)")
    parser.add_argument("--threads", type=int, default=1, help="threads for the classifiers")
    args = parser.parse_args(argv)
    n_customers = 10_000 if args.quick else 100_000

    transactions, customers = synthetic_log(n_customers)
    end = transactions["timestamp"].max()
    cutoffs = [(end - pd.Timedelta(days=90 * k)).floor("D") for k in (3, 2, 1)]
    print(
        f"{len(transactions):,} lines, {transactions['order_id'].nunique():,} orders, "
        f"{n_customers:,} customers, {transactions['timestamp'].min().date()} .. {end.date()}; "
        f"cutoffs {[str(c.date()) for c in cutoffs]}, horizon 90D, {args.threads} thread(s), "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'stage':<42} {'wall':>10} {'CPU':>10} {'peak RSS +':>14}")
    features = stage(
        "churn_features (1 cutoff, with BG/NBD)",
        lambda: custval.churn_features(transactions, cutoff=cutoffs[-1], customers=customers),
    )
    stage(
        "churn_features (1 cutoff, no BG/NBD)",
        lambda: custval.churn_features(
            transactions, cutoff=cutoffs[-1], customers=customers, model_features=False
        ),
    )
    labels = stage(
        "churn_labels (1 cutoff)",
        lambda: custval.churn_labels(transactions, cutoff=cutoffs[-1], horizon="90D"),
    )
    result = stage(
        "churn_backtest (3 cutoffs, 2 models)",
        lambda: custval.churn_backtest(
            transactions,
            cutoffs=cutoffs,
            customers=customers,
            progress=False,
            n_threads=args.threads,
        ),
    )
    scores = stage(
        "churn_scores (gradient boosting)",
        lambda: custval.churn_scores(transactions, customers=customers, n_threads=args.threads),
    )
    print(
        f"\n{features.shape[1]} features for {len(features):,} customers; churn rate "
        f"{labels.mean():.1%}; {len(scores):,} scores"
    )
    columns = ["cutoff", "model", "n_train", "n_customers", "roc_auc", "pr_auc", "brier", "lift"]
    print(result.metrics[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
