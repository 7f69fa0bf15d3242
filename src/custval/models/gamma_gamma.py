"""Gamma-Gamma model of the monetary value of repeat transactions.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
Journal of Marketing Research 42(4), 415-430, and Hardie's note 025 ("The Gamma-Gamma Model of
Monetary Value", 2013). Equation numbers refer to note 025.

The value of each of a customer's transactions is ``Gamma(p, nu)`` around their mean ``p/nu``;
across customers ``nu ~ Gamma(q, gamma)``. The average ``m_x`` of ``x`` transactions is then
``Gamma(p x, nu x)``, and the model is fitted on ``(x, m_x)`` = ``(frequency,
monetary_value)`` of repeat buyers. It assumes that spend is independent of the purchase
process; :func:`frequency_spend_correlation` reports the check lifetimes users make.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import gammaln
from sklearn.utils.validation import check_is_fitted

from custval._rows import unique_index
from custval._validation import (
    bad_values_message,
    nonnegative_columns,
)
from custval.errors import CustvalWarning, DataError
from custval.models._base import BaseModel
from custval.models._covariates import CovariateModelMixin
from custval.models._special import digamma_rising, log_rising

__all__ = ["GammaGammaModel", "frequency_spend_correlation"]

_COLUMNS = ("frequency", "monetary_value")


def _derived(data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Data-only arrays of the likelihood (computed once per fit by ``_prepare_patterns``)."""
    if "_x_unique" in data:
        return dict(data)
    x, m = data["frequency"], data["monetary_value"]
    x_unique, x_inverse = unique_index(x)
    return {
        **data,
        "_x_unique": x_unique,
        "_x_inverse": x_inverse,
        "_mx": m * x,
        "_log_m": np.log(m),
        "_log_mx": np.log(m * x),
    }


