"""The simulated retailer's tables: schemas, byte-exact csv writing, :class:`SimulatedRetailer`
and the loaders of simulated folders and of the committed sample."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from custval._validation import require_columns

# --------------------------------------------------------------------------------------------
# The simulated retailer
# --------------------------------------------------------------------------------------------

_FILES = {
    "transactions": "transactions.csv.gz",
    "customers": "customers.csv.gz",
    "campaign": "campaign.csv.gz",
    "customer_truth": "customer_truth.csv.gz",
}
_TRUTH_FILE = "truth.json"

# column -> (dtype, csv format); formats: "int", "money" (2 decimals), "g" (6 significant digits),
# "str", "bool" (0/1), "datetime" (seconds), "date"
_SCHEMAS: dict[str, dict[str, tuple[str, str]]] = {
    "transactions": {
        "order_id": ("str", "str"),
        "customer_id": ("Int64", "int"),
        "timestamp": ("datetime64[ns]", "datetime"),
        "product_code": ("str", "str"),
        "quantity": ("int64", "int"),
        "unit_price": ("float64", "money"),
        "amount": ("float64", "money"),
    },
    "customers": {
        "customer_id": ("int64", "int"),
        "acquisition_date": ("datetime64[ns]", "date"),
        "channel": ("str", "str"),
        "region": ("str", "str"),
        "acquisition_cost": ("float64", "money"),
        "loyalty_member": ("bool", "bool"),
        "loyalty_join_date": ("datetime64[ns]", "date"),
    },
    "campaign": {
        "customer_id": ("int64", "int"),
        "treatment": ("int64", "int"),
        "contact_date": ("datetime64[ns]", "date"),
        "cost_per_contact": ("float64", "money"),
        "segment": ("str", "str"),
    },
    "customer_truth": {
        "customer_id": ("int64", "int"),
        "purchase_rate": ("float64", "g"),
        "dropout_prob": ("float64", "g"),
        "purchase_rate_member": ("float64", "g"),
        "dropout_prob_member": ("float64", "g"),
        "spend_nu": ("float64", "g"),
        "mean_order_value": ("float64", "g"),
        "n_orders": ("int64", "int"),
        "alive_at_contact": ("bool", "bool"),
        "member_at_contact": ("bool", "bool"),
        "alive_at_end": ("bool", "bool"),
        "dropout_date": ("datetime64[ns]", "date"),
        "expected_orders_next_365d": ("float64", "g"),
        "expected_revenue_next_365d": ("float64", "g"),
        "expected_revenue_future_discounted": ("float64", "g"),
        "loyalty_effect_orders_365d": ("float64", "g"),
        "campaign_purchase_prob_control": ("float64", "g"),
        "campaign_purchase_prob_treated": ("float64", "g"),
        "campaign_effect_purchase": ("float64", "g"),
        "campaign_orders_control": ("float64", "g"),
        "campaign_orders_treated": ("float64", "g"),
        "campaign_effect_orders": ("float64", "g"),
        "campaign_effect_revenue": ("float64", "g"),
        "campaign_effect_alive": ("float64", "g"),
    },
}


def _format_column(values: pd.Series, fmt: str) -> pd.Series:
    """The exact text written to the csv for one column (missing values become '')."""
    if fmt == "str":
        return values.astype(str)
    if fmt == "bool":
        return values.astype(bool).map({True: "1", False: "0"}).astype(str)
    if fmt == "int":
        return pd.Series(
            ["" if pd.isna(v) else str(int(v)) for v in values], index=values.index, dtype=str
        )
    if fmt in {"datetime", "date"}:
        pattern = "%Y-%m-%d %H:%M:%S" if fmt == "datetime" else "%Y-%m-%d"
        return values.dt.strftime(pattern).fillna("").astype(str)
    pattern = "{:.2f}" if fmt == "money" else "{:.6g}"
    array = values.to_numpy(dtype=float)
    # ``+ 0.0`` turns -0.0 into 0.0; a tiny negative rounded to zero is written without sign
    text = ["" if not math.isfinite(v) else pattern.format(v + 0.0) for v in array]
    text = ["0.00" if t == "-0.00" else ("0" if t == "-0" else t) for t in text]
    return pd.Series(text, index=values.index, dtype=str)


def _quantize(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Give ``frame`` its schema's dtypes and exactly the values that survive a csv round trip."""
    schema = _SCHEMAS[table]
    out = {}
    for column, (dtype, fmt) in schema.items():
        values = frame[column]
        if fmt in {"money", "g"}:
            text = _format_column(values.astype(float), fmt)
            values = pd.to_numeric(text.replace("", np.nan), errors="raise")
        out[column] = _as_dtype(values, dtype)
    return pd.DataFrame(out)


