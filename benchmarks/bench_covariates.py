"""BG/NBD with static covariates: custval's fit next to pymc-marketing's MAP fit.

Simulates a seeded customer base (weekly units, ``T`` uniform in 26..104 weeks) with five
covariates (three standard normal, two binary) acting on both the purchase rate and dropout in
CLVTools' parametrisation (``alpha_i = alpha exp(-x'beta)``, ``a_i = a exp(x'gamma)``,
``b_i = b exp(x'gamma)``), and fits it with ``custval.BetaGeoModel().fit(...,
purchase_covariates=..., dropout_covariates=...)`` (best of ``--repeat``, one BLAS thread).

pymc-marketing is never a dependency of custval: if ``/tmp/pymc-venv/bin/python`` (or
``--pymc-python``) exists with pymc-marketing installed, the same data is written to a
temporary file and fitted there with ``pymc_marketing.clv.BetaGeoModel(...).fit(method="map")``
in a subprocess (its time includes building the model, not starting Python); otherwise the
script says that it is absent. pymc-marketing's covariate BG/NBD is close to, not the same as,
custval's: it gives ``a`` and ``b`` separate dropout coefficients (custval, like CLVTools, one
for both) and MAP includes its default priors. Create it with::

    python3 -m venv /tmp/pymc-venv && /tmp/pymc-venv/bin/pip install pymc-marketing==0.19.2

How custval is fast here: the likelihood has an exact Hessian (each customer's 4 x 4 Hessian
in their own ``r, log alpha_i, log a_i, log b_i``, mapped through the design: ten weighted
Gram matrices of the design per evaluation), so the fit is a handful of Newton steps from the
model without covariates fitted on a 100k-row subset (coefficients 0), and the standard errors
need no differencing; ``log B(a_i, b_i + x) - log B(a_i, b_i)`` and its derivatives are finite
sums over ``j < x`` for the many light buyers; rows with a continuous covariate are not
compressed (nearly all are distinct). Measured on the shared 2-core machine, one BLAS thread,
best of 3: 1,000,000 customers in 3.54 s at load average 6.6 (other jobs running) and 1.91 s
wall, 1.91 s CPU at load average 2.5 (was 40.5 s before the exact Hessian; 4 Newton steps;
9/10 true coefficients inside their 95% intervals); pymc-marketing 0.19.2's MAP fit of the same
data in the 6.6 run: 130.3 s, 36.9x; 100,000 customers (``--quick``) 0.69 s.

Usage::

    .venv/bin/python benchmarks/bench_covariates.py            # 1,000,000 customers
    .venv/bin/python benchmarks/bench_covariates.py --quick    # 100,000 customers
    .venv/bin/python benchmarks/bench_covariates.py --model pareto   # Pareto/NBD, 100,000
    .venv/bin/python benchmarks/bench_covariates.py --model ggom     # GGom/NBD, 100,000

``--model pareto`` (``ggom``: a GGom/NBD with ``b = 0.05``, ``s = 0.8``, ``beta = 2``): the
model with two continuous covariates (``income ~ N(0, 1)``, ``tenure ~ U(-1, 1)``, each on the
purchase rate and the dropout rate) on 100,000 customers (``--n``), fitted with every customer
at their own ``alpha_i``, ``beta_i`` (the series and quadrature vectorised over the customers),
next to the same model without covariates on the same summary (compressed to its distinct
patterns) as the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from _simulate_models import simulate_beta_geo, simulate_continuous_covariates  # noqa: E402
from custval import BetaGeoModel, GammaGompertzNBDModel, ParetoNBDModel  # noqa: E402

BASE = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
COVARIATES = ["x1", "x2", "x3", "d1", "d2"]
PURCHASE = np.array([0.3, -0.2, 0.1, 0.4, -0.3])
DROPOUT = np.array([-0.3, 0.2, 0.0, -0.4, 0.3])
PYMC_PYTHON = Path("/tmp/pymc-venv/bin/python")

_PYMC_SCRIPT = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from pymc_marketing.clv import BetaGeoModel
data = pd.read_csv(sys.argv[1])
cols = json.loads(sys.argv[2])
start = time.perf_counter()
model = BetaGeoModel(
    data=data,
    model_config={"purchase_covariate_cols": cols, "dropout_covariate_cols": cols},
)
model.build_model()
model.fit(method="map", progressbar=False)
elapsed = time.perf_counter() - start
post = model.idata.posterior
names = ("r", "alpha_scale", "a_scale", "b_scale")
out = {k: float(post[k].values.ravel()[0]) for k in names if k in post}
print(json.dumps({"seconds": elapsed, "params": out}))
"""


