"""Shared maximum-likelihood machinery for every custval model.

A model file owns only its mathematics: the per-row log-likelihood (and, ideally, its analytic
gradient), starting values and predictions. This base class owns the rest:

* validation of the input columns, once, with messages that name the column and the fix;
* compression: rows with identical data (e.g. the same ``frequency, recency, T``) are fitted once
  with a weight, so fitting scales with the number of distinct patterns, not customers;
* optimisation over log-parameters (every parameter of these models is positive) with L-BFGS-B
  and the analytic gradient, several starting points, and :class:`~custval.ConvergenceError`
  saying what failed and what to try;
* the penalizer, with one scaling for every model (see :meth:`BaseModel._objective`);
* standard errors from the observed information (Hessian of the log-likelihood), a ``summary``
  DataFrame with 95% intervals, AIC and BIC;
* unit safety (``fit(..., freq=)``, else the summary's ``attrs["freq"]``, is recorded as
  ``freq_`` at fit and checked at prediction);
* ``save``/``load`` to a small, versioned, human-readable JSON file (never pickle).

Subclasses define ``_param_names``, ``_data_columns``, ``_loglik`` (per-row log-likelihood at
natural parameters), optionally ``_loglik_grad`` (per-row log-likelihood and its gradient with
respect to the natural parameters, shape ``(n_rows, n_params)``), ``_initial_params`` and
``_validate_data`` for model-specific rules. Optional hooks: ``_prepare_patterns`` (called once
per fit on the compressed patterns, e.g. to index the unique frequencies so that special
functions of ``frequency`` are evaluated once per distinct value) and ``_extra_state`` /
``_set_extra_state`` (more fitted state for ``save``/``load``). Prediction methods convert
horizons with :meth:`BaseModel._duration`.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import optimize
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from custval import _engines
from custval._rows import compress_rows
from custval._units import normalize_freq, parse_duration, recorded_freq
from custval._validation import (
    bad_values_message,
    nonnegative_columns,
)
from custval.errors import ConvergenceError, CustvalWarning, DataError

__all__ = ["BaseModel", "TransactionModel", "load_model"]

#: Version of the JSON file format written by :meth:`BaseModel.save`. Increase it when a change
#: makes old readers misread new files; readers refuse files with a higher version.
FORMAT_VERSION = 1
_FORMAT_NAME = "custval-model"
_LOG_BOUND = 30.0  # log-parameters are kept in [-30, 30]: e^30 ~ 1e13
_Z95 = 1.959963984540054

_REGISTRY: dict[str, type[BaseModel]] = {}


def _same_values(summary: Any, data: Mapping[str, np.ndarray], columns: tuple[str, ...]) -> bool:
    """Whether ``summary`` has numeric ``columns`` equal to ``data``'s (no validation)."""
    if not isinstance(summary, pd.DataFrame):
        return False
    for column in columns:
        if column not in summary.columns:
            return False
        series = summary[column]
        if (
            not isinstance(series, pd.Series)
            or not pd.api.types.is_numeric_dtype(series)
            or pd.api.types.is_bool_dtype(series)
            or len(series) != len(data[column])
            or not np.array_equal(series.to_numpy(dtype=float), data[column])
        ):
            return False
    return True


#: How a fit is accepted (see :class:`_Optimality`); every test is relative to the objective
#: (the mean negative log-likelihood per customer) and to the curvature, so it holds on any CPU:
#: predicted remaining gain of a Newton step at an interior optimum, relative to max(1, |f|)
_DECREMENT_TOL = 1e-10
#: curvature below this fraction of the largest is a flat direction (ridge) of the likelihood
_FLAT_CURVATURE = 1e-7
#: on a ridge, the slope along its flat directions bounds the gain still available there (the
#: log-likelihood approaches its limit like e^-s in log-parameters); relative to max(1, |f|)
_RIDGE_SLOPE_TOL = 1e-8
#: where the objective itself is only accurate to ~1e-10 (quadrature, series), the tests above
#: sit at its noise floor; a point is then accepted if at least _AGREEING_STARTS starting points
#: reached the same objective to _AGREEMENT (relative) and the predicted gain is below
#: _AGREED_GAIN (relative): the log-likelihood is then pinned to ~1e-7, on any CPU
_AGREEING_STARTS = 3
_AGREEMENT = 1e-8
_AGREED_GAIN = 1e-7
#: polishing stops when a round gains less than this, relative to max(1, |f|)
_POLISH_GAIN = 1e-13
_POLISH_ROUNDS = 8
_HESSIAN_STEP = 1e-5
#: Newton's method (models with an exact Hessian) stops below this decrement, relative to
#: max(1, |f|): well below _DECREMENT_TOL, so its end point is an optimum by _Optimality
_NEWTON_TOL = 1e-13
#: the largest Newton step in any coordinate (log-parameters, coefficients)
_NEWTON_MAX_STEP = 2.0
_CONVERGENCE_ADVICE = (
    "Try: a small penalizer_coef (e.g. 0.001); initial_params close to a previous fit; "
    "checking that the summary's unit is sensible (T in the hundreds rather than the tens of "
    "thousands) and that frequency, recency and T are consistent."
)


def _describe_attempt(start: np.ndarray, result: optimize.OptimizeResult, finite: bool) -> str:
    grad = float(np.max(np.abs(result.jac))) if finite else math.inf
    return (
        f"start {np.round(start, 4).tolist()}: {str(result.message).strip()} "
        f"(objective {result.fun:.8g}, max |gradient| {grad:.2g})"
    )


def _starts_agree(objectives: list[float], best: float) -> bool:
    """Whether enough starting points reached the best objective (see ``_AGREEMENT``)."""
    close = [f for f in objectives if f - best <= _AGREEMENT * max(1.0, abs(best))]
    return len(close) >= _AGREEING_STARTS


