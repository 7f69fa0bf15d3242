"""Probabilistic customer-base models, implemented natively in numpy/scipy.

Each model file owns its mathematics; :mod:`custval.models._base` owns fitting, standard errors,
the summary table and save/load.
"""

from __future__ import annotations

from custval.models._base import load_model
from custval.models.beta_geo import BetaGeoModel

__all__ = [
    "BetaGeoModel",
    "load_model",
]
