"""Sample data: a simulated retailer with known truth, simulators of the model processes, and
loaders for public data sets.

:func:`simulate` builds a retailer whose customers follow the BG/NBD purchase process
(Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing Science 24(2)) with
Gamma-Gamma order values (Fader, Hardie & Lee 2005, "RFM and CLV", JMR 42(4); Colombo & Jiang
1999), acquisition channels with costs, a loyalty programme that customers self-select into and a
randomized relationship campaign whose effect differs by segment. Every latent quantity (purchase
rate, dropout probability, spend, alive/dead state, campaign effect) is returned next to the data a
user would have, so models and analyses can be judged against the truth.

:func:`simulate_beta_geo`, :func:`simulate_beta_geo_covariates`, :func:`simulate_gamma_gamma`
and :func:`simulate_cnbd` draw customer summaries straight from a model's process with given
parameters (covariates with known coefficients included), for parameter recovery.

:func:`load_sample` returns the committed sample made by ``custval simulate`` (see
``data/sample/README.md``); :func:`load_cdnow`, :func:`load_online_retail` and
:func:`load_donations` read public data sets in their published formats.

The package's modules: ``_parameters`` (:class:`RetailerParameters`), ``_simulate`` (the
retailer's simulation, step by step), ``_retailer`` (its tables, files and loaders),
``_processes`` (the model simulators), ``_loaders`` (public data sets).
"""

from __future__ import annotations

from custval.datasets._loaders import load_cdnow, load_donations, load_online_retail
from custval.datasets._parameters import GENERATOR_VERSION, RetailerParameters  # noqa: F401
from custval.datasets._processes import (
    COVARIATE_COLUMNS,  # noqa: F401  (a constant, documented, not in __all__)
    simulate_beta_geo,
    simulate_beta_geo_covariates,
    simulate_cnbd,
    simulate_gamma_gamma,
)
from custval.datasets._retailer import SimulatedRetailer, load_sample, load_simulated
from custval.datasets._simulate import simulate

__all__ = [
    "RetailerParameters",
    "SimulatedRetailer",
    "load_cdnow",
    "load_donations",
    "load_online_retail",
    "load_sample",
    "load_simulated",
    "simulate",
    "simulate_beta_geo",
    "simulate_beta_geo_covariates",
    "simulate_cnbd",
    "simulate_gamma_gamma",
]