def simulate(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` customers with ``frequency, recency, T`` and the five covariates."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [rng.normal(size=(n, 3)), rng.random((n, 2)) < np.array([0.3, 0.5])]
    ).astype(float)
    eta_p, eta_d = x @ PURCHASE, x @ DROPOUT
    big_t = rng.uniform(26, 104, size=n).round()
    summary = simulate_beta_geo(
        BASE["r"],
        BASE["alpha"] * np.exp(-eta_p),
        BASE["a"] * np.exp(eta_d),
        BASE["b"] * np.exp(eta_d),
        big_t,
        random_state=seed + 1,
    )[["frequency", "recency", "T"]]
    return summary.assign(**{c: x[:, j] for j, c in enumerate(COVARIATES)})


def fit_custval(data: pd.DataFrame, repeat: int) -> tuple[float, float, BetaGeoModel]:
    """Best wall time and best CPU time of ``repeat`` fits (one BLAS thread), and the model."""
    best, best_cpu, model = np.inf, np.inf, None
    for _ in range(repeat):
        with threadpool_limits(limits=1):
            start, start_cpu = time.perf_counter(), time.process_time()
            model = BetaGeoModel().fit(
                data, purchase_covariates=COVARIATES, dropout_covariates=COVARIATES
            )
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return best, best_cpu, model


def fit_pymc(data: pd.DataFrame, python: Path, timeout: float) -> dict | str:
    if not python.exists():
        return f"absent ({python} not found; see the module docstring to create it)"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "customers.csv"
        data.rename_axis("customer_id").reset_index().to_csv(path, index=False)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        try:
            done = subprocess.run(
                [str(python), "-c", _PYMC_SCRIPT, str(path), json.dumps(COVARIATES)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"did not finish within {timeout:.0f} s"
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


PARETO = {"r": 0.6, "alpha": 8.0, "s": 0.7, "beta": 10.0}
PARETO_EFFECTS = {
    "purchase:income": 0.4,
    "purchase:tenure": -0.3,
    "dropout:income": -0.5,
    "dropout:tenure": 0.3,
}


GGOM = {"r": 0.6, "alpha": 8.0, "b": 0.05, "s": 0.8, "beta": 2.0}


def bench_continuous(n: int, repeat: int, ggom: bool) -> int:
    """The continuous-covariate Pareto/NBD (GGom/NBD) fit and the plain one on the same
    customers."""
    effects = {g: {} for g in ("purchase", "dropout")}
    for name, value in PARETO_EFFECTS.items():
        group, column = name.split(":")
        effects[group][column] = value
    summary, customers = simulate_continuous_covariates(
        GGOM if ggom else PARETO, effects["purchase"], effects["dropout"], n, random_state=0
    )
    model_class = GammaGompertzNBDModel if ggom else ParetoNBDModel
    print(
        f"{model_class._display_name} with 2 continuous covariates on purchase and dropout, "
        f"{n:,} customers (load average {os.getloadavg()[0]:.2f})"
    )
    timings = {}
    for label in ("plain", "covariates"):
        best = np.inf
        for _ in range(repeat):
            with threadpool_limits(limits=1):
                start = time.perf_counter()
                if label == "plain":
                    model = model_class().fit(summary)
                else:
                    model = model_class().fit(
                        summary,
                        customers=customers,
                        purchase_covariates=["income", "tenure"],
                        dropout_covariates=["income", "tenure"],
                    )
                best = min(best, time.perf_counter() - start)
        timings[label] = (best, model)
    seconds, model = timings["covariates"]
    table = model.summary
    covered = sum(
        table.at[k, "lower_95"] <= v <= table.at[k, "upper_95"] for k, v in PARETO_EFFECTS.items()
    )
    plain_seconds, plain = timings["plain"]
    print(
        f"without covariates: {plain_seconds:8.2f} s  ({plain.n_patterns_:,} patterns)\n"
        f"with covariates:    {seconds:8.2f} s  ({model.n_patterns_:,} rows; "
        f"{seconds / plain_seconds:.1f}x the plain fit; {covered}/{len(PARETO_EFFECTS)} true "
        "coefficients inside their 95% intervals)"
    )
    print("  " + ", ".join(f"{k}={v:.4g}" for k, v in model.params_.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 customers")
    parser.add_argument("--n", type=int, default=None, help="number of customers")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pymc-python", type=Path, default=PYMC_PYTHON)
    parser.add_argument("--pymc-timeout", type=float, default=1800.0)
    parser.add_argument("--no-pymc", action="store_true", help="skip pymc-marketing")
    parser.add_argument(
        "--model", choices=("bgnbd", "pareto", "ggom"), default="bgnbd", help="see the docstring"
    )
    args = parser.parse_args(argv)
    if args.model != "bgnbd":
        return bench_continuous(args.n or 100_000, args.repeat, args.model == "ggom")
    n = args.n or (100_000 if args.quick else 1_000_000)
    data = simulate(n)
    print(
        f"BG/NBD with {len(COVARIATES)} static covariates on {n:,} customers "
        f"(load average {os.getloadavg()[0]:.2f})"
    )
    seconds, cpu, model = fit_custval(data, args.repeat)
    table = model.summary
    truth = dict(
        zip(
            [f"purchase:{c}" for c in COVARIATES] + [f"dropout:{c}" for c in COVARIATES],
            np.concatenate([PURCHASE, DROPOUT]),
            strict=True,
        )
    )
    covered = sum(table.at[k, "lower_95"] <= v <= table.at[k, "upper_95"] for k, v in truth.items())
    print(
        f"custval:        {seconds:8.2f} s  ({cpu:.2f} s CPU; target < 5 s; "
        f"{model.n_patterns_:,} patterns, Newton iterations {model.n_iter_}, "
        f"{covered}/{len(truth)} true coefficients inside their 95% intervals)"
    )
    print("  " + ", ".join(f"{k}={v:.4g}" for k, v in model.params_.iloc[:4].items()))
    if args.no_pymc:
        return 0
    result = fit_pymc(data, args.pymc_python, args.pymc_timeout)
    if isinstance(result, str):
        print(f"pymc-marketing: {result}")
        return 0
    print(
        f"pymc-marketing: {result['seconds']:8.2f} s  (MAP, same data)  ratio "
        f"{result['seconds'] / seconds:.1f}x"
    )
    print("  " + ", ".join(f"{k}={v:.4g}" for k, v in result["params"].items()))
    print(
        "  (its BG/NBD gives a and b separate dropout coefficients, 15 instead of 10, and MAP "
        "includes its default priors: close to, not the same as, the maximum likelihood)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
