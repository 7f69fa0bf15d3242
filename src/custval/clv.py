"""Customer lifetime value: the discounted value of each customer's future purchases.

``CLV_i = margin_i * E[spend per purchase]_i * integral_0^H exp(-delta t) dE[X_i(t) | history]``

* ``E[X_i(t) | history]`` is the transaction model's conditional expected number of repeat
  purchases in the next ``t`` periods (BG/NBD, MBG/NBD, Pareto/NBD, ...), in the summary's unit;
* the spend model (Gamma-Gamma) gives the expected value of each future purchase;
* ``delta = log(1 + annual rate converted to one period)`` is the continuously compounded rate
  per period, so ``exp(-delta t)`` equals ``(1 + annual rate) ** -(t in years)`` exactly;
* ``margin`` turns revenue into contribution (a fraction, or one per customer).

Units are never guessed: the summary records its unit in ``attrs["freq"]``, the transaction model
records the unit it was fitted on in ``freq_`` and both must agree; the horizon is a duration with
its unit ("12M", "52W", "365D") and the discount rate is annual.

How the discounted integral is computed
---------------------------------------
For the BG/NBD family and the Pareto/NBD, ``E[X(t) | history] = P(alive) * E_alive(t)``, where
``E_alive(t)`` (expected purchases given alive at ``T``) depends on the history only through
``(frequency, T)``. Integrating by parts,

``integral_0^H exp(-delta t) dE_alive(t) = exp(-delta H) E_alive(H)
+ delta * integral_0^H exp(-delta t) E_alive(t) dt``,

and the last integral is taken by Gauss-Legendre quadrature (8 nodes per panel) on panels
``[0, c], [c, 4c], [4c, 16c], ...`` (each at most ``2 / delta`` wide), where ``c`` is the model's
time scale (``alpha`` for BG/NBD, ``min(alpha, beta)`` for Pareto/NBD). ``E_alive`` is analytic
for ``t > -c``, so every panel converges geometrically: the result agrees with adaptive
quadrature of the purchase *rate* to ~1e-13 (``tests/test_clv.py``). For an infinite horizon
(``horizon="inf"``) the integral over ``[0, inf)`` is a trapezoid rule in ``log t`` (step 0.3,
from ``1e-6 c`` to ``50 / delta``), which converges exponentially for this analytic,
doubly-exponentially decaying integrand (~1e-12). This is a numerically exact value, not a
month-by-month approximation; for Pareto/NBD it reproduces the closed-form DERT of Fader, Hardie
& Lee (2005, "RFM and CLV", eq. 2). With ``step="1M"`` (or any duration) the value is instead a
sum over a grid, each step's expected purchases discounted at the step's end as lifetimes does;
it converges to the exact value as the step shrinks. The rule is written once
(:func:`custval._quadrature.quadrature_rule`).

This module never imports a model: it gets each transaction model's kernel through
``model._value_kernel(terms)`` (the BG/NBD family's in :mod:`custval.models._beta_geo_clv`,
the Pareto/NBD's in :mod:`custval.models._pareto_nbd_clv`); a model without one is valued by
the same quadrature on its public ``expected_purchases`` (finite horizons only), and a model
with covariates by that quadrature per covariate profile, ``expected_purchases(summary, t,
customers=...)`` (:class:`custval._quadrature.CovariateKernel`, any horizon), and a spend
model offers its affine form for parameter draws through ``spend_model._affine_spend()``
(README "Design notes").

Uncertainty
-----------
Intervals reflect the sampling uncertainty of the fitted parameters: parameter vectors are drawn
from the asymptotic normal distribution of the log-parameters (mean ``log(params_)``, covariance
``variance_matrix_ / outer(params_, params_)``, the delta method) for the transaction and the
spend model independently (covariate coefficients, unbounded, are drawn normal given the
log-parameters, from the same joint covariance), CLV is evaluated for every draw, and the
per-customer percentiles of the draws are reported. Draws of the Gamma-Gamma ``q <= 1``
(infinite mean spend) are redrawn. Customers with identical inputs are evaluated once; the
distinct rows are processed in blocks (memory is bounded by ``chunk_size * n_draws``),
vectorized over draws in float32 (the percentiles need a few significant digits, float32 carries
seven).

For the BG/NBD family every number a row needs is looked up in small per-draw tables: P(alive)
from tables over the distinct frequencies, ``T`` and recencies; the discounted purchases given
alive times the Gamma-Gamma coefficients from tables over the distinct ``(frequency, T)``
pairs. Those pair tables use few hypergeometric evaluations: ``E_alive`` depends on ``T`` and
``t`` only through ``log((alpha+T)/(alpha+T+t))``, so per frequency and draw it is one
analytic function of one variable, interpolated at Chebyshev points (with a convergence check
on the interpolant's last coefficients, and the direct quadrature where it fails); the point
values use the same device at rounding-level accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from custval import _engines
from custval._log import read_moment
from custval._quadrature import (
    AliveFactorKernel,
    CovariateKernel,
    ExpectedPurchasesKernel,
    Kernel,
    ProfileKernel,
    Terms,
    model_name,
    unique_rows,
)
from custval._rows import unique_index
from custval._units import annual_rate_to_period, normalize_freq, parse_duration, summary_freq
from custval._validation import (
    Interval,
    align_by_customer,
    check_margin,
    check_margins,
    covariate_profiles,
    has_covariates,
    nonnegative_columns,
    require_columns,
    validate_params,
    with_customer_columns,
)
from custval.errors import DataError

__all__ = ["clv_interval", "customer_lifetime_value", "customer_value_table"]

_SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
_BANDS = ("clv_lower", "clv_median", "clv_upper")
# The per-customer values (also what an engine scores chunk by chunk), then the ranks and the
# segment, which need the whole customer base.
_VALUE_COLUMNS = (
    *_SUMMARY_COLUMNS,
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    *_BANDS,
)
_TABLE_COLUMNS = (*_VALUE_COLUMNS, "value_rank", "value_decile", "segment")
_MAX_REDRAW = 20


# ---------------------------------------------------------------------------------------------
# Terms: unit, horizon, discount rate, margin
# ---------------------------------------------------------------------------------------------


def _check_fitted(model: Any) -> None:
    """scikit-learn's check for estimators; a fitted ``params_`` for other model objects."""
    if hasattr(model, "fit"):
        check_is_fitted(model, "params_")
    elif not isinstance(getattr(model, "params_", None), pd.Series):
        raise DataError(
            f"{model_name(model)} has no fitted params_ (a Series of parameters); fit it first"
        )


