"""Robustness of the fitters on small and awkward data, on any CPU.

Each model is fitted on many small data sets (50-300 customers) with awkward shapes: all
one-time buyers but one, everyone buying every period, heavy ties, a single cohort, no
heterogeneity at all. A fit must either

* return finite parameters whose log-likelihood is within 1e-6 (relative) of the best that 20
  random restarts of an optimiser reach on the same objective, or
* raise a documented error (``DataError`` or ``ConvergenceError``) naming the reason.

The oracle's restarts run L-BFGS-B directly on the model's objective from random points, with
none of the fitter's acceptance logic, so a fitter that stops early, refuses an optimum it
found or picks a worse start fails here. ``test_on_other_blas_kernels`` refits every case in
subprocesses with ``OPENBLAS_CORETYPE`` unset and set to two other kernels and requires the
same outcome (the same error, or a log-likelihood within 1e-6 of this process's fit, which is
checked against the oracle above), so that a kernel-dependent branch shows up here before a
user meets it. ``python tests/test_models_robustness.py`` prints those fits as JSON.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from custval import (
    BetaDiscreteWeibullModel,
    BetaGeoBetaBinomModel,
    BetaGeoCNBDModel,
    BetaGeoModel,
    ConvergenceError,
    CustvalWarning,
    DataError,
    GammaGammaModel,
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    ShiftedBetaGeoModel,
)
from custval._rows import compress_rows
from custval.datasets import simulate_beta_geo, simulate_gamma_gamma
from custval.models._base import _LOG_BOUND

SEEDS = (0, 1)
RESTARTS = 20
REL_TOL = 1e-6
#: the documented outcomes: a ridge/boundary warning, or an error naming the reason
WARNINGS = r"flat along a ridge|edge of the search|Hessian at the optimum is not positive"
ERRORS = r"did not converge|not finite at any|needs at least|is fitted on repeat buyers"


# --------------------------------------------------------------------------------- data sets
def _size(rng: np.random.Generator) -> int:
    return int(rng.integers(50, 301))


def _simulated(rng: np.random.Generator) -> pd.DataFrame:
    n = _size(rng)
    return simulate_beta_geo(
        0.5, 8.0, 0.8, 2.5, rng.integers(20, 60, n).astype(float), random_state=rng
    )


def _all_one_time_but_one(rng: np.random.Generator) -> pd.DataFrame:
    n = _size(rng)
    frame = pd.DataFrame({"frequency": 0.0, "recency": 0.0, "T": rng.integers(10, 50, n) * 1.0})
    frame.loc[0, ["frequency", "recency"]] = [float(rng.integers(1, 5)), 5.0]
    return frame


def _every_period(rng: np.random.Generator) -> pd.DataFrame:
    big_t = rng.integers(5, 30, _size(rng)).astype(float)
    return pd.DataFrame({"frequency": big_t, "recency": big_t, "T": big_t})


def _ties(rng: np.random.Generator) -> pd.DataFrame:
    patterns = pd.DataFrame({"frequency": [0.0, 2, 5], "recency": [0.0, 10, 30], "T": [40.0] * 3})
    return patterns.iloc[rng.integers(0, 3, _size(rng))].reset_index(drop=True)


def _single_cohort(rng: np.random.Generator) -> pd.DataFrame:
    n = _size(rng)
    return simulate_beta_geo(1.2, 5.0, 1.5, 6.0, np.full(n, 52.0), random_state=rng)


def _no_heterogeneity(rng: np.random.Generator) -> pd.DataFrame:
    """Everyone has the same purchase rate and dropout probability (a ridge of BG/NBD)."""
    n = _size(rng)
    return simulate_beta_geo(
        1e6, 1e7, 1e6, 9e6, rng.integers(20, 60, n).astype(float), random_state=rng
    )


TRANSACTION_CASES: dict[str, Callable[[np.random.Generator], pd.DataFrame]] = {
    "simulated": _simulated,
    "all one-time buyers but one": _all_one_time_but_one,
    "everyone buys every period": _every_period,
    "ties": _ties,
    "single cohort": _single_cohort,
    "no heterogeneity": _no_heterogeneity,
}


def _discrete(frame: pd.DataFrame) -> pd.DataFrame:
    """BG/BB data: opportunities are whole periods; frequency and recency at most n."""
    n = np.maximum(np.round(frame["T"].to_numpy()), 1.0)
    x = np.minimum(frame["frequency"].to_numpy(), n)
    t_x = np.where(x > 0, np.clip(np.ceil(frame["recency"].to_numpy()), x, n), 0.0)
    return pd.DataFrame({"frequency": x, "recency": t_x, "n_periods": n})


def _spend(frame: pd.DataFrame, rng: np.random.Generator, case: str) -> pd.DataFrame:
    frequency = np.maximum(frame["frequency"].to_numpy(), 1.0)
    if case == "no heterogeneity":
        value = np.full(len(frequency), 25.0)  # everyone spends the same: a ridge
    elif case == "ties":
        value = np.array([10.0, 20.0, 40.0])[rng.integers(0, 3, len(frequency))]
    else:
        value = simulate_gamma_gamma(6.0, 4.0, 15.0, frequency, random_state=rng)
    return pd.DataFrame({"frequency": frequency, "monetary_value": value})


def _cohorts(rng: np.random.Generator, case: str) -> list[list[float]]:
    n = _size(rng)
    if case == "no heterogeneity":
        survival = 0.7 ** np.arange(8)
    elif case == "everyone buys every period":  # nobody leaves
        survival = np.ones(6)
    elif case == "all one-time buyers but one":  # all but one leave after the first period
        return [[float(n), 1.0, 1.0, 1.0]]
    elif case == "single cohort":
        survival = rng.beta(1.0, 3.0, n)[None, :] ** np.arange(7)[:, None]
        return [np.round((rng.random((7, n)) < survival).sum(axis=1) * 1.0).tolist()]
    else:
        p = rng.beta(0.7, 2.5, n)
        lifetimes = rng.geometric(p)
        return [[float((lifetimes > t).sum()) for t in range(8)]]
    return [np.round(n * survival).tolist()]


MODELS: dict[str, Callable[[], object]] = {
    "BG/NBD": BetaGeoModel,
    "MBG/NBD": ModifiedBetaGeoModel,
    "Pareto/NBD": ParetoNBDModel,
    "BG/BB": BetaGeoBetaBinomModel,
    "Gamma-Gamma": GammaGammaModel,
    "sBG": ShiftedBetaGeoModel,
    "BG/CNBD-2": lambda: BetaGeoCNBDModel(k=2),
    "MBG/CNBD-2": lambda: ModifiedBetaGeoCNBDModel(k=2),
    "BdW": BetaDiscreteWeibullModel,
}
COHORT_MODELS = {"sBG", "BdW"}
#: not yet listed: "GGom/NBD": GammaGompertzNBDModel. Its cases here all reach the best of 20
#: restarts (OPENBLAS_CORETYPE unset), but under Sandybridge "all one-time buyers but one"
#: seed 0 raises ConvergenceError: one start stops (ABNORMAL, max |gradient| 0.42) at an
#: objective 0.1551 below the 0.1606 that every other start and the oracle reach, so a better
#: region exists where the likelihood or its gradient is still inaccurate.


def _data(model_name: str, case: str, seed: int):
    rng = np.random.default_rng([seed, len(case), sum(map(ord, model_name + case))])
    if model_name in COHORT_MODELS:
        return _cohorts(rng, case)
    frame = TRANSACTION_CASES[case](rng)[["frequency", "recency", "T"]]
    if "CNBD" in model_name:  # the sum of log inter-purchase times: any value up to its bound
        x, t_x = frame["frequency"].to_numpy(), frame["recency"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            frame = frame.assign(litt=np.where(x > 0, x * np.log(t_x / x) - 0.5 * x, 0.0))
    if model_name == "BG/BB":
        return _discrete(frame)
    if model_name == "Gamma-Gamma":
        return _spend(frame, rng, case)
    return frame


# --------------------------------------------------------------------------------- the oracle
def _objective_and_patterns(model, data):
    """The model's own (unpenalized) objective on the compressed data, as the fitter sees it."""
    if hasattr(model, "k_"):  # CNBD-k: the objective at the fitted shape k
        model._k_fit = model.k_
    arrays, weights = model._prepare_fit(data, None)
    patterns, pattern_weights, _ = compress_rows(arrays, weights)
    patterns = model._prepare_patterns(patterns)
    return patterns, pattern_weights, float(pattern_weights.sum())


