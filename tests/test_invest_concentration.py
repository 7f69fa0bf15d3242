"""Value concentration: top customers' shares, Lorenz curve, Gini, valuable customers at risk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custval import DataError
from custval.invest import value_concentration


def _table(clv, churn=None, p_alive=None, segment=None):
    index = pd.Index([f"c{i}" for i in range(len(clv))], name="customer_id")
    data = {"clv": np.asarray(clv, dtype=float)}
    if churn is not None:
        data["churn_probability"] = churn
    if p_alive is not None:
        data["p_alive"] = p_alive
    if segment is not None:
        data["segment"] = segment
    table = pd.DataFrame(data, index=index)
    table.attrs["value_basis"] = "contribution"
    return table


def test_hand_computed_shares_and_gini():
    table = _table([1.0, 1.0, 2.0, 96.0], churn=[0.1, 0.2, 0.3, 0.9])
    result = value_concentration(table, top=(0.25, 0.5), high_value_share=0.25)
    assert result.shares["customers"].tolist() == [1, 2]
    assert result.shares["value_share"].tolist() == pytest.approx([0.96, 0.98])
    # asc x = 1, 1, 2, 96: G = 2 * (1 + 2 + 6 + 384) / (4 * 100) - 5 / 4 = 0.715
    assert result.gini == pytest.approx(0.715)
    assert result.total_value == 100.0
    lorenz = result.lorenz
    assert lorenz["value_share"].tolist() == pytest.approx([0.0, 0.01, 0.02, 0.04, 1.0])
    # the Gini equals 1 - 2 * area under the (piecewise linear) Lorenz curve
    area = np.trapezoid(lorenz["value_share"], lorenz["customer_share"])
    assert result.gini == pytest.approx(1 - 2 * area)
    assert result.headline == "Top 25% of customers hold 96% of expected value"


def test_top_share_rounds_up_to_whole_customers():
    table = _table(np.arange(1, 31), churn=np.zeros(30))
    result = value_concentration(table, top=(0.01, 0.10))
    # 1% of 30 customers is 0.3: the top customer; 10% is exactly 3 customers
    assert result.shares["customers"].tolist() == [1, 3]
    assert result.share_of_top(0.10) == pytest.approx((30 + 29 + 28) / 465)
    assert "Top 10% of customers hold 19%" in result.headline


def test_equal_values_have_no_concentration():
    result = value_concentration(_table(np.full(10, 5.0), churn=np.zeros(10)))
    assert result.gini == pytest.approx(0.0, abs=1e-12)
    assert result.share_of_top(0.1) == pytest.approx(0.1)
    assert result.share_of_top(0.2) == pytest.approx(0.2)


def test_one_customer_holding_everything():
    result = value_concentration(_table([0, 0, 0, 0, 10.0], churn=np.zeros(5)))
    assert result.gini == pytest.approx(4 / 5)  # (n - 1) / n
    assert result.share_of_top(0.01) == 1.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=60))
def test_invariants(values):
    values = np.asarray(values)
    if values.sum() <= 0:
        return
    result = value_concentration(_table(values, churn=np.zeros(len(values))))
    assert 0.0 - 1e-12 <= result.gini <= 1.0
    assert np.all(np.diff(result.lorenz["value_share"]) >= -1e-12)
    assert result.lorenz["value_share"].iloc[-1] == pytest.approx(1.0)
    shares = result.shares["value_share"].to_numpy()
    assert np.all(np.diff(shares) >= -1e-12)
    # the top p hold at least p of the value
    assert np.all(shares >= result.shares["customers"] / len(values) - 1e-9)


def test_high_value_at_risk_list_uses_the_stated_thresholds():
    clv = [100.0, 90.0, 80.0, 70.0, 10.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    churn = [0.9, 0.2, 0.6, 0.9, 0.99, 0.0, 0.0, 0.0, 0.0, 0.0]
    segment = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"]
    table = _table(clv, churn=churn, segment=segment)
    result = value_concentration(table, high_value_share=0.3, churn_threshold=0.5)
    # top 30% = c0, c1, c2; at risk among them: churn >= 0.5 -> c0, c2 (c3 is not top 30%,
    # c4 is at risk but not valuable)
    assert result.at_risk.index.tolist() == ["c0", "c2"]
    assert result.at_risk["value_at_risk"].tolist() == pytest.approx([90.0, 48.0])
    assert result.at_risk["segment"].tolist() == ["A", "C"]
    assert result.at_risk["value_rank"].tolist() == [1, 3]
    a = result.assumptions
    assert a["high_value_threshold"] == 80.0
    assert a["churn_threshold"] == 0.5
    assert "top 30.0%" in a["high_value"] and "churn probability >= 0.5" in a["at_risk"]
    looser = value_concentration(table, high_value_share=0.4, churn_threshold=0.5)
    assert looser.at_risk.index.tolist() == ["c0", "c2", "c3"]


def test_one_minus_p_alive_and_a_churn_series():
    table = _table([10.0, 9.0, 1.0], p_alive=[0.2, 0.9, 0.1])
    result = value_concentration(table, churn="1 - p_alive", high_value_share=0.6)
    assert result.at_risk.index.tolist() == ["c0"]
    assert result.at_risk["churn_probability"].tolist() == pytest.approx([0.8])
    assert result.assumptions["churn"] == "1 - p_alive (value table)"
    scores = pd.Series([0.1, 0.7, 0.0], index=table.index, name="churn_probability")
    result = value_concentration(table, churn=scores, high_value_share=0.6)
    assert result.at_risk.index.tolist() == ["c1"]


def test_input_is_not_modified():
    table = _table([3.0, 1.0, 2.0], churn=[0.5, 0.5, 0.5])
    before = table.copy()
    value_concentration(table)
    pd.testing.assert_frame_equal(table, before)


def test_errors():
    with pytest.raises(DataError, match=r"column 'clv' has 1 negative values \(rows c1"):
        value_concentration(_table([1.0, -2.0], churn=[0, 0]))
    with pytest.raises(DataError, match=r"sums to 0.0 over 2 customers"):
        value_concentration(_table([0.0, 0.0], churn=[0, 0]))
    with pytest.raises(
        DataError,
        match="value table has no column 'churn_probability'; pass the churn scores as churn=",
    ):
        value_concentration(_table([1.0, 2.0]))
    with pytest.raises(DataError, match=r"top share must lie in \(0, 1\], got 1.5"):
        value_concentration(_table([1.0, 2.0], churn=[0, 0]), top=(1.5,))
    with pytest.raises(DataError, match=r"missing required column.*'value_now'"):
        value_concentration(_table([1.0, 2.0], churn=[0, 0]), value="value_now")
    with pytest.raises(DataError, match=r"'churn_probability' has 1 values outside \[0, 1\]"):
        value_concentration(_table([1.0, 2.0], churn=[0.5, 1.5]))
    with pytest.raises(DataError, match=r"top share 0.5 was not computed"):
        value_concentration(_table([1.0, 2.0], churn=[0, 0])).share_of_top(0.5)
    with pytest.raises(
        DataError, match=r"churn_probability has no value for 1 customers of the value table"
    ):
        value_concentration(
            _table([1.0, 2.0]), churn=pd.Series([0.1], index=pd.Index(["c0"], name="customer_id"))
        )
