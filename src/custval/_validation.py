"""Shared input checks.

One place that formats "where and what" for error messages, so that every ``DataError`` reads
the same way: the column, how many rows, the first few row labels with their values, the fix.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from custval._units import parse_duration
from custval.errors import DataError

_SHOW = 5
F = TypeVar("F", bound=Callable[..., Any])


def describe_rows(
    frame_or_series: pd.DataFrame | pd.Series,
    mask: np.ndarray | pd.Series,
    column: str | None = None,
    *,
    show: int = _SHOW,
) -> str:
    """Describe the rows selected by ``mask``: "rows 4 ('x'), 17 ('y'), ...".

    Row labels are the frame's index labels; values are shown when ``column`` is given.
    """
    mask = np.asarray(mask, dtype=bool)
    labels = frame_or_series.index[mask][:show]
    if column is not None:
        source = (
            frame_or_series[column]
            if isinstance(frame_or_series, pd.DataFrame)
            else (frame_or_series)
        )
        values = source[mask].iloc[:show].tolist()
        parts = [f"{label} ({value!r})" for label, value in zip(labels, values, strict=True)]
    else:
        parts = [str(label) for label in labels]
    more = ", ..." if int(mask.sum()) > show else ""
    return "rows " + ", ".join(parts) + more


def bad_values_message(
    frame: pd.DataFrame, mask: np.ndarray | pd.Series, column: str, problem: str, fix: str
) -> str:
    """Build the standard message for ``count`` rows of ``column`` that have ``problem``.

    >>> import pandas as pd
    >>> f = pd.DataFrame({"amount": ["1", "x"]})
    >>> bad_values_message(f, f["amount"] == "x", "amount", "non-numeric values",
    ...                    "clean or drop them")
    "column 'amount' has 1 non-numeric values (rows 1 ('x')); clean or drop them"
    """
    count = int(np.asarray(mask, dtype=bool).sum())
    return (
        f"column {column!r} has {count:,} {problem} ({describe_rows(frame, mask, column)}); {fix}"
    )


def refuse_rows(
    frame: pd.DataFrame, mask: np.ndarray | pd.Series, column: str, problem: str, fix: str
) -> None:
    """Raise ``DataError`` with :func:`bad_values_message` if ``mask`` selects any row.

    >>> import pandas as pd
    >>> f = pd.DataFrame({"amount": [1.0, -2.0]})
    >>> refuse_rows(f, f["amount"] < -5, "amount", "amounts below -5", "drop them")
    >>> refuse_rows(f, f["amount"] < 0, "amount", "negative amounts", "drop them")
    Traceback (most recent call last):
    ...
    custval.errors.DataError: column 'amount' has 1 negative amounts (rows 1 (-2.0)); drop them
    """
    if np.asarray(mask, dtype=bool).any():
        raise DataError(bad_values_message(frame, mask, column, problem, fix))


def require_columns(
    frame: pd.DataFrame, columns: Iterable[str], *, what: str = "input", hint: str | None = None
) -> None:
    """Raise ``DataError`` if any of ``columns`` is missing, listing the columns present."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        present = ", ".join(repr(c) for c in frame.columns)
        msg = (
            f"{what} is missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"columns present: {present}"
        )
        if hint:
            msg += f". {hint}"
        raise DataError(msg)


def require_numeric(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    what: str = "input",
    nonnegative: bool = False,
    finite: bool = True,
) -> None:
    """Raise ``DataError`` unless ``columns`` are numeric (and finite / non-negative)."""
    for column in columns:
        series = frame[column]
        if not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)):
            numeric = pd.to_numeric(series, errors="coerce")
            mask = (numeric.isna() & series.notna()).to_numpy()
            refuse_rows(
                frame,
                mask,
                column,
                "non-numeric values",
                f"{what} column {column!r} must be numeric; convert or drop those rows",
            )
            raise DataError(
                f"{what} column {column!r} holds {series.dtype} values, not numbers; "
                f"convert it first, e.g. frame[{column!r}] = pd.to_numeric(frame[{column!r}])"
            )
        values = series.to_numpy(dtype=float)
        if finite:
            mask = ~np.isfinite(values)
            refuse_rows(
                frame,
                mask,
                column,
                "missing or infinite values",
                "fill or drop those rows before calling this function",
            )
        if nonnegative:
            mask = values < 0
            refuse_rows(frame, mask, column, "negative values", f"{column!r} must be >= 0")


