"""Distinct values and distinct rows of arrays in O(n): the compression every model, the CLV
quadrature and the engines share (a customer base has far fewer distinct (frequency, recency, T)
patterns than customers).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["compress_rows", "factorize", "unique_index", "unique_rows"]

#: whole numbers spanning at most this many times the number of rows are coded by indexing
_DENSE_RANGE = 4


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes ``0..k-1`` of the distinct values of a 1-d array, and the ``k`` distinct values.

    Whole numbers whose range is at most a few times the array's length (day counts, purchase
    counts, combined keys) are coded by direct indexing, several times faster than hashing
    (the distinct values then come out sorted); anything else goes through ``pd.factorize``
    (order of first appearance; NaN is a value like any other).
    """
    v = np.asarray(values)
    n = v.shape[0]
    if n and v.dtype.kind in "fiu":
        low, high = v.min(), v.max()
        if np.isfinite(low) and np.isfinite(high) and high - low <= _DENSE_RANGE * n + 1024:
            # non-negative values in range index directly (one pass less than v - low)
            base = 0 if 0 <= low and high <= _DENSE_RANGE * n + 1024 else low
            offset = v - base if base != 0 else v
            if v.dtype.kind == "f":
                whole = np.array_equal(np.floor(offset), offset)
                shifted = offset.astype(np.int64) if whole else None
            else:
                shifted = offset.astype(np.int64, copy=False)
                whole = True
            if whole:
                present = np.zeros(int(high - base) + 1, dtype=bool)
                present[shifted] = True
                rank = np.cumsum(present, dtype=np.int64) - 1
                distinct = np.flatnonzero(present)
                return rank[shifted], (distinct + base).astype(v.dtype, copy=False)
    codes, uniques = pd.factorize(v, sort=False, use_na_sentinel=False)
    return codes, np.asarray(uniques)


def unique_rows(data: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The distinct rows of ``data`` (in no particular order) and ``inverse`` such that
    ``unique[column][inverse]`` rebuilds each column; O(n). As soon as the columns seen so
    far tell every row apart (e.g. a continuous covariate), the rows are returned as they are."""
    columns = list(data)
    n = len(data[columns[0]])
    key, distinct = factorize(data[columns[0]])
    unique = {columns[0]: distinct}
    for column in columns[1:]:
        if len(key) and len(unique[columns[0]]) == n:
            break
        codes, values = factorize(data[column])
        if len(values) == n:
            break
        key, combined = factorize(key * len(values) + codes)
        previous, current = np.divmod(combined, len(values))
        unique = {name: column_values[previous] for name, column_values in unique.items()}
        unique[column] = values[current]
    else:
        return unique, key
    return {name: np.asarray(data[name]) for name in columns}, np.arange(n)


def compress_rows(
    data: Mapping[str, np.ndarray], weights: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Collapse identical rows of ``data`` into one row each with the summed weight.

    Returns the unique rows (in no particular order), their weights, and ``inverse`` such that
    ``unique[column][inverse]`` rebuilds the input. O(n): direct indexing for whole numbers in a
    compact range, hashing (``pd.factorize``) otherwise.
    """
    unique, inverse = unique_rows(data)
    n_keys = len(next(iter(unique.values())))
    return unique, np.bincount(inverse, weights=weights, minlength=n_keys), inverse


def unique_index(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a 1-d array and the index rebuilding it: ``uniques[inverse] == values``.

    O(n) (see :func:`factorize`); the order of the distinct values is unspecified. Models use
    it to evaluate special functions (``gammaln``, ``digamma``, ...) once per distinct value.
    """
    inverse, uniques = factorize(values)
    return uniques, inverse
