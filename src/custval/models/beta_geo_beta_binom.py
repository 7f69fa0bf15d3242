"""BG/BB: the beta-geometric/beta-Bernoulli model of discrete-time repeat transactions.

Fader, Hardie & Shang (2010), "Customer-Base Analysis in a Discrete-Time Noncontractual
Setting", Marketing Science 29(6), 1086-1108 (FHS). Equation numbers refer to that paper.

At each of ``n`` transaction opportunities an alive customer transacts with probability
``p ~ Beta(alpha, beta)``; between opportunities they die with probability
``theta ~ Beta(gamma, delta)``. A customer's history is summarized by ``frequency`` (the number
of opportunities with a transaction, ``x``), ``recency`` (the opportunity of the last one,
``t_x``; 0 if none) and ``n_periods`` (``n``).

Every beta-function ratio below is evaluated in log space; the finite sums run over
consecutive opportunities with the ratio of consecutive terms and ``psi(z+1) = psi(z) + 1/z``,
so each step costs a few arithmetic operations and no special function.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, gammaln

from custval._rows import unique_rows as _unique_rows
from custval._validation import bad_values_message
from custval.errors import DataError
from custval.models._base import TransactionModel
from custval.models._special import digamma_rising, log_rising

__all__ = ["BetaGeoBetaBinomModel"]

_GAMMA_NEAR_ONE = 1e-7  # |gamma - 1| below which the removable singularity is stepped around


# ---------------------------------------------------------------------------------------------
# Likelihood
# ---------------------------------------------------------------------------------------------
def _loglik_grad(
    params: np.ndarray, data: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood (FHS, section 2) and its gradient in (alpha, beta, gamma, delta)::

        L = B(a+x, b+n-x)/B(a,b) B(g, d+n)/B(g,d)
            + sum_{i=0}^{n-t_x-1} B(a+x, b+t_x-x+i)/B(a,b) B(g+1, d+t_x+i)/B(g,d)

    The first term: alive through all ``n`` opportunities; term ``i``: died right after
    opportunity ``t_x + i``. The sum's terms decrease in ``i``, so the first one scales it.
    """
    alpha, beta, gamma, delta = params
    x, t_x, n = data["frequency"], data["recency"], data["n_periods"]
    rows = x.shape[0]
    # ratios of beta functions as rising factorials (custval.models._special): exact also
    # where parameters run off along a ridge (no heterogeneity) or to a boundary
    ab, gd = alpha + beta, gamma + delta
    rise_ax, d_ax = log_rising(alpha, x), digamma_rising(alpha, x)

    # alive throughout: B(a+x, b+n-x)/B(a,b) B(g, d+n)/B(g,d)
    log_alive = (
        rise_ax
        + log_rising(beta, n - x)
        - log_rising(ab, n)
        + log_rising(delta, n)
        - log_rising(gd, n)
    )
    d_abn, d_gdn = digamma_rising(ab, n), digamma_rising(gd, n)
    g_alive = np.empty((4, rows))
    g_alive[0] = d_ax - d_abn
    g_alive[1] = digamma_rising(beta, n - x) - d_abn
    g_alive[2] = -d_gdn
    g_alive[3] = digamma_rising(delta, n) - d_gdn

    # died after opportunity t_x + i, i = 0 .. n - t_x - 1 (terms relative to i = 0):
    # B(a+x, b+t_x-x)/B(a,b) B(g+1, d+t_x)/B(g,d)
    count = (n - t_x).astype(np.int64)
    b0 = beta + (t_x - x)  # beta + t_x - x + i (whole numbers first: exact for tiny beta)
    ab0 = ab + t_x  # alpha + beta + t_x + i
    d0 = delta + t_x  # delta + t_x + i
    gd0 = gd + (t_x + 1.0)  # gamma + delta + t_x + 1 + i
    has_sum = count > 0
    d_abt, d_gdt = digamma_rising(ab, t_x), digamma_rising(gd, t_x + 1.0)
    log_first = np.where(
        has_sum,
        rise_ax
        + log_rising(beta, t_x - x)
        - log_rising(ab, t_x)
        + np.log(gamma)
        + log_rising(delta, t_x)
        - log_rising(gd, t_x + 1.0),
        -np.inf,
    )
    g_first = np.empty((4, rows))
    g_first[0] = d_ax - d_abt
    g_first[1] = digamma_rising(beta, t_x - x) - d_abt
    g_first[2] = 1.0 / gamma - d_gdt
    g_first[3] = digamma_rising(delta, t_x) - d_gdt

    # running sums over i: rows sorted by count so that the active rows are a prefix
    order = np.argsort(-count, kind="stable")
    cnt = count[order]
    n_max = int(cnt[0]) if rows else 0
    rel_sum = np.ones(rows)  # sum_i term_i / term_0
    rel_grad = np.zeros((4, rows))  # sum_i term_i/term_0 * (dlog term_i - dlog term_0)
    if n_max > 1:
        active = int(np.searchsorted(-cnt, -2, side="right"))  # rows with count > 1
        b_i, ab_i, d_i, gd_i = b0[order], ab0[order], d0[order], gd0[order]
        term = np.ones(active)
        shift = np.zeros((4, active))  # dlog term_i - dlog term_0
        sums = np.ones(active)
        gsum = np.zeros((4, active))
        b_i, ab_i, d_i, gd_i = b_i[:active], ab_i[:active], d_i[:active], gd_i[:active]
        for i in range(1, n_max):
            k = int(np.searchsorted(-cnt, -(i + 1), side="right"))  # rows with count > i
            if k < term.shape[0]:
                term, shift, b_i, ab_i, d_i, gd_i = (
                    term[:k],
                    shift[:, :k],
                    b_i[:k],
                    ab_i[:k],
                    d_i[:k],
                    gd_i[:k],
                )
            # term_i / term_{i-1} = (b+i-1)/(a+b+i-1) * (d+i-1)/(g+d+i)
            term = term * (b_i / ab_i) * (d_i / gd_i)
            inv_ab, inv_gd = 1.0 / ab_i, 1.0 / gd_i
            shift[0] -= inv_ab
            shift[1] += 1.0 / b_i - inv_ab
            shift[2] -= inv_gd
            shift[3] += 1.0 / d_i - inv_gd
            sums[:k] += term
            gsum[:, :k] += term * shift
            b_i, ab_i, d_i, gd_i = b_i + 1.0, ab_i + 1.0, d_i + 1.0, gd_i + 1.0
        rel_sum[order[:active]] = sums
        rel_grad[:, order[:active]] = gsum
    log_died = log_first + np.log(rel_sum)
    ll = np.logaddexp(log_alive, log_died)
    w_alive = np.exp(log_alive - ll)
    w_died = 1.0 - w_alive
    g_died = g_first + rel_grad / rel_sum
    grad = w_alive * g_alive + np.where(has_sum, w_died, 0.0) * g_died
    return ll, grad.T


