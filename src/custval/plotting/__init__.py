"""Every custval figure.

Each function takes ``ax=None`` (a new figure when None), returns the Axes, takes its numbers only
from custval's public functions, and titles the chart with its finding ("Top 10% of customers
hold 58% of expected value"), not its kind. Blocks below belong to one topic module each.
"""

from __future__ import annotations

__all__: list[str] = []

# --- value and model evaluation (_value.py) ----------------------------------------------------

# --- churn (_churn.py) -------------------------------------------------------------------------

# --- relationship investment (_invest.py) ------------------------------------------------------
