"""Tests for custval.transactions: reading, cleaning, netting returns and the CleaningReport.

Netting is checked against an independent row-by-row implementation (an explicit stack of
purchases, exact integer cents); reconciliation, immutability and order independence are
hypothesis properties over dirty frames; every DataError message is matched.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import custval
from custval import (
    ONLINE_RETAIL_NON_PRODUCT_CODES,
    CleaningReport,
    DataError,
    clean_transactions,
    read_transactions,
)

VALIDITY = ["missing_customer_id", "invalid_timestamp", "invalid_amount", "after_observation_end"]
NETTING = [
    "cancellation_not_negative",
    "return_unmatched",
    "return_netted",
    "purchase_netted_to_zero",
]


def log(rows, columns=("customer_id", "timestamp", "amount")) -> pd.DataFrame:
    """A small log from tuples, every column of dtype object (as dirty input arrives)."""
    return pd.DataFrame.from_records(rows, columns=list(columns)).astype(object)


def assert_reconciles(report: CleaningReport) -> None:
    assert report.rows_in == report.rows_kept + sum(report.rows_dropped.values())
    total = math.fsum([report.amount_kept, *report.amount_dropped.values()])
    assert math.isclose(report.amount_in, total, rel_tol=1e-12, abs_tol=1e-9)
    assert report.reconciles
    assert report.check() is report


def reference_lifo(events):
    """Independent LIFO netting: ``events`` are (key, group, time, cents), cents an int.

    Returns ({key: cents left} for purchases, {key: cents unmatched} for returns). At equal
    times purchases come first and the larger purchase is the more recent one; returns at equal
    times are taken largest first.
    """
    by_group = defaultdict(list)
    for key, group, time, cents in events:
        by_group[group].append((time, cents < 0, cents, key))
    left, unmatched = {}, {}
    for items in by_group.values():
        stack = []
        for _time, is_return, cents, key in sorted(items):
            if not is_return:
                left[key] = cents
                stack.append(key)
                continue
            need = -cents
            while need and stack:
                top = stack[-1]
                take = min(left[top], need)
                left[top] -= take
                need -= take
                if left[top] == 0:
                    stack.pop()
            unmatched[key] = need
    return left, unmatched


# --- hand-built cases, one per reason -----------------------------------------------------------


def test_clean_log_passes_through_with_vocabulary_dtypes_and_order():
    frame = log(
        [
            ("b", "2024-01-02 10:00", 5.0),
            ("a", "2024-01-03", "7.25"),
            ("a", "2024-01-01", 3),
        ]
    )
    clean, report = clean_transactions(frame)
    assert list(clean.columns) == ["customer_id", "timestamp", "amount"]
    assert clean["customer_id"].tolist() == ["a", "a", "b"]
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-01-03"),
        pd.Timestamp("2024-01-02 10:00"),
    ]
    assert clean["amount"].tolist() == [3.0, 7.25, 5.0]
    assert clean["timestamp"].dtype == "datetime64[ns]"
    assert clean["amount"].dtype == np.float64
    assert pd.api.types.is_string_dtype(clean["customer_id"])
    pd.testing.assert_index_equal(clean.index, pd.RangeIndex(3))
    assert (report.rows_in, report.rows_kept, report.amount_in, report.amount_kept) == (
        3,
        3,
        15.25,
        15.25,
    )
    assert all(v == 0 for v in report.rows_dropped.values())


def test_missing_customer_ids_are_counted_with_their_amount():
    frame = log(
        [
            (None, "2024-01-01", 1.0),
            ("", "2024-01-01", 2.0),
            ("  ", "2024-01-01", 4.0),
            (np.nan, "2024-01-01", 8.0),
            ("x", "2024-01-01", 16.0),
        ]
    )
    clean, report = clean_transactions(frame)
    assert report.rows_dropped["missing_customer_id"] == 4
    assert report.amount_dropped["missing_customer_id"] == 15.0
    assert clean["customer_id"].tolist() == ["x"]
    assert_reconciles(report)


def test_customer_ids_are_normalised_to_clean_text():
    frame = log(
        [
            (17850.0, "2024-01-01", 1.0),
            ("17850.0", "2024-01-02", 1.0),
            (" 17850 ", "2024-01-03", 1.0),
            (12, "2024-01-01", 1.0),
            ("007", "2024-01-01", 1.0),
            ("A-1.5", "2024-01-01", 1.0),
        ]
    )
    clean, _ = clean_transactions(frame)
    assert sorted(set(clean["customer_id"])) == ["007", "12", "17850", "A-1.5"]
    assert (clean["customer_id"] == "17850").sum() == 3


def test_float_customer_id_column_with_missing_values():
    frame = pd.DataFrame(
        {
            "customer_id": [17850.0, np.nan, 13047.0],
            "timestamp": pd.to_datetime(["2024-01-01"] * 3),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    clean, report = clean_transactions(frame)
    assert clean["customer_id"].tolist() == ["13047", "17850"]
    assert report.rows_dropped["missing_customer_id"] == 1


def test_invalid_timestamps_are_counted():
    frame = log(
        [
            ("a", "not a date", 1.0),
            ("a", None, 2.0),
            ("a", "2011-02-30", 4.0),
            ("a", "2024-01-01", 8.0),
            ("a", " 2024-01-02 ", 16.0),
        ]
    )
    clean, report = clean_transactions(frame)
    assert report.rows_dropped["invalid_timestamp"] == 3
    assert report.amount_dropped["invalid_timestamp"] == 7.0
    assert clean["amount"].tolist() == [8.0, 16.0]
    assert_reconciles(report)


def test_non_iso_timestamps_and_explicit_format():
    frame = log([("a", "12/1/2010 8:26", 1.0), ("a", "12/2/2010 9:00", 2.0)])
    clean, _ = clean_transactions(frame)
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2010-12-01 08:26"),
        pd.Timestamp("2010-12-02 09:00"),
    ]
    clean, _ = clean_transactions(frame, timestamp_format="%d/%m/%Y %H:%M")
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2010-01-12 08:26"),
        pd.Timestamp("2010-02-12 09:00"),
    ]


def test_timezone_aware_timestamps_become_utc():
    frame = log([("a", "2024-01-01T10:00:00+02:00", 1.0), ("a", "2024-01-01T09:00:00Z", 2.0)])
    clean, _ = clean_transactions(frame)
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01 08:00"),
        pd.Timestamp("2024-01-01 09:00"),
    ]
    aware = pd.DataFrame(
        {
            "customer_id": ["a"],
            "amount": [1.0],
            "timestamp": pd.to_datetime(["2024-06-01 12:00"]).tz_localize("Europe/Paris"),
        }
    )
    clean, _ = clean_transactions(aware)
    assert clean["timestamp"].tolist() == [pd.Timestamp("2024-06-01 10:00")]
    assert clean["timestamp"].dtype == "datetime64[ns]"


def test_timestamps_outside_the_nanosecond_range_are_invalid():
    frame = log([("a", "3000-01-01", 1.0), ("a", "2024-01-01", 2.0)])
    _, report = clean_transactions(frame)
    assert report.rows_dropped["invalid_timestamp"] == 1


def test_invalid_amounts_are_counted_without_an_amount():
    frame = log(
        [
            ("a", "2024-01-01", "abc"),
            ("a", "2024-01-01", None),
            ("a", "2024-01-01", "1,234.50"),
            ("a", "2024-01-01", math.inf),
            ("a", "2024-01-01", " 2.5 "),
        ]
    )
    clean, report = clean_transactions(frame)
    assert report.rows_dropped["invalid_amount"] == 4
    assert report.amount_dropped["invalid_amount"] == 0.0
    assert report.amount_in == 2.5
    assert clean["amount"].tolist() == [2.5]
    assert_reconciles(report)


def test_rows_after_observation_end_are_counted():
    frame = log(
        [
            ("a", "2024-01-31 23:59", 1.0),
            ("a", "2024-02-01", 2.0),
            ("a", "2024-02-01 00:01", 4.0),
            ("b", "2024-03-01", 8.0),
        ]
    )
    clean, report = clean_transactions(frame, observation_end="2024-02-01")
    assert report.rows_dropped["after_observation_end"] == 2
    assert report.amount_dropped["after_observation_end"] == 12.0
    assert clean["amount"].tolist() == [1.0, 2.0]  # a row exactly at the end is kept
    assert report.settings["observation_end"] == "2024-02-01T00:00:00"
    assert_reconciles(report)


def test_excluded_codes_are_counted():
    frame = log(
        [
            ("a", "2024-01-01", 18.0, "POST"),
            ("a", "2024-01-01", 5.0, "85123A"),
            ("a", "2024-01-01", 1.0, " DOT "),
            ("a", "2024-01-01", 2.0, "post"),
            ("a", "2024-01-01", 3.0, None),
        ],
        columns=("customer_id", "timestamp", "amount", "product_code"),
    )
    clean, report = clean_transactions(frame, exclude_codes=["POST", "DOT"])
    assert report.rows_dropped["excluded_code"] == 2
    assert report.amount_dropped["excluded_code"] == 19.0
    assert sorted(clean["product_code"].dropna()) == ["85123A", "post"]
    assert report.settings["exclude_codes"] == ("DOT", "POST")


def test_online_retail_non_product_codes_constant():
    codes = ONLINE_RETAIL_NON_PRODUCT_CODES
    for code in [
        "POST",
        "DOT",
        "M",
        "BANK CHARGES",
        "AMAZONFEE",
        "CRUK",
        "D",
        "S",
        "B",
        "PADS",
        "C2",
    ]:
        assert code in codes
    assert "85123A" not in codes
    assert all(isinstance(v, str) and v for v in codes.values())
    with pytest.raises(TypeError):
        codes["NEW"] = "x"  # read-only


def test_exact_duplicates_compare_normalised_values():
    frame = log(
        [
            ("17850", "2024-01-01", 5.0),
            ("17850.0", "2024-01-01 00:00:00", "5"),
            ("17850", "2024-01-01", 5.0),
            ("17850", "2024-01-01", 6.0),
        ]
    )
    clean, report = clean_transactions(frame)
    assert report.rows_dropped["duplicate"] == 2
    assert report.amount_dropped["duplicate"] == 10.0
    assert clean["amount"].tolist() == [5.0, 6.0]
    clean, report = clean_transactions(frame, duplicates="keep")
    assert "duplicate" not in report.rows_dropped
    assert report.rows_kept == 4


def test_duplicates_consider_extra_columns_and_carry_them_along():
    frame = log(
        [
            ("a", "2024-01-01", 5.0, "UK"),
            ("a", "2024-01-01", 5.0, "FR"),
            ("a", "2024-01-01", 5.0, "UK"),
        ],
        columns=("customer_id", "timestamp", "amount", "country"),
    )
    clean, report = clean_transactions(frame)
    assert report.rows_dropped["duplicate"] == 1
    assert list(clean.columns) == ["customer_id", "timestamp", "amount", "country"]
    assert sorted(clean["country"]) == ["FR", "UK"]


def test_zero_amounts_by_policy():
    frame = log([("a", "2024-01-01", 0.0), ("a", "2024-01-02", "0"), ("a", "2024-01-03", 1.0)])
    clean, report = clean_transactions(frame)
    assert report.rows_dropped["zero_amount"] == 2
    assert report.amount_dropped["zero_amount"] == 0.0
    assert clean["amount"].tolist() == [1.0]
    clean, report = clean_transactions(frame, zero_amounts="keep")
    assert "zero_amount" not in report.rows_dropped
    assert clean["amount"].tolist() == [0.0, 0.0, 1.0]


def test_first_reason_wins():
    frame = log(
        [
            (None, "x", "y", "POST"),
            ("a", "x", "y", "POST"),
            ("a", "2030-01-01", "y", "P"),
            ("a", "2030-01-01", 1.0, "POST"),
            ("a", "2024-01-01", 1.0, "POST"),
        ],
        columns=("customer_id", "timestamp", "amount", "product_code"),
    )
    _, report = clean_transactions(frame, observation_end="2025-01-01", exclude_codes=["POST"])
    assert {k: v for k, v in report.rows_dropped.items() if v} == {
        "missing_customer_id": 1,
        "invalid_timestamp": 1,
        "invalid_amount": 1,
        "after_observation_end": 1,
        "excluded_code": 1,
    }


# --- returns ------------------------------------------------------------------------------------


ORDERS = ("customer_id", "timestamp", "amount", "order_id")


def test_returns_dropped_by_sign_or_cancellation_prefix():
    frame = log(
        [
            ("a", "2024-01-01", 10.0, "1"),
            ("a", "2024-01-02", -4.0, "2"),
            ("a", "2024-01-03", -3.0, "C3"),
            ("a", "2024-01-04", 2.0, "C4"),
        ],
        columns=ORDERS,
    )
    clean, report = clean_transactions(frame, returns="drop")
    assert report.rows_dropped["return"] == 3
    assert report.amount_dropped["return"] == -5.0
    assert clean["amount"].tolist() == [10.0]
    assert_reconciles(report)
    _, report = clean_transactions(frame, returns="drop", cancellation_prefix=None)
    assert report.rows_dropped["return"] == 2  # "C4" is a purchase now


def test_returns_kept():
    frame = log([("a", "2024-01-01", 10.0, "1"), ("a", "2024-01-02", -4.0, "C2")], columns=ORDERS)
    clean, report = clean_transactions(frame, returns="keep")
    assert clean["amount"].tolist() == [10.0, -4.0]
    assert clean["order_id"].tolist() == ["1", "C2"]
    assert report.reasons == (
        "missing_customer_id",
        "invalid_timestamp",
        "invalid_amount",
        "after_observation_end",
        "excluded_code",
        "duplicate",
        "zero_amount",
    )
    assert report.amount_kept == 6.0


def test_netting_last_in_first_out_known_answer():
    # P1=10, P2=10, R1=-5, P3=10, R2=-12: R1 takes 5 of P2; R2 takes all of P3 and 2 of P2.
    frame = log(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-02", 10.0),
            ("a", "2024-01-03", -5.0),
            ("a", "2024-01-04", 10.0),
            ("a", "2024-01-05", -12.0),
        ]
    )
    clean, report = clean_transactions(frame)
    assert clean["amount"].tolist() == [10.0, 3.0]
    assert clean["timestamp"].dt.day.tolist() == [1, 2]
    assert report.rows_dropped["return_netted"] == 2
    assert report.rows_dropped["purchase_netted_to_zero"] == 1
    assert report.rows_dropped["return_unmatched"] == 0
    assert report.amount_netted == -17.0
    assert report.amount_dropped["return_netted"] == 0.0
    assert report.amount_dropped["purchase_netted_to_zero"] == 0.0
    assert report.amount_in == report.amount_kept == 13.0
    assert_reconciles(report)


def test_netting_unmatched_and_excess_returns():
    frame = log(
        [
            ("a", "2024-01-01", -7.0),  # nothing bought before: unmatched
            ("a", "2024-01-02", 10.0),
            ("a", "2024-01-03", -15.0),  # nets 10, excess 5 leaves the log
            ("b", "2024-01-01", -2.5),
        ]
    )  # customer who never bought
    clean, report = clean_transactions(frame)
    assert clean.empty
    assert report.rows_dropped["return_unmatched"] == 2
    assert report.amount_dropped["return_unmatched"] == -9.5
    assert report.rows_dropped["return_netted"] == 1
    assert report.amount_dropped["return_netted"] == -5.0
    assert report.amount_netted == -10.0
    assert report.rows_dropped["purchase_netted_to_zero"] == 1
    assert report.amount_in == -14.5
    assert report.amount_kept == 0.0
    assert_reconciles(report)


def test_netting_is_per_customer_and_per_product():
    columns = ("customer_id", "timestamp", "amount", "product_code")
    frame = log(
        [
            ("a", "2024-01-01", 10.0, "X"),
            ("a", "2024-01-02", 20.0, "Y"),
            ("b", "2024-01-02", 50.0, "X"),
            ("a", "2024-01-03", -4.0, "X"),
        ],
        columns=columns,
    )
    clean, report = clean_transactions(frame)
    assert clean["amount"].tolist() == [6.0, 20.0, 50.0]
    assert report.rows_dropped["return_netted"] == 1
    # Without product codes the most recent purchase of the customer is reduced instead.
    clean, _ = clean_transactions(frame.drop(columns="product_code"))
    assert clean["amount"].tolist() == [10.0, 16.0, 50.0]


def test_netting_ties_at_the_same_time():
    # Purchases before returns at equal times; the larger purchase is netted first.
    frame = log([("a", "2024-01-01", -3.0), ("a", "2024-01-01", 4.0), ("a", "2024-01-01", 9.0)])
    clean, report = clean_transactions(frame)
    assert sorted(clean["amount"]) == [4.0, 6.0]
    assert report.rows_dropped["return_netted"] == 1


def test_netting_scales_quantity_and_handles_cancellations():
    columns = ("customer_id", "timestamp", "amount", "order_id", "quantity")
    frame = log(
        [
            ("a", "2024-01-01", 10.0, "1", 4),
            ("a", "2024-01-02", -5.0, "C2", -2),
            ("a", "2024-01-03", 3.0, "C3", 1),  # a cancellation that is not negative
            ("a", "2024-01-04", 6.0, "4", 3),
        ],
        columns=columns,
    )
    clean, report = clean_transactions(frame)
    assert clean["amount"].tolist() == [5.0, 6.0]
    assert clean["quantity"].tolist() == [2.0, 3.0]
    assert clean["quantity"].dtype == np.float64
    assert report.rows_dropped["cancellation_not_negative"] == 1
    assert report.amount_dropped["cancellation_not_negative"] == 3.0
    assert_reconciles(report)


def test_netting_rounding_does_not_leave_crumbs():
    # 0.1 + 0.2 - 0.3 is not 0 in floating point; the purchases must still net to exactly 0.
    frame = log(
        [
            ("a", "2024-01-01", 0.1),
            ("a", "2024-01-02", 0.2),
            ("a", "2024-01-03", -0.3),
            ("a", "2024-01-04", 2.55 * 3),
            ("a", "2024-01-05", 2.55 * 3),
            ("a", "2024-01-06", -2.55 * 6),
            ("a", "2024-01-07", 1.0),
        ]
    )
    clean, report = clean_transactions(frame)
    assert clean["amount"].tolist() == [1.0]
    assert report.rows_dropped["purchase_netted_to_zero"] == 4
    assert report.rows_dropped["return_unmatched"] == 0
    assert_reconciles(report)


def test_netting_leaves_untouched_purchases_bit_for_bit():
    amounts = [0.1, 2.55 * 6, 1e-3, 123456.789]
    frame = log(
        [("a", f"2024-01-0{i + 1}", a, str(i)) for i, a in enumerate(amounts)]
        + [("a", "2024-01-09", -50.0, "C9")],
        columns=ORDERS,
    )
    clean, _ = clean_transactions(frame)
    assert clean["amount"].tolist() == [0.1, 2.55 * 6, 1e-3, 123456.789 - 50.0]


# --- strict mode and argument errors ------------------------------------------------------------


def test_strict_missing_customer_id():
    frame = log([("a", "2024-01-01", 1.0), (None, "2024-01-01", 1.0), ("", "2024-01-02", 2.0)])
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'customer_id' has 2 missing customer ids (rows 1 (nan), 2 ('')); fill them "
            "in or drop those rows, or pass strict=False to drop and count them"
        ),
    ):
        clean_transactions(frame, strict=True)


def test_strict_invalid_timestamp_lists_first_rows():
    frame = log([("a", f"bad{i}", 1.0) for i in range(7)])
    frame.index = [f"r{i}" for i in range(7)]
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'timestamp' has 7 missing or unreadable timestamps (rows r0 ('bad0'), "
            "r1 ('bad1'), r2 ('bad2'), r3 ('bad3'), r4 ('bad4'), ...); fix them (pass "
            "timestamp_format="
        ),
    ):
        clean_transactions(frame, strict=True)


def test_strict_invalid_amount():
    frame = log([("a", "2024-01-01", "12,50"), ("a", "2024-01-01", 1.0)])
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'amount' has 1 missing or non-numeric amounts (rows 0 ('12,50')); fix them "
            "(plain numbers only"
        ),
    ):
        clean_transactions(frame, strict=True)


def test_strict_after_observation_end():
    frame = log([("a", "2024-01-01", 1.0), ("a", "2024-03-01", 1.0)])
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'timestamp' has 1 timestamps after observation_end (2024-02-01 00:00:00) "
            "(rows 1 ('2024-03-01')); move observation_end later"
        ),
    ):
        clean_transactions(frame, strict=True, observation_end="2024-02-01")


def test_strict_passes_clean_data_and_policies_never_raise():
    frame = log(
        [
            ("a", "2024-01-01", 1.0),
            ("a", "2024-01-01", 1.0),
            ("a", "2024-01-02", 0.0),
            ("a", "2024-01-03", -5.0),
        ]
    )
    _, report = clean_transactions(frame, strict=True)
    assert report.rows_dropped["duplicate"] == 1
    assert report.rows_dropped["zero_amount"] == 1


def test_missing_column_lists_columns_present():
    frame = pd.DataFrame({"customer_id": ["a"], "date": ["2024-01-01"], "amount": [1.0]})
    with pytest.raises(
        DataError,
        match=re.escape(
            "transactions is missing required column(s) 'timestamp'; columns present: "
            "'customer_id', 'date', 'amount'. clean_transactions expects"
        ),
    ):
        clean_transactions(frame)


def test_exclude_codes_needs_product_code_column():
    frame = log([("a", "2024-01-01", 1.0)])
    with pytest.raises(
        DataError,
        match=r"missing required column\(s\) 'product_code'.*"
        r"exclude_codes needs the product codes",
    ):
        clean_transactions(frame, exclude_codes=["POST"])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("returns", "subtract", "returns must be 'net', 'drop' or 'keep'; got 'subtract'"),
        ("zero_amounts", "remove", "zero_amounts must be 'drop' or 'keep'; got 'remove'"),
        ("duplicates", True, "duplicates must be 'drop' or 'keep'; got True"),
        ("cancellation_prefix", "", "cancellation_prefix must be a non-empty string such as 'C'"),
        (
            "exclude_codes",
            "POST",
            "exclude_codes must be a collection of codes such as ['POST', "
            "'DOT'], not the single string 'POST'",
        ),
        (
            "exclude_codes",
            5,
            "exclude_codes must be a collection of codes such as ['POST', 'DOT']; got int",
        ),
        ("observation_end", "someday", "observation_end 'someday' is not a date"),
    ],
)
def test_bad_options(option, value, message):
    frame = log(
        [("a", "2024-01-01", 1.0, "P")],
        columns=("customer_id", "timestamp", "amount", "product_code"),
    )
    with pytest.raises(DataError, match=re.escape(message)):
        clean_transactions(frame, **{option: value})


def test_numeric_timestamps_are_refused():
    frame = pd.DataFrame({"customer_id": ["a"], "timestamp": [1_700_000_000], "amount": [1.0]})
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'timestamp' holds numbers (int64), not dates; convert them with "
            "pd.to_datetime(values, unit='s')"
        ),
    ):
        clean_transactions(frame)


def test_not_a_frame_and_duplicated_columns():
    with pytest.raises(DataError, match="transactions must be a pandas DataFrame, got list"):
        clean_transactions([1, 2])
    frame = pd.DataFrame(
        [["a", "2024-01-01", 1.0, 2.0]], columns=["customer_id", "timestamp", "amount", "amount"]
    )
    with pytest.raises(DataError, match=r"column\(s\) 'amount' appear more than once"):
        clean_transactions(frame)


# --- the report ---------------------------------------------------------------------------------


@pytest.fixture
def netted_report() -> CleaningReport:
    frame = log(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-02", -4.0),
            (None, "2024-01-01", 2.0),
            ("b", "2024-01-01", -1.0),
        ]
    )
    return clean_transactions(frame)[1]


def test_report_to_frame(netted_report):
    table = netted_report.to_frame()
    assert list(table.columns) == [
        "Description",
        "Rows",
        "Share of rows",
        "Amount",
        "Amount netted",
    ]
    assert list(table.index) == ["input", *netted_report.reasons, "kept"]
    assert table.loc["input", "Rows"] == 4
    assert table.loc["kept", "Rows"] == 1
    assert table.loc["kept", "Amount"] == 6.0
    assert table.loc["missing_customer_id", "Description"] == "Customer id missing"
    assert table.loc["return_netted", "Amount netted"] == -4.0
    assert table.loc["return_unmatched", "Share of rows"] == 0.25
    reasons = table.drop(index=["input", "kept"])
    assert reasons["Rows"].sum() + table.loc["kept", "Rows"] == table.loc["input", "Rows"]
    assert math.isclose(
        reasons["Amount"].sum() + table.loc["kept", "Amount"], table.loc["input", "Amount"]
    )
    assert (
        "Amount netted"
        not in clean_transactions(log([("a", "2024-01-01", 1.0)]), returns="drop")[1]
        .to_frame()
        .columns
    )


def test_report_repr_html_and_dict(netted_report):
    text = repr(netted_report)
    assert text.startswith("CleaningReport: 4 rows in, 1 kept (25.0%); amount 7.00 in, 6.00 kept")
    assert re.search(r"missing_customer_id\s+1\s+2\.00\s+Customer id missing", text)
    assert "returns netted into earlier purchases (stayed in the log): -4.00" in text
    assert text.endswith("reconciles: yes")
    html = netted_report._repr_html_()
    assert "<table" in html and "Return with no earlier purchase to net against" in html
    assert "1 of 4 rows kept" in html
    data = netted_report.to_dict()
    assert data["rows_dropped"]["return_unmatched"] == 1
    assert data["reconciles"] is True


def test_report_is_frozen_and_labels_every_reason(netted_report):
    with pytest.raises(dataclasses.FrozenInstanceError):
        netted_report.rows_kept = 0
    with pytest.raises(TypeError):
        netted_report.rows_dropped["duplicate"] = 3
    for key in netted_report.reasons:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", key)
        assert CleaningReport.LABELS[key]
    assert netted_report.reasons[-4:] == tuple(NETTING)


def test_report_check_catches_a_report_that_does_not_add_up():
    report = CleaningReport(
        rows_in=3,
        rows_kept=2,
        amount_in=10.0,
        amount_kept=9.0,
        rows_dropped={"duplicate": 1},
        amount_dropped={"duplicate": 0.5},
    )
    assert not report.reconciles
    assert report.discrepancy == (0, 0.5)
    with pytest.raises(
        RuntimeError,
        match=r"\+0 rows and \+0.500000 in amount are "
        "unaccounted for",
    ):
        report.check()
    with pytest.raises(ValueError, match="unknown reason"):
        CleaningReport(
            rows_in=1,
            rows_kept=1,
            amount_in=0.0,
            amount_kept=0.0,
            rows_dropped={"lost": 0},
            amount_dropped={"lost": 0.0},
        )


def test_empty_input():
    frame = pd.DataFrame({"customer_id": [], "timestamp": [], "amount": []}, dtype=object)
    clean, report = clean_transactions(frame)
    assert clean.empty
    assert list(clean.columns) == ["customer_id", "timestamp", "amount"]
    assert clean["timestamp"].dtype == "datetime64[ns]"
    assert (report.rows_in, report.rows_kept, report.amount_in) == (0, 0, 0.0)
    assert_reconciles(report)


def test_public_api():
    for name in [
        "read_transactions",
        "clean_transactions",
        "CleaningReport",
        "ONLINE_RETAIL_NON_PRODUCT_CODES",
    ]:
        assert name in custval.__all__
        assert getattr(custval, name) is getattr(custval.transactions, name)


# --- read_transactions ---------------------------------------------------------------------------


RAW = pd.DataFrame(
    {
        "InvoiceNo": ["536365", "536365", "536366", "C536367", "536368"],
        "StockCode": ["85123A", "POST", "71053", "85123A", "71053"],
        "Quantity": ["6", "1", "2", "-2", "x"],
        "InvoiceDate": [
            "2010-12-01 08:26:00",
            "2010-12-01 08:26:00",
            "2010-12-01 09:00:00",
            "2010-12-02 10:00:00",
            "2010-12-03 10:00:00",
        ],
        "UnitPrice": ["2.55", "18", "3.39", "2.55", "1.00"],
        "CustomerID": ["17850.0", "17850.0", "", "17850.0", "13047.0"],
        "Country": ["United Kingdom"] * 5,
    }
)
RETAIL_COLUMNS = {
    "customer_id": "CustomerID",
    "timestamp": "InvoiceDate",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "order_id": "InvoiceNo",
    "product_code": "StockCode",
}


def check_raw_result(clean, report):
    assert list(clean.columns) == [
        "customer_id",
        "timestamp",
        "amount",
        "order_id",
        "quantity",
        "product_code",
    ]
    assert clean["customer_id"].tolist() == ["17850"]
    assert clean["amount"].tolist() == [pytest.approx(2.55 * 4)]
    assert clean["quantity"].tolist() == [4.0]
    assert report.rows_dropped["missing_customer_id"] == 1
    assert report.rows_dropped["invalid_amount"] == 1  # quantity 'x'
    assert report.rows_dropped["excluded_code"] == 1
    assert report.rows_dropped["return_netted"] == 1
    assert report.amount_in == pytest.approx(2.55 * 4 + 18 + 3.39 * 2)
    assert_reconciles(report)


def test_read_frame_computes_amount_from_quantity_and_price():
    before = RAW.copy(deep=True)
    clean, report = read_transactions(RAW, **RETAIL_COLUMNS, exclude_codes=["POST"])
    check_raw_result(clean, report)
    pd.testing.assert_frame_equal(RAW, before)


@pytest.mark.parametrize("name", ["retail.csv", "retail.csv.gz", "retail.parquet"])
def test_read_files(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".parquet"):
        RAW.to_parquet(path)
    else:
        RAW.to_csv(path, index=False)
    clean, report = read_transactions(path, **RETAIL_COLUMNS, exclude_codes=["POST"])
    check_raw_result(clean, report)


def test_read_csv_keeps_text_ids_and_counts_bad_values(tmp_path):
    path = tmp_path / "log.tsv"
    path.write_text("who\twhen\tvalue\n007\t2024-01-01\t1.5\n007\tsoon\t2\n008\t2024-01-02\tN/A\n")
    clean, report = read_transactions(path, customer_id="who", timestamp="when", amount="value")
    assert clean["customer_id"].tolist() == ["007"]
    assert report.rows_dropped["invalid_timestamp"] == 1
    assert report.rows_dropped["invalid_amount"] == 1


def test_read_with_amount_column_and_quantity():
    frame = pd.DataFrame(
        {
            "id": ["a", "a"],
            "t": ["2024-01-01", "2024-01-02"],
            "revenue": [10.0, 4.0],
            "n": ["2", "1"],
        }
    )
    clean, _ = read_transactions(
        frame, customer_id="id", timestamp="t", amount="revenue", quantity="n", returns="keep"
    )
    assert clean["amount"].tolist() == [10.0, 4.0]
    assert clean["quantity"].tolist() == [2.0, 1.0]


def test_read_strict_names_the_source_column():
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'Quantity' has 1 missing or non-numeric values (rows 4 ('x')); fix or drop "
            "those rows, or pass strict=False"
        ),
    ):
        read_transactions(RAW, **RETAIL_COLUMNS, strict=True)
    fixed = RAW.assign(Quantity=["6", "1", "2", "-2", "1"])
    with pytest.raises(
        DataError, match=re.escape("column 'CustomerID' has 1 missing customer ids (rows 2 (''))")
    ):
        read_transactions(fixed, **RETAIL_COLUMNS, strict=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"amount": "Revenue", "quantity": "Quantity", "unit_price": "UnitPrice"},
            "both amount='Revenue' and unit_price='UnitPrice' were given, so it is ambiguous",
        ),
        (
            {},
            "no way to get the amount: pass amount= with the column of line revenue, or both "
            "quantity= and unit_price= to compute it as quantity * unit_price (given: neither; "
            "missing: quantity, unit_price)",
        ),
        ({"unit_price": "UnitPrice"}, "(given: unit_price='UnitPrice'; missing: quantity)"),
        (
            {"amount": "Quantity", "quantity": "Quantity"},
            "column 'Quantity' is given for both amount= and quantity=",
        ),
        (
            {"amount": "Revenue"},
            "transactions is missing required column(s) 'Revenue'; columns "
            "present: 'InvoiceNo', 'StockCode', 'Quantity', 'InvoiceDate', "
            "'UnitPrice', 'CustomerID', 'Country'. pass the names of your "
            "columns",
        ),
    ],
)
def test_read_refuses_bad_column_specs(kwargs, message):
    with pytest.raises(DataError, match=re.escape(message)):
        read_transactions(RAW, customer_id="CustomerID", timestamp="InvoiceDate", **kwargs)


def test_read_file_errors(tmp_path):
    path = tmp_path / "log.csv"
    RAW.to_csv(path, index=False)
    with pytest.raises(
        DataError,
        match=re.escape(
            "file 'log.csv' is missing required column(s) 'Customer'; columns present: "
            "'InvoiceNo', 'StockCode'"
        ),
    ):
        read_transactions(path, customer_id="Customer", timestamp="InvoiceDate", amount="Quantity")
    with pytest.raises(DataError, match=re.escape("read_options may not set usecols")):
        read_transactions(
            path,
            customer_id="CustomerID",
            timestamp="InvoiceDate",
            amount="Quantity",
            read_options={"usecols": ["x"]},
        )
    with pytest.raises(
        DataError,
        match=re.escape("cannot tell the format of 'log.xlsx' from its name; use a CSV file"),
    ):
        read_transactions(tmp_path / "log.xlsx", customer_id="c", timestamp="t", amount="a")
    with pytest.raises(
        DataError,
        match=re.escape(
            "path_or_frame must be a path to a CSV or Parquet file or a pandas DataFrame, got list"
        ),
    ):
        read_transactions([], customer_id="c", timestamp="t", amount="a")


# --- properties ---------------------------------------------------------------------------------

IDS = ["a", "b", " c ", "17850", "17850.0", 17850.0, 7, None, "", math.nan]
TIMES = [
    "2024-01-01",
    "2024-01-01",
    "2024-01-02 12:00",
    "2024-01-03",
    "2024-01-05",
    "2024-02-01",
    "not a date",
    None,
    "2024-02-30",
]
CENTS = st.integers(-3000, 5000).map(lambda c: c / 100)
AMOUNTS = st.one_of(CENTS, CENTS, CENTS, st.sampled_from([0.0, "12.5", "abc", None, math.inf]))
ORDER_IDS = st.sampled_from(["1", "2", "C3", "C4", "5", None])
CODES = st.sampled_from(["P1", "P2", "P3", "POST", None])


@st.composite
def dirty_logs(draw) -> pd.DataFrame:
    optional = draw(st.sets(st.sampled_from(["order_id", "product_code", "quantity"])))
    row = {
        "customer_id": st.sampled_from(IDS),
        "timestamp": st.sampled_from(TIMES),
        "amount": AMOUNTS,
        "order_id": ORDER_IDS,
        "product_code": CODES,
        "quantity": st.sampled_from([1, 2, 3.0, None, "x"]),
    }
    columns = ["customer_id", "timestamp", "amount", *sorted(optional)]
    rows = draw(st.lists(st.fixed_dictionaries({c: row[c] for c in columns}), max_size=40))
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    # Duplicate some rows on purpose.
    copies = draw(st.lists(st.integers(0, max(len(frame) - 1, 0)), max_size=5))
    if len(frame):
        frame = pd.concat([frame, frame.iloc[copies]], ignore_index=True)
    return frame


POLICIES = st.fixed_dictionaries(
    {
        "returns": st.sampled_from(["net", "drop", "keep"]),
        "zero_amounts": st.sampled_from(["drop", "keep"]),
        "duplicates": st.sampled_from(["drop", "keep"]),
        "cancellation_prefix": st.sampled_from(["C", None]),
        "observation_end": st.sampled_from([None, "2024-01-03"]),
    }
)
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def policies_for(frame, policies, exclude):
    if exclude and "product_code" in frame.columns:
        return {**policies, "exclude_codes": ["POST"]}
    return policies


@PROPERTY
@given(frame=dirty_logs(), policies=POLICIES, exclude=st.booleans())
def test_property_reconciles_and_never_mutates(frame, policies, exclude):
    policies = policies_for(frame, policies, exclude)
    before = frame.copy(deep=True)
    clean, report = clean_transactions(frame, **policies)
    pd.testing.assert_frame_equal(frame, before)
    assert_reconciles(report)
    assert report.rows_kept == len(clean)
    assert math.isclose(report.amount_kept, math.fsum(clean["amount"]), abs_tol=1e-9)
    valid = pd.to_numeric(frame["amount"], errors="coerce")
    assert math.isclose(report.amount_in, math.fsum(valid[np.isfinite(valid)]), abs_tol=1e-9)
    # The clean log is in the vocabulary, sorted, with a fresh index and no bad values.
    assert clean["timestamp"].dtype == "datetime64[ns]"
    assert clean["amount"].dtype == np.float64
    pd.testing.assert_index_equal(clean.index, pd.RangeIndex(len(clean)))
    keys = list(zip(clean["customer_id"], clean["timestamp"], strict=True))
    assert keys == sorted(keys)
    assert clean["customer_id"].notna().all() and (clean["customer_id"] != "").all()
    assert not clean["customer_id"].str.endswith(".0").any()
    assert clean["timestamp"].notna().all() and np.isfinite(clean["amount"]).all()
    if policies["returns"] != "keep":
        assert (clean["amount"] >= 0).all()
        if policies["cancellation_prefix"] and "order_id" in clean.columns:
            assert not clean["order_id"].str.startswith("C").any()
    if policies["zero_amounts"] == "drop" and policies["returns"] != "net":
        assert (clean["amount"] != 0).all()
    if policies["duplicates"] == "drop":
        assert not clean.duplicated().any()
    if policies["observation_end"]:
        assert (clean["timestamp"] <= pd.Timestamp(policies["observation_end"])).all()
    if policies["returns"] == "net":
        netted = report.rows_dropped["return_netted"]
        assert (report.amount_netted < 0) == (netted > 0)


@PROPERTY
@given(frame=dirty_logs(), policies=POLICIES, exclude=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_property_row_order_does_not_matter(frame, policies, exclude, seed):
    policies = policies_for(frame, policies, exclude)
    shuffled = frame.sample(frac=1.0, random_state=np.random.default_rng(seed))
    clean_a, report_a = clean_transactions(frame, **policies)
    clean_b, report_b = clean_transactions(shuffled, **policies)
    assert report_a == report_b
    columns = list(clean_a.columns)
    pd.testing.assert_frame_equal(
        clean_a.sort_values(columns, ignore_index=True, na_position="first"),
        clean_b.sort_values(columns, ignore_index=True, na_position="first"),
    )


@st.composite
def valid_logs(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 40))
    customers = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    products = draw(st.lists(st.sampled_from(["X", "Y"]), min_size=n, max_size=n))
    days = draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    cents = draw(st.lists(st.integers(-4000, 4000).filter(bool), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "customer_id": customers,
            "product_code": products,
            "timestamp": [pd.Timestamp(2024, 1, d) for d in days],
            "amount": [c / 100 for c in cents],
            "order_id": [f"o{i}" for i in range(n)],
            "cents": cents,
        }
    )


@settings(max_examples=120, deadline=None)
@given(frame=valid_logs(), by_product=st.booleans())
def test_property_netting_agrees_with_row_by_row_stack(frame, by_product):
    """The vectorized netting equals an explicit stack walked row by row in exact cents."""
    if not by_product:
        frame = frame.drop(columns="product_code")
    group = (
        (frame["customer_id"] + "|" + frame["product_code"])
        if by_product
        else (frame["customer_id"])
    )
    events = list(zip(frame["order_id"], group, frame["timestamp"], frame["cents"], strict=True))
    left, unmatched = reference_lifo(events)

    clean, report = clean_transactions(frame, duplicates="keep")
    assert_reconciles(report)
    got = dict(zip(clean["order_id"], clean["amount"], strict=True))
    expected = {k: v / 100 for k, v in left.items() if v > 0}
    assert got.keys() == expected.keys()
    cents = dict(zip(frame["order_id"], frame["cents"], strict=True))
    amounts = dict(zip(frame["order_id"], frame["amount"], strict=True))
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9)
        if left[key] == cents[key]:  # untouched purchases keep their amount bit for bit
            assert got[key] == amounts[key]
    returns = list(unmatched)
    assert report.rows_dropped["return_unmatched"] == sum(
        unmatched[k] == -cents[k] for k in returns
    )
    assert report.rows_dropped["return_netted"] == sum(unmatched[k] < -cents[k] for k in returns)
    assert report.rows_dropped["purchase_netted_to_zero"] == sum(v == 0 for v in left.values())
    netted = sum(-cents[k] - unmatched[k] for k in returns)
    assert report.amount_netted == pytest.approx(-netted / 100, abs=1e-9)
    excess = sum(unmatched[k] for k in returns if unmatched[k] < -cents[k])
    assert report.amount_dropped["return_netted"] == pytest.approx(-excess / 100, abs=1e-9)


# --- real data: UCI Online Retail ---------------------------------------------------------------


@pytest.fixture(scope="module")
def online_retail(online_retail_path):
    clean, report = read_transactions(
        online_retail_path, **RETAIL_COLUMNS, exclude_codes=ONLINE_RETAIL_NON_PRODUCT_CODES
    )
    raw = pd.read_csv(online_retail_path, dtype=str)
    return raw, clean, report


@pytest.mark.slow
def test_online_retail_cleaning_numbers(online_retail):
    raw, clean, report = online_retail
    # Published facts of the file.
    assert len(raw) == 541_909
    assert raw["CustomerID"].isna().sum() == 135_080
    assert raw["InvoiceNo"].str.startswith("C").sum() == 9_288
    # Pinned numbers of the cleaning (checked by independent pandas arithmetic below).
    assert (report.rows_in, report.rows_kept) == (541_909, 388_421)
    assert dict(report.rows_dropped) == {
        "missing_customer_id": 135_080,
        "invalid_timestamp": 0,
        "invalid_amount": 0,
        "after_observation_end": 0,
        "excluded_code": 1_920,
        "duplicate": 5_222,
        "zero_amount": 33,
        "cancellation_not_negative": 0,
        "return_unmatched": 1_054,
        "return_netted": 7_452,
        "purchase_netted_to_zero": 2_727,
    }
    assert {k: round(v, 2) for k, v in report.amount_dropped.items()} == {
        "missing_customer_id": 1_447_682.12,
        "invalid_timestamp": 0.0,
        "invalid_amount": 0.0,
        "after_observation_end": 0.0,
        "excluded_code": 13_402.49,
        "duplicate": 21_738.24,
        "zero_amount": 0.0,
        "cancellation_not_negative": 0.0,
        "return_unmatched": -22_737.08,
        "return_netted": -1_163.49,
        "purchase_netted_to_zero": 0.0,
    }
    assert round(report.amount_in, 2) == 9_747_747.93
    assert round(report.amount_kept, 2) == 8_288_825.65
    assert round(report.amount_netted, 2) == -447_850.14
    assert clean["customer_id"].nunique() == 4_324
    assert_reconciles(report)
    # Revenue reconciles to the cent.
    cents_in = round(report.amount_in * 100)
    cents_out = round(math.fsum([report.amount_kept, *report.amount_dropped.values()]) * 100)
    assert cents_in == cents_out
    assert clean["customer_id"].str.fullmatch(r"\d{5}").all()


@pytest.mark.slow
def test_online_retail_numbers_by_independent_arithmetic(online_retail):
    raw, clean, report = online_retail
    amount = pd.to_numeric(raw["Quantity"]) * pd.to_numeric(raw["UnitPrice"])
    assert report.amount_in == pytest.approx(math.fsum(amount), abs=1e-6)

    rest = raw["CustomerID"].notna()
    assert report.amount_dropped["missing_customer_id"] == pytest.approx(
        math.fsum(amount[~rest]), abs=1e-6
    )
    excluded = rest & raw["StockCode"].isin(list(ONLINE_RETAIL_NON_PRODUCT_CODES))
    assert report.rows_dropped["excluded_code"] == excluded.sum()
    rest &= ~excluded
    keys = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
    duplicate = rest & raw[rest][keys].duplicated().reindex(raw.index, fill_value=False)
    assert report.rows_dropped["duplicate"] == duplicate.sum()
    rest &= ~duplicate
    zero = rest & (amount == 0)
    assert report.rows_dropped["zero_amount"] == zero.sum()
    rest &= ~zero
    is_return = raw["InvoiceNo"].str.startswith("C") | (amount < 0)
    assert (
        report.rows_dropped["return_netted"] + report.rows_dropped["return_unmatched"]
        == (rest & is_return).sum()
    )
    assert (
        report.rows_kept + report.rows_dropped["purchase_netted_to_zero"]
        == (rest & ~is_return).sum()
    )

    # Netting, row by row with an explicit stack, in exact tenths of a penny.
    live = raw[rest]
    milli = (
        pd.to_numeric(live["Quantity"]) * (pd.to_numeric(live["UnitPrice"]) * 1000).round()
    ).astype(int)
    group = live["CustomerID"] + "|" + live["StockCode"]
    has_return = group.isin(group[is_return[rest]])
    events = list(
        zip(
            live.index[has_return],
            group[has_return],
            pd.to_datetime(live["InvoiceDate"][has_return]),
            milli[has_return],
            strict=True,
        )
    )
    left, unmatched = reference_lifo(events)
    returns = list(unmatched)
    milli = milli.to_dict()
    assert report.rows_dropped["return_unmatched"] == sum(
        unmatched[k] == -milli[k] for k in returns
    )
    assert report.rows_dropped["purchase_netted_to_zero"] == sum(v == 0 for v in left.values())
    netted = sum(-milli[k] - unmatched[k] for k in returns)
    assert report.amount_netted == pytest.approx(-netted / 1000, abs=1e-6)
    kept_milli = sum(milli[k] for k in live.index[~is_return[rest]]) - netted
    assert report.amount_kept == pytest.approx(kept_milli / 1000, abs=1e-6)
    assert math.fsum(clean["amount"]) == pytest.approx(report.amount_kept, abs=1e-6)