# ---------------------------------------------------------------------------------------------
# Predictions: functions of (params, arrays), wrapped by the model's methods
# ---------------------------------------------------------------------------------------------
def _log_likelihood(params: np.ndarray, x: Any, t_x: Any, n: Any) -> np.ndarray:
    x, t_x, n = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, n)))
    shape = x.shape
    data = {"frequency": x.ravel(), "recency": t_x.ravel(), "n_periods": n.ravel()}
    return _loglik_grad(params, data)[0].reshape(shape)


def _log_survival_ratio(gamma: float, delta: float, n: Any, m: Any) -> np.ndarray:
    """``log[(Gamma(1+d+n)/Gamma(g+d+n) - Gamma(1+d+n+m)/Gamma(g+d+n+m)) / (g - 1)]``,
    with its limit ``log(psi(1+d+n+m) - psi(1+d+n)) + log(Gamma(1+d+n)/Gamma(g+d+n))`` at
    ``g = 1``."""
    n, m = np.asarray(n, dtype=float), np.asarray(m, dtype=float)
    head = gammaln(1.0 + delta + n) - gammaln(gamma + delta + n)
    if abs(gamma - 1.0) < _GAMMA_NEAR_ONE:
        with np.errstate(divide="ignore"):
            return head + np.log(digamma(1.0 + delta + n + m) - digamma(1.0 + delta + n))
    tail = gammaln(1.0 + delta + n + m) - gammaln(gamma + delta + n + m)
    with np.errstate(divide="ignore", invalid="ignore"):
        return head + np.log(-np.expm1(tail - head) / (gamma - 1.0))


def _expected_purchases(
    params: np.ndarray, frequency: Any, recency: Any, n_periods: Any, t: Any
) -> np.ndarray:
    """``E[X(n, n+t) | x, t_x, n]``, transactions in the next ``t`` opportunities (FHS eq. 13)::

    1/L B(a+x+1, b+n-x)/B(a,b) d/(g-1) G(g+d)/G(1+d)
        [G(1+d+n)/G(g+d+n) - G(1+d+n+t)/G(g+d+n+t)]
    """
    alpha, beta, gamma, delta = params
    x, t_x, n, m = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (frequency, recency, n_periods, t))
    )
    log_value = (
        -_log_likelihood(params, x, t_x, n)
        + betaln(alpha + x + 1.0, beta + n - x)
        - betaln(alpha, beta)
        + np.log(delta)
        + gammaln(gamma + delta)
        - gammaln(1.0 + delta)
        + _log_survival_ratio(gamma, delta, n, m)
    )
    return np.where(m > 0, np.exp(log_value), 0.0)


