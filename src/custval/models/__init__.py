"""Probabilistic customer-base models, implemented natively in numpy/scipy.

Each model file owns its mathematics; :mod:`custval.models._base` owns fitting, standard errors,
the summary table and save/load.
"""

from __future__ import annotations

from custval.models._base import load_model
from custval.models._covariates import covariate_effects
from custval.models.beta_discrete_weibull import BetaDiscreteWeibullModel
from custval.models.beta_geo import BetaGeoModel
from custval.models.beta_geo_beta_binom import BetaGeoBetaBinomModel
from custval.models.bg_cnbd import BetaGeoCNBDModel, estimate_regularity
from custval.models.gamma_gamma import GammaGammaModel, frequency_spend_correlation
from custval.models.gamma_gompertz_nbd import GammaGompertzNBDModel
from custval.models.mbg_cnbd import ModifiedBetaGeoCNBDModel
from custval.models.modified_beta_geo import ModifiedBetaGeoModel
from custval.models.pareto_nbd import ParetoNBDModel
from custval.models.pareto_nbd_dynamic import ParetoNBDDynamicModel
from custval.models.shifted_beta_geo import ShiftedBetaGeoModel

__all__ = [
    "BetaDiscreteWeibullModel",
    "BetaGeoBetaBinomModel",
    "BetaGeoCNBDModel",
    "BetaGeoModel",
    "GammaGammaModel",
    "GammaGompertzNBDModel",
    "ModifiedBetaGeoCNBDModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDDynamicModel",
    "ParetoNBDModel",
    "ShiftedBetaGeoModel",
    "covariate_effects",
    "estimate_regularity",
    "frequency_spend_correlation",
    "load_model",
]
