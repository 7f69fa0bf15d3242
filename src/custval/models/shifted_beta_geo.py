"""sBG: the shifted-beta-geometric model of retention in contractual settings.

Fader & Hardie (2007), "How to Project Customer Retention", Journal of Interactive Marketing
21(1), 76-90 (FH07); Fader & Hardie (2010), "Customer-Base Valuation in a Contractual Setting:
The Perils of Ignoring Heterogeneity", Marketing Science 29(1), 85-93 (FH10).

Each customer renews at the end of every period with probability ``1 - theta`` until they
churn; ``theta ~ Beta(alpha, beta)`` across customers. The lifetime ``T`` (periods until
churn, ``T >= 1``) then has::

    P(T = t) = B(alpha+1, beta+t-1) / B(alpha, beta)
    S(t) = P(T > t) = B(alpha, beta+t) / B(alpha, beta)
    r(t) = S(t) / S(t-1) = (beta+t-1) / (alpha+beta+t-1)  (retention rate)

A cohort is observed as the number of customers active at the start of each period; the
customers lost in period ``t`` contribute ``log P(T = t)`` and those still active at the end
``log S(t)`` (right-censored; FH07).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.special import betaln, expit
from sklearn.utils.validation import check_is_fitted

from custval._units import annual_rate_to_period
from custval.errors import DataError
from custval.models._base import BaseModel
from custval.models._covariates import CovariateModelMixin
from custval.models._log_quadrature import GL256, concave_log_quadrature
from custval.models._special import digamma_rising, log_rising

__all__ = ["ShiftedBetaGeoModel"]


def _loglik_grad(
    params: np.ndarray, data: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood and gradient in (alpha, beta) (FH07).

    Rows are ``(period t, censored)``: ``log P(T = t)`` for churn in period ``t``,
    ``log S(t)`` for customers still active after period ``t``.
    """
    alpha, beta = params
    t, censored = data["period"], data["censored"] > 0
    # B(alpha + da, beta + db) / B(alpha, beta) with da + db = t: (da, db) = (0, t) censored,
    # (1, t - 1) churned; as rising factorials, exact also on the alpha, beta -> inf ridge
    da = np.where(censored, 0.0, 1.0)
    db = t - da
    ll = log_rising(alpha, da) + log_rising(beta, db) - log_rising(alpha + beta, t)
    grad = np.empty((t.shape[0], 2))
    d_ab = digamma_rising(alpha + beta, t)
    grad[:, 0] = digamma_rising(alpha, da) - d_ab
    grad[:, 1] = digamma_rising(beta, db) - d_ab
    return ll, grad


def _survival(params: np.ndarray, t: Any) -> np.ndarray:
    """``S(t) = B(alpha, beta+t) / B(alpha, beta)`` (FH07)."""
    alpha, beta = params
    return np.exp(betaln(alpha, beta + np.asarray(t, dtype=float)) - betaln(alpha, beta))


def _churn_probability(params: np.ndarray, t: Any) -> np.ndarray:
    """``P(T = t) = B(alpha+1, beta+t-1) / B(alpha, beta)`` for ``t >= 1`` (FH07)."""
    alpha, beta = params
    t = np.asarray(t, dtype=float)
    return np.exp(betaln(alpha + 1.0, beta + t - 1.0) - betaln(alpha, beta))


def _retention_rate(params: np.ndarray, t: Any) -> np.ndarray:
    """``r(t) = (beta+t-1) / (alpha+beta+t-1)`` for ``t >= 1`` (FH07)."""
    alpha, beta = params
    t = np.asarray(t, dtype=float)
    return (beta + t - 1.0) / (alpha + beta + t - 1.0)