def _probability_alive(
    params: np.ndarray, frequency: Any, recency: Any, n_periods: Any, future: Any = 0
) -> np.ndarray:
    """``P(alive at opportunity n + future | x, t_x, n)`` (``future = 1`` is the P(alive) of FHS)::

    B(a+x, b+n-x)/B(a,b) B(g, d+n+future)/B(g,d) / L
    """
    alpha, beta, gamma, delta = params
    x, t_x, n, m = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (frequency, recency, n_periods, future))
    )
    log_value = (
        betaln(alpha + x, beta + n - x)
        - betaln(alpha, beta)
        + betaln(gamma, delta + n + m)
        - betaln(gamma, delta)
        - _log_likelihood(params, x, t_x, n)
    )
    return np.exp(np.minimum(log_value, 0.0))


def _expected_purchases_new_customer(params: np.ndarray, t: Any) -> np.ndarray:
    """``E[X(t)]`` over the first ``t`` opportunities of a new customer (FHS)::

    a/(a+b) d/(g-1) [1 - G(g+d) G(1+d+t) / (G(g+d+t) G(1+d))]
    """
    alpha, beta, gamma, delta = params
    m = np.asarray(t, dtype=float)
    log_value = (
        np.log(alpha / (alpha + beta))
        + np.log(delta)
        + gammaln(gamma + delta)
        - gammaln(1.0 + delta)
        + _log_survival_ratio(gamma, delta, 0.0, m)
    )
    return np.where(m > 0, np.exp(log_value), 0.0)


def _probability_of_purchases(params: np.ndarray, x: Any, t: int) -> np.ndarray:
    """``P(X(t) = x)`` for a new customer over ``t`` opportunities (FHS eq. 7), see
    :func:`_transactions_pmf`."""
    counts = np.asarray(x, dtype=float)
    alpha, beta, gamma, delta = (np.full((1, 1), float(v)) for v in params)
    return _transactions_pmf(alpha, beta, gamma, delta, counts.ravel(), t).reshape(counts.shape)


def _conditional_probability_of_purchases(
    params: np.ndarray, counts: np.ndarray, data: Mapping[str, np.ndarray], t: int
) -> np.ndarray:
    """``P(X(n, n+t) = x* | x, t_x, n)``, shape ``(rows, len(counts))`` (FHS 2010, the
    conditional counterpart of eq. 7).

    Alive at opportunity ``n`` the likelihood ``p^x (1-p)^(n-x) (1-theta)^n`` factorizes:
    ``p ~ Beta(alpha+x, beta+n-x)`` and ``theta ~ Beta(gamma, delta+n)``, independent, and the
    next ``t`` opportunities are those of a new customer with these parameters::

        P(x* | alive) = C(t,x*) B(a'+x*, b'+t-x*)/B(a',b') B(g, d'+t)/B(g,d')
                        + sum_{i=x*}^{t-1} C(i,x*) B(a'+x*, b'+i-x*)/B(a',b') B(g+1, d'+i)/B(g,d')

    (alive throughout, or for ``i`` more opportunities), with ``a' = alpha+x``, ``b' =
    beta+n-x``, ``d' = delta+n``. Dead at ``n`` (``1 - P(alive)``) adds to ``x* = 0``; the
    result is FHS's ``P(X(n, n+n*) = x* | x, t_x, n)``.
    """
    alpha, beta, gamma, delta = params
    x, t_x, n = data["frequency"], data["recency"], data["n_periods"]
    alive = _probability_alive(params, x, t_x, n)[:, None]
    unique, inverse = _unique_rows({"x": x, "n": n})
    xx, nn = unique["x"][:, None], unique["n"][:, None]
    given_alive = _transactions_pmf(
        alpha + xx, beta + nn - xx, np.full_like(xx, gamma), delta + nn, counts, t
    )[inverse]
    return alive * given_alive + np.where(counts[None, :] == 0, 1.0 - alive, 0.0)


