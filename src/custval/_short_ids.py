"""Sorted customer codes of short string ids, without hashing strings.

Hashing ten million Arrow strings costs pandas (``pd.factorize``) about two seconds, most of
the string-id summary. Most customer ids are short codes ("C1234567", "DE-0042"), and a string
of at most 8 bytes *is* a 64-bit integer: its UTF-8 bytes read big-endian. So, where every id
has the same length of at most 8 bytes, or every id is at most 7 bytes (the length then goes in
the lowest byte), the ids are packed into one ``uint64`` per row and the integers are
dictionary-encoded (Arrow, C++) instead of the strings. DuckDB's aggregates use the same trick
("compressed materialization" of strings of up to 16 bytes).

The packing is exact (two ids get the same integer only when their bytes are equal) and keeps
the order: integers compare as the zero-padded bytes and then the length, which is the order of
the bytes, which for UTF-8 is code-point order, the order Python and pandas sort strings in.
Longer ids, missing ids, bytes, mixtures and other dtypes return None and are left to
``pd.factorize``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["short_string_codes"]

#: The longest ids packed: 8 bytes when all ids have one length, else 7 bytes and the length.
_FIXED_BYTES = 8
_VARYING_BYTES = 7
#: about this many evenly spaced values of an ``object`` column are looked at before converting it
_SAMPLE = 1024


def short_string_codes(series: pd.Series) -> tuple[np.ndarray, pd.Index] | None:
    """``(codes, uniques)`` as ``pd.factorize(series, sort=True)`` gives them, or None.

    The fast path takes Arrow-backed strings (pandas' default ``str`` dtype, ``string[pyarrow]``)
    and ``object`` columns of Python strings, without missing values, all of one length of at
    most 8 bytes or all at most 7 bytes.

    Examples
    --------
    >>> import pandas as pd
    >>> codes, uniques = short_string_codes(pd.Series(["b", "a", "b", "ab"], dtype="str"))
    >>> codes.tolist(), uniques.tolist()
    ([2, 0, 2, 1], ['a', 'ab', 'b'])
    """
    chunks = _string_chunks(series)
    if chunks is None or not len(series):
        return None
    offsets = [_offsets(chunk) for chunk in chunks]
    lengths = [np.diff(offset) for offset in offsets]
    shortest = min(int(length.min()) for length in lengths)  # no chunk is empty
    longest = max(int(length.max()) for length in lengths)
    if shortest == longest and longest <= _FIXED_BYTES:
        width, with_length = longest, False
    elif longest <= _VARYING_BYTES:
        width, with_length = _VARYING_BYTES, True
    else:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = np.concatenate(
        [
            _packed(chunk, offset, length, width, with_length)
            for chunk, offset, length in zip(chunks, offsets, lengths, strict=True)
        ]
    )
    del offsets, lengths
    # dictionary-encode the integers (first-seen order), then rank the distinct ones
    encoded = pc.dictionary_encode(pa.array(keys, type=pa.uint64()))
    del keys  # 8 bytes a row: freed before the codes are made
    first_seen = encoded.indices.to_numpy(zero_copy_only=False)
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False)
    del encoded
    index_type = np.int32 if distinct.size < 2**31 else np.int64
    rank = np.empty(distinct.size, dtype=index_type)
    rank[np.argsort(distinct)] = np.arange(distinct.size, dtype=index_type)
    codes = rank[first_seen]
    del first_seen
    row = np.empty(distinct.size, dtype=np.int64)
    row[codes] = np.arange(codes.size)  # any row of each id will do for the uniques
    if pd.api.types.is_object_dtype(series.dtype):
        return codes, pd.Index(series.to_numpy()[row], dtype=object)
    return codes, pd.Index(series.array.take(row))


def _string_chunks(series: pd.Series) -> list | None:
    """The Arrow chunks of an Arrow-backed string column, or of an ``object`` column of Python
    strings (pandas 2's default; converted once), without nulls; else None."""
    import pyarrow as pa

    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        data = series.array.__arrow_array__()
    elif pd.api.types.is_object_dtype(dtype):
        values = series.to_numpy()
        if not _short_strings(values[:: max(values.size // _SAMPLE, 1)]):
            return None  # long ids or not strings: not worth converting every row to Arrow
        try:  # only all-str columns infer as strings (bytes infer as binary, mixtures fail)
            data = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
    else:
        return None
    chunks = data.chunks if isinstance(data, pa.ChunkedArray) else [data]
    for chunk in chunks:
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            return None
        if chunk.null_count:
            return None
    return [chunk for chunk in chunks if len(chunk)]


def _short_strings(sample: np.ndarray) -> bool:
    """Whether every value of a sample of an ``object`` column is a str of at most 8 bytes."""
    return all(isinstance(v, str) and len(v.encode()) <= _FIXED_BYTES for v in sample)


def _offsets(chunk) -> np.ndarray:
    import pyarrow as pa

    dtype = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(chunk.buffers()[1], dtype=dtype)
    return offsets[chunk.offset : chunk.offset + len(chunk) + 1].astype(np.int64)


def _packed(
    chunk, offsets: np.ndarray, lengths: np.ndarray, width: int, with_length: bool
) -> np.ndarray:
    """One uint64 per id: its first ``width`` bytes big-endian, zero-padded, then (for ids of
    several lengths) the length in the lowest byte."""
    key = np.zeros(len(chunk), dtype=np.uint64)
    if width == 0:
        return key
    buffer = chunk.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.empty(0, np.uint8)
    eight = np.uint64(8)
    if not with_length:  # one length: the bytes are contiguous, a (rows, width) block
        block = data[offsets[0] : offsets[0] + len(chunk) * width].reshape(-1, width)
        if width == _FIXED_BYTES:
            return block.view(">u8").ravel().astype(np.uint64)
        for j in range(width):
            key <<= eight
            key |= block[:, j]
        return key
    starts = offsets[:-1]
    last = data.size - 1
    for j in range(width if data.size else 0):  # a chunk of empty ids has no bytes
        byte = data[np.minimum(starts + j, last)].astype(np.uint64)
        byte[lengths <= j] = 0
        key <<= eight
        key |= byte
    key <<= eight
    key |= lengths.astype(np.uint64)
    return key