def _resolve_terms(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    horizon: Any,
    annual_discount_rate: float,
    step: Any,
    freq: str | None = None,
) -> Terms:
    freq = summary_freq(summary, freq)
    model_freq = getattr(transaction_model, "freq_", None)
    if model_freq is None:
        raise DataError(
            f"the {model_name(transaction_model)} does not record the time unit it was fitted "
            "in (freq_ is None), so its rates cannot be matched to the summary's unit "
            f"{freq!r}; fit it on a summary from custval.rfm_summary (which sets "
            "attrs['freq']), or create it with from_params(..., freq=...)"
        )
    if normalize_freq(model_freq) != freq:
        raise DataError(
            f"the {model_name(transaction_model)} was fitted in unit {model_freq!r} but the "
            f"summary is in unit {freq!r}; its parameters (e.g. alpha) are rates per "
            f"{model_freq!r} period, so rebuild the summary with freq={model_freq!r} or refit "
            "the model on this summary"
        )
    spend_freq = getattr(spend_model, "freq_", None)
    if spend_freq is not None and normalize_freq(spend_freq) != freq:
        raise DataError(
            f"the {model_name(spend_model)} was fitted on a summary in unit {spend_freq!r} but "
            f"the summary is in unit {freq!r}; frequency and monetary_value depend on the "
            "period length, so fit both models on summaries in the same unit"
        )
    if horizon is None:
        raise DataError("horizon is required, with its unit, e.g. '12M', '52W', '365D' or 'inf'")
    h = parse_duration(horizon, to=freq)
    if not h > 0:
        raise DataError(f"horizon must be positive, got {horizon!r}")
    if isinstance(annual_discount_rate, bool) or not isinstance(
        annual_discount_rate, int | float | np.number
    ):
        raise DataError(
            f"annual_discount_rate must be a number (0.10 for 10% a year), got "
            f"{annual_discount_rate!r}"
        )
    annual = float(annual_discount_rate)
    if annual < 0 or not math.isfinite(annual):
        raise DataError(
            f"annual_discount_rate must be a finite rate >= 0 (0.10 for 10% a year), got {annual!r}"
        )
    if annual >= 1.0:
        raise DataError(
            f"annual_discount_rate={annual!r} means {annual:.0%} a year; write rates as fractions "
            "(0.10 for 10%)"
        )
    per_period = annual_rate_to_period(annual, freq)
    delta = math.log1p(per_period)
    if math.isinf(h) and delta <= 0:
        raise DataError(
            "an infinite horizon needs a positive annual_discount_rate (the undiscounted number "
            "of future purchases can be infinite); give e.g. annual_discount_rate=0.10 or a "
            "finite horizon such as '36M'"
        )
    step_periods = None
    step_label = None
    if step is not None:
        if math.isinf(h):
            raise DataError(
                "step= sums over a time grid and needs a finite horizon; use step=None (the "
                "exact integral) with horizon='inf'"
            )
        step_periods = parse_duration(step, to=freq)
        if not (step_periods > 0 and math.isfinite(step_periods)):
            raise DataError(f"step must be a positive duration such as '1M' or '1W', got {step!r}")
        step_label = str(step)
    label = "inf" if math.isinf(h) else str(horizon)
    return Terms(freq, h, label, annual, per_period, delta, step_periods, step_label)


def _resolve_margin(margin: Any, summary: pd.DataFrame) -> tuple[np.ndarray | float, Any, str]:
    """Margin per customer (array) or one fraction; its description; the value basis.

    One rule everywhere (:data:`custval._validation.MARGIN_RULE`): a margin lies in (0, 1], and
    1 means the values are revenue (or already profit).
    """
    if isinstance(margin, str):
        require_columns(
            summary,
            [margin],
            what="summary",
            hint=f"margin={margin!r} names a column of per-customer margins",
        )
        return check_margins(summary, margin, what="summary"), f"column {margin!r}", "contribution"
    if isinstance(margin, pd.Series):
        aligned = align_by_customer(margin, summary, name="margin Series")
        values = check_margins(aligned.to_frame("margin"), "margin", what="margin Series")
        return values, "per-customer Series", "contribution"
    if _is_amount(margin):
        value = check_margin(margin)
        return value, value, "revenue" if value == 1.0 else "contribution"
    raise DataError(
        "margin must be a fraction in (0, 1], a column name of the summary, or a Series indexed "
        f"by customer_id; got {type(margin).__name__}"
    )


def _check_summary(summary: pd.DataFrame, *, monetary: bool = True) -> dict[str, np.ndarray]:
    columns = _SUMMARY_COLUMNS if monetary else _SUMMARY_COLUMNS[:3]
    return nonnegative_columns(
        summary,
        columns,
        what="summary",
        hint="Build it with custval.rfm_summary(transactions) (with an amount column)",
    )