def _newton_direction(hessian: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """``H^-1 g``, with ``H``'s eigenvalues replaced by ``max(|lambda|, _FLAT_CURVATURE *
    max |lambda|)`` where ``H`` is not positive definite (a descent direction either way)."""
    try:
        chol = np.linalg.cholesky(hessian)
        return np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
    except np.linalg.LinAlgError:
        eigenvalues, vectors = np.linalg.eigh(hessian)
        floor = _FLAT_CURVATURE * max(float(np.max(np.abs(eigenvalues))), 1e-300)
        return vectors @ ((vectors.T @ grad) / np.maximum(np.abs(eigenvalues), floor))


def _sparse_basis(vectors: np.ndarray) -> list[np.ndarray]:
    """A basis of the span of ``vectors`` (columns) in reduced row-echelon form, so that
    independent ridges (e.g. ``r, alpha`` and ``a, b``) come out apart, not mixed."""
    rows = vectors.T.copy()
    pivots: list[int] = []
    for i in range(len(rows)):
        free = [j for j in range(rows.shape[1]) if j not in pivots]
        j = free[int(np.argmax(np.abs(rows[i, free])))]
        rows[i] /= rows[i, j]
        for other in range(len(rows)):
            if other != i:
                rows[other] -= rows[other, j] * rows[i]
        pivots.append(j)
    rows[np.abs(rows) < 1e-3 * np.max(np.abs(rows), axis=1, keepdims=True)] = 0.0
    return list(rows)


class _Optimality:
    """What the mathematics says about a point of the objective (log-parameters ``theta``).

    The objective is the penalized mean negative log-likelihood ``f``; ``g`` and ``H`` its
    gradient and Hessian in log-parameters. Coordinates at the search bound whose gradient
    points outwards are held fixed (a *boundary*). On the others, ``H``'s eigenvalues split the
    directions into determined ones (curvature above ``_FLAT_CURVATURE`` of the largest) and
    flat ones (a *ridge*). Then:

    * ``"optimum"``: no flat direction, no bound, and the Newton decrement ``g'H^-1 g / 2``
      (the gain a Newton step predicts) is below ``_DECREMENT_TOL * max(1, |f|)``;
    * ``"ridge"`` / ``"boundary"``: the decrement over the determined directions is below that
      tolerance and the slope along the flat directions (which bounds what is still to gain
      there) is below ``_RIDGE_SLOPE_TOL * max(1, |f|)``: the log-likelihood is at its maximum
      to that precision, but some parameters are not identified;
    * ``"not converged"``: anything else.

    These criteria are scale-aware (relative to ``f`` and to the curvature) rather than an
    absolute gradient threshold that one CPU's rounding meets and another's does not.
    """

    def __init__(self, theta, value, grad, hessian, outcome, decrement, slope, fixed, flat):
        self.theta, self.value, self.grad, self.hessian = theta, value, grad, hessian
        self.outcome, self.decrement, self.slope = outcome, decrement, slope
        self.fixed, self.flat = fixed, flat
        self.max_grad = float(np.max(np.abs(grad))) if grad.size else 0.0

    @classmethod
    def at(
        cls,
        theta: np.ndarray,
        value: float,
        grad: np.ndarray,
        hessian: np.ndarray,
        *,
        decrement_tol: float = _DECREMENT_TOL,
        slope_tol: float = _RIDGE_SLOPE_TOL,
    ):
        k = len(theta)
        fixed = ((theta >= _LOG_BOUND - 1e-6) & (grad < 0)) | (
            (theta <= -_LOG_BOUND + 1e-6) & (grad > 0)
        )
        free = np.flatnonzero(~fixed)
        scale = max(1.0, abs(value))
        if not np.all(np.isfinite(hessian)) or not np.isfinite(value):
            return cls(
                theta,
                value,
                grad,
                hessian,
                "not converged",
                math.inf,
                math.inf,
                fixed,
                np.zeros((k, 0)),
            )
        eigenvalues, vectors = np.linalg.eigh(hessian[np.ix_(free, free)])
        largest = float(np.max(np.abs(eigenvalues))) if len(eigenvalues) else 0.0
        is_flat = eigenvalues <= _FLAT_CURVATURE * max(largest, 1e-300)
        along = vectors.T @ grad[free]
        decrement = 0.5 * float(np.sum(along[~is_flat] ** 2 / eigenvalues[~is_flat]))
        slope = float(np.sum(np.abs(along[is_flat])))
        flat = np.zeros((k, int(is_flat.sum())))
        flat[free] = vectors[:, is_flat]
        if decrement > decrement_tol * scale or slope > slope_tol * scale:
            outcome = "not converged"
        elif np.any(fixed):
            outcome = "boundary"
        elif np.any(is_flat):
            outcome = "ridge"
        else:
            outcome = "optimum"
        return cls(theta, value, grad, hessian, outcome, decrement, slope, fixed, flat)

    def describe(self, names: tuple[str, ...]) -> str:
        """A sentence for the warning: which parameters the data cannot pin, and why."""
        # regression coefficients ("group:covariate") are optimised as themselves
        params = np.where([":" not in n for n in names], np.exp(self.theta), self.theta)
        parts = []
        for i in np.flatnonzero(self.fixed):
            edge = "grows" if self.theta[i] > 0 else "shrinks towards 0"
            parts.append(
                f"{names[i]} reached {params[i]:.3g} at the edge of the search (the "
                f"likelihood still rises as it {edge})"
            )
        for v in _sparse_basis(self.flat):
            involved = np.flatnonzero(np.abs(v) >= 0.25 * np.max(np.abs(v)))
            if len(involved) == 2:
                i1, i2 = involved
                if np.sign(v[i1]) == np.sign(v[i2]):
                    kept = f"{names[i1]}/{names[i2]} stays near {params[i1] / params[i2]:.4g}"
                else:
                    kept = f"{names[i1]}*{names[i2]} stays near {params[i1] * params[i2]:.4g}"
                parts.append(
                    f"the likelihood is flat along a ridge on which {names[i1]} and "
                    f"{names[i2]} move together ({kept})"
                )
            else:
                listed = ", ".join(names[i] for i in involved)
                parts.append(f"the likelihood is flat along a ridge involving {listed}")
        return (
            "; ".join(parts)
            + ". The fit is at the maximum of the likelihood, but the data cannot tell these "
            "values apart (typically: no heterogeneity between customers in that process), so "
            "predictions are reliable while those parameters and their standard errors are not "
            "(standard errors are NaN). A small penalizer_coef (e.g. 0.001) picks one point; "
            "convergence_ says " + repr(self.outcome) + "."
        )


class BaseModel(BaseEstimator):
    """Base class of the custval models (not used directly).

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        L2 penalty on the natural parameters, added to the *mean* negative log-likelihood per
        customer: ``-loglik / n_customers + penalizer_coef * sum(params ** 2)``. This is
        lifetimes' scaling for BG/NBD, MBG/NBD and Gamma-Gamma, so penalized fits agree with
        lifetimes there; note that lifetimes fits BG/NBD and MBG/NBD on time rescaled so that
        the largest ``T`` is 1, so its penalty on ``alpha`` matches custval's only on data in
        that unit (lifetimes' Pareto/NBD divides by the mean weight instead; custval uses the
        one scaling above for every model).
    initial_params : mapping of str to float, optional
        Starting values; tried first, before the model's own data-based guesses.
    tol : float, default 1e-10
        Convergence tolerance of the optimiser on the gradient of the log-parameters.
    max_iter : int, default 2000
        Maximum optimiser iterations per starting point.
    """

    _param_names: ClassVar[tuple[str, ...]] = ()
    _data_columns: ClassVar[tuple[str, ...]] = ()
    #: human name used in messages, e.g. "BG/NBD"
    _display_name: ClassVar[str] = ""
    #: L-BFGS-B's relative-reduction stopping tolerance on the mean negative log-likelihood.
    #: 1e-15 stops only at rounding level (L-BFGS-B may then spend dozens of evaluations in
    #: line searches that cannot improve); models whose optimum is well scaled use 1e-12, which
    #: still pins the parameters to ~1e-6 relative.
    _ftol: ClassVar[float] = 1e-15

    def __init__(
        self,
        *,
        penalizer_coef: float = 0.0,
        initial_params: Mapping[str, float] | None = None,
        tol: float = 1e-10,
        max_iter: int = 2000,
    ) -> None:
        self.penalizer_coef = penalizer_coef
        self.initial_params = initial_params
        self.tol = tol
        self.max_iter = max_iter

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._param_names:
            _REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ hooks for subclasses
    def _loglik(self, params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        """Per-row log-likelihood at natural ``params``; shape ``(n_rows,)``."""
        raise NotImplementedError

    def _loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-row log-likelihood and its gradient, shapes ``(n,)`` and ``(n, n_params)``.

        The default differentiates :meth:`_loglik` numerically; models override it with the
        analytic gradient.
        """
        ll = self._loglik(params, data)
        grad = np.empty((ll.shape[0], len(params)))
        for i in range(len(params)):
            step = 1e-6 * params[i]
            up, down = params.copy(), params.copy()
            up[i] += step
            down[i] -= step
            grad[:, i] = (self._loglik(up, data) - self._loglik(down, data)) / (2 * step)
        return ll, grad

    def _weighted_loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """Weighted total log-likelihood and its gradient (natural parameters), ``(k,)``.

        This is what the optimiser evaluates. The default sums :meth:`_loglik_grad` with the
        weights; models may override it to sum terms that depend on few distinct values (e.g.
        functions of ``frequency``) once per value, without forming the per-row gradient.
        """
        ll, grad = self._loglik_grad(params, data)
        return float(np.dot(weights, ll)), grad.T @ weights

    def _weighted_loglik_hessian(
        self, params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray] | None:
        """Weighted total log-likelihood, gradient and exact Hessian (natural parameters), or
        ``None`` (the default) where the model has no analytic Hessian for ``data``.

        When it has one, fits minimise by Newton's method (:meth:`_minimize_newton`: a few
        passes over the data instead of L-BFGS-B's dozens) and the optimality check and
        standard errors use it instead of differencing the gradient.
        """
        return None

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        """A data-based starting point (natural parameters)."""
        return np.ones(len(self._param_names))

    def _validate_data(self, data: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
        """Model-specific checks on the extracted columns; raise ``DataError``."""

    def _compressible(self, data: Mapping[str, np.ndarray]) -> bool:
        """Whether compressing identical rows can pay (default: always). Compression only
        saves work, so a model may skip it where the rows are known to be nearly all
        distinct (a continuous covariate), fitting the rows as they are."""
        return True

    def _prepare_patterns(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Called once per fit on the compressed patterns, before optimisation.

        Models may return a copy with derived arrays added under keys starting with ``"_"``
        (e.g. the unique frequencies and their inverse index, see :func:`unique_index`);
        ``_loglik`` and ``_loglik_grad`` then receive that dictionary at every evaluation, and
        must still accept the plain columns when the keys are absent. Default: unchanged.
        """
        return data

    # ------------------------------------------------------------------ input handling
    def _extract(
        self,
        summary: pd.DataFrame,
        columns: tuple[str, ...] | None = None,
        *,
        what: str = "summary",
    ) -> dict[str, np.ndarray]:
        """Validate ``columns`` of ``summary`` once and return them as float arrays."""
        columns = self._data_columns if columns is None else columns
        data = nonnegative_columns(
            summary,
            columns,
            what=what,
            hint="Build it with custval.rfm_summary or rename your columns to custval's vocabulary",
        )
        self._validate_data(data, summary)
        return data

    @staticmethod
    def _check_frequency_recency(
        data: Mapping[str, np.ndarray], frame: pd.DataFrame, horizon: str = "T"
    ) -> None:
        """Shared rules for frequency/recency/T summaries (used by several models)."""
        x, t_x, big_t = data["frequency"], data["recency"], data[horizon]
        # the usual case first, in few passes; the masks below name what is wrong
        if (
            np.array_equal(np.floor(x), x)
            and not np.any(t_x > big_t * (1 + 1e-12))
            and np.array_equal(x == 0, t_x == 0)
        ):
            return
        checks = [
            (
                x != np.round(x),
                "frequency",
                "non-integer frequencies",
                "frequency counts repeat purchase periods and must be a whole number",
            ),
            (
                t_x > big_t * (1 + 1e-12),
                "recency",
                f"values greater than {horizon!r}",
                f"recency is the age at the last purchase and cannot exceed {horizon!r}; check "
                "that both are in the same unit",
            ),
            (
                (x == 0) & (t_x != 0),
                "recency",
                "non-zero values where frequency is 0",
                "customers without repeat purchases have recency 0 (lifetimes' convention)",
            ),
            (
                (x > 0) & (t_x == 0),
                "recency",
                "zero values where frequency is positive",
                "a repeat purchase happens after the first, so its recency is positive",
            ),
        ]
        for mask, column, problem, fix in checks:
            if np.any(mask):
                raise DataError(bad_values_message(frame, mask, column, problem, fix))

    def _weights(self, weights: Any, n_rows: int) -> np.ndarray:
        if weights is None:
            return np.ones(n_rows)
        w = np.asarray(weights, dtype=float)
        if w.shape != (n_rows,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise DataError(
                f"weights must be {n_rows:,} finite, non-negative numbers (one per "
                f"row of the summary); got shape {w.shape}"
            )
        return w

    def _prepare_fit(
        self, summary: pd.DataFrame, weights: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Extract and validate the fitting data; models with other inputs override this."""
        data = self._extract(summary)
        return data, self._weights(weights, len(summary))

    def _check_unit(self, summary: Any) -> None:
        fitted, given = getattr(self, "freq_", None), getattr(summary, "attrs", {}).get("freq")
        if fitted is not None and given is not None and normalize_freq(given) != fitted:
            raise DataError(
                f"this {self._name()} was fitted on a summary in unit {fitted!r} but the summary "
                f"given is in unit {normalize_freq(given)!r}; rebuild the summary with "
                f"freq={fitted!r} (custval.rfm_summary) so that t, recency and T mean the same"
            )

    def _prediction_data(
        self, summary: pd.DataFrame, columns: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Validate a summary for prediction: fitted model, columns present, same unit.

        The model remembers the validated columns of the last summary (read-only copies): when
        the next prediction gets the same values (``expected_purchases`` then
        ``probability_alive`` on one summary, or several horizons), the same dictionary is
        returned without validating again, with what the model derived from it under keys
        starting with ``"_"`` (e.g. the BG/NBD's index of distinct values and P(alive)). This
        memory is not pickled and is not part of the fitted state.
        """
        check_is_fitted(self, "params_")
        self._check_unit(summary)
        columns = tuple(self._data_columns if columns is None else columns)
        memo = self.__dict__.get("_prediction_memo")
        if memo is not None and memo[0] == columns and _same_values(summary, memo[1], columns):
            return memo[1]
        data: dict[str, Any] = self._extract(summary, columns)
        for column in columns:
            data[column] = np.array(data[column])  # a copy: the summary may change in place
            data[column].flags.writeable = False
        self._prediction_memo = (columns, data)
        return data

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object.__getstate__ is the live __dict__
        state.pop("_prediction_memo", None)  # remembered prediction data is not fitted state
        return state

    def log_likelihood(self, summary: pd.DataFrame) -> pd.Series:
        """Each customer's log-likelihood at the fitted parameters.

        The model's own per-row likelihood (the one ``fit`` maximises, cited in the model's
        module); on the summary the model was fitted on (unweighted) it sums to
        ``log_likelihood_``. Rows outside the likelihood (Gamma-Gamma: customers without repeat
        purchases) are NaN.

        Parameters
        ----------
        summary : DataFrame
            Customers with the model's columns, in the unit of the fit.

        Returns
        -------
        Series
            ``log_likelihood``, aligned with ``summary.index``.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import BetaGeoModel
        >>> model = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> customers = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 30.4], "T": 38.9})
        >>> model.log_likelihood(customers).round(3).tolist()
        [-0.555, -9.46]
        """
        check_is_fitted(self, "params_")
        self._check_unit(summary)
        data = self._extract(summary)
        included = self._likelihood_rows(data)
        values = np.full(len(summary), np.nan)
        if included.any():
            rows = {k: v[included] for k, v in data.items()}
            patterns, _, inverse = compress_rows(rows, np.ones(int(included.sum())))
            params = self.params_[list(self._param_names)].to_numpy(dtype=float)
            values[included] = self._loglik(params, self._prepare_patterns(patterns))[inverse]
        return self._series(values, summary, "log_likelihood")

    def _likelihood_rows(self, data: Mapping[str, np.ndarray]) -> np.ndarray:
        """The rows of a summary the likelihood covers (every row unless a model says)."""
        return np.ones(len(next(iter(data.values()))), dtype=bool)

    def _series(self, values: np.ndarray, summary: pd.DataFrame, name: str) -> pd.Series:
        return pd.Series(np.asarray(values, dtype=float), index=summary.index, name=name)

    def _duration(self, t: Any, *, name: str = "t") -> float | np.ndarray:
        """Convert a horizon to the model's time unit: a float for a scalar, else an array.

        A string carries its unit (``"39W"``, ``"365D"``, ``"12M"``) and is converted to the
        unit of the data the model was fitted on (``freq_``); a bare number is taken to be in
        that unit already (periods of the summary's ``recency`` and ``T``). Horizons must be
        finite and non-negative.
        """
        scalar = np.ndim(t) == 0
        items = [t] if scalar else list(np.asarray(t, dtype=object).ravel())
        values = np.empty(len(items))
        for i, item in enumerate(items):
            if isinstance(item, str):
                if getattr(self, "freq_", None) is None:
                    raise DataError(
                        f"{name}={item!r} has a unit, but this {self._name()} does not know the "
                        "time unit of its data (it was fitted without freq= on a summary "
                        f"without attrs['freq']); give {name} as a number of the summary's "
                        "periods, or refit with fit(summary, freq='W') (the summary's unit; "
                        "from_params takes freq= too)"
                    )
                values[i] = parse_duration(item, to=self.freq_)
            else:
                try:
                    values[i] = float(item)
                except (TypeError, ValueError):
                    raise DataError(
                        f"{name} must be a number of periods or a duration such as '52W', "
                        f"got {item!r}"
                    ) from None
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise DataError(
                f"{name} must be finite and >= 0 (a horizon in the summary's time unit), got {t!r}"
            )
        return float(values[0]) if scalar else values.reshape(np.shape(t))

    # ------------------------------------------------------------------ fitting
    def fit(self, summary: pd.DataFrame, weights: Any = None, *, freq: str | None = None) -> Self:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        summary : DataFrame or EngineSummary
            One row per customer (or per pattern, with ``weights``) with the model's columns.
            An :class:`custval.EngineSummary` (DuckDB or Spark) is fitted on its distinct
            patterns (:func:`custval.summary_patterns`), collected from the engine.
        weights : array-like, optional
            Number of customers each row stands for (default 1 each).
        freq : {"D", "W", "M", "Y", "h"}, optional
            The time unit of ``recency`` and ``T``, recorded as ``freq_`` so that horizons
            such as ``t="13W"`` are converted to it. Defaults to ``summary.attrs["freq"]``
            (which :func:`custval.rfm_summary` sets and pandas drops in ``merge``); a
            ``DataError`` when both are given and differ. Without either, horizons must be
            numbers of the summary's periods.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> from custval import BetaGeoModel
        >>> from custval.datasets import simulate_beta_geo
        >>> weeks = simulate_beta_geo(0.243, 4.414, 0.793, 2.426, np.full(2000, 39.0))
        >>> merged = weeks.join(weeks[["frequency"]].rename(columns={"frequency": "x"}))
        >>> model = BetaGeoModel().fit(merged, freq="W")  # the merge dropped attrs["freq"]
        >>> model.freq_, round(model.expected_purchases_new_customer("13W"), 3)
        ('W', 0.513)
        """
        if _engines.is_engine_summary(summary):  # DuckDB/Spark: fit on the collected patterns
            patterns, w = _engines.fit_arguments(summary, self._data_columns, weights)
            return self.fit(patterns, w, freq=freq)
        self._record_unit(summary, freq)
        data, w = self._prepare_fit(summary, weights)
        return self._fit_arrays(data, w)

    def _record_unit(self, data: Any, freq: str | None) -> None:
        """Set ``freq_`` at fit: the explicit ``freq``, else ``data.attrs["freq"]``, else None
        (:func:`custval._units.recorded_freq`, which refuses the two disagreeing)."""
        self.freq_ = recorded_freq(data, freq)

    def _fit_arrays(self, data: dict[str, np.ndarray], weights: np.ndarray) -> Self:
        # The likelihoods are vectorised elementwise code plus dot products over the patterns.
        # Multi-threaded BLAS gains nothing on those, and when the cores are busy its spinning
        # threads make each dot product up to 100x slower, so fitting uses one BLAS thread.
        with threadpool_limits(limits=1, user_api="blas"):
            try:
                return self._fit_compressed(data, weights)
            finally:
                self.__dict__.pop("_hessian_memo", None)

    def _fit_compressed(self, data: dict[str, np.ndarray], weights: np.ndarray) -> Self:
        keep = weights > 0
        if not np.all(keep):
            data = {k: v[keep] for k, v in data.items()}
            weights = weights[keep]
        if weights.sum() <= 0:
            raise DataError(
                f"{self._name()} needs at least one customer to fit; the summary "
                "is empty (or every weight is 0)"
            )
        if self._compressible(data):
            patterns, pattern_weights, _ = compress_rows(data, weights)
        else:
            patterns, pattern_weights = data, weights
        patterns = self._prepare_patterns(patterns)
        total = float(pattern_weights.sum())
        args = (patterns, pattern_weights, total)
        attempts: list[str] = []
        objectives: list[float] = []
        best: optimize.OptimizeResult | None = None
        check: _Optimality | None = None
        for start in self._starting_points(patterns, pattern_weights):
            theta0 = np.clip(self._to_theta(start), -_LOG_BOUND + 1, _LOG_BOUND - 1)
            result = self._minimize(theta0, args)
            finite = np.isfinite(result.fun) and np.all(np.isfinite(result.x))
            attempts.append(_describe_attempt(start, result, finite))
            if finite:
                objectives.append(float(result.fun))
            if not finite or (best is not None and result.fun >= best.fun):
                continue
            best = result
            check = self._optimality(best.x, args)
            # a verified interior optimum ends the search; anything else (a ridge, a boundary,
            # a stop before the optimum) lets the remaining starts look for a better point
            if check.outcome == "optimum":
                break
        if best is None or check is None:
            raise ConvergenceError(
                f"{self._name()}: the log-likelihood is not finite at any of the "
                f"{len(attempts)} points the optimiser reached:\n"
                + "\n".join(f"  - {a}" for a in attempts)
                + "\n"
                + _CONVERGENCE_ADVICE
            )
        if check.outcome != "optimum":
            best, check = self._polish(best, check, args)
        if check.outcome == "not converged" and _starts_agree(objectives, best.fun):
            check = _Optimality.at(
                check.theta,
                check.value,
                check.grad,
                check.hessian,
                decrement_tol=_AGREED_GAIN,
                slope_tol=_AGREED_GAIN,
            )
        if check.outcome == "not converged":
            raise ConvergenceError(
                f"{self._name()} did not converge from any of {len(attempts)} starting points: "
                f"the best point still has a predicted improvement of {check.decrement:.2g} in "
                f"the mean log-likelihood per customer (max |gradient| {check.max_grad:.2g}):\n"
                + "\n".join(f"  - {a}" for a in attempts)
                + "\n"
                + _CONVERGENCE_ADVICE
            )
        params = self._to_natural(best.x)
        self.params_ = pd.Series(params, index=list(self._param_names), name="estimate")
        memo = self.__dict__.get("_hessian_memo")
        if memo is not None and memo[0] is patterns and np.array_equal(memo[1], best.x):
            self.log_likelihood_ = memo[3]  # from the Newton fit's last evaluation
        else:
            ll = self._loglik(params, patterns)
            self.log_likelihood_ = float(np.dot(pattern_weights, ll))
        self.n_customers_ = total
        self.n_patterns_ = len(pattern_weights)
        self.n_iter_ = int(best.nit)
        self.converged_ = True
        self.convergence_ = check.outcome
        if check.outcome != "optimum":
            warnings.warn(
                f"{self._name()}: {check.describe(self._param_names)}",
                CustvalWarning,
                stacklevel=4,
            )
        # on a ridge or a boundary the parameters are not identified: no standard errors
        self.variance_matrix_ = self._variance(
            best.x, check.hessian * total if check.outcome == "optimum" else None
        )
        return self

    def _minimize(
        self, theta0: np.ndarray, args: tuple[Any, ...], ftol: float | None = None
    ) -> optimize.OptimizeResult:
        """One run over the log-parameters from ``theta0``: Newton's method where the model has
        an exact Hessian for the data (L-BFGS-B from where Newton stops, if it stops short),
        L-BFGS-B otherwise."""
        if self._objective_hessian(theta0, *args) is not None:
            result = self._minimize_newton(theta0, args)
            if result.success or not np.isfinite(result.fun):
                return result
            theta0 = result.x
        with np.errstate(all="ignore"):
            return optimize.minimize(
                self._objective,
                theta0,
                args=args,
                jac=True,
                method="L-BFGS-B",
                bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(theta0),
                options={
                    "maxiter": self.max_iter,
                    "ftol": self._ftol if ftol is None else ftol,
                    "gtol": self.tol,
                    "maxcor": 20,
                },
            )

    def _optimality(self, theta: np.ndarray, args: tuple[Any, ...]) -> _Optimality:
        """Classify a point by the mathematics of the objective, not by how L-BFGS-B stopped."""
        exact = self._objective_hessian(theta, *args)
        if exact is not None:
            return _Optimality.at(theta, *exact)
        value, grad = self._objective(theta, *args)
        return _Optimality.at(theta, value, grad, self._hessian(theta, args))

    def _minimize_newton(
        self, theta0: np.ndarray, args: tuple[Any, ...]
    ) -> optimize.OptimizeResult:
        """Damped Newton's method on the objective with its exact Hessian.

        Each iteration solves ``H step = g`` (where ``H`` is not positive definite, with its
        eigenvalues replaced by their absolute values, floored at ``_FLAT_CURVATURE`` of the
        largest), caps the step at ``_NEWTON_MAX_STEP`` in any coordinate, and halves it until
        the objective falls by at least 1e-4 of the predicted gain (Armijo). It stops when the
        Newton decrement ``g'H^-1 g / 2`` is below ``_NEWTON_TOL * max(1, |f|)`` (success),
        or when no step lowers the objective (the caller then continues with L-BFGS-B).
        """
        theta = np.asarray(theta0, dtype=float).copy()
        value, grad, hessian = self._objective_hessian(theta, *args)
        message, success, nit = "maximum number of iterations reached", False, 0
        while nit < self.max_iter:
            if not np.isfinite(value) or not np.all(np.isfinite(hessian)):
                message = "the objective or its Hessian is not finite"
                break
            step = _newton_direction(hessian, grad)
            gain = float(grad @ step)
            if 0.5 * gain <= _NEWTON_TOL * max(1.0, abs(value)):
                message, success = "Newton decrement below tolerance", True
                break
            largest = float(np.max(np.abs(step)))
            if largest > _NEWTON_MAX_STEP:
                step, gain = step * (_NEWTON_MAX_STEP / largest), gain * _NEWTON_MAX_STEP / largest
            scale, accepted = 1.0, None
            while scale >= 2.0**-20:
                trial = np.clip(theta - scale * step, -_LOG_BOUND, _LOG_BOUND)
                point = self._objective_hessian(trial, *args)
                if point[0] <= value - 1e-4 * scale * gain:
                    accepted = trial, point
                    break
                scale *= 0.5
            if accepted is None:
                # at rounding level already an optimum by _Optimality's standard: done
                success = 0.5 * gain <= 1e-2 * _DECREMENT_TOL * max(1.0, abs(value))
                message = "no Newton step lowers the objective"
                break
            theta, (value, grad, hessian) = accepted
            nit += 1
        return optimize.OptimizeResult(
            x=theta, fun=value, jac=grad, nit=nit, message=message, success=success
        )

    def _objective_hessian(
        self, theta: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray, total: float
    ) -> tuple[float, np.ndarray, np.ndarray] | None:
        """:meth:`_objective` with its exact Hessian in the optimiser's coordinates, or ``None``
        without :meth:`_weighted_loglik_hessian`; the last point is remembered during a fit.

        With ``theta = log p`` for the positive parameters, ``d^2 f / d theta^2 = D H_p D +
        diag(g_p p)`` (``D = diag(p)``; 1 and no second term for coefficients), where ``H_p``
        and ``g_p`` are the natural-parameter Hessian and gradient of ``f``.
        """
        memo = self.__dict__.get("_hessian_memo")
        if memo is not None and memo[0] is data and np.array_equal(memo[1], theta):
            return memo[2]
        params = self._to_natural(theta)
        with np.errstate(all="ignore"):
            exact = self._weighted_loglik_hessian(params, data, weights)
        if exact is None:
            return None
        ll_sum, grad_sum, hess_sum = exact
        positive = self._positive_mask()
        positive = np.ones(len(theta), dtype=bool) if positive is None else positive
        penalty = np.where(positive, self.penalizer_coef, getattr(self, "covariate_penalty_", 0.0))
        value = -ll_sum / total + np.sum(penalty * params**2)
        grad_params = -grad_sum / total + 2 * penalty * params
        jacobian = np.where(positive, params, 1.0)
        hessian = (-hess_sum / total + np.diag(2 * penalty)) * np.outer(jacobian, jacobian)
        hessian[np.diag_indices_from(hessian)] += np.where(positive, grad_params * params, 0.0)
        if not np.isfinite(value) or not np.all(np.isfinite(grad_params)):
            result = (math.inf, np.zeros_like(theta), np.full_like(hessian, np.nan))
        else:
            result = (float(value), grad_params * jacobian, 0.5 * (hessian + hessian.T))
        self.__dict__["_hessian_memo"] = (data, theta.copy(), result, float(ll_sum))
        return result

    def _polish(
        self, best: optimize.OptimizeResult, check: _Optimality, args: tuple[Any, ...]
    ) -> tuple[optimize.OptimizeResult, _Optimality]:
        """Improve the best point until the objective stops falling (see ``_Optimality``).

        Each round walks along the flat directions of the Hessian (a ridge: steps of 1, 2, 4,
        ... in log-parameters, downhill, while the objective falls), restarts L-BFGS-B with a
        fresh curvature memory (its line search often stops early on a ridge) and takes a
        Newton step where the Hessian is positive definite. Stops at a verified optimum, or
        when a round gains less than ``_POLISH_GAIN`` relative to the objective.
        """
        # max_iter bounds the polish too (one L-BFGS-B run and one Newton step a round)
        for _ in range(min(_POLISH_ROUNDS, self.max_iter)):
            previous = best.fun
            theta, value = self._walk_ridge(best.x, best.fun, check, args)
            result = self._minimize(theta, args, ftol=0.0)
            if np.isfinite(result.fun) and result.fun < value:
                theta, value, nit = result.x, result.fun, best.nit + result.nit
            else:
                nit = best.nit
            newton = self._newton_step(theta, value, args)
            if newton is not None:
                theta, value = newton
            best = optimize.OptimizeResult(x=theta, fun=value, nit=nit, message=best.message)
            check = self._optimality(best.x, args)
            if check.outcome == "optimum":
                break
            if previous - best.fun <= _POLISH_GAIN * max(1.0, abs(best.fun)):
                break
        return best, check

    def _walk_ridge(
        self, theta: np.ndarray, value: float, check: _Optimality, args: tuple[Any, ...]
    ) -> tuple[np.ndarray, float]:
        """Move downhill along each flat direction with doubling steps while it pays."""
        for j in range(check.flat.shape[1]):
            direction = check.flat[:, j]
            slope = float(direction @ check.grad)
            if slope == 0:
                continue
            direction = -np.sign(slope) * direction
            step = 1.0
            while step <= 2.0**5:
                trial = np.clip(theta + step * direction, -_LOG_BOUND, _LOG_BOUND)
                trial_value = self._objective(trial, *args)[0]
                if not trial_value < value:
                    break
                theta, value = trial, trial_value
                step *= 2
        return theta, value

    def _newton_step(
        self, theta: np.ndarray, value: float, args: tuple[Any, ...]
    ) -> tuple[np.ndarray, float] | None:
        """A Newton step with backtracking, where the Hessian is positive definite."""
        _, grad = self._objective(theta, *args)
        try:
            chol = np.linalg.cholesky(self._hessian(theta, args))
        except np.linalg.LinAlgError:
            return None
        step = np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
        for scale in (1.0, 0.5, 0.25, 0.125):
            trial = np.clip(theta - scale * step, -_LOG_BOUND, _LOG_BOUND)
            trial_value = self._objective(trial, *args)[0]
            if trial_value < value:
                return trial, trial_value
        return None

    def _starting_points(
        self, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> list[np.ndarray]:
        k = len(self._param_names)
        starts = []
        if self.initial_params is not None:
            unknown = set(self.initial_params) - set(self._param_names)
            if unknown:
                raise DataError(
                    f"initial_params has unknown parameter(s) {sorted(unknown)}; "
                    f"{self._name()} has {list(self._param_names)}"
                )
            guess = self._initial_params(data, weights).astype(float)
            for i, name in enumerate(self._param_names):
                if name in self.initial_params:
                    guess[i] = float(self.initial_params[name])
            positive = self._positive_mask()
            if np.any(~np.isfinite(guess)) or np.any(
                guess[positive] <= 0 if positive is not None else guess <= 0
            ):
                raise DataError(
                    f"initial_params must be positive and finite, got {dict(self.initial_params)}"
                )
            starts.append(guess)
        starts.append(np.asarray(self._initial_params(data, weights), dtype=float))
        positive = self._positive_mask()
        starts.append(np.ones(k) if positive is None else positive.astype(float))
        rng = np.random.default_rng(0)
        starts.extend(starts[0] * np.exp(rng.normal(0, 1, size=k)) for _ in range(3))
        return starts

    def _objective(
        self, theta: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray, total: float
    ) -> tuple[float, np.ndarray]:
        """Penalized mean negative log-likelihood and its gradient in log-parameters.

        With regression coefficients (see :meth:`_positive_mask`), those enter as themselves
        (identity transform) and carry ``covariate_penalty_`` instead of ``penalizer_coef``.
        """
        positive = self._positive_mask()
        if positive is not None:
            return self._objective_mixed(theta, data, weights, total, positive)
        params = np.exp(theta)
        with np.errstate(all="ignore"):
            ll_sum, grad_sum = self._weighted_loglik_grad(params, data, weights)
        value = -ll_sum / total + self.penalizer_coef * np.sum(params**2)
        grad_params = -grad_sum / total + 2 * self.penalizer_coef * params
        if not np.isfinite(value) or not np.all(np.isfinite(grad_params)):
            return math.inf, np.zeros_like(theta)
        return float(value), grad_params * params

    def _objective_mixed(
        self,
        theta: np.ndarray,
        data: Mapping[str, np.ndarray],
        weights: np.ndarray,
        total: float,
        positive: np.ndarray,
    ) -> tuple[float, np.ndarray]:
        """:meth:`_objective` for log-parameters mixed with unconstrained coefficients."""
        params = self._to_natural(theta)
        with np.errstate(all="ignore"):
            ll_sum, grad_sum = self._weighted_loglik_grad(params, data, weights)
        penalty = np.where(positive, self.penalizer_coef, getattr(self, "covariate_penalty_", 0.0))
        value = -ll_sum / total + np.sum(penalty * params**2)
        grad_params = -grad_sum / total + 2 * penalty * params
        if not np.isfinite(value) or not np.all(np.isfinite(grad_params)):
            return math.inf, np.zeros_like(theta)
        return float(value), grad_params * self._natural_jacobian(params)

    # ------------------------------------------------------------------ parameter transforms
    def _positive_mask(self) -> np.ndarray | None:
        """Which parameters are positive (optimised on the log scale): ``None`` when all are.

        Parameters named ``"<group>:<covariate>"`` (e.g. ``"purchase:age"``) are regression
        coefficients: any real number, optimised as themselves (identity transform).
        """
        names = self._param_names
        if not any(":" in name for name in names):
            return None
        return np.array([":" not in name for name in names])

    def _to_natural(self, theta: np.ndarray) -> np.ndarray:
        """Natural parameters from the optimiser's coordinates (exp, or identity)."""
        positive = self._positive_mask()
        if positive is None:
            return np.exp(theta)
        return np.where(positive, np.exp(np.where(positive, theta, 0.0)), theta)

    def _to_theta(self, params: np.ndarray) -> np.ndarray:
        """The optimiser's coordinates of natural parameters (log, or identity)."""
        positive = self._positive_mask()
        if positive is None:
            return np.log(params)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(positive, np.log(np.where(positive, params, 1.0)), params)

    def _natural_jacobian(self, params: np.ndarray) -> np.ndarray:
        """``d params / d theta`` (diagonal): ``params`` for log-parameters, 1 otherwise."""
        positive = self._positive_mask()
        return params if positive is None else np.where(positive, params, 1.0)

    def _hessian(self, theta: np.ndarray, args: tuple[Any, ...]) -> np.ndarray:
        """Hessian of the mean objective in log-parameters: the exact one where the model
        has it (:meth:`_objective_hessian`), else central differences of the analytic gradient
        (symmetrised)."""
        exact = self._objective_hessian(theta, *args)
        if exact is not None:
            return exact[2]
        k = len(theta)
        hessian = np.empty((k, k))
        for i in range(k):
            up, down = theta.copy(), theta.copy()
            up[i] += _HESSIAN_STEP
            down[i] -= _HESSIAN_STEP
            hessian[:, i] = (self._objective(up, *args)[1] - self._objective(down, *args)[1]) / (
                2 * _HESSIAN_STEP
            )
        return 0.5 * (hessian + hessian.T)

    def _variance(self, theta: np.ndarray, hessian: np.ndarray | None) -> pd.DataFrame:
        """Covariance of the natural parameters from the observed information.

        ``hessian`` is that of the (penalized) total negative log-likelihood in log-parameters;
        at the optimum the gradient is zero, so ``H_natural = D^-1 H_log D^-1`` with
        ``D = diag(params)`` (the delta method; ``D`` has 1 for regression coefficients, which
        are optimised as themselves). The covariance is NaN where the Hessian is not positive
        definite (with a warning) and where it is ``None`` (a ridge or boundary, reported already).
        """
        k = len(theta)
        names = list(self._param_names)
        cov_log = np.full((k, k), np.nan)
        if hessian is not None:
            try:
                chol = np.linalg.cholesky(hessian)
                inverse = np.linalg.inv(chol)
                cov_log = inverse.T @ inverse
            except np.linalg.LinAlgError:
                warnings.warn(
                    f"{self._name()}: the Hessian at the optimum is not positive definite, "
                    "so standard errors are not available (the likelihood is flat in some "
                    "direction; a small penalizer_coef or more data usually helps)",
                    CustvalWarning,
                    stacklevel=4,
                )
        jacobian = self._natural_jacobian(self._to_natural(theta))
        cov = cov_log * np.outer(jacobian, jacobian)
        return pd.DataFrame(cov, index=names, columns=names)

    # ------------------------------------------------------------------ fitted views
    def _name(self) -> str:
        return self._display_name or type(self).__name__

    @property
    def summary(self) -> pd.DataFrame:
        """Estimates with standard errors and 95% intervals, one row per parameter.

        Intervals are Wald intervals on the log scale, ``exp(log(est) +/- 1.96 se/est)``, so
        they stay positive like the parameters. Models with covariates add ``z`` and
        ``p_value`` columns: for each regression coefficient (named ``"group:covariate"``) the
        Wald test of a zero effect, ``z = est/se`` with a two-sided normal p-value, and its
        interval is ``est +/- 1.96 se`` on the natural scale (NaN in those columns for the
        positive parameters).
        """
        check_is_fitted(self, "params_")
        estimate = self.params_.to_numpy()
        variance = (
            np.diag(self.variance_matrix_.to_numpy())
            if self.variance_matrix_ is not None
            else np.full(len(estimate), np.nan)
        )
        se = np.sqrt(variance)
        positive = self._positive_mask()
        if positive is not None:
            return _summary_with_coefficients(estimate, se, positive, self.params_.index)
        spread = np.exp(_Z95 * se / estimate)
        return pd.DataFrame(
            {
                "estimate": estimate,
                "std_error": se,
                "lower_95": estimate / spread,
                "upper_95": estimate * spread,
            },
            index=self.params_.index,
        )

    @property
    def aic(self) -> float:
        """Akaike information criterion, ``2k - 2 log L``."""
        check_is_fitted(self, "params_")
        return 2 * len(self._param_names) - 2 * self.log_likelihood_

    @property
    def bic(self) -> float:
        """Bayesian information criterion, ``k ln(n_customers) - 2 log L``."""
        check_is_fitted(self, "params_")
        return len(self._param_names) * math.log(self.n_customers_) - 2 * self.log_likelihood_

    @classmethod
    def from_params(cls, *, freq: str | None = None, **params: float) -> Self:
        """A model with given parameters (e.g. published ones), ready to predict.

        Examples
        --------
        >>> from custval import BetaGeoModel
        >>> model = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> float(model.params_["r"])
        0.243
        """
        names = cls._param_names_for(params)
        missing = [p for p in names if p not in params]
        unknown = [p for p in params if p not in names]
        if missing or unknown:
            raise DataError(
                f"{cls.__name__}.from_params needs exactly the parameters "
                f"{list(names)}; missing {missing}, unknown {unknown}"
            )
        values = np.array([float(params[p]) for p in names])
        positive = np.array([":" not in p for p in names])
        if np.any(~np.isfinite(values)) or np.any(values[positive] <= 0):
            raise DataError(f"{cls.__name__} parameters must be positive and finite, got {params}")
        model = cls()
        if tuple(names) != cls._param_names:
            model._param_names = tuple(names)
        model.params_ = pd.Series(values, index=list(names), name="estimate")
        model.log_likelihood_ = math.nan
        model.n_customers_ = math.nan
        model.n_patterns_ = 0
        model.n_iter_ = 0
        model.converged_ = False
        model.variance_matrix_ = None
        model.freq_ = normalize_freq(freq) if freq is not None else None
        model._set_extra_state({})
        return model

    @classmethod
    def _param_names_for(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The parameter names of a model holding ``params`` (``from_params``, ``load``).

        Default: the class's; models with covariates add the coefficients named in ``params``.
        """
        return cls._param_names

    # ------------------------------------------------------------------ persistence
    def _extra_state(self) -> dict[str, Any]:
        """Fitted state beyond the common attributes (subclasses extend it)."""
        return {}

    def _set_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_extra_state` wrote."""

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to a small, versioned JSON file.

        Examples
        --------
        >>> from custval import BetaGeoModel
        >>> model = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> path = model.save(getattr(__import__("tempfile"), "mkdtemp")() + "/bgnbd.json")
        >>> BetaGeoModel.load(path).params_.equals(model.params_)
        True
        """
        check_is_fitted(self, "params_")
        from custval import __version__

        variance = (
            None if self.variance_matrix_ is None else self.variance_matrix_.to_numpy().tolist()
        )
        state = {
            "format": _FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "custval_version": __version__,
            "model": type(self).__name__,
            "init_params": {
                k: v for k, v in self.get_params().items() if not isinstance(v, Mapping)
            }
            | {
                "initial_params": None if self.initial_params is None else dict(self.initial_params)
            },
            "params": {k: float(v) for k, v in self.params_.items()},
            "log_likelihood": _json_float(self.log_likelihood_),
            "n_customers": _json_float(self.n_customers_),
            "n_patterns": int(self.n_patterns_),
            "n_iter": int(self.n_iter_),
            "converged": bool(self.converged_),
            "freq": self.freq_,
            "variance_matrix": None
            if variance is None
            else [[_json_float(v) for v in row] for row in variance],
            "extra": self._extra_state(),
        }
        path = Path(path)
        path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> BaseModel:
        """Read a model written by :meth:`save`; fails clearly on files from newer versions."""
        model = load_model(path)
        if not isinstance(model, cls):
            raise DataError(
                f"{path} holds a {type(model).__name__}, not a {cls.__name__}; "
                "load it with custval.load_model or that class"
            )
        return model


class TransactionModel(BaseModel):
    """Base class of the models of repeat purchases (not used directly).

    It owns the prediction vocabulary whose wrapper is the same in every model (README
    "Predictions: one vocabulary"): ``expected_purchases(summary, t)``,
    ``probability_alive(summary, t=None)``, ``probability_of_purchases(summary, n, t)``
    conditional on history, ``probability_of_purchases_new_customer(n, t)`` and
    ``expected_purchases_new_customer(t)``, with their checks, deprecation and result shapes.
    A model supplies only the mathematics, through hooks:

    * ``_expected_purchases(data, horizon, summary, customers)`` and
      ``_probability_alive(data, horizon, summary, customers)``: per row of the validated
      prediction ``data`` (``horizon`` in the model's unit; None for P(alive) now), with the
      ``summary`` and ``customers`` for a model with covariates;
    * ``_conditional_pmf(counts, data, horizon)``: ``P(X(T, T+t) = n | history)`` of the
      validated prediction ``data`` at the flat float ``counts``, shape ``(rows, len(counts))``;
    * ``_new_customer_pmf(params, counts, horizon)``: ``P(X(t) = n)`` of a new customer at the
      validated ``counts`` (any shape) and the parameters of :meth:`_params`;
    * ``_new_customer_mean(params, horizon)``: ``E[X(t)]`` of a new customer at one horizon
      or an array of them, for ``expected_purchases_new_customer(t)``.

    ``_horizon`` converts ``t`` to the model's unit (:meth:`BaseModel._duration`; BG/BB
    counts whole opportunities), ``_count_noun`` names what is counted in messages and
    :meth:`_params` gives the mathematics the fitted parameters.
    """

    #: what ``n`` counts, in messages ("n must be whole numbers of purchases >= 0")
    _count_noun: ClassVar[str] = "purchases"
    #: the predictions that take ``customers=`` when the model has covariates
    _covariate_predictions: ClassVar[str] = "expected_purchases or probability_alive"

    def _horizon(self, t: Any, name: str = "t") -> float | np.ndarray:
        """``t`` in the model's unit (:meth:`BaseModel._duration`)."""
        return self._duration(t, name=name)

    def _one_horizon(self, t: Any) -> float:
        """One horizon ``t`` in the model's unit (:meth:`_horizon`), refusing arrays."""
        horizon = self._horizon(t)
        if np.ndim(horizon) != 0:
            raise DataError(f"t must be one horizon (a number or a duration), got {t!r}")
        return float(horizon)

    def _purchase_counts(self, n: Any) -> np.ndarray:
        """Validate ``n`` of P(X(t) = n): whole numbers >= 0, a scalar or an array."""
        counts = np.asarray(n)
        if (
            not np.issubdtype(counts.dtype, np.number)
            or np.any(~np.isfinite(counts))
            or np.any(counts < 0)
            or np.any(counts != np.round(counts))
        ):
            raise DataError(f"n must be whole numbers of {self._count_noun} >= 0, got {n!r}")
        return counts

    def probability_of_purchases(
        self, summary: pd.DataFrame | Any, n: int | Any = None, t: float | str | None = None
    ) -> pd.Series | pd.DataFrame | float:
        """Probability that each customer makes exactly ``n`` repeat purchases in the next
        ``t`` periods, given their history: ``P(X(T, T+t) = n | history)``.

        The model's conditional pmf (its ``_conditional_pmf``, which cites the derivation);
        it sums to one over ``n`` and its mean is ``expected_purchases``. The old call
        ``probability_of_purchases(n, t)`` (for a new customer) still works with a
        ``FutureWarning``; it is :meth:`probability_of_purchases_new_customer`. Not for a
        model with covariates.

        Parameters
        ----------
        summary : DataFrame
            Customers with the model's columns (``frequency``, ``recency`` and ``T``; BG/BB:
            ``n_periods``) in the unit of the fit.
        n : int or array-like of int
            Number(s) of repeat purchases, >= 0.
        t : float or str
            Length of the period: a duration with unit or a number of periods (BG/BB: a
            whole number of transaction opportunities).

        Returns
        -------
        Series or DataFrame
            A Series ``probability`` aligned with ``summary.index`` for a scalar ``n``;
            otherwise a DataFrame with one column per ``n``.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import BetaGeoModel
        >>> model = BetaGeoModel.from_params(r=0.2426, alpha=4.4135, a=0.7929, b=2.4258, freq="W")
        >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> model.probability_of_purchases(customer, [0, 1, 2], "39W").round(3).values.tolist()
        [[0.445, 0.239, 0.144]]
        """
        if not isinstance(summary, pd.DataFrame):
            warnings.warn(
                "probability_of_purchases(n, t) for a new customer is now "
                "probability_of_purchases_new_customer(n, t); probability_of_purchases(summary, "
                "n, t) is conditional on each customer's history",
                FutureWarning,
                stacklevel=2,
            )
            return self.probability_of_purchases_new_customer(summary, n)
        data = self._prediction_data(summary)
        counts = self._purchase_counts(n)
        horizon = self._one_horizon(t)
        values = self._conditional_pmf(counts.ravel().astype(float), data, horizon)
        if counts.ndim == 0:
            return self._series(values[:, 0], summary, "probability")
        return pd.DataFrame(values, index=summary.index, columns=pd.Index(counts.ravel(), name="n"))

    def probability_of_purchases_new_customer(
        self, n: int | Any, t: float | str
    ) -> float | pd.Series:
        """Probability that a new customer makes exactly ``n`` repeat purchases in ``(0, t]``.

        The model's new-customer pmf (its ``_new_customer_pmf``, which cites the equation).

        Parameters
        ----------
        n : int or array-like of int
            Number(s) of repeat purchases, >= 0.
        t : float or str
            Length of the period: a duration with unit or a number of periods (BG/BB: a
            whole number of transaction opportunities).

        Returns
        -------
        float or Series
            A float for a scalar ``n``; otherwise a Series ``probability`` indexed by ``n``.

        Examples
        --------
        >>> from custval import BetaGeoModel
        >>> model = BetaGeoModel.from_params(r=0.2426, alpha=4.4135, a=0.7929, b=2.4258, freq="W")
        >>> round(model.probability_of_purchases_new_customer(0, "39W"), 4)
        0.5743
        """
        params = self._params()
        counts = self._purchase_counts(n)
        values = self._new_customer_pmf(params, counts, self._one_horizon(t))
        if counts.ndim == 0:
            return float(values)
        return pd.Series(
            np.ravel(values), index=pd.Index(counts.ravel(), name="n"), name="probability"
        )

    def expected_purchases(
        self, summary: pd.DataFrame, t: float | str, customers: pd.DataFrame | None = None
    ) -> pd.Series:
        """Expected number of repeat purchases of each customer in the next ``t`` periods.

        ``E[X(T, T+t) | history]``: the model's conditional expectation (its
        ``_expected_purchases``, which cites the equation).

        Parameters
        ----------
        summary : DataFrame
            Customers with the model's columns (``frequency``, ``recency`` and ``T``; BG/BB:
            ``n_periods``) in the unit of the fit.
        t : float or str
            Horizon: a duration with unit (``"39W"``, ``"365D"``), or a number of periods of
            the model's unit (BG/BB: a whole number of transaction opportunities).
        customers : DataFrame, optional
            For a model with covariates: the customers' covariates, indexed like ``summary``
            (default: columns of ``summary``).

        Returns
        -------
        Series
            ``expected_purchases``, aligned with ``summary.index``.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import BetaGeoModel
        >>> model = BetaGeoModel.from_params(r=0.2426, alpha=4.4135, a=0.7929, b=2.4258, freq="W")
        >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> round(float(model.expected_purchases(customer, "39W").iloc[0]), 3)
        1.226
        """
        data = self._prediction_data(summary)
        values = self._expected_purchases(data, self._horizon(t), summary, customers)
        return self._series(values, summary, "expected_purchases")

    def probability_alive(
        self,
        summary: pd.DataFrame,
        t: float | str | None = None,
        customers: pd.DataFrame | None = None,
    ) -> pd.Series:
        """Probability that each customer is alive (has not dropped out), now or ``t`` later.

        ``t=None``: ``P(alive at T | history)``; with ``t``, the probability of being alive at
        ``T + t`` given the history up to ``T``, whatever the customer does in between (the
        model's ``_probability_alive``, which cites the equation).

        Parameters
        ----------
        summary : DataFrame
            Customers with the model's columns in the unit of the fit.
        t : float or str, optional
            Horizon after ``T``: a duration with unit or a number of periods.
        customers : DataFrame, optional
            For a model with covariates: the customers' covariates, indexed like ``summary``
            (default: columns of ``summary``).

        Returns
        -------
        Series
            ``probability_alive``, aligned with ``summary.index``.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import BetaGeoModel
        >>> model = BetaGeoModel.from_params(r=0.2426, alpha=4.4135, a=0.7929, b=2.4258, freq="W")
        >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
        >>> model.probability_alive(customer).round(3).tolist()
        [0.727]
        """
        data = self._prediction_data(summary)
        horizon = None if t is None else self._one_horizon(t)
        values = self._probability_alive(data, horizon, summary, customers)
        return self._series(values, summary, "probability_alive")

    def expected_purchases_new_customer(self, t: float | str | Any) -> float | pd.Series:
        """Expected repeat purchases of a newly acquired customer in their first ``t`` periods.

        The model's new-customer mean (its ``_new_customer_mean``, which cites the equation).

        Parameters
        ----------
        t : float, str or array-like of them
            Horizon(s): durations with unit or numbers of periods (BG/BB: whole numbers of
            transaction opportunities).

        Returns
        -------
        float or Series
            A float for a scalar ``t``; otherwise a Series ``expected_purchases`` indexed by
            ``t``.

        Examples
        --------
        >>> from custval import BetaGeoModel
        >>> model = BetaGeoModel.from_params(r=0.2426, alpha=4.4135, a=0.7929, b=2.4258, freq="W")
        >>> round(model.expected_purchases_new_customer("78W"), 4)
        1.858
        """
        params = self._params()
        horizon = self._horizon(t)
        values = self._new_customer_mean(params, horizon)
        return self._by_horizon(t, horizon, values, "expected_purchases")

    @staticmethod
    def _by_horizon(t: Any, horizon: Any, values: Any, name: str) -> float | pd.Series:
        """A float for a scalar horizon; otherwise a Series indexed by the horizons as given."""
        if np.ndim(horizon) == 0:
            return float(np.ravel(values)[0])
        return pd.Series(values, index=pd.Index(np.asarray(t).ravel(), name="t"), name=name)

    def _params(self) -> np.ndarray:
        """The fitted parameters in ``_param_names`` order, for the model's mathematics; a
        model with covariates refuses (its predictions need each customer's covariates)."""
        check_is_fitted(self, "params_")
        if getattr(self, "covariates_", None) is not None:
            raise DataError(
                f"this {self._name()} has covariates: give each customer's covariates "
                f"(customers=...) to {self._covariate_predictions}; other uses of the model "
                "need one without covariates"
            )
        return self.params_[list(self._param_names)].to_numpy(dtype=float)

    #: a model whose mathematics are functions of the parameters alone declares them:
    #: ``_conditional_pmf_of(params, counts, data, horizon)``, ``_new_customer_pmf_of(params,
    #: counts, horizon)``, ``_new_customer_mean_of(params, horizon)``; one that needs more
    #: (BG/NBD's ``modified``, CNBD's ``k``) overrides the hook methods below instead
    _conditional_pmf_of: ClassVar[Any] = None
    _new_customer_pmf_of: ClassVar[Any] = None
    _new_customer_mean_of: ClassVar[Any] = None

    def _conditional_pmf(
        self, counts: np.ndarray, data: Mapping[str, Any], horizon: float
    ) -> np.ndarray:
        return self._conditional_pmf_of(self._params(), counts, data, horizon)

    def _new_customer_pmf(self, params: np.ndarray, counts: np.ndarray, horizon: float) -> Any:
        return self._new_customer_pmf_of(params, counts, horizon)

    def _new_customer_mean(self, params: np.ndarray, horizon: Any) -> Any:
        return self._new_customer_mean_of(params, horizon)

    def _expected_purchases(
        self, data: Mapping[str, Any], horizon: Any, summary: Any, customers: Any
    ) -> np.ndarray:
        raise NotImplementedError

    def _probability_alive(
        self, data: Mapping[str, Any], horizon: float | None, summary: Any, customers: Any
    ) -> np.ndarray:
        raise NotImplementedError


def _summary_with_coefficients(
    estimate: np.ndarray, se: np.ndarray, positive: np.ndarray, index: pd.Index
) -> pd.DataFrame:
    """Summary rows: log-scale Wald intervals for positive parameters; natural-scale intervals
    and Wald tests (``z``, two-sided ``p_value``) for the regression coefficients."""
    from scipy.stats import norm

    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.exp(_Z95 * se / np.where(positive, estimate, 1.0))
        z = np.where(positive, np.nan, estimate / se)
    return pd.DataFrame(
        {
            "estimate": estimate,
            "std_error": se,
            "lower_95": np.where(positive, estimate / spread, estimate - _Z95 * se),
            "upper_95": np.where(positive, estimate * spread, estimate + _Z95 * se),
            "z": z,
            "p_value": 2.0 * norm.sf(np.abs(z)),
        },
        index=index,
    )


def _json_float(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def load_model(path: str | Path) -> BaseModel:
    """Load any custval model saved with ``save``.

    Examples
    --------
    >>> from custval import BetaGeoModel, load_model
    >>> model = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> path = model.save(getattr(__import__("tempfile"), "mkdtemp")() + "/bgnbd.json")
    >>> type(load_model(path)).__name__
    'BetaGeoModel'
    """
    path = Path(path)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read a custval model from {path}: {error}") from error
    if not isinstance(state, dict) or state.get("format") != _FORMAT_NAME:
        raise DataError(f"{path} is not a custval model file (no 'format': '{_FORMAT_NAME}')")
    version = state.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise DataError(
            f"{path} was written by custval {state.get('custval_version', '?')} in model file "
            f"format {version}, but this custval reads format {FORMAT_VERSION} at most; upgrade "
            "custval (pip install -U custval) to load it"
        )
    cls = _REGISTRY.get(state.get("model", ""))
    if cls is None:
        raise DataError(
            f"{path} holds an unknown model {state.get('model')!r}; known models: "
            f"{sorted(_REGISTRY)}"
        )
    model = cls(**state["init_params"])
    names = list(cls._param_names_for(state["params"]))
    if tuple(names) != cls._param_names:
        model._param_names = tuple(names)
    model.params_ = pd.Series({k: float(state["params"][k]) for k in names}, name="estimate")
    nan = math.nan
    model.log_likelihood_ = nan if state["log_likelihood"] is None else state["log_likelihood"]
    model.n_customers_ = nan if state["n_customers"] is None else state["n_customers"]
    model.n_patterns_ = state["n_patterns"]
    model.n_iter_ = state["n_iter"]
    model.converged_ = state["converged"]
    model.freq_ = state["freq"]
    variance = state["variance_matrix"]
    model.variance_matrix_ = (
        None
        if variance is None
        else pd.DataFrame(
            [[nan if v is None else v for v in row] for row in variance], index=names, columns=names
        )
    )
    model._set_extra_state(state.get("extra", {}))
    return model
