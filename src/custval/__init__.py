"""custval: who your most valuable customers are, who is slipping away, and where investing in
the relationship pays back.

The public API is exactly ``__all__``. Each block below belongs to one module.
"""

from __future__ import annotations

from custval.errors import ConvergenceError, CustvalWarning, DataError

__version__ = "0.1.0"

__all__ = [
    "ConvergenceError",
    "CustvalWarning",
    "DataError",
    "__version__",
]

# Each block below belongs to one module: import its public names and extend __all__ with them.

# --- transactions -------------------------------------------------------------------------------
from custval.transactions import (
    ONLINE_RETAIL_NON_PRODUCT_CODES,
    CleaningReport,
    clean_transactions,
    read_transactions,
)

__all__ += [
    "ONLINE_RETAIL_NON_PRODUCT_CODES",
    "CleaningReport",
    "clean_transactions",
    "read_transactions",
]

# --- rfm ----------------------------------------------------------------------------------------
from custval.rfm import calibration_holdout_split, rfm_scores, rfm_segments, rfm_summary

__all__ += ["calibration_holdout_split", "rfm_scores", "rfm_segments", "rfm_summary"]

# --- engines (DuckDB, Spark) ---------------------------------------------------------------------
from custval._engines import EngineSummary, summary_patterns

__all__ += ["EngineSummary", "summary_patterns"]

# --- datasets -----------------------------------------------------------------------------------
from custval.datasets import *  # noqa: F403
from custval.datasets import __all__ as _datasets_all

__all__ += _datasets_all

# --- models -------------------------------------------------------------------------------------
from custval.models import *  # noqa: F403
from custval.models import __all__ as _models_all

__all__ += _models_all

# --- clv ----------------------------------------------------------------------------------------
from custval import evaluation  # public submodule: custval.evaluation.tracking, ...
from custval.clv import clv_interval, customer_lifetime_value, customer_value_table

__all__ += ["clv_interval", "customer_lifetime_value", "customer_value_table", "evaluation"]

# --- churn --------------------------------------------------------------------------------------
from custval.churn import *  # noqa: F403
from custval.churn import __all__ as _churn_all

__all__ += _churn_all

# --- invest -------------------------------------------------------------------------------------
from custval import invest

__all__ += ["invest"]
