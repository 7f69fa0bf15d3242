"""Every custval figure.

Each function takes ``ax=None`` (a new figure when None), returns the Axes, takes its numbers only
from custval's public functions, and titles the chart with its finding ("Top 10% of customers
hold 58% of expected value"), not its kind. Blocks below belong to one topic module each.
"""

from __future__ import annotations

__all__: list[str] = []

# --- value and model evaluation (_value.py) ----------------------------------------------------
from custval.plotting._value import *  # noqa: F403
from custval.plotting._value import __all__ as _value_all

__all__ = [*__all__, *_value_all]  # an assignment, so later blocks' imports stay "at the top"

# --- churn (_churn.py) -------------------------------------------------------------------------
from custval.plotting._churn import *  # noqa: F403
from custval.plotting._churn import __all__ as _churn_all

__all__ = [*__all__, *_churn_all]

# --- relationship investment (_invest.py) ------------------------------------------------------
from custval.plotting._invest import *  # noqa: F403
from custval.plotting._invest import __all__ as _invest_all

__all__ = [*__all__, *_invest_all]
