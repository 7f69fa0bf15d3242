"""The ``custval`` command line: ``custval simulate``, ``custval report``, ``custval score``.

Each sub-command lives in a small ``_add_<name>`` / ``_run_<name>`` pair; the work itself is
done by library functions, so the CLI only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from custval.errors import DataError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="custval",
        description="Customer value analytics: CLV models, churn and relationship investment.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def _add_report(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report",
        help="run the report notebooks on a data set and write HTML reports",
        description="Run the four report notebooks on a transaction log (default: the bundled "
        "simulated sample) and write HTML reports for marketers (code hidden), full versions "
        "for data scientists, and an index.html with an executive summary.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--transactions", help="transaction log (CSV, CSV.gz or Parquet)")
    data.add_argument("--customers", help="optional customer table (acquisition channel, cost)")
    data.add_argument("--campaign", help="optional randomized campaign table")
    data.add_argument(
        "--sample",
        action="store_true",
        help="use the bundled simulated sample (the default without --transactions)",
    )
    mapping = parser.add_argument_group("column mapping of --transactions")
    for option, default in [
        ("customer-id", "customer_id"),
        ("timestamp", "timestamp"),
        ("amount", None),
        ("quantity", None),
        ("unit-price", None),
        ("order-id", None),
        ("product-code", None),
    ]:
        mapping.add_argument(
            f"--{option}",
            default=default,
            metavar="COLUMN",
            help=f"column holding the {option.replace('-', ' ')}"
            + (f" (default {default})" if default else ""),
        )
    cleaning = parser.add_argument_group("cleaning of --transactions")
    cleaning.add_argument(
        "--exclude-codes",
        nargs="+",
        metavar="CODE",
        help="product codes of lines that are not product sales (postage, fees), or one preset: "
        "online-retail (the UCI Online Retail codes: POST, DOT, M, D, BANK CHARGES, ...)",
    )
    cleaning.add_argument(
        "--returns",
        choices=["net", "drop", "keep"],
        default="net",
        help="returns and cancellations: net them against the purchases they return (default), "
        "drop them, or keep them as they are",
    )
    assumptions = parser.add_argument_group("assumptions")
    assumptions.add_argument("--freq", default="W", help="analysis unit: D, W or M (default W)")
    assumptions.add_argument(
        "--horizon",
        default="12M",
        help="CLV horizon with its unit, e.g. 12M, 52W, 365D (default 12M)",
    )
    assumptions.add_argument(
        "--margin",
        type=float,
        default=1.0,
        help="contribution margin as a fraction of revenue (default 1.0)",
    )
    assumptions.add_argument(
        "--annual-discount-rate",
        type=float,
        default=0.10,
        help="annual discount rate (default 0.10)",
    )
    assumptions.add_argument("--currency", default="$", help="currency symbol (default $)")
    parser.add_argument("--out", default="reports", help="output folder (default reports/)")
    parser.add_argument(
        "--notebooks",
        nargs="+",
        metavar="NAME",
        help="run only these notebooks (e.g. 01-customer-base)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="extra notebook parameter, e.g. --param n_draws=50",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    import json

    from custval.reports import TRANSACTION_KEYS, NotebookFailed, render

    if args.sample and args.transactions:
        raise DataError("give either --sample or --transactions, not both")
    columns = {
        key: getattr(args, key) for key in TRANSACTION_KEYS if getattr(args, key) is not None
    }
    cleaning: dict[str, object] = {}
    if args.exclude_codes:
        codes = args.exclude_codes
        preset = len(codes) == 1 and codes[0] in ("online-retail", "sample")
        cleaning["exclude_codes"] = codes[0] if preset else codes
    if args.returns != "net":
        cleaning["returns"] = args.returns
    extra = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise DataError(f"--param {item!r} is not KEY=VALUE; write e.g. --param n_draws=50")
        try:
            extra[key] = json.loads(value)
        except json.JSONDecodeError:
            extra[key] = value
    try:
        result = render(
            args.out,
            transactions=args.transactions,
            customers=args.customers,
            campaign=args.campaign,
            columns=columns if args.transactions else None,
            freq=args.freq,
            horizon=args.horizon,
            margin=args.margin,
            annual_discount_rate=args.annual_discount_rate,
            currency=args.currency,
            cleaning=cleaning,
            parameters=extra,
            notebooks=args.notebooks,
            progress=not args.no_progress,
        )
    except NotebookFailed as error:
        print(f"custval: report failed: {error}", file=sys.stderr)
        return 1
    print(f"Reports written to {result.out_dir}/ — open {result.index}")
    for stem, path in result.reports.items():
        print(f"  {stem}: {path}")
    return 0


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "simulate",
        help="write a simulated retailer with known truth to a folder",
        description="Simulate a retailer (BG/NBD purchasing, Gamma-Gamma spend, acquisition "
        "channels, a loyalty programme and a randomized campaign) and write transactions, "
        "customers, campaign, customer truth (gzipped CSV) and truth.json to a folder. The same "
        "arguments regenerate the same bytes.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--customers", type=int, default=5000, help="number of customers (default 5000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--start", default="2022-01-01", help="first day of the period (default 2022-01-01)"
    )
    parser.add_argument(
        "--end", default="2024-12-31", help="last day of the period (default 2024-12-31)"
    )
    parser.set_defaults(run=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    from custval.datasets import simulate

    retailer = simulate(
        n_customers=args.customers, start=args.start, end=args.end, random_state=args.seed
    )
    paths = retailer.write(args.out)
    counts = retailer.truth["counts"]
    print(
        f"Simulated {counts['customers']:,} customers, {counts['customer_orders']:,} orders and "
        f"{counts['transaction_lines']:,} transaction lines (seed {args.seed}); wrote "
        f"{len(paths)} files to {args.out}/"
    )
    for path in paths:
        print(f"  {path.name}")
    return 0


def _add_score(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "score",
        help="write the customer value table of a Parquet/CSV log (DuckDB or Spark)",
        description="Summarize a transaction log in DuckDB (out of core) or Spark, fit BG/NBD "
        "(or Pareto/NBD) and Gamma-Gamma on the distinct patterns, and write one row per "
        "customer: CLV with its interval, P(alive), expected purchases and spend, value rank "
        "and decile, RFM segment. For CRM upload.",
    )
    parser.add_argument(
        "--transactions",
        required=True,
        metavar="PATH",
        help="Parquet file, folder or glob, or a CSV file (one row per transaction)",
    )
    parser.add_argument(
        "--out", required=True, metavar="PATH", help="output .parquet or .csv (Spark: a folder)"
    )
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    for option, default in [("customer-id", "customer_id"), ("timestamp", "timestamp")]:
        parser.add_argument(f"--{option}", default=default, metavar="COLUMN")
    parser.add_argument("--amount", default="amount", metavar="COLUMN")
    parser.add_argument("--freq", default="W", help="analysis unit: D, W or M (default W)")
    parser.add_argument("--observation-end", help="end of observation (default: last timestamp)")
    parser.add_argument("--model", choices=["bgnbd", "pareto"], default="bgnbd")
    parser.add_argument("--horizon", default="12M", help="CLV horizon with unit (default 12M)")
    parser.add_argument("--discount-rate", type=float, default=0.10, help="annual (default 0.10)")
    parser.add_argument("--margin", type=float, default=1.0, help="contribution margin (1.0)")
    parser.add_argument("--interval", type=float, default=0.8, help="CLV interval (0.8)")
    parser.add_argument("--n-draws", type=int, default=200, help="parameter draws (200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws (0)")
    parser.set_defaults(run=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    from custval import _engines

    table = _engines.score_log(
        args.transactions,
        engine=args.engine,
        customer_id=args.customer_id,
        timestamp=args.timestamp,
        amount=args.amount,
        freq=args.freq,
        observation_end=args.observation_end,
        model=args.model,
        horizon=args.horizon,
        annual_discount_rate=args.discount_rate,
        margin=args.margin,
        interval=args.interval,
        n_draws=args.n_draws,
        random_state=args.seed,
    )
    if str(args.out).lower().endswith((".csv", ".csv.gz")):
        table.write_csv(args.out)
    else:
        table.write_parquet(args.out)
    print(f"Wrote the value table ({table.engine}, unit {table.attrs['freq']}) to {args.out}")
    return 0


_SUBCOMMANDS: list = [_add_report, _add_simulate, _add_score]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``custval`` command."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except DataError as error:
        print(f"custval: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