def _transactions_pmf(
    alpha: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    delta: np.ndarray,
    k: np.ndarray,
    t: int,
) -> np.ndarray:
    """``P(X(t) = k)`` over ``t`` opportunities of a customer alive at the start with ``p ~
    Beta(alpha, beta)``, ``theta ~ Beta(gamma, delta)`` (FHS eq. 7), for parameter columns
    ``(rows, 1)`` and counts ``k``: shape ``(rows, len(k))``::

        C(t,k) B(a+k, b+t-k)/B(a,b) B(g, d+t)/B(g,d)
            + sum_{i=k}^{t-1} C(i,k) B(a+k, b+i-k)/B(a,b) B(g+1, d+i)/B(g,d)

    summed in log space (``logaddexp`` over ``i``, one ``(rows, len(k))`` block at a time).
    """
    k = np.asarray(k, dtype=float).ravel()[None, :]

    def log_binom(nn: Any, kk: np.ndarray) -> np.ndarray:
        return gammaln(nn + 1.0) - gammaln(kk + 1.0) - gammaln(nn - kk + 1.0)

    log_p0, log_theta0 = betaln(alpha, beta), betaln(gamma, delta)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(
            k <= t,
            log_binom(t, k)
            + betaln(alpha + k, beta + t - k)
            - log_p0
            + betaln(gamma, delta + t)
            - log_theta0,
            -np.inf,
        )
        for i in range(int(t)):
            died = np.where(
                i >= k,
                log_binom(float(i), k)
                + betaln(alpha + k, beta + np.maximum(i - k, 0.0))
                - log_p0
                + betaln(gamma + 1.0, delta + i)
                - log_theta0,
                -np.inf,
            )
            total = np.logaddexp(total, died)
    return np.exp(total)