def _log_discounted_sum(alpha: float, b: np.ndarray, d: float) -> np.ndarray:
    """``log sum_k (b)_(k+1)/(alpha+b)_(k+1) z^k`` with ``z = 1/(1+d)``, for ``b > 0``.

    This is ``b/(alpha+b) 2F1(1, b+1; alpha+b+1; z)`` (Euler's integral), evaluated as
    ``(1+d) E[(1-theta)/(d+theta)]`` with ``theta ~ Beta(alpha, b)``. In ``w = logit(theta)``
    the log-integrand ``alpha log sigma(w) + (b+1) log sigma(-w) - log(d + sigma(w))`` is
    concave (its second derivative is below ``-sigma (1-sigma)(alpha+b)``) and analytic, so the
    concave Gauss-Legendre rule of :mod:`custval.models.pareto_nbd` converges fast. Unlike
    scipy's ``hyp2f1`` (nan for e.g. ``b = 1000``, ``z = 1/1.0001``) it is accurate for any
    ``b`` and ``d > 0``.
    """
    b = np.atleast_1d(np.asarray(b, dtype=float))
    log_d = np.log(d)

    def log_f(w: np.ndarray, rows: np.ndarray) -> np.ndarray:
        bb = b[rows] if w.ndim == 1 else b[rows, None]
        log_theta = -np.logaddexp(0.0, -w)
        return (
            alpha * log_theta - (bb + 1.0) * np.logaddexp(0.0, w) - np.logaddexp(log_d, log_theta)
        )

    def slope(w: np.ndarray, rows: np.ndarray) -> np.ndarray:
        g = expit(w)
        return alpha * (1.0 - g) - (b[rows] + 1.0) * g - g * (1.0 - g) / (d + g)

    rows = np.arange(b.shape[0])
    lo = np.full(b.shape, min(log_d, 0.0) - 50.0 - 80.0 / alpha)
    hi = 50.0 + 80.0 / (b + 1.0)
    left, right = lo.copy(), hi.copy()
    for _ in range(100):  # bisection for the maximiser: the slope decreases from alpha to -b-1
        mid = 0.5 * (left + right)
        up = slope(mid, rows) > 0
        left, right = np.where(up, mid, left), np.where(up, right, mid)
    peak = 0.5 * (left + right)
    log_int, _, _ = concave_log_quadrature(log_f, slope, lo, hi, peak, GL256)
    return np.log1p(d) + log_int - betaln(alpha, b)


def _discounted_expected_residual_lifetime(
    params: np.ndarray, discount_rate: float, renewals: Any
) -> np.ndarray:
    """DERL of a customer who has made ``n - 1`` renewals (FH10)::

    DERL = (beta+n-1)/(alpha+beta+n-1) 2F1(1, beta+n; alpha+beta+n; 1/(1+d))
         = sum_k S(n+k)/S(n-1) (1+d)^-k

    the expected present value, in units of the per-period payment, of the payments from the
    next renewal on (the first undiscounted, as in FH10).
    """
    alpha, beta = params
    n = np.asarray(renewals, dtype=float) + 1.0
    shape = n.shape
    return np.exp(_log_discounted_sum(alpha, beta + n.ravel() - 1.0, discount_rate)).reshape(shape)


def _expected_lifetime(params: np.ndarray, renewals: Any = None) -> Any:
    """Mean lifetime in periods: ``(alpha+beta-1)/(alpha-1)`` for a new customer, and
    ``(beta+n-1)/(alpha-1)`` further periods after ``n - 1`` renewals; infinite if
    ``alpha <= 1`` (the beta mixture puts too much mass near ``theta = 0``)."""
    alpha, beta = params
    if renewals is None:
        return (alpha + beta - 1.0) / (alpha - 1.0) if alpha > 1 else np.inf
    n = np.asarray(renewals, dtype=float) + 1.0
    return (beta + n - 1.0) / (alpha - 1.0) if alpha > 1 else np.full(n.shape, np.inf)