def nonnegative_columns(
    frame: pd.DataFrame, columns: Sequence[str], *, what: str = "summary", hint: str | None = None
) -> dict[str, np.ndarray]:
    """``columns`` of ``frame`` as float arrays, after checking they are present, numeric,
    finite and >= 0 (the counts and durations of a summary or split).

    >>> import pandas as pd
    >>> nonnegative_columns(pd.DataFrame({"frequency": [0, 2]}), ["frequency"])["frequency"]
    array([0., 2.])
    """
    require_columns(frame, columns, what=what, hint=hint)
    require_numeric(frame, list(columns), what=what, nonnegative=True)
    return {c: frame[c].to_numpy(dtype=float) for c in columns}


def align_by_customer(
    series: pd.Series, frame: pd.DataFrame, *, name: str, what: str = "summary"
) -> pd.Series:
    """``series`` (indexed by customer_id) as numbers in the order of ``frame.index``.

    Refuses a Series that lacks customers of ``frame`` (naming the first few) or repeats a
    customer id; values that are not numbers become NaN for the caller's own check.

    >>> import pandas as pd
    >>> frame = pd.DataFrame(index=pd.Index([2, 1], name="customer_id"))
    >>> align_by_customer(pd.Series({1: 0.5, 2: 0.25}), frame, name="margin").tolist()
    [0.25, 0.5]
    """
    missing = ~frame.index.isin(series.index)
    if missing.any():
        raise DataError(
            f"{name} has no value for {int(missing.sum()):,} customers of the {what} (first: "
            f"{list(frame.index[missing][:5])}); index it by customer_id and give a value for "
            "every customer"
        )
    if not series.index.is_unique:
        raise DataError(f"{name} has duplicated customer ids; give one value per customer")
    return pd.to_numeric(series.reindex(frame.index), errors="coerce")


#: the one margin rule of custval (clv, invest, reports)
MARGIN_RULE = (
    "a margin is the fraction of revenue kept as contribution, in (0, 1]: 0.3 for a 30% "
    "margin, 1 when the amounts are already profit"
)


def check_margin(value: object, *, name: str = "margin") -> float:
    """Return one margin as a float after checking it lies in (0, 1].

    >>> check_margin(0.3)
    0.3
    >>> check_margin(30)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    custval.errors.DataError: margin must be a fraction of revenue in (0, 1], got 30; ...
    """
    return float(check_param(name, value, Margin()))


def check_margins(frame: pd.DataFrame, column: str, *, what: str = "input") -> np.ndarray:
    """Per-customer margins of ``frame[column]`` as floats, each in (0, 1].

    >>> import pandas as pd
    >>> check_margins(pd.DataFrame({"m": [0.2, 0.5]}), "m").tolist()
    [0.2, 0.5]
    """
    require_numeric(frame, [column], what=what)
    values = frame[column].to_numpy(dtype=float)
    bad = ~((values > 0) & (values <= 1))
    refuse_rows(frame, bad, column, "margins outside (0, 1]", MARGIN_RULE)
    return values


def with_customer_columns(
    frame: pd.DataFrame, customers: pd.DataFrame | None, *, what: str = "summary"
) -> pd.DataFrame:
    """``frame`` (a summary or split) with the columns of ``customers`` it lacks, aligned by
    customer_id: how covariates given apart (``customers=``) reach models that read them from
    the summary. ``frame`` itself (not a copy) when ``customers`` is None."""
    if customers is None:
        return frame
    if not isinstance(customers, pd.DataFrame):
        raise DataError(
            f"customers must be a DataFrame of covariates indexed by customer_id, got "
            f"{type(customers).__name__}"
        )
    if not customers.index.is_unique:
        raise DataError("customers has duplicate index values; give one row per customer")
    missing = ~frame.index.isin(customers.index)
    if missing.any():
        raise DataError(
            f"{int(missing.sum()):,} customers of the {what} have no row in customers (e.g. "
            f"{list(frame.index[missing][:3])}); index customers by the {what}'s customer_id"
        )
    out = frame.copy()
    for column in customers.columns.difference(frame.columns, sort=False):
        out[column] = customers[column].reindex(frame.index).to_numpy()
    return out