# ---------------------------------------------------------------------------------------------
# Transaction models: the value kernel hook (custval._quadrature; README "Design notes")
# ---------------------------------------------------------------------------------------------
def _transaction_kernel(model: Any, terms: Terms, profiles: pd.DataFrame | None) -> Kernel:
    """The model's own kernel (``model._value_kernel(terms)``), or the exact quadrature of its
    public ``expected_purchases`` for a model without one (hook absent or returning None); for
    a model with covariates, that quadrature with each customer's covariate profile."""
    _check_fitted(model)
    if has_covariates(model):  # few profiles: the plain model's kernel per profile
        if ProfileKernel.applies(model, profiles):
            return ProfileKernel(model, terms, profiles)
        return CovariateKernel(model, terms, profiles)
    hook = getattr(model, "_value_kernel", None)
    kernel = hook(terms) if callable(hook) else None
    return kernel if kernel is not None else ExpectedPurchasesKernel(model, terms)


# ---------------------------------------------------------------------------------------------
# Covariates: each customer's profile
# ---------------------------------------------------------------------------------------------
def _covariate_profiles(
    models: tuple[Any, ...], summary: pd.DataFrame, customers: pd.DataFrame | None
) -> tuple[pd.DataFrame | None, np.ndarray | None]:
    """The distinct covariate profiles of the customers (the covariate columns of every model
    with covariates, from ``customers`` or else from ``summary``) and each customer's profile
    position; ``(None, None)`` when no model has covariates."""
    names = [c for m in models if has_covariates(m) for c in m.covariates_.covariates]
    if not names:
        if customers is not None:
            raise DataError(
                "customers= gives covariates, but neither model was fitted with covariates; "
                "drop customers= or fit the model with purchase_covariates=[...] / "
                "spend_covariates=[...]"
            )
        return None, None
    frame = with_customer_columns(summary, customers)
    return covariate_profiles(frame, names, given=customers is not None)