def _loglik_grad(
    params: np.ndarray, data: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood and gradient of the Gamma-Gamma model (note 025, eq. 1a)::

        f(m_x | p, q, gamma; x) = G(px+q) / (G(px) G(q)) gamma^q m_x^(px-1) x^(px)
                                  / (gamma + m_x x)^(px+q)

    Special functions of ``p x`` are evaluated once per distinct frequency.
    """
    p, q, gamma = (float(v) for v in params)
    return _loglik_grad_at(p, q, gamma, data)


def _loglik_grad_at(
    p: float, q: float, gamma: Any, data: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_loglik_grad` at ``gamma`` (a float, or one value per row with covariates);
    the third gradient column is ``d/d gamma`` (per row)."""
    d = _derived(data)
    x = data["frequency"]
    x_u, inverse = d["_x_unique"], d["_x_inverse"]
    px_u = p * x_u
    # log G(px+q) - log G(px) - log G(q) as a rising factorial from the larger argument, and
    # q log(gamma/(gamma+mx)), px log(mx/(gamma+mx)) as log1p: exact also where p or q, gamma
    # grow without bound (custval.models._special)
    log_ratio_u = np.where(
        q >= px_u,
        log_rising(q, px_u) - gammaln(px_u),
        log_rising(px_u, q) - gammaln(q),
    )
    psi_diff_u = digamma_rising(px_u, q)  # digamma(px+q) - digamma(px)
    psi_q_u = digamma_rising(q, px_u)  # digamma(px+q) - digamma(q)
    mx = d["_mx"]
    log1p_mg = np.log1p(mx / gamma)  # log((gamma + mx) / gamma)
    log1p_gm = np.log1p(gamma / mx)  # log((gamma + mx) / mx)
    px = p * x
    ll = log_ratio_u[inverse] - d["_log_m"] - q * log1p_mg - px * log1p_gm
    inv_g_mx = 1.0 / (gamma + mx)
    grad = np.empty((len(x), 3))
    grad[:, 0] = x * (psi_diff_u[inverse] - log1p_gm)
    grad[:, 1] = psi_q_u[inverse] - log1p_mg
    grad[:, 2] = q * mx * inv_g_mx / gamma - px * inv_g_mx
    return ll, grad


def _loglik_grad_covariates(
    params: np.ndarray, data: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Note 025 eq. (1a) with a per-customer scale ``gamma_i = gamma exp(x_i' delta)``.

    ``gamma`` is the rate of ``nu ~ Gamma(q, gamma)``, and the expected value of a transaction
    is ``p gamma_i / (q - 1)``: ``exp(delta)`` multiplies it (the spend scale). Gradient in
    ``(p, q, gamma, delta)`` by the chain rule: ``d/d eta = gamma_i d/d gamma_i``.
    """
    p, q, gamma = (float(v) for v in params[:3])
    gamma_i = gamma * np.exp(data["_Zs"] @ np.asarray(params[3:], dtype=float))
    ll, grad3 = _loglik_grad_at(p, q, gamma_i, data)
    d_eta = gamma_i * grad3[:, 2]
    grad = np.empty((len(ll), len(params)))
    grad[:, :2] = grad3[:, :2]
    grad[:, 2] = d_eta / gamma
    grad[:, 3:] = data["_Zs"] * d_eta[:, None]
    return ll, grad


def _expected_spend(params: np.ndarray, frequency: Any, monetary_value: Any) -> np.ndarray:
    """Conditional expected average transaction value, note 025 eq. (5) (FHL 2005, eq. 5)::

        E[M | p, q, gamma; m_x, x] = (gamma + m_x x) p / (p x + q - 1)
                                   = w m_x + (1 - w) p gamma / (q - 1),  w = p x / (p x + q - 1)

    For ``x = 0`` this is the population mean ``p gamma / (q - 1)``; it is infinite where
    ``p x + q <= 1`` (only possible when ``q <= 1``).
    """
    p, q = float(params[0]), float(params[1])
    gamma = params[2] if np.ndim(params[2]) else float(params[2])
    x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    m = np.where(x > 0, m, 0.0)  # the monetary value of non-repeat buyers is not used
    denominator = p * x + q - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, p * (gamma + m * x) / denominator, np.inf)


def _check_spend(data: Mapping[str, np.ndarray], frame: pd.DataFrame) -> None:
    x, m = data["frequency"], data["monetary_value"]
    if np.any(x != np.round(x)):
        raise DataError(
            bad_values_message(
                frame,
                x != np.round(x),
                "frequency",
                "non-integer frequencies",
                "frequency counts repeat purchase periods and must be a whole number",
            )
        )
    bad = (x > 0) & (m <= 0)
    if np.any(bad):
        raise DataError(
            bad_values_message(
                frame,
                bad,
                "monetary_value",
                "zero values for repeat buyers (frequency > 0)",
                "the Gamma-Gamma model needs a positive average spend per repeat transaction; "
                "net returns before building the summary, or drop customers whose repeat "
                "purchases sum to zero",
            )
        )


def frequency_spend_correlation(summary: pd.DataFrame) -> pd.Series:
    """Correlation between purchase frequency and average spend among repeat buyers.

    The Gamma-Gamma model assumes that the monetary value of a customer's transactions is
    independent of their purchase process. A correlation close to 0 (lifetimes' documentation
    suggests checking that it is weak, e.g. ``|pearson| < 0.3``) supports the assumption; a
    strong one means ``expected_spend`` will be biased for frequent (or infrequent) buyers.

    Parameters
    ----------
    summary : DataFrame
        Customers with ``frequency`` and ``monetary_value``; rows with frequency 0 are left out,
        as in the fit.

    Returns
    -------
    Series
        ``pearson`` and ``spearman`` correlations and ``n_customers`` (repeat buyers used).

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import frequency_spend_correlation
    >>> summary = pd.DataFrame(
    ...     {"frequency": [0, 1, 2, 3, 5], "monetary_value": [0, 20, 35, 18, 27]})
    >>> float(frequency_spend_correlation(summary)["n_customers"])
    4.0
    """
    nonnegative_columns(summary, _COLUMNS, hint="Build it with custval.rfm_summary")
    repeat = summary["frequency"].to_numpy(dtype=float) > 0
    frame = summary.loc[repeat, list(_COLUMNS)].astype(float)
    if len(frame) < 3:
        raise DataError(
            f"the summary has {len(frame)} repeat buyers (frequency > 0); at least 3 are "
            "needed to compute a correlation between frequency and monetary_value"
        )
    return pd.Series(
        {
            "pearson": frame["frequency"].corr(frame["monetary_value"], method="pearson"),
            "spearman": frame["frequency"].corr(frame["monetary_value"], method="spearman"),
            "n_customers": float(len(frame)),
        },
        name="frequency_spend_correlation",
    )


class GammaGammaModel(CovariateModelMixin, BaseModel):
    """Gamma-Gamma model of the average value of a customer's repeat transactions.

    Fader, Hardie & Lee (2005, "RFM and CLV") and Hardie's note 025. Fitted by maximum likelihood
    (eq. 1a) with its analytic gradient on ``frequency`` and ``monetary_value`` (the average value
    of the repeat transactions, as in lifetimes).

    **Only repeat buyers are used in the fit.** Rows with ``frequency == 0`` carry no
    information on spend per repeat transaction; ``fit`` leaves them out and records how many
    customers it left out in ``n_excluded_`` (``n_customers_`` counts the customers used). They
    still get a prediction: ``expected_spend`` gives them the population mean.

    The model assumes spend is independent of purchase frequency; check it with
    :func:`custval.frequency_spend_correlation`.

    Parameters
    ----------
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Attributes
    ----------
    params_ : Series
        ``p`` (shape of each transaction's value), ``q`` and ``gamma`` (shape and rate of the
        customers' ``nu``); lifetimes calls ``gamma`` ``v``.
    n_customers_ : float
        Repeat buyers (total weight) the model was fitted on.
    n_excluded_ : float
        Customers (total weight) with frequency 0, left out of the fit.
    log_likelihood_, n_patterns_, variance_matrix_, freq_
        See :class:`custval.models._base.BaseModel`; ``summary``, ``aic`` and ``bic`` too.

    Examples
    --------
    >>> from custval import GammaGammaModel
    >>> import pandas as pd
    >>> model = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)
    >>> summary = pd.DataFrame({"frequency": [0, 2], "monetary_value": [0.0, 22.35]})
    >>> model.expected_spend(summary).round(2).tolist()
    [35.22, 24.66]
    """

    _param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    _data_columns: ClassVar[tuple[str, ...]] = _COLUMNS
    _display_name: ClassVar[str] = "Gamma-Gamma model"
    _covariate_groups: ClassVar[tuple[str, ...]] = ("spend",)

    def fit(
        self,
        summary: pd.DataFrame,
        weights: Any = None,
        *,
        customers: pd.DataFrame | None = None,
        spend_covariates: list[str] | tuple[str, ...] = (),
        covariate_penalty: float = 0.0,
        freq: str | None = None,
    ) -> Any:
        """Fit by maximum likelihood on the repeat buyers, optionally with covariates.

        Parameters
        ----------
        summary : DataFrame
            ``frequency`` and ``monetary_value`` per customer (and the covariate columns
            when ``customers`` is not given).
        weights : array-like, optional
            Number of customers each row stands for.
        customers : DataFrame, optional
            Customer attributes indexed like ``summary``.
        spend_covariates : list of str
            Columns scaling spend: ``gamma_i = gamma exp(x'delta)``, so ``exp(delta)``
            multiplies the expected value per transaction ``p gamma_i / (q - 1)``;
            coefficients ``"spend:<col>"``; categorical columns one-hot encoded.
        covariate_penalty : float, default 0
            L2 penalty on the coefficients (mean negative log-likelihood scale).
        freq : {"D", "W", "M", "Y", "h"}, optional
            The summary's time unit, recorded as ``freq_``; defaults to
            ``summary.attrs["freq"]`` (see :meth:`custval.models._base.BaseModel.fit`).

        Returns
        -------
        self

        Examples
        --------
        >>> import custval
        >>> model = custval.GammaGammaModel().fit(  # doctest: +SKIP
        ...     summary, customers=attributes, spend_covariates=["channel"])
        """
        groups = {"spend": spend_covariates}
        args = (customers, (), covariate_penalty, freq)
        return self._fit_covariates(summary, weights, super().fit, groups, *args)

    def _fitted_rows(self, summary: pd.DataFrame) -> np.ndarray:
        return summary["frequency"].to_numpy(dtype=float) > 0

    def _validate_data(self, data: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
        _check_spend(data, frame)

    def _prepare_fit(
        self, summary: pd.DataFrame, weights: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        data = self._extract(summary)
        w = self._weights(weights, len(summary))
        repeat = data["frequency"] > 0
        self.n_excluded_ = float(w[~repeat].sum())
        if not np.any(repeat & (w > 0)):
            raise DataError(
                f"{self._name()} is fitted on repeat buyers (frequency > 0) and the summary "
                f"has none among its {len(summary):,} rows; it needs customers with at least "
                "one repeat purchase"
            )
        return {k: v[repeat] for k, v in data.items()}, w[repeat]

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        mean_spend = np.dot(weights, data["monetary_value"]) / weights.sum()
        start = np.array([2.0, 3.0, max(mean_spend, 1e-9)])  # population mean p gamma/(q-1)
        if len(self._param_names) > 3:
            return np.concatenate([start, np.zeros(len(self._param_names) - 3)])
        return start

    def _prepare_patterns(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if getattr(self, "covariates_", None) is None:
            return _derived(data)
        prepared = _derived({c: data[c] for c in self._data_columns})
        prepared["_Zs"] = self._group_design(
            self._pattern_matrix(data), len(data["frequency"]), "spend"
        )
        return prepared

    def _loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        if "_Zs" in data:
            return _loglik_grad_covariates(params, data)
        return _loglik_grad(params, data)

    def _loglik(self, params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        return self._loglik_grad(params, data)[0]

    def _extra_state(self) -> dict[str, Any]:
        value = getattr(self, "n_excluded_", math.nan)
        state = {"n_excluded": None if not math.isfinite(value) else float(value)}
        return self._with_covariate_state(state)

    def _set_extra_state(self, state: Mapping[str, Any]) -> None:
        value = state.get("n_excluded")
        self.n_excluded_ = math.nan if value is None else float(value)
        self._restore_covariate_state(state)

    def expected_spend(
        self, summary: pd.DataFrame, customers: pd.DataFrame | None = None
    ) -> pd.Series:
        """Conditional expected average value of each customer's future transactions.

        Note 025, eq. (5): a weighted average of the customer's observed ``monetary_value``
        and the population mean ``p gamma / (q - 1)``, with weight ``p x / (p x + q - 1)`` on
        the customer's own mean. Customers with frequency 0 get the population mean (their
        ``monetary_value`` is not used). If ``q <= 1`` the population mean is infinite; those
        values are ``inf`` and a ``CustvalWarning`` says so.

        Parameters
        ----------
        summary : DataFrame
            Customers with ``frequency`` and ``monetary_value``.
        customers : DataFrame, optional
            For a model with covariates: the customers' covariates, indexed like ``summary``
            (default: columns of ``summary``); each gets ``gamma_i = gamma exp(x'delta)``.

        Returns
        -------
        Series
            ``expected_spend``, aligned with ``summary.index``.

        Examples
        --------
        >>> from custval import GammaGammaModel
        >>> import pandas as pd
        >>> model = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)
        >>> model.expected_spend(pd.DataFrame({"frequency": [5], "monetary_value": [40.0]}))
        0    39.614593
        Name: expected_spend, dtype: float64
        """
        data = self._prediction_data(summary)
        check_is_fitted(self, "params_")
        params = self.params_[list(self._param_names)].to_numpy(dtype=float)
        if getattr(self, "covariates_", None) is not None:
            matrix = self._customer_matrix(summary, customers)
            scale = np.exp(self._group_design(matrix, len(summary), "spend") @ params[3:])
            params = [params[0], params[1], params[2] * scale]
        values = _expected_spend(params, data["frequency"], data["monetary_value"])
        if np.any(np.isinf(values)):
            warnings.warn(
                f"{self._name()}: q = {self.params_['q']:.4g} <= 1, so the population mean spend "
                f"is infinite and {int(np.isinf(values).sum()):,} customers get an infinite "
                "expected spend; refit with a penalizer_coef or on more repeat buyers",
                CustvalWarning,
                stacklevel=2,
            )
        return self._series(values, summary, "expected_spend")

    def _likelihood_rows(self, data: Mapping[str, np.ndarray]) -> np.ndarray:
        return data["frequency"] > 0  # fitted on repeat buyers only (note 025)

    # -- the spend contract of custval.clv (README "Design notes") -----------------------------
    def _affine_spend(self) -> _AffineSpend | None:
        """The expected spend as ``A(x) + B(x) * monetary_value`` for parameter draws in
        :func:`custval.clv_interval`, or None where it is not affine (other parameters). With
        covariates ``A`` scales by each customer's ``exp(x'delta)``
        (:meth:`_AffineSpend.scale_design`)."""
        if tuple(self.params_.index[:3]) != ("p", "q", "gamma"):
            return None
        if len(self.params_) > 3 and getattr(self, "covariates_", None) is None:
            return None
        return _AffineSpend(self)


class _AffineSpend:
    """Gamma-Gamma's expected spend, affine in the observed mean (note 025, eq. 5)."""

    def __init__(self, model: GammaGammaModel) -> None:
        self.model = model

    def coefficients(self, params: np.ndarray, frequency: np.ndarray) -> tuple[Any, Any]:
        """``A(x), B(x)`` at ``params`` (without covariates: at ``gamma``) for the distinct
        ``frequency`` values."""
        n = len(frequency)
        both = _expected_spend(  # at m = 0 and m = 1, in one call
            params, np.concatenate([frequency, frequency]), np.repeat([0.0, 1.0], n)
        )
        return both[:n], both[n:] - both[:n]

    def scale_design(self, profiles: pd.DataFrame) -> np.ndarray:
        """``D`` with ``log(gamma_i / gamma) = D @ params`` for covariate profiles (rows of
        ``profiles``, the covariate columns): ``A(x)`` of a profile is ``exp(D @ params)``
        times :meth:`coefficients`' ``A`` (``B`` does not depend on ``gamma``)."""
        matrix = self.model._customer_matrix(profiles, None)
        design = self.model._group_design(matrix, len(profiles), "spend")
        return np.hstack([np.zeros((len(profiles), 3)), design])

    def admissible(self, thetas: np.ndarray) -> np.ndarray:
        """Draws with a finite mean spend (``q > 1``)."""
        return thetas[:, 1] > 1.0
