"""Exceptions and warnings raised by custval.

Every message says what is wrong, where (column, rows, values) and what to do next.
"""

from __future__ import annotations

__all__ = ["ConvergenceError", "CustvalWarning", "DataError"]


class DataError(ValueError):
    """Input data that custval cannot use as given.

    The message names the column, the number of offending rows, the first few row labels and
    values, and the fix.
    """


class ConvergenceError(RuntimeError):
    """A model fit did not converge; the message says what failed and what to try."""


class CustvalWarning(UserWarning):
    """Something the user should know about, that does not stop the computation."""