# ---------------------------------------------------------------------------------------------
# Spend models
# ---------------------------------------------------------------------------------------------
def _is_amount(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _is_fixed_spend(spend_model: Any) -> bool:
    """A fixed amount per purchase or a Series of them (no spend model: no monetary_value)."""
    return _is_amount(spend_model) or isinstance(spend_model, pd.Series)


class _Spend:
    """Expected spend per future purchase: ``A(x) + B(x) * monetary_value`` (Gamma-Gamma is
    affine in the observed mean, note 025 eq. 5), or a fixed value per customer."""

    def __init__(
        self,
        spend_model: Any,
        summary: pd.DataFrame,
        customers: pd.DataFrame | None = None,
        profiles: pd.DataFrame | None = None,
    ):
        self.model = spend_model
        self.affine = None  # the spend model's affine form A(x) + B(x) m, for draws
        self.scale_design = None  # covariates: log multiplier of A per profile = design @ theta
        if _is_amount(spend_model):
            value = float(spend_model)
            if not (value >= 0 and math.isfinite(value)):
                raise DataError(
                    f"a fixed spend per purchase must be a finite amount >= 0, got {spend_model!r}"
                )
            self.point = np.full(len(summary), value)
            self.description = f"fixed {value:g} per purchase"
            return
        if isinstance(spend_model, pd.Series):
            missing = ~summary.index.isin(spend_model.index)
            if missing.any():
                raise DataError(
                    f"spend Series has no value for {int(missing.sum()):,} customers "
                    f"(first: {list(summary.index[missing][:5])}); index it by customer_id"
                )
            values = pd.to_numeric(spend_model.reindex(summary.index), errors="coerce")
            values = values.to_numpy(dtype=float)
            if not np.all(np.isfinite(values) & (values >= 0)):
                raise DataError(
                    "spend Series must hold finite amounts >= 0 for every customer; fill or "
                    "fix the missing or negative values"
                )
            self.point = values
            self.description = "per-customer Series"
            return
        if not hasattr(spend_model, "expected_spend"):
            raise DataError(
                "spend_model must be a fitted spend model with expected_spend(summary) (e.g. "
                "custval.GammaGammaModel), a fixed amount per purchase, or a Series of expected "
                f"spend per customer; got {type(spend_model).__name__}"
            )
        _check_fitted(spend_model)
        self.description = model_name(spend_model)
        covariates = has_covariates(spend_model)
        kwargs = {"customers": customers} if covariates else {}
        self.point = spend_model.expected_spend(summary, **kwargs).to_numpy(dtype=float)
        if np.any(~np.isfinite(self.point)):
            raise DataError(
                f"the {model_name(spend_model)} gives an infinite expected spend (q <= 1); "
                "refit it with a small penalizer_coef or on more repeat buyers"
            )
        hook = getattr(spend_model, "_affine_spend", None)  # the spend contract (README)
        self.affine = hook() if callable(hook) else None
        if covariates and self.affine is not None:
            # A(x) scales with the customer's covariates: exp(design @ theta) per profile
            self.scale_design = self.affine.scale_design(profiles)

    @property
    def has_draws(self) -> bool:
        return self.affine is not None

    def coefficients(self, params: np.ndarray, x_unique: np.ndarray) -> tuple[Any, Any]:
        """``A(x), B(x)`` of the affine spend at ``params`` for the distinct frequencies."""
        return self.affine.coefficients(params, x_unique)


# ---------------------------------------------------------------------------------------------
# Parameter draws
# ---------------------------------------------------------------------------------------------
def _parameter_draws(model: Any, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Parameter vectors from the asymptotic normal distribution of the estimates.

    Positive parameters are drawn log-normal (the normal of the log-parameters, covariance by
    the delta method ``variance_matrix_ / outer(params_, params_)``); covariate coefficients
    (``"group:column"``, unbounded) normal, from the same joint covariance: given the drawn
    log-parameters ``u``, the coefficients are normal with mean ``c + S_cb S_bb^-1 (u - log
    theta)`` and covariance ``S_cc - S_cb S_bb^-1 S_bc``. The positive parameters consume the
    generator exactly as for a model without covariates; the coefficients are drawn from a
    generator spawned from it (which leaves its stream untouched), so a model whose
    coefficients are known to be zero (zero variance) draws what the model without covariates
    draws.
    """
    theta = model.params_.to_numpy(dtype=float)
    variance = getattr(model, "variance_matrix_", None)
    if variance is None or not np.all(np.isfinite(np.asarray(variance, dtype=float))):
        raise DataError(
            f"the {model_name(model)} has no variance matrix (variance_matrix_ is missing or "
            "not finite: a model from from_params, a fit on a ridge or boundary of the "
            "likelihood (convergence_ 'ridge' or 'boundary', named in the fit's warning), or a "
            "fit whose Hessian was singular), so its parameter uncertainty is unknown; fit it "
            "with a small penalizer_coef, or pass n_draws=0 for no intervals"
        )
    coefficient = np.array([":" in str(name) for name in model.params_.index])
    positive = ~coefficient
    scale = np.where(coefficient, 1.0, theta)  # the delta method on the positive ones only
    cov = np.asarray(variance, dtype=float) / np.outer(scale, scale)
    cov = 0.5 * (cov + cov.T)
    cov_bb = cov[np.ix_(positive, positive)]
    z = rng.standard_normal((n_draws, int(positive.sum())))
    u = z @ _root(cov_bb).T
    out = np.empty((n_draws, len(theta)))
    out[:, positive] = theta[positive] * np.exp(u)
    if coefficient.any():
        cov_cb = cov[np.ix_(coefficient, positive)]
        regression = cov_cb @ np.linalg.pinv(cov_bb)
        conditional = cov[np.ix_(coefficient, coefficient)] - regression @ cov_cb.T
        (child,) = rng.spawn(1)
        zc = child.standard_normal((n_draws, int(coefficient.sum())))
        out[:, coefficient] = theta[coefficient] + u @ regression.T + zc @ _root(conditional).T
    return out


def _root(cov: np.ndarray) -> np.ndarray:
    """``R`` with ``R R' = cov`` (symmetric eigen-decomposition, negative rounding clipped)."""
    eigval, eigvec = np.linalg.eigh(0.5 * (cov + cov.T))
    return eigvec * np.sqrt(np.clip(eigval, 0.0, None))


def _spend_draws(spend: _Spend, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    draws = _parameter_draws(spend.model, n_draws, rng)
    for _ in range(_MAX_REDRAW):
        bad = ~spend.affine.admissible(draws)  # e.g. Gamma-Gamma's q <= 1: infinite mean spend
        if not bad.any():
            break
        draws[bad] = _parameter_draws(spend.model, int(bad.sum()), rng)
    else:
        raise DataError(
            f"the {model_name(spend.model)}'s q is too uncertain (draws keep falling below 1, "
            "where the mean spend is infinite); fit it on more repeat buyers"
        )
    return draws


# ---------------------------------------------------------------------------------------------
# The computation shared by the public functions
# ---------------------------------------------------------------------------------------------
@dataclass
class _Valuation:
    terms: Terms
    margin: np.ndarray | float
    margin_described: Any
    basis: str
    kernel: Kernel
    spend: _Spend
    data: dict[str, np.ndarray]
    summary: pd.DataFrame
    _patterns: tuple[dict[str, np.ndarray], np.ndarray] | None = None
    customers: pd.DataFrame | None = None
    observation_end: str | None = None

    def covariate_kwargs(self) -> dict[str, Any]:
        """``customers=`` for the transaction model's predictions, if it has covariates."""
        return {"customers": self.customers} if has_covariates(self.kernel.model) else {}

    def patterns(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Distinct ``(frequency, recency, T)`` rows (and covariate profile, for models with
        covariates) and each customer's row (cached)."""
        if self._patterns is None:
            columns = ("frequency", "recency", "T", "profile", "customer")
            self._patterns = unique_rows({k: self.data[k] for k in columns if k in self.data})
        return self._patterns

    def discounted_purchases(self) -> np.ndarray:
        """Discounted expected purchases per customer at the fitted parameters."""
        if not self.kernel.dedupe_customers:
            return self.kernel.values(self.kernel.theta, self.data)
        rows, inverse = self.patterns()
        return self.kernel.values(self.kernel.theta, rows)[inverse]

    def point(self) -> np.ndarray:
        return self.margin * self.spend.point * self.discounted_purchases()

    def quantiles(
        self,
        probabilities: tuple[float, ...],
        n_draws: int,
        random_state: Any,
        chunk_size: int,
        progress: bool,
    ) -> np.ndarray:
        """Per-customer percentiles of CLV over parameter draws, shape ``(n, len(probs))``.

        Customers with the same ``(frequency, recency, T)`` and the same spend inputs have the
        same distribution of value per unit of margin, so each such group is evaluated once
        (for instance every customer without repeat purchases and the same ``T``); the margin
        scales the percentiles afterwards (it is non-negative). The distinct rows are sorted by
        ``(frequency, T, recency)``, so that neighbouring rows read the same table rows. The
        draws of a block of rows are held as float32 ``(rows, n_draws)`` and sorted along the
        draws; for transaction models with ``P(alive)`` the spend coefficients are folded into
        the kernel's pair tables (:meth:`AliveFactorKernel.prepare_draws`).
        """
        if len(self.summary) == 0:
            return np.empty((0, len(probabilities)))
        rng = np.random.default_rng(random_state)
        thetas = _parameter_draws(self.kernel.model, n_draws, rng)
        x_all = self.data["frequency"]
        spend = None  # (distinct frequencies, A, B): spend per purchase A(x) + B(x) * spend_key
        if self.spend.has_draws:
            spend_thetas = _spend_draws(self.spend, n_draws, rng)
            x_unique, x_code = _sorted_codes(x_all)
            coef_a = np.empty((len(x_unique), n_draws))
            coef_b = np.empty((len(x_unique), n_draws))
            for d, theta in enumerate(spend_thetas):
                coef_a[:, d], coef_b[:, d] = self.spend.coefficients(theta, x_unique)
            uses_m = np.any(coef_b != 0.0, axis=1)  # False where x = 0: spend ignores m
            spend_key = np.where(uses_m[x_code], self.data["monetary_value"], 0.0)
            spend = (x_unique, coef_a, coef_b)
        else:
            spend_key = self.spend.point
        # distinct inputs, ordered by (frequency, T): neighbouring rows share table lookups
        columns = {
            "frequency": x_all,
            "T": self.data["T"],
            "recency": self.data["recency"],
            "spend_key": spend_key,
        }
        if "profile" in self.data:  # covariates: customers of one profile share their value
            columns["profile"] = self.data["profile"]
        if "customer" in self.data:  # a kernel keyed by customer (e.g. a covariate path)
            columns["customer"] = self.data["customer"]
        rows, inverse = _distinct_rows(columns)
        multiplier = None  # covariate spend: A(x) times exp(design @ theta) of the row's profile
        if spend is not None and self.spend.scale_design is not None:
            log_scale = self.spend.scale_design @ spend_thetas.T  # (profiles, draws)
            multiplier = np.exp(log_scale).astype(np.float32)
        folded = isinstance(self.kernel, AliveFactorKernel) and multiplier is None
        if folded:  # spend coefficients multiply the pair tables once, not every row
            self.kernel.prepare_draws(thetas, rows, spend=spend)
        else:
            self.kernel.prepare_draws(thetas, rows)
            if spend is not None:
                coef_a, coef_b = coef_a.astype(np.float32), coef_b.astype(np.float32)
        n_rows = len(rows["frequency"])
        # percentiles of float32 draws are float32 numbers: stored as such, one row per percentile
        out = np.empty((len(probabilities), n_rows), dtype=np.float32)
        positions = [p * (n_draws - 1) for p in probabilities]
        # blocks of ~1M values keep the temporaries in cache; chunk_size caps memory
        block = max(1, min(chunk_size, 1_000_000 // n_draws))
        for start in _progress(range(0, n_rows, block), progress, "customer value draws"):
            sl = slice(start, start + block)
            if folded:
                values = self.kernel.value_draws(thetas, sl)
            else:
                values = self.kernel.values_draws(thetas, sl)
                key = rows["spend_key"][sl].astype(np.float32)[:, None]
                if spend is not None:
                    code = np.searchsorted(x_unique, rows["frequency"][sl])
                    per_purchase = coef_b[code]
                    per_purchase *= key
                    if multiplier is None:
                        per_purchase += coef_a[code]
                    else:
                        profile = rows["profile"][sl].astype(np.int64)
                        per_purchase += coef_a[code] * multiplier[profile]
                    values *= per_purchase
                else:
                    values *= key
            values.sort(axis=1)
            for j, position in enumerate(positions):
                low = math.floor(position)
                high = min(low + 1, n_draws - 1)
                frac = position - low
                out[j, sl] = values[:, low] * (1.0 - frac) + values[:, high] * frac
        result = np.empty((len(probabilities), len(inverse)))
        for j in range(len(probabilities)):
            result[j] = out[j].take(inverse)
        result *= self.margin if np.ndim(self.margin) == 0 else np.asarray(self.margin)[None, :]
        return result.T  # (customers, percentiles), column-major like a DataFrame's block


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of a 1-d array and each entry's position among them (O(n):
    :func:`custval.models._base.unique_index`, then only the distinct values are sorted)."""
    distinct, codes = unique_index(np.asarray(values, dtype=float))
    if np.all(distinct[1:] > distinct[:-1]):
        return distinct, codes
    order = np.argsort(distinct)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[codes]


def _distinct_rows(
    columns: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Distinct rows of equal-length columns, sorted by the columns in order, and the index
    rebuilding them: the columns' codes combined into one integer key, factorized once (the
    pairwise :func:`unique_rows` when that key could overflow)."""
    names = list(columns)
    coded = [_sorted_codes(columns[name]) for name in names]
    if math.prod(len(distinct) for distinct, _ in coded) >= 2**62:
        return unique_rows(columns)
    key = np.zeros(len(coded[0][1]), dtype=np.int64)
    for distinct, codes in coded:
        key *= len(distinct)
        key += codes
    inverse, key = pd.factorize(key, sort=True)
    rows = {}
    for name, (distinct, _) in zip(reversed(names), reversed(coded), strict=True):
        key, code = np.divmod(key, len(distinct))
        rows[name] = distinct[code]
    return {name: rows[name] for name in names}, inverse


def _progress(iterable: Any, enabled: bool, description: str) -> Iterator[Any]:
    items = list(iterable)
    if not enabled or len(items) < 2:
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=description, unit="chunk")


def _valuation(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    horizon: Any,
    annual_discount_rate: float,
    margin: Any,
    step: Any,
    customers: pd.DataFrame | None = None,
    freq: str | None = None,
    observation_end: Any = None,
    *,
    table: bool = False,
) -> _Valuation:
    if not isinstance(summary, pd.DataFrame):
        raise DataError(
            f"summary must be a pandas DataFrame (from custval.rfm_summary), got "
            f"{type(summary).__name__}"
        )
    _check_fitted(transaction_model)
    terms = _resolve_terms(
        transaction_model, spend_model, summary, horizon, annual_discount_rate, step, freq
    )
    if observation_end is not None:
        observation_end = read_moment(observation_end, "observation_end").isoformat()
    else:
        observation_end = summary.attrs.get("observation_end")
    # monetary_value is read by a spend model (and shown in the value table), not by a fixed spend
    data = _check_summary(summary, monetary=table or not _is_fixed_spend(spend_model))
    margin_values, described, basis = _resolve_margin(margin, summary)
    profiles, codes = _covariate_profiles((transaction_model, spend_model), summary, customers)
    if codes is not None:
        data["profile"] = codes.astype(float)
    kernel = _transaction_kernel(transaction_model, terms, profiles)
    rows_of = getattr(kernel, "customer_rows", None)
    if callable(rows_of):  # the value depends on more than the row: the kernel's own key
        data["customer"] = np.asarray(rows_of(summary), dtype=float)
    spend = _Spend(spend_model, summary, customers, profiles)
    return _Valuation(
        terms,
        margin_values,
        described,
        basis,
        kernel,
        spend,
        data,
        summary,
        customers=customers,
        observation_end=observation_end,
    )


def _attrs(valuation: _Valuation) -> dict[str, Any]:
    terms = valuation.terms
    method = (
        f"grid of {terms.step_label} steps, discounted at each step's end"
        if terms.step is not None
        else "exact discounted integral of the expected purchase rate"
    )
    return {
        "freq": terms.freq,
        "horizon": terms.horizon_label,
        "horizon_periods": terms.horizon,
        "annual_discount_rate": terms.annual_rate,
        "discount_rate_per_period": terms.rate_per_period,
        "continuous_discount_rate": terms.delta,
        "margin": valuation.margin_described,
        "value_basis": valuation.basis,
        "method": method,
        "transaction_model": model_name(valuation.kernel.model),
        "spend_model": valuation.spend.description,
        "observation_end": valuation.observation_end,
    }


#: the arguments of the percentile functions (clv_interval, customer_value_table)
_DRAW_CONSTRAINTS = {
    "interval": Interval(Real, 0, 1, closed="neither", fix="0.8 for the 10th to 90th percentiles"),
    "n_draws": Interval(Integral, 0, None),
    "chunk_size": Interval(Integral, 1, None),
}


def _bands(
    valuation: _Valuation,
    interval: float,
    n_draws: int,
    random_state: int | np.random.Generator | None,
    chunk_size: int,
    progress: bool,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-customer CLV lower, median and upper percentiles (NaN without draws), and the attrs
    that record how they were drawn."""
    attrs = {
        "interval": float(interval),
        "n_draws": int(n_draws),
        "random_state": random_state if isinstance(random_state, int) else None,
    }
    if n_draws == 0:
        return np.full((len(valuation.summary), 3), np.nan), attrs
    tail = (1.0 - float(interval)) / 2.0
    values = valuation.quantiles(
        (tail, 0.5, 1.0 - tail), int(n_draws), random_state, int(chunk_size), progress
    )
    return values, attrs


def _check_draw_settings(n_draws: int) -> None:
    if 0 < n_draws < 20:
        raise DataError(
            f"n_draws={n_draws} is too few to estimate percentiles; use at least 20 (200 is "
            "the default), or 0 for no intervals"
        )


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
def customer_lifetime_value(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    *,
    horizon: str = "12M",
    annual_discount_rate: float = 0.10,
    margin: float | str | pd.Series = 1.0,
    step: str | None = None,
    customers: pd.DataFrame | None = None,
    freq: str | None = None,
    observation_end: Any = None,
) -> pd.Series:
    """Discounted value of each customer's expected future purchases.

    ``margin * E[spend] * integral_0^H exp(-delta t) dE[X(t) | history]``: the exact continuous
    discounting of the transaction model's expected purchase rate (see the module docstring for
    the method), times the spend model's expected value per purchase, times the margin.

    Parameters
    ----------
    transaction_model : fitted model
        ``BetaGeoModel``, ``ModifiedBetaGeoModel`` or ``ParetoNBDModel`` (closed forms); any
        other fitted model with ``expected_purchases(summary, t)`` works for finite horizons.
        Its ``freq_`` must equal the summary's unit.
    spend_model : fitted model, float or Series
        ``GammaGammaModel`` (expected spend per purchase from each customer's history), a fixed
        amount per purchase, or a Series of expected spend per purchase by customer_id.
    summary : DataFrame
        From :func:`custval.rfm_summary`: ``frequency, recency, T, monetary_value``, with its
        unit in ``attrs["freq"]``. Not modified. ``monetary_value`` may be absent with a fixed
        spend (a number or a Series).
    horizon : str, default "12M"
        How far ahead to value, with its unit: ``"12M"``, ``"52W"``, ``"365D"``; ``"inf"`` for
        the whole future (BG/NBD, MBG/NBD, Pareto/NBD; needs a positive discount rate). A bare
        number is refused: its unit would be a guess.
    annual_discount_rate : float, default 0.10
        Annual rate (0.10 for 10% a year), converted to the summary's unit exactly:
        ``(1 + rate) ** (period in years) - 1`` per period, continuously compounded within it.
    margin : float, str or Series, default 1.0
        Fraction of revenue kept as contribution: one number in ``[0, 1]``, the name of a column
        of ``summary``, or a Series by customer_id. With the default 1.0 the value is revenue;
        anything else makes it contribution (recorded in ``attrs["value_basis"]``).
    step : str, optional
        Instead of the exact integral, sum over a grid of this step (e.g. ``"1M"``), each step's
        expected purchases discounted at the step's end (lifetimes' convention); converges to
        the exact value as the step shrinks.
    customers : DataFrame, optional
        For models fitted with covariates (``purchase_covariates=``, ``spend_covariates=``,
        ...): the customers' covariates, indexed by customer_id (default: the covariate
        columns are columns of ``summary``). Each customer is valued with their own
        covariates, by the exact quadrature of the model's ``expected_purchases``.
    freq : str, optional
        The summary's time unit; defaults to ``summary.attrs["freq"]`` (which pandas drops in
        ``merge`` and ``join``: pass it here then). The explicit value wins.
    observation_end : date-like, optional
        Recorded in the result's ``attrs``; defaults to ``summary.attrs["observation_end"]``.

    Returns
    -------
    Series
        ``clv`` by customer, aligned with ``summary.index``. ``attrs`` record ``freq``,
        ``horizon``, ``horizon_periods``, ``annual_discount_rate``,
        ``discount_rate_per_period``, ``continuous_discount_rate``, ``margin``,
        ``value_basis`` ("revenue" or "contribution"), ``method`` and the models.

    Raises
    ------
    DataError
        Units missing or inconsistent (summary vs model), a horizon without unit, a margin
        outside ``[0, 1]``, missing columns, or an infinite horizon without discounting.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import BetaGeoModel, customer_lifetime_value
    >>> bgnbd = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, freq="W")
    >>> summary = pd.DataFrame({"frequency": [0, 2, 7], "recency": [0.0, 30.4, 38.0],
    ...                         "T": [38.9, 38.9, 38.9], "monetary_value": [0.0, 30.0, 45.0]})
    >>> summary.attrs["freq"] = "W"
    >>> clv = customer_lifetime_value(bgnbd, 35.0, summary, horizon="52W",
    ...                               annual_discount_rate=0.10, margin=0.3)
    >>> clv.round(2).tolist()
    [2.53, 15.64, 59.27]
    >>> clv.attrs["value_basis"]
    'contribution'
    """
    asked = (horizon, annual_discount_rate, margin, step, customers, freq, observation_end)
    valuation = _valuation(transaction_model, spend_model, summary, *asked)
    result = pd.Series(valuation.point(), index=summary.index, name="clv")
    result.attrs.update(_attrs(valuation))
    return result


@validate_params(_DRAW_CONSTRAINTS)
def clv_interval(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    *,
    horizon: str = "12M",
    annual_discount_rate: float = 0.10,
    margin: float | str | pd.Series = 1.0,
    interval: float = 0.8,
    n_draws: int = 200,
    random_state: int | np.random.Generator | None = 0,
    step: str | None = None,
    chunk_size: int = 20_000,
    progress: bool = True,
    customers: pd.DataFrame | None = None,
    freq: str | None = None,
    observation_end: Any = None,
) -> pd.DataFrame:
    """Per-customer CLV percentiles from the sampling distribution of the fitted parameters.

    ``n_draws`` parameter vectors are drawn from the asymptotic normal distribution of each
    model's log-parameters (``variance_matrix_``; transaction and spend model independently),
    CLV is computed for each, and the ``(1 - interval)/2``, 0.5 and ``(1 + interval)/2``
    percentiles are reported per customer. The intervals express parameter uncertainty: the
    range of *expected* value, not of what one customer will actually spend.

    Parameters
    ----------
    transaction_model, spend_model, summary, horizon, annual_discount_rate, margin, step, customers
        As in :func:`customer_lifetime_value`; so are ``freq`` and ``observation_end``.
        Covariate coefficients are drawn normal, the positive parameters log-normal, from the
        same joint covariance. Both models need ``variance_matrix_`` (a fitted model); a fixed
        spend or spend Series adds no uncertainty.
    interval : float, default 0.8
        Central probability of the interval (0.8: 10th to 90th percentile).
    n_draws : int, default 200
        Parameter draws (at least 20).
    random_state : int, Generator or None, default 0
        Seed of the draws; the same seed gives the same intervals.
    chunk_size : int, default 20_000
        Customers per chunk; memory grows with ``chunk_size * n_draws``.
    progress : bool, default True
        Show a progress bar over chunks (when there is more than one).

    Returns
    -------
    DataFrame
        ``clv_lower``, ``clv_median``, ``clv_upper`` by customer, aligned with
        ``summary.index``; ``attrs`` as :func:`customer_lifetime_value` plus ``interval``,
        ``n_draws`` and ``random_state``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from custval import BetaGeoModel, clv_interval
    >>> rng = np.random.default_rng(0)  # BG/NBD purchasing at CDNOW's parameters, in weeks
    >>> lam, p = rng.gamma(0.243, 1 / 4.414, 3000), rng.beta(0.793, 2.426, 3000)
    >>> T = 39.0 - rng.integers(0, 84, 3000) / 7
    >>> arrivals = rng.poisson(lam * T)
    >>> x = np.minimum(arrivals, rng.geometric(p)).astype(float)
    >>> recency = np.where(x > 0, T * rng.beta(np.maximum(x, 1), arrivals - x + 1), 0.0)
    >>> summary = pd.DataFrame({"frequency": x, "recency": recency, "T": T,
    ...                         "monetary_value": np.where(x > 0, 20.0, 0.0)})
    >>> summary.attrs["freq"] = "W"
    >>> model = BetaGeoModel().fit(summary)
    >>> bands = clv_interval(model, 20.0, summary, horizon="52W", n_draws=100)
    >>> bool((bands["clv_lower"] <= bands["clv_upper"]).all())
    True
    """
    _check_draw_settings(n_draws)
    asked = (horizon, annual_discount_rate, margin, step, customers, freq, observation_end)
    valuation = _valuation(transaction_model, spend_model, summary, *asked)
    values, drawn = _bands(valuation, interval, n_draws, random_state, chunk_size, progress)
    result = pd.DataFrame(values, index=summary.index, columns=list(_BANDS), copy=False)
    result.attrs.update(_attrs(valuation))
    result.attrs.update(drawn)
    return result


@validate_params(_DRAW_CONSTRAINTS)
def customer_value_table(
    transaction_model: Any,
    spend_model: Any,
    summary: pd.DataFrame,
    *,
    horizon: str = "12M",
    annual_discount_rate: float = 0.10,
    margin: float | str | pd.Series = 1.0,
    interval: float = 0.8,
    n_draws: int = 200,
    random_state: int | np.random.Generator | None = 0,
    segments: bool = True,
    step: str | None = None,
    chunk_size: int = 20_000,
    progress: bool = True,
    customers: pd.DataFrame | None = None,
    freq: str | None = None,
    observation_end: Any = None,
) -> pd.DataFrame:
    """One row per customer: history, P(alive), expected purchases and spend, CLV with interval,
    rank, decile and RFM segment.

    Parameters
    ----------
    transaction_model, spend_model, summary, horizon, annual_discount_rate, margin, step, customers
        As in :func:`customer_lifetime_value`; so are ``freq`` and ``observation_end``.
    interval, n_draws, random_state, chunk_size, progress
        As in :func:`clv_interval`; ``n_draws=0`` leaves the interval columns empty (NaN).
    segments : bool, default True
        Add each customer's RFM segment (:func:`custval.rfm_segments`); with False the
        ``segment`` column is empty.

    Returns
    -------
    DataFrame
        Indexed like ``summary`` (customer_id), with exactly the columns ``frequency, recency, T,
        monetary_value, p_alive, expected_purchases, expected_spend, clv, clv_lower,
        clv_median, clv_upper, value_rank, value_decile, segment``:

        - ``p_alive``: probability the customer is still active at the end of observation;
        - ``expected_purchases``: expected repeat purchases over the horizon (undiscounted; for
          ``horizon="inf"`` the *discounted* expected purchases, as the undiscounted number can
          be infinite: ``attrs["expected_purchases"]`` says which);
        - ``expected_spend``: expected value of each future purchase;
        - ``clv``: as :func:`customer_lifetime_value`; ``clv_lower``/``clv_median``/
          ``clv_upper`` as :func:`clv_interval`;
        - ``value_rank``: 1 for the highest ``clv`` (ties in order of the summary);
        - ``value_decile``: 1 for the top 10% by ``clv`` ... 10 for the bottom 10%;
        - ``segment``: RFM segment name.

        For an :class:`custval.EngineSummary` (DuckDB or Spark) the table is computed in the
        engine and returned as an ``EngineSummary`` with these columns; its ``to_pandas()``
        equals the table of the collected summary (``random_state`` must be an integer).

        ``attrs``: ``freq``, ``horizon``, ``annual_discount_rate``, ``margin``, ``interval``,
        ``value_basis`` ("contribution" or "revenue") and the other terms of
        :func:`clv_interval`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from custval import BetaGeoModel, customer_value_table
    >>> rng = np.random.default_rng(0)  # BG/NBD purchasing at CDNOW's parameters, in weeks
    >>> lam, p = rng.gamma(0.243, 1 / 4.414, 3000), rng.beta(0.793, 2.426, 3000)
    >>> T = 39.0 - rng.integers(0, 84, 3000) / 7
    >>> arrivals = rng.poisson(lam * T)
    >>> x = np.minimum(arrivals, rng.geometric(p)).astype(float)
    >>> recency = np.where(x > 0, T * rng.beta(np.maximum(x, 1), arrivals - x + 1), 0.0)
    >>> summary = pd.DataFrame({"frequency": x, "recency": recency, "T": T,
    ...                         "monetary_value": np.where(x > 0, 20.0, 0.0)})
    >>> summary.attrs["freq"] = "W"
    >>> model = BetaGeoModel().fit(summary)
    >>> table = customer_value_table(model, 20.0, summary, margin=0.3, n_draws=50)
    >>> table.attrs["value_basis"], int(table["value_rank"].min())
    ('contribution', 1)
    """
    if _engines.is_engine_summary(summary):  # DuckDB/Spark: scored in the engine, in chunks
        if customers is not None or any(map(has_covariates, (transaction_model, spend_model))):
            raise DataError(
                "models with covariates are valued on a pandas summary; collect the engine "
                "summary with .to_pandas() and pass the covariates as customers="
            )
        return _engines.customer_value_table(
            transaction_model,
            spend_model,
            summary,
            segments=segments,
            horizon=horizon,
            annual_discount_rate=annual_discount_rate,
            margin=margin,
            interval=interval,
            n_draws=n_draws,
            random_state=random_state,
            step=step,
            freq=freq,
            observation_end=observation_end,
        )
    _check_draw_settings(n_draws)
    asked = (horizon, annual_discount_rate, margin, step, customers, freq, observation_end)
    valuation = _valuation(transaction_model, spend_model, summary, *asked, table=True)
    terms = valuation.terms
    model = valuation.kernel.model
    table = pd.DataFrame(
        {c: summary[c].to_numpy(dtype=float) for c in _SUMMARY_COLUMNS}, index=summary.index
    )
    covariates = valuation.covariate_kwargs()
    table["p_alive"] = (
        model.probability_alive(summary, **covariates).to_numpy(dtype=float)
        if hasattr(model, "probability_alive")
        else np.nan
    )
    discounted = valuation.discounted_purchases()
    if math.isinf(terms.horizon):
        table["expected_purchases"] = discounted
        purchases_note = "discounted expected purchases (the horizon is infinite)"
    else:
        table["expected_purchases"] = model.expected_purchases(
            summary, terms.horizon, **covariates
        ).to_numpy(dtype=float)
        purchases_note = f"expected repeat purchases in the next {terms.horizon_label}"
    table["expected_spend"] = valuation.spend.point
    clv = valuation.margin * valuation.spend.point * discounted
    table["clv"] = clv
    bands, drawn = _bands(valuation, interval, n_draws, random_state, chunk_size, progress)
    table[list(_BANDS)] = bands
    n = len(table)
    order = np.argsort(-clv, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    table["value_rank"] = rank
    table["value_decile"] = ((rank - 1) * 10 // max(n, 1) + 1).astype(np.int64)
    if segments:
        from custval.rfm import rfm_segments

        segment = rfm_segments(table[list(_SUMMARY_COLUMNS)])["segment"]
        # the names as strings: looked up from the categories (converting 1M objects is slow)
        names = pd.array(segment.cat.categories, dtype="str")
        table["segment"] = names.take(segment.cat.codes.to_numpy())
    else:
        table["segment"] = pd.Series(pd.NA, index=table.index, dtype="object")
    table = table[list(_TABLE_COLUMNS)]
    table.attrs.update(_attrs(valuation))
    table.attrs.update({**drawn, "expected_purchases": purchases_note})
    return table