def _loglik_at(model, data, params: np.ndarray) -> float:
    """The objective's log-likelihood at ``params`` (for every model the same quantity the
    oracle maximises; CNBD-k adds a constant ``litt`` term to ``log_likelihood_``)."""
    patterns, weights, _ = _objective_and_patterns(model, data)
    return float(weights @ model._loglik(np.asarray(params, dtype=float), patterns))


def _best_of_random_restarts(model, data, seed: int) -> float:
    """The best log-likelihood that L-BFGS-B reaches from ``RESTARTS`` random points (on the
    objective of ``model``, fitted on ``data``: its fitted values are not used)."""
    patterns, weights, total = _objective_and_patterns(model, data)
    k = len(model._param_names)
    rng = np.random.default_rng(seed)
    best = -np.inf
    for _ in range(RESTARTS):
        theta0 = rng.uniform(-3.0, 5.0, k)
        with np.errstate(all="ignore"):
            result = optimize.minimize(
                model._objective,
                theta0,
                args=(patterns, weights, total),
                jac=True,
                method="L-BFGS-B",
                bounds=[(-_LOG_BOUND, _LOG_BOUND)] * k,
                options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
            )
        if np.isfinite(result.fun):
            ll = float(weights @ model._loglik(np.exp(result.x), patterns))
            best = max(best, ll) if np.isfinite(ll) else best
    return best