def has_covariates(model: Any) -> bool:
    """A fitted model with covariates (its ``covariates_`` names the covariate columns)."""
    return getattr(model, "covariates_", None) is not None


def covariate_profiles(
    frame: pd.DataFrame, names: Sequence[str], *, what: str = "summary", given: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct rows of the covariate columns ``names`` of ``frame`` (text columns as
    categoricals, which a model re-encodes cheaply) and each row's position among them.

    ``given``: whether the caller passed ``customers=`` (for the message when a column is
    missing)."""
    names = list(dict.fromkeys(names))
    absent = [n for n in names if n not in frame.columns]
    if absent:
        raise DataError(
            f"covariate column(s) {absent} are not in the {what}"
            f"{' or customers' if given else ''}; pass customers=<frame indexed by "
            f"customer_id> with them, or add them to the {what}"
        )
    table = frame[names]
    codes = table.groupby(names, sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(codes, return_index=True)[1]
    profiles = table.iloc[first].reset_index(drop=True)
    for name in names:
        column = profiles[name]
        if not pd.api.types.is_numeric_dtype(column) and not isinstance(
            column.dtype, pd.CategoricalDtype
        ):
            profiles[name] = pd.Categorical(column)
    return profiles, codes


# ---------------------------------------------------------------------------------------------
# Declarative argument checks
# ---------------------------------------------------------------------------------------------
# In the spirit of scikit-learn's ``_parameter_constraints``: a public function declares what
# each argument may be, ``validate_params`` checks the call before the body runs, and a refused
# value gets one message of custval's shape: "<name> must <what is allowed>, got <value>; <fix>".


def _shown(value: object) -> str:
    """``repr`` of a value, numpy scalars shown as the Python number they hold."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _is_number(value: object, kind: type) -> bool:
    """Whether ``value`` is a ``kind`` (``numbers.Integral`` or ``numbers.Real``), not a bool."""
    return isinstance(value, kind) and not isinstance(value, bool | np.bool_)


class Constraint:
    """What one argument may be: ``is_satisfied_by`` decides, ``describe`` says it in words.

    ``describe`` is the text after "must" in the error message ("be an integer >= 2",
    "lie in (0, 1)"); ``fix`` (optional) is appended after a semicolon.
    """

    fix: str | None = None

    def is_satisfied_by(self, value: object) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: must {self.describe()}>"


class Interval(Constraint):
    """Finite numbers of a ``kind`` (``numbers.Integral`` or ``numbers.Real``) between bounds.

    Parameters
    ----------
    kind : {numbers.Integral, numbers.Real}
        Integers only, or any real number (integers included). Booleans are never numbers.
    low, high : float or None
        The bounds; None for no bound on that side.
    closed : {"left", "right", "both", "neither"}, default "left"
        Which bounds belong to the interval.
    fix : str, optional
        What to tell the caller after the refusal ("give what one contact costs").

    NaN and infinite values are always refused.

    Examples
    --------
    >>> from numbers import Integral, Real
    >>> Interval(Integral, 2, None).describe()
    'be an integer >= 2'
    >>> Interval(Real, 0, 0.5, closed="left").is_satisfied_by(0.5)
    False
    """

    def __init__(
        self,
        kind: type,
        low: float | None,
        high: float | None,
        *,
        closed: str = "left",
        fix: str | None = None,
    ) -> None:
        if kind not in (Integral, Real):
            raise TypeError(f"kind must be numbers.Integral or numbers.Real, got {kind!r}")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed must be 'left', 'right', 'both' or 'neither', got {closed!r}")
        if low is not None and high is not None and not low < high:
            raise ValueError(f"low must be below high, got {low!r} and {high!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed
        self.fix = fix

    def is_satisfied_by(self, value: object) -> bool:
        if not _is_number(value, self.kind):
            return False
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number):
            return False
        if self.low is not None:
            above = number >= self.low if self.closed in ("left", "both") else number > self.low
            if not above:
                return False
        if self.high is not None:
            below = number <= self.high if self.closed in ("right", "both") else number < self.high
            if not below:
                return False
        return True

    def describe(self) -> str:
        integer = self.kind is Integral
        left = self.closed in ("left", "both")
        right = self.closed in ("right", "both")
        if self.high is None and self.low is None:
            return "be an integer" if integer else "be a finite number"
        noun = "an integer" if integer else "a number"
        if self.high is None:
            if integer and self.low == 0 and left:
                return "be a non-negative integer"
            if integer and ((self.low == 1 and left) or (self.low == 0 and not left)):
                return "be a positive integer"
            if not integer and self.low == 0 and not left:
                return "be a positive number"
            return f"be {noun} {'>=' if left else '>'} {self.low}"
        if self.low is None:
            return f"be {noun} {'<=' if right else '<'} {self.high}"
        bounds = f"{'[' if left else '('}{self.low}, {self.high}{']' if right else ')'}"
        return f"be an integer in {bounds}" if integer else f"lie in {bounds}"


class Options(Constraint):
    """One of a few given values (compared with ``==``, types kept: "1" is not 1).

    Examples
    --------
    >>> Options(("ATT", "ATE")).describe()
    "be 'ATT' or 'ATE'"
    >>> Options(("a", "b", "c")).is_satisfied_by("d")
    False
    """

    def __init__(self, options: Iterable[Any], *, fix: str | None = None) -> None:
        self.options = tuple(dict.fromkeys(options))
        self.fix = fix
        if not self.options:
            raise ValueError("Options needs at least one option")

    def is_satisfied_by(self, value: object) -> bool:
        return any(type(value) is type(o) and value == o for o in self.options)

    def describe(self) -> str:
        shown = [repr(o) for o in self.options]
        if len(shown) == 1:
            return f"be {shown[0]}"
        if len(shown) == 2:
            return f"be {shown[0]} or {shown[1]}"
        return f"be one of [{', '.join(shown)}]"


class _InstancesOf(Constraint):
    """Any number of a kind (``Integral`` or ``Real``), booleans excluded."""

    def __init__(self, kind: type) -> None:
        self.inner = Interval(kind, None, None)

    def is_satisfied_by(self, value: object) -> bool:
        return self.inner.is_satisfied_by(value)

    def describe(self) -> str:
        return self.inner.describe()


class _NoneConstraint(Constraint):
    def is_satisfied_by(self, value: object) -> bool:
        return value is None

    def describe(self) -> str:
        return "be None"


class Duration(Constraint):
    """A duration with its unit, such as "12M" or "52W" (see ``custval._units.parse_duration``).

    ``positive`` (default True) also refuses zero-length durations; ``math.inf`` is accepted
    when ``infinite`` is True.

    Examples
    --------
    >>> Duration().is_satisfied_by("12M"), Duration().is_satisfied_by(12)
    (True, False)
    """

    fix = "write the unit with the number, e.g. '12M', '52W' or '365D'"

    def __init__(self, *, positive: bool = True, infinite: bool = False) -> None:
        self.positive, self.infinite = positive, infinite

    def is_satisfied_by(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        try:
            days = parse_duration(value, to="D")
        except DataError:
            return False
        if math.isinf(days):
            return self.infinite
        return days > 0 if self.positive else days >= 0

    def describe(self) -> str:
        endless = " (or 'inf')" if self.infinite else ""
        return f"be a duration with its unit such as '12M'{endless}"


class Margin(Constraint):
    """custval's one margin rule: a fraction of revenue in (0, 1] (as ``check_margin``).

    Examples
    --------
    >>> Margin().is_satisfied_by(0.3), Margin().is_satisfied_by(30)
    (True, False)
    """

    fix = MARGIN_RULE

    def is_satisfied_by(self, value: object) -> bool:
        return _is_number(value, Real) and 0.0 < float(value) <= 1.0  # type: ignore[arg-type]

    def describe(self) -> str:
        return "be a fraction of revenue in (0, 1]"


#: a probability strictly between 0 and 1 (a test level ``alpha``, a ``power``, an interval level)
OPEN_PROBABILITY = Interval(Real, 0, 1, closed="neither")


def make_constraint(declared: object) -> Constraint:
    """A ``Constraint`` from its declaration: a constraint object, ``numbers.Integral`` or
    ``numbers.Real`` (any number of that kind) or ``None`` (None is allowed).

    >>> make_constraint(None).describe()
    'be None'
    """
    if isinstance(declared, Constraint):
        return declared
    if declared is None:
        return _NoneConstraint()
    if declared in (Integral, Real):
        return _InstancesOf(declared)  # type: ignore[arg-type]
    raise TypeError(f"cannot make a constraint of {declared!r}")


def _allowed(constraints: Sequence[Constraint]) -> str:
    """ "be an integer >= 2 or None": the constraints' descriptions, one "be" for all."""
    words = [c.describe() for c in constraints]
    tail = [w[3:] if w.startswith("be ") and words[0].startswith("be ") else w for w in words[1:]]
    return " or ".join([words[0], *tail])


def check_param(name: str, value: Any, declared: object | Sequence[object]) -> Any:
    """Return ``value`` if it satisfies one of the ``declared`` constraints, else raise.

    Parameters
    ----------
    name : str
        The argument's name, as the caller wrote it.
    value : object
        What was passed.
    declared : constraint or list of constraints
        Constraint objects, ``numbers.Integral``, ``numbers.Real`` or ``None``; the value is
        accepted when it satisfies any one of them.

    Raises
    ------
    DataError
        "<name> must <what is allowed>, got <value>; <fix>".

    Examples
    --------
    >>> from numbers import Integral
    >>> check_param("n_folds", 5, Interval(Integral, 2, None))
    5
    >>> check_param("n_folds", 1, Interval(Integral, 2, None))
    Traceback (most recent call last):
    ...
    custval.errors.DataError: n_folds must be an integer >= 2, got 1
    """
    items = declared if isinstance(declared, list | tuple) else [declared]
    constraints = [make_constraint(c) for c in items]
    if any(c.is_satisfied_by(value) for c in constraints):
        return value
    fixes = [c.fix for c in constraints if c.fix]
    message = f"{name} must {_allowed(constraints)}, got {_shown(value)}"
    raise DataError(message + (f"; {fixes[0]}" if fixes else ""))


def check_params(constraints: Mapping[str, object], values: Mapping[str, Any]) -> None:
    """Check every ``values[name]`` against ``constraints[name]`` (see ``check_param``).

    >>> check_params({"alpha": Interval(Real, 0, 1, closed="neither")}, {"alpha": 0.05})
    >>> check_params({"alpha": Interval(Real, 0, 1, closed="neither")}, {"alpha": 1})
    Traceback (most recent call last):
    ...
    custval.errors.DataError: alpha must lie in (0, 1), got 1
    """
    for name, declared in constraints.items():
        if name in values:
            check_param(name, values[name], declared)


def validate_params(constraints: Mapping[str, object]) -> Callable[[F], F]:
    """Decorator: check a function's arguments against ``constraints`` before it runs.

    The declaration sits next to the signature (``constraints`` names arguments of the
    function; defaults are checked too, so a bad default fails the first call).

    >>> @validate_params({"method": Options(("t_learner", "x_learner"))})
    ... def fit(method="t_learner"):
    ...     return method
    >>> fit(method="s_learner")
    Traceback (most recent call last):
    ...
    custval.errors.DataError: method must be 't_learner' or 'x_learner', got 's_learner'
    """

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{function.__qualname__} has no argument(s) {sorted(unknown)}")

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            check_params(constraints, bound.arguments)
            return function(*args, **kwargs)

        wrapper.parameter_constraints = dict(constraints)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
