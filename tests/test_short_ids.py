"""Short string ids packed into integers (custval._short_ids) give exactly pd.factorize's sorted
codes and uniques, and the summary of a log with such ids is the one pandas' hashing gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custval import _log, rfm_summary
from custval._short_ids import short_string_codes

# bytes that sort differently by code point, UTF-16 or locale: NUL, ASCII, Latin-1, a 3-byte
# character and a 4-byte one
ALPHABET = st.sampled_from(["\x00", "a", "b", "Z", "0", " ", "é", "ÿ", "\uffff", "😀"])


def assert_like_factorize(series: pd.Series) -> None:
    got = short_string_codes(series)
    assert got is not None
    codes, uniques = got
    expected_codes, expected_uniques = pd.factorize(series, sort=True)
    np.testing.assert_array_equal(codes, expected_codes)
    pd.testing.assert_index_equal(uniques, pd.Index(expected_uniques), exact=True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(ALPHABET, min_size=0, max_size=7), min_size=1, max_size=40),
    st.sampled_from(["str", "string[pyarrow]", "object"]),
    st.integers(1, 4),
)
def test_codes_equal_sorted_factorize(ids, dtype, parts):
    """Any ids of at most 7 bytes: in several Arrow chunks of pandas' two Arrow string dtypes,
    or as Python strings in an ``object`` column (pandas 2's default)."""
    ids = [i for i in ids if len(i.encode()) <= 7] or ["a"]
    chunks = np.array_split(np.array(ids, dtype=object), parts)
    pieces = [pd.Series(chunk, dtype=dtype) for chunk in chunks]
    series = pd.concat(pieces, ignore_index=True)
    assert_like_factorize(series)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 8), st.lists(st.integers(0, 2**40), min_size=1, max_size=30))
def test_ids_of_one_length_up_to_eight_bytes(width, numbers):
    ids = [format(n, "x").rjust(width, "0")[-width:] if width else "" for n in numbers]
    assert_like_factorize(pd.Series(ids, dtype="str"))


def test_a_sliced_series_and_the_doc_example():
    series = pd.Series(["zz", "b", "a", "b", "é", "ab"], dtype="str").iloc[1:5]
    assert_like_factorize(series.reset_index(drop=True))


@pytest.mark.parametrize(
    "series",
    [
        pd.Series(["C123456789"] * 2 + ["C1"], dtype="str"),  # 10 bytes
        pd.Series(["abcdefgh", "abc"], dtype="str"),  # 8 bytes, lengths differ
        pd.Series(["a", None], dtype="str"),  # missing: pandas names the rows
        pd.Series(["a", b"b"], dtype=object),  # bytes and str: pandas keeps them apart
        pd.Series([b"a", b"b"], dtype=object),
        pd.Series(["a", 1], dtype=object),
        pd.Series(["a", None], dtype=object),
        pd.Series(["ab"] * 4097 + ["long-id-0001"] + ["ab"] * 4094, dtype=object),  # unsampled
        pd.Series(["a", "b"], dtype="string[python]"),
        pd.Series(["a"], dtype=pd.ArrowDtype(pa.large_string())),
        pd.Series([], dtype="str"),
    ],
    ids=[
        "long",
        "eight-varying",
        "missing",
        "bytes-and-str",
        "bytes",
        "mixed",
        "object-missing",
        "object-long-between-samples",
        "python-strings",
        "arrow-dtype",
        "empty",
    ],
)
def test_other_ids_are_left_to_factorize(series):
    assert short_string_codes(series) is None


@pytest.mark.parametrize("dtype", ["str", object])
def test_summary_equals_the_hashed_path(dtype, monkeypatch):
    """The same log summarized with the ids packed and with pd.factorize hashing them."""
    rng = np.random.default_rng(3)
    ids = np.array(["C00042", "C00007", "Cé0001", "C9", "B12345"], dtype=object)
    log = pd.DataFrame(
        {
            "customer_id": pd.Series(rng.choice(ids, 400), dtype=dtype),
            "timestamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 365 * 24, 400), unit="h"),
            "amount": rng.gamma(2.0, 20.0, 400).round(2),
        }
    )
    assert short_string_codes(log["customer_id"]) is not None
    packed = rfm_summary(log)
    monkeypatch.setattr(_log, "short_string_codes", lambda series: None)
    hashed = rfm_summary(log)
    pd.testing.assert_frame_equal(packed, hashed, check_exact=True)
    assert packed.index.dtype == log["customer_id"].dtype
    assert packed.index.tolist() == sorted(ids.tolist())