CASES = [
    (model, case, seed)
    for model in MODELS
    for case in TRANSACTION_CASES
    for seed in SEEDS
    if not (model == "Gamma-Gamma" and case == "everyone buys every period")  # = simulated
    and not (model in COHORT_MODELS - {"sBG"} and case == "ties")  # = simulated for cohorts
    # GGom/NBD's objective is a quadrature (each case 10-60 s with the oracle's 20 restarts):
    # both seeds only where its several optima showed (simulated, ties), one seed elsewhere
    and not (model == "GGom/NBD" and case not in {"simulated", "ties"} and seed != SEEDS[0])
]


@pytest.mark.slow  # 20 restarts of a plain optimiser per case: seconds each
@pytest.mark.parametrize(("model_name", "case", "seed"), CASES)
def test_fit_reaches_the_best_restart_or_says_why(model_name: str, case: str, seed: int) -> None:
    data = _data(model_name, case, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = MODELS[model_name]().fit(data)
        except (ConvergenceError, DataError) as error:
            assert re.search(ERRORS, str(error)), str(error)
            return
    for warning in caught:
        if issubclass(warning.category, CustvalWarning):
            assert re.search(WARNINGS, str(warning.message)), str(warning.message)
    assert np.all(np.isfinite(model.params_)) and np.isfinite(model.log_likelihood_)
    assert model.convergence_ in {"optimum", "ridge", "boundary"}
    fitted = _loglik_at(model, data, model.params_[list(model._param_names)].to_numpy())
    best = _best_of_random_restarts(model, data, seed)
    assert fitted >= best - REL_TOL * max(abs(best), 1.0), (
        f"fit {fitted!r} vs best restart {best!r} ({model.convergence_})"
    )


# --------------------------------------------------------------------------------- other CPUs
def _case_id(model_name: str, case: str, seed: int) -> str:
    return f"{model_name}|{case}|{seed}"


@functools.cache
def _fit_all() -> dict[str, float | str]:
    """Every case's fitted log-likelihood, or the name of the error it raised (computed once
    per process: the kernels' tests share one worker and compare against the same fits)."""
    outcomes: dict[str, float | str] = {}
    for model_name, case, seed in CASES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CustvalWarning)
            try:
                ll = MODELS[model_name]().fit(_data(model_name, case, seed)).log_likelihood_
                outcomes[_case_id(model_name, case, seed)] = float(ll)
            except (ConvergenceError, DataError) as error:
                outcomes[_case_id(model_name, case, seed)] = type(error).__name__
    return outcomes


def _kernels() -> list[str | None]:
    """OPENBLAS_CORETYPE unset, and two kernels every x86-64 CPU of the last decade runs."""
    return [None, "Haswell", "Sandybridge"] if platform.machine() in {"x86_64", "AMD64"} else [None]


@pytest.mark.slow
@pytest.mark.xdist_group("blas-kernels")
@pytest.mark.parametrize("kernel", _kernels(), ids=lambda k: k or "unset")
def test_on_other_blas_kernels(kernel: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    if kernel is not None:
        env["OPENBLAS_CORETYPE"] = kernel
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import numpy, threadpoolctl; print([i.get('architecture') for i in "
            "threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas'])",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    if kernel is not None and kernel.lower() not in probe.stdout.lower():
        pytest.skip(f"this numpy's OpenBLAS does not run the {kernel} kernel: {probe.stdout}")
    run = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    there = json.loads(run.stdout.strip().splitlines()[-1])
    here = dict(_fit_all())
    assert there.keys() == here.keys()
    for key, value in here.items():
        other = there[key]
        if isinstance(value, str) or isinstance(other, str):
            assert value == other, f"{key}: {value} here, {other} with {kernel} ({probe.stdout})"
        else:
            assert other == pytest.approx(value, rel=REL_TOL, abs=REL_TOL), (
                f"{key}: log-likelihood {value!r} here, {other!r} with {kernel}"
            )


if __name__ == "__main__":
    print(json.dumps(_fit_all()))
