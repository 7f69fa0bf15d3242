"""Loaders of public data sets in their published formats: CDNOW, UCI Online Retail and
the donations data of the BG/BB papers."""

from __future__ import annotations

import gzip
import io
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from custval._validation import require_columns
from custval.errors import DataError

# --------------------------------------------------------------------------------------------
# Public data sets
# --------------------------------------------------------------------------------------------

_CDNOW_SOURCES = {
    "master": ("https://www.brucehardie.com/datasets/CDNOW_master.zip", "CDNOW_master.txt"),
    "sample": ("https://www.brucehardie.com/datasets/CDNOW_sample.zip", "CDNOW_sample.txt"),
}
_ONLINE_RETAIL_SOURCE = (
    "https://archive.ics.uci.edu/static/public/352/online+retail.zip",
    "Online Retail.xlsx",
)
_ONLINE_RETAIL_COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


def _bad_values(
    where: str,
    raw: pd.DataFrame,
    column: str,
    mask: np.ndarray,
    problem: str,
    fix: str | None = None,
    *,
    example: bool = True,
) -> DataError:
    """The error for the rows ``mask`` of ``column`` of a published file (``where``) that hold
    ``problem``: their count, the first five rows, the first value and the fix."""
    shown = f", e.g. {raw.loc[mask, column].iloc[0]!r}" if example else ""
    rows = raw.index[mask][:5].tolist()
    text = f"{where}: column {column!r} has {int(mask.sum()):,} {problem} (rows {rows}{shown})"
    return DataError(text if fix is None else f"{text}; {fix}")


def _cache_dir() -> Path:
    """``$CUSTVAL_CACHE`` or ``~/.cache/custval``."""
    return Path(os.environ.get("CUSTVAL_CACHE", Path.home() / ".cache" / "custval"))


def _download(url: str, what: str, how: str) -> Path:
    """Download ``url`` into the cache once; raise ``OSError`` saying what to do offline."""
    target = _cache_dir() / url.rsplit("/", 1)[-1].replace("+", "_")
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with urllib.request.urlopen(url, timeout=60) as response:
            partial.write_bytes(response.read())
        partial.replace(target)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise OSError(
            f"could not download the {what} from {url} ({error}); if you are offline or the "
            f"address has moved, download the file yourself and pass it: {how}"
        ) from error
    return target


