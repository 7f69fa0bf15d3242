"""Pareto/NBD with time-varying covariates: fit cost next to the static-covariate Pareto/NBD.

Simulates seeded weekly customers (``tests/_simulate_models.simulate_pareto_dynamic``: a
binary ``mail`` covariate on purchase rate and dropout) and times, in one process and on the
same customers:

* ``constant``: ``mail`` fixed per customer, so the static-covariate
  ``ParetoNBDModel().fit(summary, customers=...)`` and ``ParetoNBDDynamicModel().fit(...)``
  maximise the same likelihood (the ratio is the price of evaluating it per customer and
  week instead of per pattern);
* ``varying``: ``mail`` drawn per customer and week plus a common ``season``, which only the
  dynamic model can fit.

Usage::

    .venv/bin/python benchmarks/bench_pareto_dynamic.py            # 2,000 and 10,000 customers
    .venv/bin/python benchmarks/bench_pareto_dynamic.py --quick    # 2,000 customers
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from _simulate_models import simulate_pareto_dynamic  # noqa: E402
from custval import CustvalWarning, ParetoNBDDynamicModel, ParetoNBDModel, rfm_summary  # noqa: E402

BASE = {"r": 0.6, "alpha": 8.0, "s": 0.7, "beta": 10.0}


def _seconds(func):
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start


def run(n: int) -> None:
    tx, cov, end = simulate_pareto_dynamic(
        **BASE, purchase={"mail": 0.5}, dropout={"mail": -0.6}, n=n, constant=True, random_state=1
    )
    summary = rfm_summary(tx, amount=None, freq="D", observation_end=end)
    summary[["recency", "T"]] = summary[["recency", "T"]] / 7.0
    customers = cov.groupby("customer_id")[["mail"]].first()
    groups = {"purchase_covariates": ["mail"], "dropout_covariates": ["mail"]}
    static, t_static = _seconds(
        lambda: ParetoNBDModel().fit(summary, customers=customers, **groups)
    )
    dynamic, t_dynamic = _seconds(
        lambda: ParetoNBDDynamicModel().fit(tx, cov, observation_end=end, **groups)
    )
    gap = abs(dynamic.log_likelihood_ - static.log_likelihood_) / abs(static.log_likelihood_)
    periods = len(cov) / n
    print(
        f"constant  n={n:>6,} x {periods:.0f} weeks: static {t_static:6.2f} s, dynamic "
        f"{t_dynamic:6.2f} s ({t_dynamic / t_static:5.1f}x), log-likelihoods equal to {gap:.1e}"
    )
    tx, cov, end = simulate_pareto_dynamic(
        **BASE, purchase={"mail": 0.5, "season": 0.4}, dropout={"mail": 1.0}, n=n, random_state=2
    )
    _, t_varying = _seconds(
        lambda: ParetoNBDDynamicModel().fit(
            tx,
            cov,
            purchase_covariates=["season", "mail"],
            dropout_covariates=["mail"],
            observation_end=end,
        )
    )
    print(
        f"varying   n={n:>6,} x {periods:.0f} weeks: dynamic {t_varying:6.2f} s "
        f"({t_varying / t_static:5.1f}x the static fit of the constant data)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 customers only")
    args = parser.parse_args(argv)
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", CustvalWarning)
        for n in (2000,) if args.quick else (2000, 10000):
            run(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
