"""Run every benchmark in this folder, one after another, side by side with its reference.

    python benchmarks/run_all.py            # quick sizes (minutes)
    python benchmarks/run_all.py --full     # the sizes quoted in the README (tens of minutes)

Each ``bench_*.py`` prints its own table (times, ratios against the reference library measured
in the same run, peak memory). Run them on a quiet machine: ratios are measured in one process,
but absolute times move with the load.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: script -> (arguments for a quick run, arguments for the full run)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "bench_rfm.py": (["--quick"], []),
    "bench_models.py": (["--quick"], []),
    "bench_pareto_nbd.py": ([], ["--full"]),
    "bench_clv.py": (["--quick"], []),
    "bench_churn.py": (["--quick"], []),
    "bench_engines.py": (["--quick"], []),
    "bench_covariates.py": (["--quick"], []),
    "bench_pareto_dynamic.py": (["--quick"], []),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full sizes (slow)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args(argv)
    failed = []
    for script, (quick, full) in BENCHMARKS.items():
        if args.only and script not in args.only:
            continue
        command = [sys.executable, str(HERE / script), *(full if args.full else quick)]
        print(f"\n=== {' '.join(command[1:])}", flush=True)
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