# ---------------------------------------------------------------------------------------------
# The model class
# ---------------------------------------------------------------------------------------------
class BetaGeoBetaBinomModel(TransactionModel):
    """BG/BB model of repeat transactions at discrete opportunities (Fader, Hardie & Shang 2010).

    Fitted by maximum likelihood (FHS) with its analytic gradient on the distinct
    ``(frequency, recency, n_periods)`` patterns, optionally weighted (data are often given as
    counts of customers per pattern, like the donations data of the paper).

    Parameters
    ----------
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Attributes
    ----------
    params_ : Series
        ``alpha``, ``beta`` (transaction probability ~ Beta), ``gamma``, ``delta`` (dropout
        probability ~ Beta).
    log_likelihood_, n_customers_, n_patterns_, variance_matrix_
        See :class:`custval.models._base.BaseModel`; ``summary``, ``aic`` and ``bic`` too.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import BetaGeoBetaBinomModel
    >>> model = BetaGeoBetaBinomModel.from_params(alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
    >>> donor = pd.DataFrame({"frequency": [6], "recency": [6], "n_periods": [6]})
    >>> model.probability_alive(donor).round(3).tolist()
    [1.0]
    """

    _param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "delta")
    _count_noun: ClassVar[str] = "transactions"
    _data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "n_periods")
    _display_name: ClassVar[str] = "BG/BB model"

    def _validate_data(self, data: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
        for column in ("recency", "n_periods"):
            values = data[column]
            mask = values != np.round(values)
            if np.any(mask):
                raise DataError(
                    bad_values_message(
                        frame,
                        mask,
                        column,
                        "non-integer values",
                        f"{column!r} counts discrete transaction opportunities and must be a "
                        "whole number",
                    )
                )
        self._check_frequency_recency(data, frame, horizon="n_periods")
        mask = data["frequency"] > data["recency"]
        if np.any(mask):
            raise DataError(
                bad_values_message(
                    frame,
                    mask,
                    "frequency",
                    "values greater than 'recency'",
                    "a customer cannot transact at more opportunities than the one of their "
                    "last transaction",
                )
            )

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        return np.ones(4)

    def _loglik_grad(
        self, params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        return _loglik_grad(params, data)

    def _loglik(self, params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        return _loglik_grad(params, data)[0]

    # ------------------------------------------------------------------ predictions
    def _horizon(self, t: Any, name: str = "t") -> Any:
        """``t`` as a whole number of transaction opportunities."""
        value = self._duration(t, name=name)
        if np.any(np.asarray(value) != np.round(value)):
            raise DataError(
                f"{name} counts discrete transaction opportunities and must be a whole "
                f"number, got {t!r}"
            )
        return value

    def _expected_purchases(
        self, data: Mapping[str, Any], horizon: Any, summary: Any, customers: Any
    ) -> np.ndarray:
        """``E[X(n, n+t) | frequency, recency, n_periods]`` over the next ``t`` opportunities
        (FHS eq. 13).

        >>> import pandas as pd
        >>> from custval import BetaGeoBetaBinomModel
        >>> model = BetaGeoBetaBinomModel.from_params(
        ...     alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
        >>> donor = pd.DataFrame({"frequency": [3], "recency": [5], "n_periods": [6]})
        >>> round(float(model.expected_purchases(donor, 5).iloc[0]), 3)
        1.804
        """
        x, t_x, n = data["frequency"], data["recency"], data["n_periods"]
        return _expected_purchases(self._params(), x, t_x, n, horizon)

    def probability_alive(
        self, summary: pd.DataFrame, t: int | None = None, future_periods: int | None = None
    ) -> pd.Series:
        """Probability that each customer is alive at opportunity ``n_periods + t``.

        ``t=None`` (or 0): alive at the last observed opportunity; ``t=1`` is FHS's P(alive),
        alive at the next one (lifetimes' ``m_periods_in_future``). ``future_periods`` is the
        old name of ``t`` (deprecated, ``FutureWarning``).

        Parameters
        ----------
        summary : DataFrame
            Customers with ``frequency``, ``recency`` and ``n_periods``.
        t : int, optional
            Opportunities after ``n_periods``.

        Returns
        -------
        Series
            ``probability_alive``, aligned with ``summary.index``.

        Examples
        --------
        >>> import pandas as pd
        >>> from custval import BetaGeoBetaBinomModel
        >>> model = BetaGeoBetaBinomModel.from_params(
        ...     alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
        >>> donor = pd.DataFrame({"frequency": [3], "recency": [3], "n_periods": [6]})
        >>> round(float(model.probability_alive(donor).iloc[0]), 3)
        0.102
        """
        if future_periods is not None:
            if t is not None:
                raise DataError("give t (opportunities after n_periods), not also future_periods")
            warnings.warn(
                "probability_alive(summary, future_periods=m) is now probability_alive(summary, "
                "t=m), as for the other models",
                FutureWarning,
                stacklevel=2,
            )
            t = future_periods
        return super().probability_alive(summary, t)

    def _probability_alive(
        self, data: Mapping[str, Any], horizon: float | None, summary: Any, customers: Any
    ) -> np.ndarray:
        """Alive at opportunity ``n_periods + t`` given the history (FHS)."""
        future = 0 if horizon is None else horizon
        x, t_x, n = data["frequency"], data["recency"], data["n_periods"]
        return _probability_alive(self._params(), x, t_x, n, future)

    def _conditional_pmf(
        self, counts: np.ndarray, data: Mapping[str, Any], horizon: float
    ) -> np.ndarray:
        """``P(X(n_periods, n_periods+t) = n | frequency, recency, n_periods)`` at ``t``
        opportunities (FHS 2010): dead with ``1 - P(alive)``, else a new customer with the
        posterior ``p ~ Beta(alpha+x, beta+n-x)`` and ``theta ~ Beta(gamma, delta+n)``
        (derivation in ``_conditional_probability_of_purchases`` of this module).

        >>> import pandas as pd
        >>> from custval import BetaGeoBetaBinomModel
        >>> model = BetaGeoBetaBinomModel.from_params(
        ...     alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
        >>> donor = pd.DataFrame({"frequency": [3], "recency": [5], "n_periods": [6]})
        >>> model.probability_of_purchases(donor, [0, 1, 5], 5).round(3).values.tolist()
        [[0.31, 0.158, 0.053]]
        """
        return _conditional_probability_of_purchases(self._params(), counts, data, int(horizon))

    def _new_customer_mean(self, params: np.ndarray, horizon: Any) -> Any:
        """Expected transactions of a new customer over their first ``t`` opportunities (FHS).

        >>> from custval import BetaGeoBetaBinomModel
        >>> model = BetaGeoBetaBinomModel.from_params(
        ...     alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
        >>> round(model.expected_purchases_new_customer(6), 3)
        2.22
        """
        return _expected_purchases_new_customer(params, horizon)

    def _new_customer_pmf(self, params: np.ndarray, counts: np.ndarray, horizon: float) -> Any:
        """``P(X(t) = n)`` at ``t`` opportunities (FHS eq. 7).

        >>> from custval import BetaGeoBetaBinomModel
        >>> model = BetaGeoBetaBinomModel.from_params(
        ...     alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
        >>> round(model.probability_of_purchases_new_customer(0, 6), 3)
        0.311
        """
        return _probability_of_purchases(params, counts, int(horizon))

    # -- the value-kernel contract of custval.clv (README "Design notes") ----------------------
    def _value_kernel(self, terms: Any) -> Any:
        """Refuses :func:`custval.customer_lifetime_value`: discrete opportunities."""
        raise DataError(
            f"{self._name()} is a model of discrete opportunities, not of purchases in "
            "continuous time; customer_lifetime_value needs a model such as BetaGeoModel, "
            "ModifiedBetaGeoModel or ParetoNBDModel"
        )
