"""The ``custval`` command line: ``custval simulate``, ``custval report``.

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


_SUBCOMMANDS: list = []


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
