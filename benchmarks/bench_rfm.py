"""custval.rfm_summary against lifetimes' summary_data_from_transaction_data.

Builds seeded synthetic transaction logs (about 10 transactions per active customer, purchase
rates varying between customers, two years of timestamps to the second, amounts to the cent,
rows in time order) with integer or string customer ids, and for each size and id kind:

- times both functions in this process (best of ``--repeat`` runs each, after the data is
  built; lifetimes runs ``--repeat-reference`` times because it is slow);
- checks that the two summaries are equal (same customers and order, all four columns to a
  relative 1e-9);
- measures the peak memory of each function in a fresh subprocess that builds the same data:
  **peak RSS** is the process's high-water mark during the call minus its resident size just
  before it (Linux: freed heap is returned with ``malloc_trim`` and the mark is reset with
  ``/proc/self/clear_refs`` after the data is built),
  and **tracemalloc** is the peak of Python and numpy/pandas heap allocations during a second
  call. tracemalloc misses memory that pyarrow allocates (pandas' ``str`` columns), which is
  why peak RSS is the headline number.

Usage::

    .venv/bin/python benchmarks/bench_rfm.py            # 1M and 10M rows, int and str ids
    .venv/bin/python benchmarks/bench_rfm.py --quick    # 1M rows only
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import re
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from custval import rfm_summary  # noqa: E402

START = np.datetime64("2022-01-01T00:00:00", "s")
DAYS = 730


def make_transactions(n_rows: int, *, ids: str = "int", seed: int = 0) -> pd.DataFrame:
    """A seeded synthetic transaction log of ``n_rows`` rows.

    ``ids`` is "int" (compact integer ids), "str" (e.g. "C1234567", pandas' default string
    dtype), "object" (the same ids as Python strings in an ``object`` column, pandas 2's
    default) or "sparse" (random 63-bit integers, which custval must hash like strings).
    """
    rng = np.random.default_rng(seed)
    n_customers = max(n_rows // 10, 1)
    rates = rng.gamma(shape=0.8, scale=1.0, size=n_customers)
    customer = rng.choice(n_customers, size=n_rows, p=rates / rates.sum())
    seconds = rng.integers(0, DAYS * 86400, size=n_rows)
    seconds.sort()  # logs come in time order
    timestamp = (START + seconds).astype("datetime64[ns]")
    amount = np.round(rng.lognormal(mean=3.2, sigma=0.8, size=n_rows), 2)
    if ids == "int":
        labels = 1_000_000 + rng.permutation(n_customers)
        customer_id = labels[customer]
    elif ids == "sparse":
        labels = rng.integers(0, 2**63 - 1, size=n_customers)
        customer_id = labels[customer]
    elif ids == "str":
        numbers = 1_000_000 + rng.permutation(n_customers)
        labels = pd.array(np.char.add("C", numbers.astype(str)), dtype="str")
        customer_id = labels.take(customer)
    elif ids == "object":
        numbers = 1_000_000 + rng.permutation(n_customers)
        labels = np.char.add("C", numbers.astype(str)).astype(object)
        customer_id = pd.Series(labels[customer], dtype=object)
    else:
        raise ValueError(f"unknown id kind {ids!r}")
    return pd.DataFrame({"customer_id": customer_id, "timestamp": timestamp, "amount": amount})


def run_custval(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    return rfm_summary(frame, freq=freq)


def run_lifetimes(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes.utils import summary_data_from_transaction_data

        return summary_data_from_transaction_data(
            frame, "customer_id", "timestamp", monetary_value_col="amount", freq=freq
        )


RUNNERS = {"custval": run_custval, "lifetimes": run_lifetimes}


def best_time(function, frame: pd.DataFrame, freq: str, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = function(frame, freq)
        best = min(best, time.perf_counter() - start)
    return best, result


def check_equal(ours: pd.DataFrame, reference: pd.DataFrame) -> str:
    reference = reference.rename_axis("customer_id")
    pd.testing.assert_frame_equal(
        ours, reference, check_exact=False, rtol=1e-9, check_index_type=False
    )
    return "equal"


# --- memory, in a fresh process ---------------------------------------------------------------


def _status_mb() -> dict[str, float]:
    text = Path("/proc/self/status").read_text()
    return {key: int(value) / 1024 for key, value in re.findall(r"(VmRSS|VmHWM):\s+(\d+)", text)}


def _release_free_memory() -> None:
    """Return freed heap pages to the OS, so that the call's allocations show up in the RSS."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _child(impl: str, n_rows: int, ids: str, freq: str) -> None:
    frame = make_transactions(n_rows, ids=ids)
    function = RUNNERS[impl]
    if impl == "lifetimes":  # import outside the measurement
        run_lifetimes(frame.head(100), freq)
    gc.collect()
    _release_free_memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
        before = _status_mb()["VmRSS"]
        function(frame, freq)
        rss = _status_mb()["VmHWM"] - before
    except OSError:  # not Linux: ru_maxrss is a lifetime mark, so this can overstate
        import resource

        before = _status_mb()["VmRSS"] if Path("/proc/self/status").exists() else 0.0
        function(frame, freq)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    gc.collect()
    tracemalloc.start()
    function(frame, freq)
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(json.dumps({"rss_mb": rss, "traced_mb": traced}))


def peak_memory(impl: str, n_rows: int, ids: str, freq: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", impl, str(n_rows), ids, freq],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M rows only")
    parser.add_argument("--ids", default="int,str", help="id kinds: int, str, object, sparse")
    parser.add_argument("--freq", default="D")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of custval")
    parser.add_argument("--repeat-reference", type=int, default=2, help="timed runs of lifetimes")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        impl, n_rows, ids, freq = args.child
        _child(impl, int(n_rows), ids, freq)
        return

    import lifetimes

    sizes = [1_000_000] if args.quick else [1_000_000, 10_000_000]
    print(
        f"rfm_summary vs lifetimes {lifetimes.__version__} summary_data_from_transaction_data"
        f" | freq={args.freq} | pandas {pd.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"time: best of {args.repeat} (custval) / {args.repeat_reference} (lifetimes) in one "
        "process; memory: extra peak RSS of the call in a fresh process (tracemalloc peak in "
        "brackets)"
    )
    header = (
        f"{'rows':>11} {'ids':>6} {'customers':>10} {'custval s':>10} "
        f"{'lifetimes s':>12} {'speed-up':>9} {'custval MB':>16} {'lifetimes MB':>16} "
        f"{'outputs':>8}"
    )
    print(header)
    print("-" * len(header))
    for n_rows in sizes:
        for ids in args.ids.split(","):
            frame = make_transactions(n_rows, ids=ids)
            ours_s, ours = best_time(run_custval, frame, args.freq, args.repeat)
            ref_s, ref = best_time(run_lifetimes, frame, args.freq, args.repeat_reference)
            verdict = check_equal(ours, ref)
            del frame, ref
            gc.collect()
            if args.no_memory:
                mem = {"custval": "-", "lifetimes": "-"}
            else:
                mem = {}
                for impl in RUNNERS:
                    peak = peak_memory(impl, n_rows, ids, args.freq)
                    mem[impl] = f"{peak['rss_mb']:,.0f} ({peak['traced_mb']:,.0f})"
            print(
                f"{n_rows:>11,} {ids:>6} {len(ours):>10,} {ours_s:>10.2f} {ref_s:>12.2f} "
                f"{ref_s / ours_s:>8.1f}x {mem['custval']:>16} {mem['lifetimes']:>16} "
                f"{verdict:>8}",
                flush=True,
            )


if __name__ == "__main__":
    main()