def _read_bytes(path: Path, member: str | None) -> bytes:
    """Bytes of ``path``, of ``member`` inside a zip, or decompressed from ``.gz``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; check the path")
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            wanted = [n for n in names if member and n.rsplit("/", 1)[-1] == member]
            if not wanted:
                raise DataError(
                    f"{path} holds {', '.join(names)}, not {member!r}; pass the extracted file"
                )
            return archive.read(wanted[0])
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        data = gzip.decompress(data)
    return data


def load_cdnow(
    path: str | os.PathLike[str] | None = None,
    *,
    which: Literal["master", "sample"] = "master",
) -> pd.DataFrame:
    """Read the CDNOW purchase log (Fader & Hardie) in its published format.

    The master file has one line per customer and day: ``customer_id date number_of_cds
    dollar_value`` (whitespace-separated; the copy shipped with lifetimes adds that header line,
    Hardie's original has none; both are read). The 1/10 sample has no header and the columns
    ``master_id sample_id date cds dollars``. Dates are ``YYYYMMDD``.

    Parameters
    ----------
    path : str or path, optional
        The ``.txt`` file (or Hardie's ``.zip``). If omitted, the zip is downloaded once from
        Hardie's site into ``~/.cache/custval`` (``$CUSTVAL_CACHE``).
    which : {"master", "sample"}, default "master"
        Which of the two files ``path`` is (or which to download).

    Returns
    -------
    DataFrame
        ``customer_id`` (int64), ``timestamp`` (datetime64[ns], the day), ``amount`` (float64,
        dollars), ``quantity`` (int64, CDs), in file order. For the sample, ``customer_id`` is
        the sample id (1..2357, the ``ID`` of Hardie's summaries) and ``master_id`` is kept.

    Raises
    ------
    DataError
        If the file does not have the published layout.
    OSError
        If the download fails (offline): pass ``path`` instead.

    Examples
    --------
    >>> from custval.datasets import load_cdnow
    >>> log = load_cdnow("../shared/data/cdnow/CDNOW_master.txt")  # doctest: +SKIP
    >>> log.shape, log["customer_id"].nunique()  # doctest: +SKIP
    ((69659, 4), 23570)
    """
    if which not in _CDNOW_SOURCES:
        raise DataError(f"which must be 'master' or 'sample', got {which!r}")
    url, member = _CDNOW_SOURCES[which]
    if path is None:
        path = _download(url, f"CDNOW {which} file", f"load_cdnow('.../{member}', which={which!r})")
    path = Path(path)
    text = _read_bytes(path, member).decode("ascii", errors="replace")
    names = (
        ["customer_id", "date", "quantity", "amount"]
        if which == "master"
        else ["master_id", "customer_id", "date", "quantity", "amount"]
    )
    first = text.lstrip().split(None, 1)[0] if text.strip() else ""
    has_header = bool(first) and not first.isdigit()
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            sep=r"\s+",
            header=None,
            skiprows=1 if has_header else 0,
            names=names,
            dtype=str,
        )
    except pd.errors.ParserError as error:
        raise DataError(
            f"{path} is not the CDNOW {which} layout ({len(names)} whitespace-separated columns: "
            f"{' '.join(names)}): {error}; check which= and the file"
        ) from error
    if raw.empty or raw[names[-1]].isna().any():
        bad = raw.index[raw[names[-1]].isna()][:5].tolist() if not raw.empty else []
        raise DataError(
            f"{path} is not the CDNOW {which} layout: expected {len(names)} columns "
            f"({' '.join(names)}), rows {bad} have fewer; check which= and the file"
        )
    out = pd.DataFrame(index=raw.index)
    for column in ("customer_id", "quantity") + (("master_id",) if which == "sample" else ()):
        values = pd.to_numeric(raw[column], errors="coerce")
        if values.isna().any():
            raise _bad_values(
                str(path),
                raw,
                column,
                values.isna().to_numpy(),
                "non-integer values",
                "the CDNOW files hold whole numbers there",
            )
        out[column] = values.astype(np.int64)
    dates = pd.to_datetime(raw["date"], format="%Y%m%d", errors="coerce")
    if dates.isna().any():
        mask = dates.isna().to_numpy()
        raise _bad_values(str(path), raw, "date", mask, "values that are not YYYYMMDD dates")
    amount = pd.to_numeric(raw["amount"], errors="coerce")
    if amount.isna().any():
        raise _bad_values(str(path), raw, "amount", amount.isna().to_numpy(), "non-numeric values")
    result = pd.DataFrame(
        {
            "customer_id": out["customer_id"],
            "timestamp": dates.astype("datetime64[ns]"),
            "amount": amount.astype(np.float64),
            "quantity": out["quantity"],
        }
    )
    if which == "sample":
        result["master_id"] = out["master_id"]
    return result


def load_online_retail(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Read the UCI Online Retail data set (Chen, Sain & Guo 2012) with its published columns.

    Nothing is cleaned: cancellations (``InvoiceNo`` starting with ``"C"``), missing customer
    ids, negative quantities and postage rows are all kept (cleaning is
    ``custval.transactions``' job).

    Parameters
    ----------
    path : str or path, optional
        A ``.csv`` / ``.csv.gz`` with the published columns (ISO or ``M/D/YYYY H:MM`` dates),
        the UCI ``Online Retail.xlsx`` (needs ``openpyxl``) or UCI's ``.zip``. If omitted, the
        zip is downloaded once from the UCI repository into ``~/.cache/custval``.

    Returns
    -------
    DataFrame
        ``InvoiceNo`` (str), ``StockCode`` (str), ``Description`` (str, may be missing),
        ``Quantity`` (int64), ``InvoiceDate`` (datetime64[ns]), ``UnitPrice`` (float64),
        ``CustomerID`` (Int64, missing for 135,080 rows), ``Country`` (str); 541,909 rows.

    Raises
    ------
    DataError
        If columns are missing or values cannot be read.
    OSError
        If the download fails (offline): pass ``path`` instead.

    Examples
    --------
    >>> from custval.datasets import load_online_retail
    >>> retail = load_online_retail("../shared/data/online_retail/online_retail.csv.gz")  # doctest: +SKIP
    >>> len(retail)  # doctest: +SKIP
    541909
    """  # noqa: E501
    url, member = _ONLINE_RETAIL_SOURCE
    if path is None:
        path = _download(url, "UCI Online Retail data set", "load_online_retail('.../file.csv')")
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".xlsx", ".zip"}:
        data = _read_bytes(path, member)
        try:
            raw = pd.read_excel(io.BytesIO(data), dtype={"InvoiceNo": str, "StockCode": str})
        except ImportError as error:
            raise DataError(
                f"reading {path.name} needs the optional package openpyxl: pip install openpyxl, "
                "or convert the sheet to csv and pass that"
            ) from error
    else:
        raw = pd.read_csv(
            io.BytesIO(_read_bytes(path, None)),
            dtype={"InvoiceNo": str, "StockCode": str, "Description": str, "Country": str},
            keep_default_na=False,
            na_values=[""],
        )
    require_columns(
        raw,
        _ONLINE_RETAIL_COLUMNS,
        what=path.name,
        hint="pass the UCI Online Retail file with its published columns",
    )
    raw = raw[_ONLINE_RETAIL_COLUMNS]
    out = {}
    for column in ("InvoiceNo", "StockCode", "Description", "Country"):
        values = raw[column]
        out[column] = values.where(values.isna(), values.astype(str))  # values kept as published
    out["InvoiceNo"] = out["InvoiceNo"].astype(str)
    out["StockCode"] = out["StockCode"].astype(str)
    out["Quantity"] = _integers(raw, "Quantity", path, nullable=False)
    dates = raw["InvoiceDate"]
    if not pd.api.types.is_datetime64_any_dtype(dates):
        parsed = pd.to_datetime(dates, format="%Y-%m-%d %H:%M:%S", errors="coerce")
        if parsed.isna().any():
            parsed = pd.to_datetime(dates, format="%m/%d/%Y %H:%M", errors="coerce")
        if parsed.isna().any():
            raise _bad_values(
                path.name,
                raw,
                "InvoiceDate",
                parsed.isna().to_numpy(),
                "values that are not dates",
                "expected 'YYYY-MM-DD HH:MM:SS' or 'M/D/YYYY H:MM'",
            )
        dates = parsed
    out["InvoiceDate"] = dates.astype("datetime64[ns]")
    price = pd.to_numeric(raw["UnitPrice"], errors="coerce")
    if (price.isna() & raw["UnitPrice"].notna()).any():
        mask = (price.isna() & raw["UnitPrice"].notna()).to_numpy()
        raise _bad_values(
            path.name, raw, "UnitPrice", mask, "non-numeric values", "fix the file", example=False
        )
    out["UnitPrice"] = price.astype(np.float64)
    out["CustomerID"] = _integers(raw, "CustomerID", path, nullable=True)
    return pd.DataFrame({c: out[c] for c in _ONLINE_RETAIL_COLUMNS})


def _integers(raw: pd.DataFrame, column: str, path: Path, *, nullable: bool) -> pd.Series:
    values = pd.to_numeric(raw[column], errors="coerce")
    bad = (values.isna() & raw[column].notna()) | (values.notna() & (values % 1 != 0))
    if not nullable:
        bad |= values.isna()
    if bad.any():
        raise _bad_values(
            path.name,
            raw,
            column,
            bad.to_numpy(),
            "values that are not whole numbers",
            "fix the file",
        )
    if nullable:
        return values.astype("Float64").astype("Int64")
    return values.astype(np.int64)


def load_donations(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the BG/BB donations summary (Fader, Hardie & Shang 2010; Hardie's note 010).

    Parameters
    ----------
    path : str or path
        The csv with columns ``frequency, recency, periods, weights`` (one row per
        recency/frequency pattern, ``weights`` donors); extra columns such as
        ``holdout_transactions_total`` are kept.

    Returns
    -------
    DataFrame
        The columns as int64: 22 patterns and 11,104 donors for the published file.

    Raises
    ------
    DataError
        If a column is missing, not a whole number, or the patterns are impossible
        (recency < frequency, recency > periods, or frequency 0 with recency > 0).

    Examples
    --------
    >>> from custval.datasets import load_donations
    >>> donations = load_donations("../shared/data/donations/donations.csv")  # doctest: +SKIP
    >>> int(donations["weights"].sum())  # doctest: +SKIP
    11104
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; check the path")
    raw = pd.read_csv(path)
    columns = ["frequency", "recency", "periods", "weights"]
    require_columns(
        raw, columns, what=path.name, hint="pass the BG/BB donations summary (lifetimes' csv)"
    )
    out = raw.copy()
    for column in raw.columns:
        if pd.api.types.is_numeric_dtype(raw[column]) or column in columns:
            out[column] = _integers(raw, column, path, nullable=False)
    bad = (
        (out["recency"] < out["frequency"])
        | (out["recency"] > out["periods"])
        | ((out["frequency"] == 0) & (out["recency"] > 0))
        | (out["weights"] < 0)
    )
    if bad.any():
        rows = out.index[bad.to_numpy()][:5].tolist()
        raise DataError(
            f"{path.name}: {int(bad.sum()):,} patterns are impossible (rows {rows}): BG/BB needs "
            "0 <= frequency <= recency <= periods, recency 0 when frequency is 0, and weights "
            ">= 0; check the columns"
        )
    return out
