"""Time-invariant covariates: design matrices, their encoding, and the effect table.

A model with covariates has, besides its positive parameters, regression coefficients named
``"<group>:<design column>"``: ``purchase:`` (the purchase process), ``dropout:`` (the dropout
process), ``both:`` (one coefficient for both processes, CLVTools' ``constrain``) and
``spend:`` (Gamma-Gamma). The base class optimises them as themselves (identity transform) and
reports Wald tests for them (:attr:`custval.models._base.BaseModel.summary`).

Numeric columns enter as they are; boolean, categorical, string and object columns are
one-hot encoded with the first level (sorted, or the categorical's own order) as the baseline,
so ``channel`` with levels ``direct, referral, social`` gives design columns
``channel[referral]`` and ``channel[social]``. The encoding is stored with the model (JSON) and
re-applied at prediction; a level not seen at fit is an error naming the column and value.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from custval.errors import ConvergenceError, CustvalWarning, DataError

__all__ = ["covariate_effects"]

#: the prefixes of the coefficient names, and the process each acts on
GROUPS = ("purchase", "dropout", "both", "spend")
_Z95 = 1.959963984540054
#: the fit without covariates that starts a covariate fit uses at most this many rows
_START_ROWS = 100_000


def _is_categorical(series: pd.Series) -> bool:
    """Categorical, string, object and boolean columns are one-hot encoded."""
    return (
        not pd.api.types.is_numeric_dtype(series)
        or pd.api.types.is_bool_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    )


class CovariateEncoding:
    """How the covariate columns of a customer table become design columns.

    ``columns`` maps each covariate to ``None`` (numeric) or its list of levels (categorical;
    the first is the baseline and gets no design column).
    """

    def __init__(self, columns: Mapping[str, list[Any] | None]) -> None:
        self.columns = dict(columns)

    @classmethod
    def learn(cls, frame: pd.DataFrame, names: Sequence[str]) -> CovariateEncoding:
        """The encoding of ``names`` in ``frame`` (levels of the categorical columns)."""
        columns: dict[str, list[Any] | None] = {}
        for name in names:
            series = frame[name]
            if _is_categorical(series):
                _check_missing(series, name)
                if isinstance(series.dtype, pd.CategoricalDtype):
                    levels = [v for v in series.cat.categories if (series == v).any()]
                else:
                    levels = sorted(series.unique().tolist(), key=str)
                columns[name] = [_plain(v) for v in levels]
            else:
                columns[name] = None
        return cls(columns)

    def design_names(self, name: str) -> list[str]:
        """The design columns of covariate ``name``."""
        levels = self.columns[name]
        if levels is None:
            return [name]
        return [f"{name}[{level}]" for level in levels[1:]]

    def matrix(self, frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
        """Design matrix ``(n_rows, n_design_columns)`` of ``names`` (in that order)."""
        blocks = []
        for name in names:
            series = frame[name]
            levels = self.columns[name]
            if levels is None:
                if _is_categorical(series):
                    raise DataError(
                        f"covariate column {name!r} was numeric when the model was fitted but "
                        f"has dtype {series.dtype} now; convert it back to numbers"
                    )
                values = series.to_numpy(dtype=float)
                bad = ~np.isfinite(values)
                if np.any(bad):
                    rows = list(frame.index[bad][:3])
                    raise DataError(
                        f"covariate column {name!r} has {int(bad.sum())} missing or infinite "
                        f"values (customers {rows}); fill or drop those customers"
                    )
                blocks.append(values[:, None])
                continue
            _check_missing(series, name)
            known = pd.Index(levels)
            codes = known.get_indexer(series.map(_plain))
            if np.any(codes < 0):
                unknown = series[codes < 0].iloc[0]
                raise DataError(
                    f"covariate column {name!r} has the level {unknown!r} (customer "
                    f"{series.index[codes < 0][0]!r}), which the model did not see when it "
                    f"was fitted (known levels: {levels}); map it to one of those levels or "
                    "refit with it"
                )
            one_hot = codes[:, None] == np.arange(1, len(levels))[None, :]
            blocks.append(one_hot.astype(float))
        if not blocks:
            return np.zeros((len(frame), 0))
        return np.hstack(blocks)

    def state(self) -> dict[str, Any]:
        return {"columns": self.columns}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CovariateEncoding:
        return cls(state["columns"])


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar (numpy scalars become Python numbers)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_missing(series: pd.Series, name: str) -> None:
    missing = series.isna().to_numpy()
    if np.any(missing):
        raise DataError(
            f"covariate column {name!r} has {int(missing.sum())} missing values (customers "
            f"{list(series.index[missing][:3])}); fill them (e.g. with an 'unknown' level) or "
            "drop those customers"
        )


def covariate_table(
    summary: pd.DataFrame, customers: pd.DataFrame | None, names: Iterable[str]
) -> pd.DataFrame:
    """The covariate columns ``names`` for the customers of ``summary``.

    ``customers`` is indexed like the summary (extra customers are ignored); without it the
    covariates are columns of ``summary`` itself.
    """
    names = list(dict.fromkeys(names))
    source = summary if customers is None else customers
    if not isinstance(source, pd.DataFrame):
        raise DataError(
            f"customers must be a pandas DataFrame indexed like the summary, got "
            f"{type(source).__name__}"
        )
    absent = [n for n in names if n not in source.columns]
    if absent:
        where = "the summary" if customers is None else "customers"
        raise DataError(
            f"covariate column(s) {absent} are not in {where} (columns: "
            f"{list(source.columns)}); pass customers=<frame indexed by customer_id> or add "
            "the columns to the summary"
        )
    if customers is None:
        return source[names]
    if not source.index.is_unique:
        raise DataError("customers has duplicate index values; give one row per customer")
    positions = source.index.get_indexer(summary.index)
    if np.any(positions < 0) and source.index.dtype != summary.index.dtype:
        # the same ids read as numbers in one table and as text in the other
        as_text = source.index.astype(str)
        if as_text.is_unique:
            positions = as_text.get_indexer(summary.index.astype(str))
    if np.any(positions < 0):
        absent_ids = list(summary.index[positions < 0][:3])
        raise DataError(
            f"{int((positions < 0).sum())} customers of the summary have no row in customers "
            f"(e.g. {absent_ids}); customers must be indexed by the summary's customer_id"
        )
    return source[names].iloc[positions].set_axis(summary.index)


class CovariateSpec:
    """Which design columns act on which process, and the coefficient names.

    ``linear(params)`` gives the linear predictors ``eta[group] = Z_group @ coefficients``
    per row, with ``Z_group`` the columns of the design that act on that group (a ``both:``
    coefficient enters the purchase and the dropout predictor alike).
    """

    def __init__(
        self,
        encoding: CovariateEncoding,
        groups: Mapping[str, Sequence[str]],
        equal_effects: Sequence[str] = (),
    ) -> None:
        self.encoding = encoding
        self.groups = {g: list(v) for g, v in groups.items()}
        self.equal_effects = list(equal_effects)
        names: list[str] = []
        for group, covariates in self.groups.items():
            for covariate in covariates:
                if covariate in self.equal_effects and group != "purchase":
                    continue
                prefix = "both" if covariate in self.equal_effects else group
                names.extend(f"{prefix}:{d}" for d in encoding.design_names(covariate))
        self.coefficient_names = names
        self.covariates = list(dict.fromkeys(c for v in self.groups.values() for c in v))

    @classmethod
    def build(
        cls,
        frame: pd.DataFrame,
        groups: Mapping[str, Sequence[str]],
        equal_effects: Sequence[str] = (),
    ) -> CovariateSpec:
        for group, covariates in groups.items():
            if isinstance(covariates, str):
                raise DataError(
                    f"{group}_covariates must be a list of column names, got the string "
                    f"{covariates!r}; write [{covariates!r}]"
                )
            repeated = {c for c in covariates if list(covariates).count(c) > 1}
            if repeated:
                raise DataError(f"{group}_covariates lists {sorted(repeated)} more than once")
        for covariate in equal_effects:
            missing = [g for g, v in groups.items() if covariate not in v]
            if missing:
                raise DataError(
                    f"equal_effects names {covariate!r}, which is not among the "
                    f"{' and '.join(missing)} covariates; an equality constraint needs the "
                    "covariate in both purchase_covariates and dropout_covariates"
                )
        names = list(dict.fromkeys(c for v in groups.values() for c in v))
        return cls(CovariateEncoding.learn(frame, names), groups, equal_effects)

    def design(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The design columns of ``frame`` as the model's data columns ``"cov:<j>"``."""
        matrix = self.encoding.matrix(frame, self.covariates)
        return {f"cov:{j}": matrix[:, j] for j in range(matrix.shape[1])}

    def selection(self, group: str, names: Sequence[str]) -> np.ndarray:
        """``S`` with ``eta[group] = design @ S @ coefficients``, shape ``(q, len(names))``,
        for the coefficients in the order ``names`` (the model's parameter order)."""
        columns = [d for c in self.covariates for d in self.encoding.design_names(c)]
        names = list(names)
        selection = np.zeros((len(columns), len(names)))
        for covariate in self.groups.get(group, []):
            prefix = "both" if covariate in self.equal_effects else group
            for d in self.encoding.design_names(covariate):
                selection[columns.index(d), names.index(f"{prefix}:{d}")] = 1.0
        return selection

    def state(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding.state(),
            "groups": self.groups,
            "equal_effects": self.equal_effects,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CovariateSpec:
        return cls(
            CovariateEncoding.from_state(state["encoding"]), state["groups"], state["equal_effects"]
        )

    @classmethod
    def from_names(cls, names: Sequence[str], group_of: Mapping[str, str]) -> CovariateSpec:
        """A spec for coefficients given by name (``from_params``): each ``"group:column"``
        is a numeric column of the customer table (one-hot columns included, as given)."""
        groups: dict[str, list[str]] = {}
        equal = []
        for name in names:
            prefix, column = name.split(":", 1)
            if prefix == "both":
                equal.append(column)
                for group in ("purchase", "dropout"):
                    groups.setdefault(group, []).append(column)
            else:
                groups.setdefault(group_of.get(prefix, prefix), []).append(column)
        columns = {c: None for v in groups.values() for c in v}
        return cls(CovariateEncoding(columns), groups, equal)


def split_coefficient_names(
    cls_name: str, base: Sequence[str], params: Mapping[str, Any], allowed: Sequence[str]
) -> tuple[str, ...]:
    """``base`` plus the coefficients in ``params`` (``"group:column"``, group in ``allowed``)."""
    extra = [p for p in params if ":" in p]
    wrong = [p for p in extra if p.split(":", 1)[0] not in allowed]
    if wrong:
        raise DataError(
            f"{cls_name} coefficients must be named '<group>:<column>' with group one of "
            f"{list(allowed)}; got {wrong}"
        )
    return tuple(base) + tuple(extra)


def row_params(params: Any, rows: Any) -> tuple[Any, ...]:
    """``params`` at the rows ``rows``: the per-row entries (arrays: with continuous
    covariates each customer has their own scaled parameters) selected, scalars kept."""
    return tuple(p[rows] if np.ndim(p) else p for p in params)


def per_row(params: Any) -> bool:
    """Whether ``params`` holds per-row parameters (arrays) rather than scalars only."""
    return any(np.ndim(p) for p in params)


def column(value: Any, v: np.ndarray, rows: Any) -> Any:
    """A per-row ``value`` at ``rows`` shaped against the nodes ``v`` (``(k,)`` or ``(k,
    n_nodes)``) of a row-wise quadrature; a scalar as it is."""
    if not np.ndim(value):
        return value
    return value[rows] if v.ndim == 1 else value[rows, None]


class CovariateModelMixin:
    """Fit-time and saved state of a model with covariates (mixed into a ``BaseModel``).

    The model's class declares ``_covariate_groups`` (e.g. ``("purchase", "dropout")``); a fit
    with covariates sets the instance's ``_param_names`` to the class's plus the coefficient
    names, ``covariates_`` (a :class:`CovariateSpec`) and ``covariate_penalty_``.
    """

    _covariate_groups: tuple[str, ...] = ()
    #: how the covariates enter the positive parameters: ``name -> (group, sign)``, a
    #: customer's parameter being ``value * exp(sign * eta_group)`` (e.g. BG/NBD's
    #: ``alpha_i = alpha exp(-eta_purchase)``); empty where they enter otherwise
    _covariate_links: Mapping[str, tuple[str, float]] = {}

    def _begin_covariate_fit(
        self,
        summary: pd.DataFrame,
        customers: pd.DataFrame | None,
        groups: Mapping[str, Sequence[str]],
        equal_effects: Sequence[str],
        covariate_penalty: float,
    ) -> dict[str, np.ndarray] | None:
        """Reset the covariate state; with covariates, set it up and return the design
        columns (``"cov:<j>"``) of ``summary``'s customers; ``None`` without covariates."""
        for name in ("_param_names", "covariates_", "covariate_penalty_"):
            self.__dict__.pop(name, None)
        groups = {g: list(v) for g, v in groups.items()}
        if not any(groups.values()):
            if customers is not None or equal_effects:
                listed = " and/or ".join(f"{g}_covariates=[...]" for g in groups)
                raise DataError(
                    f"customers= and equal_effects= need {listed} naming the covariate columns"
                )
            return None
        penalty = float(covariate_penalty)
        if not np.isfinite(penalty) or penalty < 0:
            raise DataError(f"covariate_penalty must be >= 0 and finite, got {covariate_penalty!r}")
        table = covariate_table(summary, customers, [c for v in groups.values() for c in v])
        spec = CovariateSpec.build(table, groups, list(equal_effects))
        self.covariates_ = spec
        self.covariate_penalty_ = penalty
        self._param_names = type(self)._param_names + tuple(spec.coefficient_names)
        return spec.design(table)

    def _fit_with_design(
        self, summary: pd.DataFrame, weights: Any, design: dict[str, np.ndarray]
    ) -> Any:
        """Fit on the model's columns of ``summary`` plus the design columns (the rows the
        model's ``_prepare_fit`` keeps; Gamma-Gamma keeps the repeat buyers)."""
        data, w = self._prepare_fit(summary, weights)
        keep = self._fitted_rows(summary)
        data.update({k: v if keep is None else v[keep] for k, v in design.items()})
        return self._fit_arrays(data, w)

    def _fit_covariates(
        self,
        summary: pd.DataFrame,
        weights: Any,
        plain_fit: Any,
        covariates: Mapping[str, Sequence[str]],
        customers: pd.DataFrame | None,
        equal_effects: Sequence[str],
        covariate_penalty: float,
        freq: str | None,
    ) -> Any:
        """The body of every covariate model's ``fit``: ``plain_fit(summary, weights,
        freq=freq)`` without covariates (the model's ``super().fit``); with them, on the
        model's columns plus the design columns. The unit is recorded (and checked) first."""
        self._record_unit(summary, freq)
        design = self._begin_covariate_fit(
            summary, customers, covariates, equal_effects, covariate_penalty
        )
        if design is None:
            return plain_fit(summary, weights, freq=freq)
        return self._fit_with_design(summary, weights, design)

    def _first_start_without_covariates(
        self, starts: list[np.ndarray], data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> list[np.ndarray]:
        """``starts`` with :meth:`_start_without_covariates` tried first (after the user's
        ``initial_params``), when that fit succeeds."""
        start = self._start_without_covariates(data, weights)
        if start is not None:
            starts.insert(0 if self.initial_params is None else 1, start)
        return starts

    def _start_without_covariates(
        self, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> np.ndarray | None:
        """A starting point: the model without covariates fitted on the same customers (on
        their distinct ``_data_columns`` patterns; beyond ``_START_ROWS`` rows on an evenly
        spaced subset of them, as only a start), coefficients at 0; ``None`` if that fit fails
        (the other starts remain)."""
        plain = type(self)(penalizer_coef=self.penalizer_coef, tol=self.tol, max_iter=self.max_iter)
        weights = np.asarray(weights, dtype=float)
        rows = slice(None)
        if len(weights) > _START_ROWS:
            rows = np.linspace(0, len(weights) - 1, _START_ROWS).astype(np.int64)
        columns = {c: np.asarray(data[c])[rows] for c in self._data_columns}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CustvalWarning)
                plain._fit_compressed(columns, weights[rows])
        except ConvergenceError:
            return None
        coefficients = np.zeros(len(self._param_names) - self._n_base())
        return np.concatenate([plain.params_.to_numpy(dtype=float), coefficients])

    def _compressible(self, data: Mapping[str, np.ndarray]) -> bool:
        """Rows with a continuous covariate (a design column with non-whole values) are
        nearly all distinct: compressing them costs more than it saves."""
        return all(np.array_equal(np.floor(v), v) for k, v in data.items() if k.startswith("cov:"))

    def _fitted_rows(self, summary: pd.DataFrame) -> np.ndarray | None:
        """Mask of the rows of ``summary`` that ``_prepare_fit`` keeps (``None``: all)."""
        return None

    def _profiles(
        self, matrix: np.ndarray | None, n: int, limit: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distinct covariate profiles (rows of the design) and each row's profile index.

        For models whose numerics take scalar parameters (Pareto/NBD): the likelihood and the
        predictions are evaluated once per profile, so the covariates must be discrete.
        """
        if matrix is None or matrix.shape[1] == 0:
            return np.zeros((1, 0)), np.zeros(n, dtype=np.int64)
        profiles, inverse = np.unique(matrix, axis=0, return_inverse=True)
        if len(profiles) > limit:
            raise DataError(
                f"{self._name()} takes discrete covariates: the customers have "
                f"{len(profiles):,} distinct covariate profiles, more than {limit:,}; use "
                "categorical covariates or bin the continuous ones (e.g. pd.qcut into "
                "quintiles), or fit BG/NBD, which takes continuous covariates"
            )
        return profiles, inverse.ravel()

    def _profile_params(self, params: np.ndarray, profiles: pd.DataFrame) -> np.ndarray | None:
        """The parameters of the model *without* covariates that each covariate profile (a row
        of ``profiles``, the covariate columns) has at ``params`` (coefficients included),
        shape ``(n_profiles, n_base)``: a covariate profile's predictions are those of the
        plain model at these parameters (the value kernels of :func:`custval.clv` use it).
        None for a model whose covariates do not enter as :attr:`_covariate_links`."""
        links = type(self)._covariate_links
        if not links:
            return None
        spec = self.covariates_
        matrix = spec.encoding.matrix(profiles, spec.covariates)
        base = list(type(self)._param_names)
        params = np.asarray(params, dtype=float)
        out = np.tile(params[: len(base)], (len(profiles), 1))
        coefficients = params[len(base) :]
        for name, (group, sign) in links.items():
            eta = self._group_design(matrix, len(profiles), group) @ coefficients
            out[:, base.index(name)] *= np.exp(sign * eta)
        return out

    # ------------------------------------------------------------ models evaluated per profile
    #: for models whose numerics take scalar parameters (Pareto/NBD, GGom/NBD): the positions
    #: of the parameters that the purchase and the dropout predictor scale, ``p exp(-eta)``
    _profile_scaled: tuple[int, int] = (1, 3)
    #: the most distinct covariate profiles such a model evaluates one by one; beyond them a
    #: model with :attr:`_per_customer` evaluates every customer at their own parameters
    _max_profiles: int = 500
    #: whether the model's numerics take per-row parameters (arrays in place of the scaled
    #: scalars), so that continuous covariates work
    _per_customer: bool = False

    def _scaled_params(self, params: np.ndarray, eta_p: float, eta_d: float) -> np.ndarray:
        """The model's own parameters for one covariate profile (CLVTools' static
        covariates): the purchase scale times ``exp(-eta_p)``, so that ``exp(coefficient)``
        multiplies the purchase rate, the dropout scale times ``exp(-eta_d)`` (likewise the
        dropout rate)."""
        out = np.array(params[: self._n_base()], dtype=float)
        i_p, i_d = self._profile_scaled
        out[i_p] *= np.exp(-eta_p)
        out[i_d] *= np.exp(-eta_d)
        return out

    def _profile_design(self, matrix: np.ndarray | None, n: int) -> tuple[Any, ...] | None:
        """``(Z_purchase, Z_dropout)`` per distinct profile, and each row's profile; ``None``
        where a :attr:`_per_customer` model has more than :attr:`_max_profiles` of them."""
        if self._per_customer and matrix is not None and matrix.shape[1]:
            profiles, inverse = np.unique(matrix, axis=0, return_inverse=True)
            if len(profiles) > self._max_profiles:
                return None
            inverse = inverse.ravel()
        else:
            profiles, inverse = self._profiles(matrix, n, self._max_profiles)
        zp = self._group_design(profiles, len(profiles), "purchase")
        zd = self._group_design(profiles, len(profiles), "dropout")
        return zp, zd, inverse

    def _customer_params(self, params: np.ndarray, zp: np.ndarray, zd: np.ndarray) -> tuple:
        """The model's own parameters per row (``_scaled_params`` with the scaled ones as
        arrays over the rows of the designs ``zp``, ``zd``)."""
        k = self._n_base()
        coefficients = np.asarray(params[k:], dtype=float)
        out: list[Any] = [float(v) for v in params[:k]]
        i_p, i_d = self._profile_scaled
        out[i_p] = out[i_p] * np.exp(-(zp @ coefficients))
        out[i_d] = out[i_d] * np.exp(-(zd @ coefficients))
        return tuple(out)

    def _profile_patterns(self, data: Mapping[str, np.ndarray], prepare: Any) -> dict[str, Any]:
        """Fitting data split by covariate profile, each part prepared by ``prepare``; for a
        :attr:`_per_customer` model with many profiles, prepared whole with each row's
        designs (``_Zp_rows``, ``_Zd_rows``)."""
        plain = {c: data[c] for c in self._data_columns}
        matrix = self._pattern_matrix(data)
        design = self._profile_design(matrix, len(data["T"]))
        if design is None:
            zp_rows = self._group_design(matrix, len(data["T"]), "purchase")
            zd_rows = self._group_design(matrix, len(data["T"]), "dropout")
            return {**prepare(plain), "_Zp_rows": zp_rows, "_Zd_rows": zd_rows, "_profiles": None}
        zp, zd, inverse = design
        groups = []
        for g in range(len(zp)):
            rows = np.flatnonzero(inverse == g)
            groups.append((rows, prepare({c: v[rows] for c, v in plain.items()})))
        return {**plain, "_Zp": zp, "_Zd": zd, "_profiles": groups}

    def _profile_terms(
        self,
        params: np.ndarray,
        data: Mapping[str, Any],
        weights: np.ndarray | None,
        rows_terms: Any,
        weighted_terms: Any,
    ) -> tuple[Any, np.ndarray]:
        """Per-row (``weights=None``) or weighted log-likelihood and gradient with covariates:
        the model's own likelihood per profile (``rows_terms(p, group)`` gives the per-row
        values and gradient ``(k_base, n)``, ``weighted_terms(p, group, w)`` their sums),
        chained to the coefficients: ``d/d eta = -p_g d/d p_g`` for the scaled parameter."""
        if data["_profiles"] is None:
            return self._customer_terms(params, data, weights, rows_terms)
        zp, zd = data["_Zp"], data["_Zd"]
        k = self._n_base()
        coefficients = np.asarray(params[k:], dtype=float)
        eta_p, eta_d = zp @ coefficients, zd @ coefficients
        n = len(data["frequency"])
        ll = np.empty(n) if weights is None else 0.0
        grad = np.empty((n, len(params))) if weights is None else np.zeros(len(params))
        for g, (rows, group) in enumerate(data["_profiles"]):
            pg = self._scaled_params(params, eta_p[g], eta_d[g])
            if weights is None:
                ll_g, gr = rows_terms(pg, group)
            else:
                ll_g, gr = weighted_terms(pg, group, weights[rows])
            gr, d_eta_p, d_eta_d = self._chain_scaled(params, pg, gr)
            if weights is None:
                ll[rows] = ll_g
                grad[rows, :k] = gr.T
                grad[rows, k:] = np.outer(d_eta_p, zp[g]) + np.outer(d_eta_d, zd[g])
            else:
                ll += ll_g
                grad[:k] += gr
                grad[k:] += d_eta_p * zp[g] + d_eta_d * zd[g]
        return ll, grad

    def _customer_terms(
        self,
        params: np.ndarray,
        data: Mapping[str, Any],
        weights: np.ndarray | None,
        rows_terms: Any,
    ) -> tuple[Any, np.ndarray]:
        """``_profile_terms`` with every row at its own parameters (``rows_terms`` takes them
        as arrays), chained to the coefficients alike."""
        zp, zd = data["_Zp_rows"], data["_Zd_rows"]
        pg = self._customer_params(params, zp, zd)
        ll, gr = rows_terms(pg, data)
        gr, d_eta_p, d_eta_d = self._chain_scaled(params, pg, gr)
        if weights is None:
            coef = d_eta_p[:, None] * zp + d_eta_d[:, None] * zd
            return ll, np.hstack([gr.T, coef])
        w_p, w_d = weights * d_eta_p, weights * d_eta_d
        grad = np.concatenate([(gr * weights).sum(axis=1), w_p @ zp + w_d @ zd])
        return float((weights * ll).sum()), grad

    def _chain_scaled(self, params: np.ndarray, scaled: Any, grad: Any) -> tuple[Any, Any, Any]:
        """The gradient in the scaled parameters ``scaled`` (a profile's, or each row's) chained
        to the model's own parameters, and its derivatives in the purchase and dropout
        predictors: ``d/d eta = -p d/d p`` for the parameter each predictor scales."""
        i_p, i_d = self._profile_scaled
        grad = np.array(grad, dtype=float)
        d_eta_p, d_eta_d = -scaled[i_p] * grad[i_p], -scaled[i_d] * grad[i_d]
        grad[i_p] *= scaled[i_p] / params[i_p]
        grad[i_d] *= scaled[i_d] / params[i_d]
        return grad, d_eta_p, d_eta_d

    def _by_profile(
        self, summary: pd.DataFrame, customers: pd.DataFrame | None, function: Any
    ) -> np.ndarray:
        """``function(profile_params, rows)`` for the customers of each covariate profile
        (all customers at once, each at their own parameters, where ``_profile_design``
        gives ``None``)."""
        matrix = self._customer_matrix(summary, customers)
        design = self._profile_design(matrix, len(summary))
        params = self.params_.to_numpy(dtype=float)
        if design is None:
            zp = self._group_design(matrix, len(summary), "purchase")
            zd = self._group_design(matrix, len(summary), "dropout")
            return np.asarray(
                function(self._customer_params(params, zp, zd), np.arange(len(summary))),
                dtype=float,
            )
        zp, zd, inverse = design
        coefficients = params[self._n_base() :]
        out = np.empty(len(summary))
        for g in range(len(zp)):
            rows = np.flatnonzero(inverse == g)
            if rows.size:
                pg = self._scaled_params(params, zp[g] @ coefficients, zd[g] @ coefficients)
                out[rows] = function(pg, rows)
        return out

    def _n_base(self) -> int:
        return len(type(self)._param_names)

    def _group_design(self, matrix: np.ndarray | None, n: int, group: str) -> np.ndarray:
        """The design mapped to the coefficients of ``group``'s linear predictor, ``(n, k)``."""
        names = list(self._param_names[self._n_base() :])
        if matrix is None:
            matrix = np.zeros((n, 0))
        return matrix @ self.covariates_.selection(group, names)

    def _pattern_matrix(self, data: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """The design columns ``"cov:<j>"`` of (compressed) fitting data as a matrix."""
        columns = sorted((k for k in data if k.startswith("cov:")), key=lambda k: int(k[4:]))
        return np.column_stack([data[k] for k in columns]) if columns else None

    def _customer_matrix(self, summary: pd.DataFrame, customers: pd.DataFrame | None) -> np.ndarray:
        spec = self.covariates_
        table = covariate_table(summary, customers, spec.covariates)
        return spec.encoding.matrix(table, spec.covariates)

    @classmethod
    def _param_names_for(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        allowed = cls._covariate_groups + (("both",) if len(cls._covariate_groups) > 1 else ())
        return split_coefficient_names(cls.__name__, cls._param_names, params, allowed)

    def _with_covariate_state(self, state: dict[str, Any]) -> dict[str, Any]:
        spec = getattr(self, "covariates_", None)
        if spec is None:
            return state
        return {**state, "covariates": spec.state(), "covariate_penalty": self.covariate_penalty_}

    def _restore_covariate_state(self, state: Mapping[str, Any]) -> None:
        if "covariates" in state:
            self.covariates_ = CovariateSpec.from_state(state["covariates"])
            self.covariate_penalty_ = float(state.get("covariate_penalty", 0.0))
        elif len(self._param_names) > self._n_base():  # from_params with coefficients
            self.covariates_ = CovariateSpec.from_names(self._param_names[self._n_base() :], {})
            self.covariate_penalty_ = 0.0


# --------------------------------------------------------------------------------------------
# The marketer-facing effect table
# --------------------------------------------------------------------------------------------
_EFFECT_WORDS = {
    "purchase": ("purchase rate", "buy {m:.2f}x as often"),
    "dropout": ("dropout", "have {m:.2f}x the dropout {what}"),
    "both": ("purchase rate and dropout", "have {m:.2f}x the purchase rate and dropout {what}"),
    "spend": ("spend per transaction", "spend {m:.2f}x as much per transaction"),
    # sBG / BdW cohort covariates: the Beta distribution of the churn probability
    "alpha": (
        "churn probability (Beta alpha)",
        "have {m:.2f}x the alpha of the churn probability's Beta distribution (larger: more churn)",
    ),
    "beta": (
        "churn probability (Beta beta)",
        "have {m:.2f}x the beta of the churn probability's Beta distribution (larger: less churn)",
    ),
}


def covariate_effects(model: Any) -> pd.DataFrame:
    """Each covariate effect of a fitted model as a multiplier, with its 95% interval, in words.

    For a coefficient ``c`` the multiplier is ``exp(c)``: the factor by which one unit of the
    covariate (for a one-hot column: being in that level rather than the baseline level)
    multiplies the process it acts on, holding the other covariates fixed. BG/NBD, MBG/NBD:
    ``purchase`` multiplies each customer's expected purchase rate ``r / alpha_i`` (``alpha_i
    = alpha exp(-x'c)``); ``dropout`` multiplies ``a_i`` and ``b_i`` alike (CLVTools'
    parametrisation: the Beta distribution of the dropout probability becomes more
    concentrated around the same mean, so customers with a larger multiplier have *less
    spread* in dropout, not a different mean). Pareto/NBD-style ``dropout`` effects multiply
    the dropout rate. Gamma-Gamma: ``spend`` multiplies the expected spend per transaction.
    Intervals are ``exp(c +/- 1.96 se)``.

    Parameters
    ----------
    model : fitted custval model with covariates

    Returns
    -------
    DataFrame
        One row per coefficient: ``process``, ``covariate``, ``multiplier``, ``lower_95``,
        ``upper_95``, ``p_value`` and ``statement`` (e.g. "customers with channel = referral
        buy 1.6x as often (95% CI 1.4x-1.8x) than those with channel = direct").

    Examples
    --------
    >>> import custval
    >>> model = custval.BetaGeoModel.from_params(
    ...     r=0.5, alpha=5.0, a=0.8, b=2.5, **{"purchase:vip": 0.47})
    >>> custval.covariate_effects(model)["statement"].iloc[0]
    'customers with one more unit of vip buy 1.60x as often'
    """
    summary = model.summary
    rows = [name for name in summary.index if ":" in name]
    if not rows:
        raise DataError(
            f"{type(model).__name__} has no covariate coefficients; fit it with "
            "purchase_covariates=[...] / dropout_covariates=[...] to estimate effects"
        )
    spec = getattr(model, "covariates_", None)
    encoding = spec.encoding if spec is not None else None
    dropout_what = getattr(model, "_dropout_effect_words", "rate")
    out = []
    for name in rows:
        group, column = name.split(":", 1)
        estimate = float(summary.at[name, "estimate"])
        se = float(summary.at[name, "std_error"])
        multiplier = float(np.exp(estimate))
        lower, upper = np.exp(estimate - _Z95 * se), np.exp(estimate + _Z95 * se)
        process, phrase = _EFFECT_WORDS.get(group, (group, "{m:.2g}x the " + group))
        words = phrase.format(m=multiplier, what=dropout_what)
        who = f"customers with one more unit of {column}"
        if "[" in column and column.endswith("]"):
            covariate, level = column[:-1].split("[", 1)
            levels = encoding.columns.get(covariate) if encoding is not None else None
            baseline = f", compared with {covariate} = {levels[0]}" if levels else ""
            who = f"customers with {covariate} = {level}"
        else:
            covariate, baseline = column, ""
        interval = f" (95% CI {lower:.2f}x-{upper:.2f}x)" if np.isfinite(se) else ""
        out.append(
            {
                "process": process,
                "covariate": covariate,
                "coefficient": name,
                "multiplier": multiplier,
                "lower_95": lower,
                "upper_95": upper,
                "p_value": float(summary.at[name, "p_value"]),
                "statement": f"{who} {words}{interval}{baseline}",
            }
        )
    return pd.DataFrame(out).set_index("coefficient")


class PurchaseDropoutCovariates(CovariateModelMixin):
    """``fit`` of the models whose covariates act on a purchase and a dropout process
    (BG/NBD, MBG/NBD, Pareto/NBD, GGom/NBD); each model's ``_covariate_links`` (and its class
    docstring) say which of its parameters each process scales."""

    def fit(
        self,
        summary: pd.DataFrame,
        weights: Any = None,
        *,
        customers: pd.DataFrame | None = None,
        purchase_covariates: list[str] | tuple[str, ...] = (),
        dropout_covariates: list[str] | tuple[str, ...] = (),
        equal_effects: list[str] | tuple[str, ...] = (),
        covariate_penalty: float = 0.0,
        freq: str | None = None,
    ) -> Any:
        """Fit the model by maximum likelihood, optionally with time-invariant covariates.

        Parameters
        ----------
        summary : DataFrame or EngineSummary
            One row per customer (or per pattern, with ``weights``): ``frequency``,
            ``recency``, ``T`` (and the covariate columns when ``customers`` is not given).
        weights : array-like, optional
            Number of customers each row stands for (default 1 each).
        customers : DataFrame, optional
            Customer attributes indexed like ``summary`` (by ``customer_id``).
        purchase_covariates, dropout_covariates : list of str
            Columns acting on the purchase rate (``exp(coefficient)`` multiplies it: the
            purchase scale ``alpha_i = alpha exp(-x'beta)``) and on dropout (the model's class
            docstring says how), as CLVTools' static covariates. Categorical/string columns
            are one-hot encoded (first level dropped). Coefficients appear in ``params_`` as
            ``"purchase:<col>"`` / ``"dropout:<col>"``.
        equal_effects : list of str
            Covariates (in both lists) whose purchase and dropout coefficients are one
            parameter ``"both:<col>"`` (CLVTools' ``constrain``).
        covariate_penalty : float, default 0
            L2 penalty on the coefficients only, added like ``penalizer_coef`` to the mean
            negative log-likelihood per customer: ``covariate_penalty * sum(coef**2)``.
        freq : {"D", "W", "M", "Y", "h"}, optional
            The time unit of ``recency`` and ``T``; defaults to ``summary.attrs["freq"]``
            (see :meth:`custval.models._base.BaseModel.fit`).

        Returns
        -------
        self

        Examples
        --------
        >>> import custval
        >>> model = custval.BetaGeoModel().fit(  # doctest: +SKIP
        ...     summary, customers=attributes, purchase_covariates=["channel"])
        >>> custval.covariate_effects(model)  # doctest: +SKIP
        """
        groups = {"purchase": purchase_covariates, "dropout": dropout_covariates}
        args = (customers, equal_effects, covariate_penalty, freq)
        return self._fit_covariates(summary, weights, super().fit, groups, *args)

    def _prepare_patterns(self, data: dict[str, np.ndarray]) -> dict[str, Any]:
        """The patterns of a model evaluated per covariate profile (Pareto/NBD, GGom/NBD):
        its ``_prepare_plain`` without covariates, else :meth:`_profile_patterns` with it."""
        if getattr(self, "covariates_", None) is None:
            return self._prepare_plain(data)
        return self._profile_patterns(data, self._prepare_plain)
