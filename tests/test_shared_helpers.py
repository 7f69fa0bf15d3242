"""Tests of the shared helpers: units, validation messages and formatting for people."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from custval import DataError
from custval._format import count, money, number, percent
from custval._units import annual_rate_to_period, normalize_freq, parse_duration, summary_freq
from custval._validation import bad_values_message, require_columns, require_numeric


@pytest.mark.parametrize(
    ("duration", "unit", "expected"),
    [
        ("52W", "D", 364.0),
        ("365D", "W", 365 / 7),
        ("12M", "D", 365.2425),
        ("1Y", "M", 12.0),
        ("2.5W", "D", 17.5),
        ("48h", "D", 2.0),
        ("inf", "W", math.inf),
    ],
)
def test_parse_duration_converts_between_units(duration, unit, expected):
    assert parse_duration(duration, to=unit) == pytest.approx(expected)


def test_parse_duration_refuses_a_bare_number_and_garbage():
    with pytest.raises(DataError, match=r"duration 12 has no unit; write it with one"):
        parse_duration(12, to="D")
    with pytest.raises(DataError, match=r"cannot read duration 'twelve months'"):
        parse_duration("twelve months", to="D")
    with pytest.raises(DataError, match=r"unsupported time unit 'Q'"):
        parse_duration("2Q", to="D")


def test_annual_rate_compounds_to_the_same_yearly_discount():
    for freq in ["D", "W", "M", "Y"]:
        per_period = annual_rate_to_period(0.10, freq)
        periods_per_year = parse_duration("1Y", to=freq)
        assert (1 + per_period) ** periods_per_year == pytest.approx(1.10, rel=1e-12)
    assert annual_rate_to_period(0.0, "D") == 0.0
    with pytest.raises(DataError, match=r"annual_discount_rate must be a finite number above -1"):
        annual_rate_to_period(-1.5, "D")


def test_normalize_freq_aliases_and_summary_freq():
    assert [normalize_freq(f) for f in ["days", "W-SUN", "ME", "H"]] == ["D", "W", "M", "h"]
    frame = pd.DataFrame({"frequency": [1]})
    with pytest.raises(DataError, match=r"does not record its time unit"):
        summary_freq(frame)
    frame.attrs["freq"] = "weeks"
    assert summary_freq(frame) == "W"


def test_require_columns_lists_the_columns_present():
    frame = pd.DataFrame({"a": [1], "b": [2]})
    with pytest.raises(
        DataError,
        match=r"missing required column\(s\) 'c'; columns present: "
        r"'a', 'b'",
    ):
        require_columns(frame, ["a", "c"], what="summary")
    with pytest.raises(DataError, match=r"summary must be a pandas DataFrame, got list"):
        require_columns([1, 2], ["a"], what="summary")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["1", "x", "y"], r"column 'a' has 2 non-numeric values \(rows 1 \('x'\), 2 \('y'\)\)"),
        (["1", "2"], r"input column 'a' holds (str|object) values, not numbers; convert it first"),
        ([1.0, np.inf], r"column 'a' has 1 missing or infinite values \(rows 1 \(inf\)\)"),
        ([1.0, -2.0], r"column 'a' has 1 negative values \(rows 1 \(-2.0\)\); 'a' must be >= 0"),
    ],
)
def test_require_numeric_names_column_rows_values_and_fix(values, message):
    with pytest.raises(DataError, match=message):
        require_numeric(pd.DataFrame({"a": values}), ["a"], nonnegative=True)


def test_bad_values_message_shows_the_first_five_rows_then_ellipsis():
    frame = pd.DataFrame({"a": list(range(10))}, index=[f"r{i}" for i in range(10)])
    text = bad_values_message(frame, frame["a"] >= 2, "a", "large values", "shrink them")
    assert text == (
        "column 'a' has 8 large values (rows r2 (2), r3 (3), r4 (4), r5 (5), "
        "r6 (6), ...); shrink them"
    )


def test_formatting_for_people():
    assert money(1234.5) == "$1,234"
    assert money(2_345_678, "€") == "€2.35M"
    assert money(-12.5, decimals=2) == "-$12.50"
    assert money(float("nan")) == "n/a"
    assert percent(0.583) == "58%"
    assert count(12345.4) == "12,345"
    assert number(0.012345) == "0.0123"


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.5, 30, float("nan"), "0.3", True, None])
def test_one_margin_rule_refuses_what_is_not_in_0_1(bad):
    from custval._validation import MARGIN_RULE, check_margin

    with pytest.raises(DataError, match="margin must be a fraction of revenue in") as caught:
        check_margin(bad)
    assert MARGIN_RULE in str(caught.value)


def test_one_margin_rule_per_customer_names_the_rows():
    from custval._validation import check_margins

    frame = pd.DataFrame({"m": [0.3, 0.0, 1.0, 1.2]}, index=["a", "b", "c", "d"])
    with pytest.raises(DataError, match=r"column 'm' has 2 margins outside \(0, 1\] \(rows b"):
        check_margins(frame, "m")
    assert check_margins(frame.iloc[[0, 2]], "m").tolist() == [0.3, 1.0]


def test_clv_and_invest_share_the_margin_rule():
    import custval
    from custval.invest import campaign_payback

    model = custval.BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, freq="W")
    spend = custval.GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)
    summary = pd.DataFrame(
        {
            "frequency": [2, 0],
            "recency": [30.0, 0.0],
            "T": [38.0, 38.0],
            "monetary_value": [20.0, 0.0],
        }
    )
    summary.attrs["freq"] = "W"
    messages = []
    for call in (
        lambda: custval.customer_lifetime_value(model, spend, summary, margin=0),
        lambda: campaign_payback(object(), margin=0, cost_per_contact=1),
    ):
        with pytest.raises(DataError) as caught:
            call()
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
