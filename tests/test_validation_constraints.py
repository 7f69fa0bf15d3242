"""Declarative argument checks of custval._validation: constraint objects and validate_params."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from custval._validation import (
    MARGIN_RULE,
    Duration,
    Interval,
    Margin,
    Options,
    check_margin,
    check_param,
    check_params,
    make_constraint,
    validate_params,
)
from custval.errors import DataError

_CLOSED = ("left", "right", "both", "neither")
_finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(
    low=_finite,
    width=st.floats(min_value=1e-3, max_value=1e3),
    value=_finite,
    closed=st.sampled_from(_CLOSED),
)
def test_real_interval_agrees_with_the_inequalities(low, width, value, closed):
    high = low + width
    constraint = Interval(Real, low, high, closed=closed)
    above = value >= low if closed in ("left", "both") else value > low
    below = value <= high if closed in ("right", "both") else value < high
    assert constraint.is_satisfied_by(value) == (above and below)


@given(low=st.integers(-50, 50), value=st.integers(-100, 100))
def test_integral_interval_with_one_bound(low, value):
    constraint = Interval(Integral, low, None)
    assert constraint.is_satisfied_by(value) == (value >= low)
    assert constraint.is_satisfied_by(np.int64(value)) == (value >= low)
    # a float is not an integer, even a whole one
    assert not constraint.is_satisfied_by(float(value))


@pytest.mark.parametrize("value", [True, False, np.bool_(True), math.nan, math.inf, -math.inf])
def test_booleans_nan_and_infinity_are_not_numbers_of_an_interval(value):
    for constraint in (Interval(Real, None, None), Interval(Integral, None, None)):
        assert not constraint.is_satisfied_by(value)


@pytest.mark.parametrize("value", ["0.5", None, [0.5], object()])
def test_non_numbers_are_refused(value):
    assert not Interval(Real, 0, 1, closed="both").is_satisfied_by(value)


@pytest.mark.parametrize(
    ("constraint", "words"),
    [
        (Interval(Integral, 2, None), "be an integer >= 2"),
        (Interval(Integral, 1, None), "be a positive integer"),
        (Interval(Integral, 0, None, closed="neither"), "be a positive integer"),
        (Interval(Integral, 0, None), "be a non-negative integer"),
        (Interval(Integral, 1, 10, closed="both"), "be an integer in [1, 10]"),
        (Interval(Real, 0, None, closed="neither"), "be a positive number"),
        (Interval(Real, 0, None), "be a number >= 0"),
        (Interval(Real, None, 1, closed="neither"), "be a number < 1"),
        (Interval(Real, None, None), "be a finite number"),
        (Interval(Real, 0, 0.5), "lie in [0, 0.5)"),
        (Interval(Real, 0, 1, closed="right"), "lie in (0, 1]"),
        (Options(("ATT",)), "be 'ATT'"),
        (Options(("ATT", "ATE")), "be 'ATT' or 'ATE'"),
        (Options(("a", "b", "a", "c")), "be one of ['a', 'b', 'c']"),
        (Margin(), "be a fraction of revenue in (0, 1]"),
        (make_constraint(None), "be None"),
        (make_constraint(Integral), "be an integer"),
    ],
)
def test_descriptions(constraint, words):
    assert constraint.describe() == words


def test_the_message_names_the_argument_value_what_is_allowed_and_the_fix():
    constraint = Interval(Real, 0, None, closed="neither", fix="give what one contact costs")
    with pytest.raises(DataError) as caught:
        check_param("cost_per_contact", np.float64(-2.5), constraint)
    assert str(caught.value) == (
        "cost_per_contact must be a positive number, got -2.5; give what one contact costs"
    )
    with pytest.raises(DataError, match=r"^n_threads must be a positive integer or None, got 0$"):
        check_param("n_threads", 0, [Interval(Integral, 1, None), None])
    assert check_param("n_threads", None, [Interval(Integral, 1, None), None]) is None


def test_options_compare_values_and_types():
    options = Options(("t_learner", "x_learner"))
    assert options.is_satisfied_by("x_learner")
    assert not options.is_satisfied_by("X_learner")
    assert not Options((1, 2)).is_satisfied_by("1")
    assert not Options((1, 2)).is_satisfied_by(True)  # True == 1, but is not the option 1
    with pytest.raises(ValueError, match="at least one option"):
        Options(())


@pytest.mark.parametrize(
    ("value", "ok"),
    [("12M", True), ("52W", True), ("0D", False), (12, False), ("12", False), ("inf", False)],
)
def test_duration(value, ok):
    assert Duration().is_satisfied_by(value) is ok


def test_duration_options_and_fix():
    assert Duration(positive=False).is_satisfied_by("0D")
    assert Duration(infinite=True).is_satisfied_by("inf")
    with pytest.raises(DataError, match=r"horizon must be a duration .*, got 12; write the unit"):
        check_param("horizon", 12, Duration())


@given(st.one_of(_finite, st.integers(-5, 5), st.booleans(), st.none(), st.text(max_size=3)))
def test_margin_constraint_and_check_margin_agree(value):
    ok = Margin().is_satisfied_by(value)
    if ok:
        assert check_margin(value) == float(value)
    else:
        with pytest.raises(DataError, match=r"margin must be a fraction of revenue in \(0, 1\]"):
            check_margin(value)


def test_margin_refusal_carries_the_margin_rule():
    with pytest.raises(DataError) as caught:
        check_param("margin", 30, Margin())
    assert (
        str(caught.value)
        == f"margin must be a fraction of revenue in (0, 1], got 30; {MARGIN_RULE}"
    )


def test_make_constraint_refuses_what_it_cannot_read():
    with pytest.raises(TypeError, match="cannot make a constraint of 'positive'"):
        make_constraint("positive")


def test_interval_refuses_a_bad_declaration():
    with pytest.raises(TypeError, match=r"numbers\.Integral or numbers\.Real"):
        Interval(float, 0, 1)
    with pytest.raises(ValueError, match="closed must be"):
        Interval(Real, 0, 1, closed="open")
    with pytest.raises(ValueError, match="low must be below high"):
        Interval(Real, 1, 0)


def test_check_params_checks_only_the_values_given():
    constraints = {
        "alpha": Interval(Real, 0, 1, closed="neither"),
        "n": Interval(Integral, 1, None),
    }
    check_params(constraints, {"alpha": 0.05})
    with pytest.raises(DataError, match=r"^n must be a positive integer, got 0$"):
        check_params(constraints, {"alpha": 0.05, "n": 0})


def test_validate_params_checks_positional_keyword_and_default_arguments():
    @validate_params({"n_folds": Interval(Integral, 2, None), "method": Options(("a", "b"))})
    def fit(data, n_folds=5, *, method="a"):
        """Fit."""
        return data, n_folds, method

    assert fit(1, 3, method="b") == (1, 3, "b")
    assert fit.__doc__ == "Fit." and fit.__name__ == "fit"
    assert set(fit.parameter_constraints) == {"n_folds", "method"}
    with pytest.raises(DataError, match=r"^n_folds must be an integer >= 2, got 1$"):
        fit(1, 1)
    with pytest.raises(DataError, match=r"^method must be 'a' or 'b', got 'c'$"):
        fit(1, method="c")

    @validate_params({"n": Interval(Integral, 1, None)})
    def bad_default(n=0):
        return n

    with pytest.raises(DataError, match="n must be a positive integer, got 0"):
        bad_default()


def test_validate_params_refuses_constraints_on_unknown_arguments():
    with pytest.raises(TypeError, match=r"has no argument\(s\) \['n_fold'\]"):

        @validate_params({"n_fold": Interval(Integral, 2, None)})
        def fit(n_folds=5):
            return n_folds