def _as_dtype(values: pd.Series, dtype: str) -> pd.Series:
    if dtype == "datetime64[ns]":
        return pd.to_datetime(values).astype("datetime64[ns]")
    if dtype == "bool":
        return values.astype(bool)
    if dtype == "str":
        return values.astype(str)
    return values.astype(dtype)


def _csv_bytes(frame: pd.DataFrame, table: str) -> bytes:
    schema = _SCHEMAS[table]
    text = pd.DataFrame({c: _format_column(frame[c], fmt) for c, (_, fmt) in schema.items()})
    return text.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _gzip_bytes(payload: bytes) -> bytes:
    """Gzip deterministically: no file name, mtime 0, fixed level."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    return buffer.getvalue()


def _read_table(path: Path, table: str) -> pd.DataFrame:
    schema = _SCHEMAS[table]
    dtypes: dict[str, Any] = {}
    for column, (dtype, _fmt) in schema.items():
        if dtype == "str":
            dtypes[column] = str
        elif dtype in {"int64", "Int64"}:
            dtypes[column] = "Int64"
        elif dtype == "float64":
            dtypes[column] = "float64"
        else:
            dtypes[column] = str
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    require_columns(frame, schema, what=f"{path.name}", hint=_REGENERATE_HINT)
    out = {}
    for column, (dtype, fmt) in schema.items():
        values = frame[column]
        if fmt == "bool":
            values = values.astype(int).astype(bool)
        elif dtype == "datetime64[ns]":
            pattern = "%Y-%m-%d %H:%M:%S" if fmt == "datetime" else "%Y-%m-%d"
            values = pd.to_datetime(values, format=pattern)
        out[column] = _as_dtype(values, dtype)
    return pd.DataFrame(out)


_REGENERATE_HINT = (
    "regenerate the folder with `custval simulate --out DIR` (see data/sample/README.md)"
)


@dataclass(frozen=True, eq=False)
class SimulatedRetailer:
    """A simulated retailer: the data a user would have, and the truth behind it.

    Attributes
    ----------
    transactions : DataFrame
        Line items: ``order_id`` (str; returns are ``"C" + order_id`` of the order returned),
        ``customer_id`` (Int64, missing for guest orders), ``timestamp``, ``product_code``
        (``"POST"`` for postage), ``quantity`` (negative for returns), ``unit_price``,
        ``amount`` (= quantity x unit price).
    customers : DataFrame
        One row per customer: ``customer_id``, ``acquisition_date`` (date of the first order),
        ``channel``, ``region``, ``acquisition_cost``, ``loyalty_member`` (at the end),
        ``loyalty_join_date``.
    campaign : DataFrame
        The randomized campaign: ``customer_id``, ``treatment`` (0/1), ``contact_date``,
        ``cost_per_contact``, ``segment``. No outcomes: measure them from ``transactions``.
    customer_truth : DataFrame
        Latent per-customer truth: rates, dropout, spend, alive state, expected future value and
        the true (expected) campaign and loyalty effects.
    truth : dict
        Every parameter, the seed, the generator version, counts and definitions.

    Examples
    --------
    >>> from custval.datasets import simulate
    >>> sim = simulate(n_customers=200, random_state=1)
    >>> sorted(sim.tables)
    ['campaign', 'customer_truth', 'customers', 'transactions']
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame
    campaign: pd.DataFrame
    customer_truth: pd.DataFrame
    truth: dict[str, Any]

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The four tables by name."""
        return {
            "transactions": self.transactions,
            "customers": self.customers,
            "campaign": self.campaign,
            "customer_truth": self.customer_truth,
        }

    @property
    def observation_end(self) -> pd.Timestamp:
        """The last day of the observation period (inclusive)."""
        return pd.Timestamp(self.truth["period"]["end"])

    def write(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write the four tables (gzipped csv) and ``truth.json`` to ``folder``.

        The bytes depend only on the data: gzip is written without file name and with mtime 0,
        floats with fixed formats (money with 2 decimals, other floats with 6 significant
        digits), so the same call regenerates identical files. Other files in ``folder`` are left
        alone.

        Parameters
        ----------
        folder : str or path
            Created if it does not exist.

        Returns
        -------
        list of Path
            The files written.

        Examples
        --------
        >>> import tempfile
        >>> from custval.datasets import simulate
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     paths = simulate(n_customers=50).write(tmp)
        ...     [p.name for p in paths]
        ['transactions.csv.gz', 'customers.csv.gz', 'campaign.csv.gz', 'customer_truth.csv.gz', 'truth.json']
        """  # noqa: E501
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for table, name in _FILES.items():
            path = folder / name
            path.write_bytes(_gzip_bytes(_csv_bytes(self.tables[table], table)))
            written.append(path)
        path = folder / _TRUTH_FILE
        text = json.dumps(self.truth, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
        return written


# --------------------------------------------------------------------------------------------
# Loading the committed sample and simulated folders
# --------------------------------------------------------------------------------------------


def _sample_folder() -> Path:
    """``data/sample`` of the source tree this module was imported from."""
    return Path(__file__).resolve().parents[3] / "data" / "sample"


def load_simulated(folder: str | os.PathLike[str]) -> SimulatedRetailer:
    """Read a folder written by :meth:`SimulatedRetailer.write` (or ``custval simulate``).

    Parameters
    ----------
    folder : str or path
        Folder holding ``transactions.csv.gz``, ``customers.csv.gz``, ``campaign.csv.gz``,
        ``customer_truth.csv.gz`` and ``truth.json``.

    Returns
    -------
    SimulatedRetailer
        With the same dtypes and values as the simulation that wrote the folder.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the files is missing.

    Examples
    --------
    >>> import tempfile
    >>> from custval.datasets import load_simulated, simulate
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = simulate(n_customers=100).write(tmp)
    ...     load_simulated(tmp).customers.shape
    (100, 7)
    """
    folder = Path(folder)
    names = [*_FILES.values(), _TRUTH_FILE]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not a simulated-retailer folder: missing {', '.join(missing)}; "
            f"{_REGENERATE_HINT}"
        )
    tables = {table: _read_table(folder / name, table) for table, name in _FILES.items()}
    truth = json.loads((folder / _TRUTH_FILE).read_text(encoding="utf-8"))
    return SimulatedRetailer(truth=truth, **tables)


def load_sample(path: str | os.PathLike[str] | None = None) -> SimulatedRetailer:
    """Return the project's sample retailer (``data/sample/``), made by ``custval simulate``.

    Parameters
    ----------
    path : str or path, optional
        Folder to read instead of the committed ``data/sample/`` of the source tree. An
        installed package does not ship the sample: make one with
        ``custval simulate --out DIR`` and pass ``path=DIR``.

    Returns
    -------
    SimulatedRetailer
        Transactions, customers, campaign, customer truth and the truth dictionary.

    Raises
    ------
    FileNotFoundError
        If the folder cannot be found, with the command that makes it.

    Examples
    --------
    >>> from custval.datasets import load_sample
    >>> sample = load_sample()  # doctest: +SKIP
    >>> sample.truth["n_customers"]  # doctest: +SKIP
    5000
    """
    if path is not None:
        return load_simulated(path)
    folder = _sample_folder()
    if not (folder / _TRUTH_FILE).is_file():
        raise FileNotFoundError(
            f"the sample data folder was not found at {folder} (an installed custval does not "
            "ship it); run `custval simulate --out DIR` to make it and call "
            "load_sample(path=DIR)"
        )
    return load_simulated(folder)