def _cohorts(active_counts: Any) -> list[tuple[str, Any]]:
    """Split the input into named cohorts of start-of-period active counts."""
    if isinstance(active_counts, pd.DataFrame):
        return [(str(c), active_counts[c].dropna().to_numpy()) for c in active_counts.columns]
    if isinstance(active_counts, pd.Series):
        return [(str(active_counts.name or "cohort 0"), active_counts.to_numpy())]
    if isinstance(active_counts, Mapping):
        return [(str(k), v) for k, v in active_counts.items()]
    if isinstance(active_counts, np.ndarray):
        if active_counts.ndim == 2:
            return [(f"cohort {i}", row) for i, row in enumerate(active_counts)]
        return [("cohort 0", active_counts)]
    if isinstance(active_counts, list | tuple) and any(
        isinstance(item, list | tuple | np.ndarray | pd.Series) for item in active_counts
    ):
        return [(f"cohort {i}", item) for i, item in enumerate(active_counts)]
    return [("cohort 0", active_counts)]


class ShiftedBetaGeoModel(CovariateModelMixin, BaseModel):
    """sBG model of customer retention in contractual (subscription) settings.

    Fitted by maximum likelihood (Fader & Hardie 2007) with its analytic gradient on
    one or several cohorts given as the number of customers active at the start of each period.

    Parameters
    ----------
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Attributes
    ----------
    params_ : Series
        ``alpha``, ``beta`` of the beta distribution of the per-period churn probability.
    log_likelihood_, n_customers_, n_patterns_, variance_matrix_
        See :class:`custval.models._base.BaseModel`; ``summary``, ``aic`` and ``bic`` too.
    n_cohorts_ : int
        Number of cohorts fitted.

    Notes
    -----
    With cohort-level covariates (``fit(..., cohorts=frame, alpha_covariates=[...],
    beta_covariates=[...])``) each cohort ``c`` has ``alpha_c = alpha exp(x_c' gamma)`` and
    ``beta_c = beta exp(x_c' delta)`` (coefficients ``"alpha:<column>"``, ``"beta:<column>"``;
    ``both:`` with ``equal_effects``). ``exp(gamma)`` multiplies ``alpha`` and so raises the
    mean churn probability ``alpha / (alpha + beta)``; ``exp(delta)`` lowers it. A model of one
    cohort's shape comes from :meth:`for_cohort`.

    Examples
    --------
    >>> from custval import ShiftedBetaGeoModel
    >>> model = ShiftedBetaGeoModel().fit([1000, 631, 468, 382, 326, 289, 262, 241])
    >>> model.params_.round(3).tolist()
    [0.704, 1.182]
    """

    _param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    _data_columns: ClassVar[tuple[str, ...]] = ("period", "censored")
    _display_name: ClassVar[str] = "sBG model"
    _covariate_groups: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    #: DERL(params, d, renewals_so_far): the closed form here, summed period by period in the BdW
    _derl = staticmethod(_discounted_expected_residual_lifetime)
    #: S(t), r(t) = S(t)/S(t-1) and P(T = t) of (params, periods): FH07's closed forms here
    _survival_of = staticmethod(_survival)
    _retention_of = staticmethod(_retention_rate)
    _churn_of = staticmethod(_churn_probability)

    def fit(
        self,
        active_counts: Any,
        weights: Any = None,
        *,
        cohorts: pd.DataFrame | None = None,
        alpha_covariates: list[str] | tuple[str, ...] = (),
        beta_covariates: list[str] | tuple[str, ...] = (),
        equal_effects: list[str] | tuple[str, ...] = (),
        covariate_penalty: float = 0.0,
        freq: str | None = None,
    ) -> Self:
        """Fit the model to cohorts of active customers, optionally with cohort covariates.

        Parameters
        ----------
        active_counts : array-like, Series, DataFrame, list or dict of array-likes
            For one cohort, the number of customers active at the start of periods 0, 1, 2,
            ... (e.g. ``[1000, 631, 468, 382]``: 1000 acquired, 631 renewed once, ...). For
            several cohorts, a list or dict of such sequences (lengths may differ), a 2-d
            array (one cohort per row) or a DataFrame (one cohort per column, trailing NaN
            for younger cohorts).
        weights : None
            Not used (counts are the weights); present for the common signature.
        cohorts : DataFrame, optional
            One row per cohort, indexed by the cohorts' names (the DataFrame's columns or the
            dict's keys of ``active_counts``; ``"cohort 0"``, ``"cohort 1"``, ... for lists
            and arrays), with the covariate columns.
        alpha_covariates, beta_covariates : list of str
            Columns of ``cohorts`` acting on ``alpha_c = alpha exp(x_c' gamma)`` and ``beta_c
            = beta exp(x_c' delta)`` (categorical columns one-hot encoded, first level the
            baseline); coefficients ``"alpha:<col>"`` / ``"beta:<col>"`` in ``params_``.
        equal_effects : list of str
            Covariates (in both lists) with one coefficient ``"both:<col>"`` for both.
        covariate_penalty : float, default 0
            L2 penalty on the coefficients only (per customer, as ``penalizer_coef``).
        freq : {"D", "W", "M", "Y"}, optional
            The length of one period (``"M"``: monthly renewals), recorded as ``freq_`` for
            ``annual_discount_rate``; defaults to ``active_counts.attrs["freq"]`` when it is a
            DataFrame or Series carrying one.

        Returns
        -------
        self

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import ShiftedBetaGeoModel
        >>> high_end = [1000, 869, 743, 653, 593, 551, 517, 491]
        >>> ShiftedBetaGeoModel().fit(high_end).params_.round(3).tolist()
        [0.668, 3.806]
        >>> regular = [1000, 631, 468, 382, 326, 289, 262, 241]
        >>> plans = pd.DataFrame({"plan": ["regular", "high end"]}, index=["regular", "high end"])
        >>> model = ShiftedBetaGeoModel().fit(
        ...     {"regular": regular, "high end": high_end}, cohorts=plans, beta_covariates=["plan"]
        ... )
        >>> model.for_cohort(plans.loc["regular"]).params_.round(2).tolist()
        [0.69, 1.16]
        """
        if weights is not None:
            raise DataError(
                f"{type(self).__name__}.fit takes the counts of active customers, which "
                "already weight each period; pass weights=None"
            )
        self._record_unit(active_counts, freq)
        data, w = self._prepare_fit(active_counts, weights)
        self.n_cohorts_ = self._n_cohorts
        groups = {"alpha": alpha_covariates, "beta": beta_covariates}
        names = pd.DataFrame(index=pd.Index([name for name, _ in _cohorts(active_counts)]))
        if cohorts is not None and not isinstance(cohorts, pd.DataFrame):
            raise DataError(
                f"cohorts must be a DataFrame indexed by the cohorts' names "
                f"({list(names.index)}), got {type(cohorts).__name__}"
            )
        if cohorts is None and (alpha_covariates or beta_covariates):
            raise DataError(
                "alpha_covariates and beta_covariates are columns of cohorts=<DataFrame with "
                f"one row per cohort, indexed by the cohorts' names {list(names.index)}>"
            )
        if cohorts is not None:
            cohorts = cohorts.set_axis(cohorts.index.astype(str))
        design = self._begin_covariate_fit(names, cohorts, groups, equal_effects, covariate_penalty)
        if design is not None:  # each row (period of a cohort) takes its cohort's covariates
            data.update({k: v[self._row_cohort] for k, v in design.items()})
        return self._fit_arrays(data, w)

    def for_cohort(self, covariates: pd.Series | pd.DataFrame) -> Self:
        """The model without covariates of one cohort: its own ``alpha_c``, ``beta_c`` (and
        the shared shape parameters), for survival, retention, churn and lifetime values.

        Parameters
        ----------
        covariates : Series or one-row DataFrame
            The cohort's covariate values (as in the ``cohorts`` frame of the fit).

        Returns
        -------
        model
            Of the same class, without covariates (``from_params``).
        """
        spec = getattr(self, "covariates_", None)
        if spec is None:
            raise DataError(f"this {self._name()} has no covariates; use it as it is")
        frame = covariates.to_frame().T if isinstance(covariates, pd.Series) else covariates
        if len(frame) != 1:
            raise DataError(f"for_cohort takes one cohort's covariates, got {len(frame)} rows")
        frame = frame.infer_objects()
        matrix = spec.encoding.matrix(frame, spec.covariates)
        params = self.params_.to_numpy(dtype=float)
        k = self._n_base()
        scale_a, scale_b = self._cohort_scales(params, matrix, 1)
        own = params[:k].copy()
        own[0] *= scale_a[0]
        own[1] *= scale_b[0]
        plain = dict(zip(type(self)._param_names, own.tolist(), strict=True))
        return type(self).from_params(**plain)

    def _cohort_scales(
        self, params: np.ndarray, matrix: np.ndarray | None, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``exp(x' gamma)`` and ``exp(x' delta)`` per row of the design ``matrix``."""
        coefficients = params[self._n_base() :]
        za = self._group_design(matrix, n, "alpha")
        zb = self._group_design(matrix, n, "beta")
        return np.exp(za @ coefficients), np.exp(zb @ coefficients)

    def _prepare_patterns(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if getattr(self, "covariates_", None) is None:
            return data
        n = len(data["period"])
        matrix = self._pattern_matrix(data)
        return {
            **data,
            "_Za": self._group_design(matrix, n, "alpha"),
            "_Zb": self._group_design(matrix, n, "beta"),
        }

    def _row_loglik_grad(
        self, params: Any, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-row log-likelihood and gradient ``(n, k_base)`` at per-row parameters."""
        return _loglik_grad(params, data)

    def _covariate_loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The likelihood at each row's ``alpha_c, beta_c`` (the model's row formulas take
        them as arrays), chained to the coefficients: ``d/d gamma = alpha_c x_c d/d alpha_c``,
        ``d/d delta = beta_c x_c d/d beta_c``."""
        k = self._n_base()
        za, zb = data["_Za"], data["_Zb"]
        coefficients = params[k:]
        scale_a, scale_b = np.exp(za @ coefficients), np.exp(zb @ coefficients)
        rows = [params[0] * scale_a, params[1] * scale_b, *params[2:k]]
        ll, grad = self._row_loglik_grad(rows, data)
        out = np.empty((len(ll), len(params)))
        out[:, :k] = grad
        out[:, 0] *= scale_a
        out[:, 1] *= scale_b
        out[:, k:] = za * (grad[:, 0] * rows[0])[:, None] + zb * (grad[:, 1] * rows[1])[:, None]
        return ll, out

    def _prepare_fit(self, summary: Any, weights: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
        cohorts = _cohorts(summary)
        if not cohorts:
            raise DataError("active_counts is empty; give at least one cohort of >= 2 counts")
        periods, censored, counts = [], [], []
        for name, raw in cohorts:
            try:
                values = np.asarray(raw, dtype=float)
            except (TypeError, ValueError):
                raise DataError(
                    f"active_counts of {name} must be numbers of active customers, got "
                    f"{list(raw)[:5]!r}"
                ) from None
            if values.ndim != 1 or values.shape[0] < 2:
                raise DataError(
                    f"active_counts of {name} needs at least 2 counts (customers at the start "
                    f"of period 0 and of period 1), got {values.tolist()!r}"
                )
            bad = ~np.isfinite(values) | (values < 0)
            if np.any(bad):
                first = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"active_counts of {name} has {int(bad.sum())} missing, infinite or "
                    f"negative values (first at period {first}: {values[first]!r}); counts "
                    "must be finite and >= 0 (trailing NaN only in a DataFrame column)"
                )
            lost = -np.diff(values)
            if np.any(lost < 0):
                first = int(np.flatnonzero(lost < 0)[0]) + 1
                raise DataError(
                    f"active_counts of {name} increases at period {first} "
                    f"({values[first - 1]:g} -> {values[first]:g}); a cohort can only lose "
                    "customers: give the number still active from the original cohort, "
                    "without newly acquired customers"
                )
            last = values.shape[0] - 1
            periods.append(np.arange(1, last + 1, dtype=float))
            censored.append(np.zeros(last))
            counts.append(lost)
            periods.append(np.array([float(last)]))
            censored.append(np.ones(1))
            counts.append(values[-1:])
        self._n_cohorts = len(cohorts)
        # the cohort of each row: its churn periods, then its censored row
        self._row_cohort = np.concatenate(
            [np.full(len(p) + 1, i) for i, p in enumerate(periods[0::2])]
        )
        data = {"period": np.concatenate(periods), "censored": np.concatenate(censored)}
        return data, np.concatenate(counts)

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        # covariate coefficients start at 0 (no effect)
        n_coefficients = len(self._param_names) - self._n_base()
        return np.concatenate([np.ones(self._n_base()), np.zeros(n_coefficients)])

    def _starting_points(
        self, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> list[np.ndarray]:
        starts = super()._starting_points(data, weights)
        if "_Za" in data:  # covariates: first from the fit without them
            return self._first_start_without_covariates(starts, data, weights)
        return starts

    def _loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        if "_Za" in data:
            return self._covariate_loglik_grad(params, data)
        return self._row_loglik_grad(params, data)

    def _loglik(self, params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        return self._loglik_grad(params, data)[0]

    def _extra_state(self) -> dict[str, Any]:
        return self._with_covariate_state({"n_cohorts": getattr(self, "n_cohorts_", None)})

    def _set_extra_state(self, state: Mapping[str, Any]) -> None:
        self.n_cohorts_ = state.get("n_cohorts")
        self._restore_covariate_state(state)

    # ------------------------------------------------------------------ predictions
    def _params(self) -> np.ndarray:
        check_is_fitted(self, "params_")
        if getattr(self, "covariates_", None) is not None:
            raise DataError(
                f"this {self._name()} has cohort covariates: take one cohort's model with "
                "for_cohort(cohorts.loc[name]) for its curves and lifetimes"
            )
        return self.params_[list(self._param_names)].to_numpy(dtype=float)

    @staticmethod
    def _periods(t: Any, *, minimum: int, name: str = "t") -> np.ndarray:
        values = np.atleast_1d(np.asarray(t))
        if (
            not np.issubdtype(values.dtype, np.number)
            or np.any(~np.isfinite(values))
            or np.any(values != np.round(values))
            or np.any(values < minimum)
        ):
            raise DataError(f"{name} must be whole numbers of periods >= {minimum}, got {t!r}")
        return values.astype(float)

    def _curve(self, curve: Any, t: Any, minimum: int, name: str) -> pd.Series:
        """``curve(params, periods)`` at the whole periods ``t`` (>= ``minimum``), a Series
        ``name`` indexed by ``period``."""
        periods = self._periods(t, minimum=minimum)
        values = curve(self._params(), periods)
        return pd.Series(values, index=pd.Index(periods.astype(int), name="period"), name=name)

    def survival(self, t: Any) -> pd.Series:
        """Share of a cohort still active after ``t`` periods, ``S(t)`` (FH07; the BdW:
        FHLDS18 eq. 5).

        Parameters
        ----------
        t : int or array-like of int
            Periods, >= 0 (``S(0) = 1``).

        Returns
        -------
        Series
            ``survival`` indexed by ``period``.

        Examples
        --------
        >>> from custval import ShiftedBetaGeoModel
        >>> model = ShiftedBetaGeoModel.from_params(alpha=0.704, beta=1.182)
        >>> model.survival([0, 1, 7]).round(3).tolist()
        [1.0, 0.627, 0.239]
        """
        return self._curve(self._survival_of, t, 0, "survival")

    def retention_rate(self, t: Any) -> pd.Series:
        """Retention rate in period ``t``, ``r(t) = S(t)/S(t-1)`` (FH07; the BdW: FHLDS18
        eq. 6); for the sBG it increases with ``t`` because the customers prone to churn leave
        first (the BdW's may first fall and then rise where ``c > 1``).

        Parameters
        ----------
        t : int or array-like of int
            Periods, >= 1.

        Returns
        -------
        Series
            ``retention_rate`` indexed by ``period``.

        Examples
        --------
        >>> from custval import ShiftedBetaGeoModel
        >>> model = ShiftedBetaGeoModel.from_params(alpha=0.704, beta=1.182)
        >>> model.retention_rate([1, 2, 12]).round(3).tolist()
        [0.627, 0.756, 0.945]
        """
        return self._curve(self._retention_of, t, 1, "retention_rate")

    def churn_probability(self, t: Any) -> pd.Series:
        """Probability that a new customer churns in period ``t``, ``P(T = t) = S(t-1) - S(t)``
        (FH07).

        Parameters
        ----------
        t : int or array-like of int
            Periods, >= 1.

        Returns
        -------
        Series
            ``churn_probability`` indexed by ``period``.

        Examples
        --------
        >>> from custval import ShiftedBetaGeoModel
        >>> model = ShiftedBetaGeoModel.from_params(alpha=0.704, beta=1.182)
        >>> model.churn_probability([1, 2]).round(3).tolist()
        [0.373, 0.153]
        """
        return self._curve(self._churn_of, t, 1, "churn_probability")

    def discounted_expected_residual_lifetime(
        self,
        period_discount_rate: float | None = None,
        renewals_so_far: Any = 0,
        *,
        annual_discount_rate: float | None = None,
        discount_rate: float | None = None,
    ) -> float | pd.Series:
        """Discounted expected residual lifetime (DERL) after ``renewals_so_far`` renewals.

        FH10: the expected present value, in units of the per-period payment, of the
        payments from the next renewal on, at ``discount_rate`` per period. Multiply by the
        margin per period for the residual value of a customer.

        Parameters
        ----------
        period_discount_rate : float, optional
            Discount rate per period (0.1 for 10% a period), > 0. ``discount_rate`` is its
            deprecated name.
        annual_discount_rate : float, optional
            Instead: an annual rate (0.10 for 10% a year), converted with the model's unit
            (``freq_``), as in :func:`custval.customer_lifetime_value`.
        renewals_so_far : int or array-like of int, default 0
            Renewals made (``n - 1`` in FH10).

        Returns
        -------
        float or Series
            A float for a scalar ``renewals_so_far``; otherwise a Series indexed by it.

        Examples
        --------
        >>> from custval import ShiftedBetaGeoModel
        >>> model = ShiftedBetaGeoModel.from_params(alpha=0.704, beta=1.182)
        >>> round(model.discounted_expected_residual_lifetime(0.1, renewals_so_far=4), 2)
        5.89
        """
        d = self._period_rate(period_discount_rate, annual_discount_rate, discount_rate)
        params = self._params()
        return self._by_renewals(lambda n: self._derl(params, d, n), renewals_so_far, "derl")

    def discounted_expected_lifetime(
        self,
        period_discount_rate: float | None = None,
        *,
        annual_discount_rate: float | None = None,
        discount_rate: float | None = None,
    ) -> float:
        """Discounted expected lifetime (DEL) of a new customer (FH10), ``1 + DERL(0) / (1+d)``.

        For the sBG ``2F1(1, beta; alpha+beta; 1/(1+d))``; for the BdW summed period by period.

        Parameters
        ----------
        period_discount_rate : float, optional
            Discount rate per period (0.1 for 10% a period), > 0. ``discount_rate`` is its
            deprecated name.
        annual_discount_rate : float, optional
            Instead: an annual rate (0.10 for 10% a year), converted with the model's unit
            (``freq_``), as in :func:`custval.customer_lifetime_value`.

        Returns
        -------
        float
            Present value of the payments in units of the per-period payment, the first
            (at acquisition) undiscounted.

        Examples
        --------
        >>> from custval import ShiftedBetaGeoModel
        >>> model = ShiftedBetaGeoModel.from_params(alpha=0.704, beta=1.182)
        >>> round(model.discounted_expected_lifetime(0.1), 3)
        3.695
        """
        d = self._period_rate(period_discount_rate, annual_discount_rate, discount_rate)
        return float(1.0 + self._derl(self._params(), d, np.zeros(1))[0] / (1.0 + d))

    def expected_lifetime(self, renewals_so_far: Any = None) -> float | pd.Series:
        """Mean lifetime in periods (infinite when ``alpha <= 1``).

        Parameters
        ----------
        renewals_so_far : int or array-like of int, optional
            ``None`` for a new customer: ``E[T] = (alpha+beta-1)/(alpha-1)``; otherwise the
            expected number of further periods, ``(beta+n-1)/(alpha-1)`` after ``n - 1``
            renewals.

        Returns
        -------
        float or Series

        Examples
        --------
        >>> from custval import ShiftedBetaGeoModel
        >>> ShiftedBetaGeoModel.from_params(alpha=1.5, beta=3.0).expected_lifetime()
        7.0
        """
        params = self._params()
        if renewals_so_far is None:
            return float(_expected_lifetime(params))
        return self._by_renewals(
            lambda n: _expected_lifetime(params, n), renewals_so_far, "expected_lifetime"
        )

    def _by_renewals(self, values_at: Any, renewals_so_far: Any, name: str) -> float | pd.Series:
        """``values_at(renewals)`` for a customer after ``renewals_so_far`` renewals: a float for
        a scalar, else a Series indexed by ``renewals_so_far``."""
        renewals = np.asarray(renewals_so_far)
        periods = self._periods(renewals, minimum=0, name="renewals_so_far")
        values = np.asarray(values_at(periods), dtype=float)
        if renewals.ndim == 0:
            return float(values[0])
        return pd.Series(
            values, index=pd.Index(periods.astype(int), name="renewals_so_far"), name=name
        )

    def _period_rate(
        self,
        period_discount_rate: float | None,
        annual_discount_rate: float | None,
        discount_rate: float | None,
    ) -> float:
        """The discount rate per period from exactly one of its names (``discount_rate``: the
        deprecated name of ``period_discount_rate``)."""
        if discount_rate is not None:
            warnings.warn(
                "discount_rate= is now period_discount_rate= (a rate per period); "
                "annual_discount_rate= takes an annual rate",
                FutureWarning,
                stacklevel=3,
            )
            if period_discount_rate is not None:
                raise DataError("give period_discount_rate or its old name discount_rate, not both")
            period_discount_rate = discount_rate
        if (period_discount_rate is None) == (annual_discount_rate is None):
            raise DataError(
                "give exactly one of period_discount_rate (per period, 0.1 for 10%) and "
                "annual_discount_rate (0.10 for 10% a year)"
            )
        if annual_discount_rate is not None:
            if getattr(self, "freq_", None) is None:
                raise DataError(
                    f"annual_discount_rate needs the model's period, but this {self._name()} "
                    "does not know it; give period_discount_rate, or fit it with "
                    "fit(..., freq='M') (from_params takes freq= too)"
                )
            period_discount_rate = annual_rate_to_period(float(annual_discount_rate), self.freq_)
        return self._discount(period_discount_rate)

    @staticmethod
    def _discount(discount_rate: float) -> float:
        try:
            d = float(discount_rate)
        except (TypeError, ValueError):
            d = float("nan")
        if not (np.isfinite(d) and d > 0):
            raise DataError(
                f"period_discount_rate must be a finite rate per period > 0 (0.1 for 10%), got "
                f"{discount_rate!r}; for undiscounted lifetimes use expected_lifetime"
            )
        return d

    def log_likelihood(self, summary: Any) -> pd.Series:
        """Not per customer: the sBG likelihood is over cohorts' counts (``log_likelihood_``)."""
        raise DataError(
            f"{self._name()} is fitted on cohorts' active counts, not on a summary of "
            "customers, so it has no per-customer log-likelihood; its fitted total is "
            "log_likelihood_"
        )

    # -- the value-kernel contract of custval.clv (README "Design notes") ----------------------
    def _value_kernel(self, terms: Any) -> Any:
        """Refuses :func:`custval.customer_lifetime_value`: a subscription model values
        renewals, not purchases (also for its subclasses, e.g. the BdW)."""
        raise DataError(
            f"{self._name()} has no expected_purchases(summary, t): it is a model of "
            "subscriptions (renewals in discrete periods), not of purchases in continuous time; "
            "customer_lifetime_value needs a model such as BetaGeoModel, ModifiedBetaGeoModel "
            "or ParetoNBDModel (value subscribers with discounted_expected_residual_lifetime)"
        )
