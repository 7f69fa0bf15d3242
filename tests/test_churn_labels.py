"""Churn labels: the edge cases of the non-contractual definition, and contractual labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custval import DataError, churn_labels, contractual_churn_labels


def _log(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    ids, times, amounts = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "timestamp": pd.to_datetime(times, format="ISO8601"),
            "amount": amounts,
        }
    )


CUTOFF = "2024-03-01"


@pytest.fixture
def edge_log() -> pd.DataFrame:
    return _log(
        [
            ("at_cutoff", "2024-03-01 00:00:00", 10.0),  # purchase exactly at the cutoff: past
            ("at_end", "2024-01-15", 10.0),
            ("at_end", "2024-03-31 00:00:00", 10.0),  # exactly cutoff + 30D: within the horizon
            ("after_end", "2024-01-15", 10.0),
            ("after_end", "2024-03-31 00:00:01", 10.0),  # one second too late
            ("new", "2024-03-02", 10.0),  # first seen after the cutoff: not labelled
            ("stays", "2024-02-01", 10.0),
            ("stays", "2024-03-10", 10.0),
            ("returns_only", "2024-02-01", 10.0),
            ("returns_only", "2024-03-05", -10.0),  # a return is not a purchase
            ("only_return_before", "2024-02-01", -5.0),  # never bought before the cutoff
            ("only_return_before", "2024-03-05", 5.0),
            ("tail", "2024-06-01", 1.0),  # keeps the data running past the horizon
        ]
    )


def test_edge_cases_of_the_label_window(edge_log):
    labels = churn_labels(edge_log, cutoff=CUTOFF, horizon="30D")
    assert labels.name == "churned"
    assert labels.index.name == "customer_id"
    assert labels.dtype == np.int8
    assert labels.to_dict() == {
        "after_end": 1,
        "at_cutoff": 1,  # its only purchase is in the past; nothing within the horizon
        "at_end": 0,
        "returns_only": 1,
        "stays": 0,
    }
    assert "new" not in labels.index
    assert "only_return_before" not in labels.index


def test_purchase_at_the_cutoff_is_past_not_future():
    log = _log([("a", "2024-02-01", 5.0), ("a", "2024-03-01", 5.0), ("z", "2024-09-01", 1.0)])
    # At cutoff 2024-03-01 the purchase on that instant is in the past: "a" then buys nothing.
    assert churn_labels(log, cutoff="2024-03-01", horizon="30D")["a"] == 1
    # One second earlier the same purchase is in the future.
    assert churn_labels(log, cutoff="2024-02-29 23:59:59", horizon="30D")["a"] == 0


def test_quantity_marks_returns():
    log = _log([("a", "2024-01-01", 5.0), ("a", "2024-01-20", 5.0), ("z", "2024-06-01", 1.0)])
    log["quantity"] = [1, -1, 1]  # a refund booked with a positive amount but negative quantity
    assert churn_labels(log, cutoff="2024-01-10", horizon="30D")["a"] == 1


def test_horizon_past_the_data_end_is_refused(edge_log):
    with pytest.raises(DataError, match=r"ends at 2024-09-27.*after the data's end 2024-06-01"):
        churn_labels(edge_log, cutoff=CUTOFF, horizon="30W")
    with pytest.raises(DataError, match=r"use a cutoff on or before 2024-03-03"):
        churn_labels(edge_log, cutoff="2024-04-01", horizon="90D")


def test_observation_end_extends_the_data(edge_log):
    labels = churn_labels(edge_log, cutoff=CUTOFF, horizon="30W", observation_end="2024-12-31")
    assert labels["stays"] == 0
    assert labels["at_end"] == 0


def test_input_is_not_modified(edge_log):
    before = edge_log.copy()
    churn_labels(edge_log, cutoff=CUTOFF, horizon="30D")
    pd.testing.assert_frame_equal(edge_log, before)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": 90}, r"duration 90 has no unit"),
        ({"horizon": "-5D"}, r"cannot read duration '-5D'"),
        ({"horizon": "0D"}, r"horizon must be a positive, finite duration"),
        ({"cutoff": "not a date"}, r"cutoff must be a date or timestamp"),
    ],
)
def test_bad_arguments(edge_log, kwargs, message):
    arguments = {"cutoff": CUTOFF, "horizon": "30D"} | kwargs
    with pytest.raises(DataError, match=message):
        churn_labels(edge_log, **arguments)


def test_bad_logs():
    with pytest.raises(DataError, match=r"missing required column\(s\) 'amount'"):
        churn_labels(
            pd.DataFrame({"customer_id": [1], "timestamp": [pd.Timestamp(0)]}), cutoff="2024-01-01"
        )
    log = _log([("a", "2024-01-01", 1.0)])
    log["timestamp"] = log["timestamp"].astype(str)
    with pytest.raises(DataError, match=r"column 'timestamp' must hold datetimes"):
        churn_labels(log, cutoff="2024-01-01")
    log = _log([("a", "2024-01-01", 1.0), ("b", "2024-06-01", 1.0)])
    log.loc[1, "customer_id"] = None
    with pytest.raises(
        DataError, match=r"column 'customer_id' has 1 missing customer ids \(rows 1"
    ):
        churn_labels(log, cutoff="2024-01-01")
    log = _log([("a", "2024-01-01", 1.0), ("b", "2024-06-01", 1.0)])
    log.loc[1, "timestamp"] = pd.NaT
    with pytest.raises(
        DataError, match=r"column 'timestamp' has 1 missing timestamps \(NaT\) \(rows 1"
    ):
        churn_labels(log, cutoff="2024-01-01")
    with pytest.raises(DataError, match=r"transactions is empty; churn needs at least one"):
        churn_labels(log.iloc[:0], cutoff="2024-01-01")
    log = _log([("a", "2024-01-01", 1.0), ("b", "2024-06-01", 1.0)])
    log["amount"] = log["amount"].astype(object)
    log.loc[1, "amount"] = "x"
    with pytest.raises(DataError, match=r"column 'amount' has 1 non-numeric values"):
        churn_labels(log, cutoff="2024-01-01")


# ------------------------------------------------------------------------------------ contractual
def test_contractual_flags():
    table = pd.DataFrame(
        {"customerID": ["a", "b", "c", "d"], "Churn": ["Yes", "No", " yes", "NO"], "x": 1}
    )
    labels = contractual_churn_labels(table, churn="Churn", customer_id="customerID")
    assert labels.to_dict() == {"a": 1, "b": 0, "c": 1, "d": 0}
    assert labels.index.name == "customer_id"
    numeric = pd.DataFrame({"customer_id": [1, 2], "churn": [1, 0]})
    assert contractual_churn_labels(numeric, churn="churn").tolist() == [1, 0]
    custom = pd.DataFrame({"customer_id": [1, 2], "status": ["cancelled", "active"]})
    assert contractual_churn_labels(custom, churn="status", positive={"cancelled"}).tolist() == [
        1,
        0,
    ]


def test_contractual_end_dates():
    table = pd.DataFrame(
        {
            "customer_id": ["early", "in", "edge", "later", "open", "unborn"],
            "start": pd.to_datetime(["2023-01-01"] * 5 + ["2024-02-01"]),
            "end": pd.to_datetime(
                ["2023-12-01", "2024-02-01", "2024-03-31", "2024-04-01", None, None]
            ),
        }
    )
    labels = contractual_churn_labels(
        table, end="end", start="start", cutoff="2024-01-01", horizon="90D"
    )
    # ended before the cutoff and started after it are not labelled; 2024-03-31 is the last day
    assert labels.to_dict() == {"in": 1, "edge": 1, "later": 0, "open": 0}


def test_contractual_errors():
    table = pd.DataFrame({"customer_id": ["a", "a"], "Churn": ["Yes", "maybe"]})
    with pytest.raises(DataError, match=r"exactly one of churn="):
        contractual_churn_labels(table)
    with pytest.raises(DataError, match=r"customers must be a pandas DataFrame, got list"):
        contractual_churn_labels([1, 2], churn="Churn")
    with pytest.raises(DataError, match=r"column 'customer_id' has 2 duplicated ids"):
        contractual_churn_labels(table, churn="Churn")
    table = pd.DataFrame({"customer_id": ["a", "b"], "Churn": ["Yes", "maybe"]})
    with pytest.raises(DataError, match=r"column 'Churn' has 1 values that are neither .*'maybe'"):
        contractual_churn_labels(table, churn="Churn")
    with pytest.raises(DataError, match=r"customers has no column 'customerID'"):
        contractual_churn_labels(table, churn="Churn", customer_id="customerID")
    with pytest.raises(DataError, match=r"end= needs cutoff= and horizon="):
        contractual_churn_labels(table, end="Churn")
    with pytest.raises(DataError, match=r"column 'Churn' must hold datetimes"):
        contractual_churn_labels(table, end="Churn", cutoff="2024-01-01", horizon="30D")
