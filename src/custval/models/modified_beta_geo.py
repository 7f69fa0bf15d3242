"""MBG/NBD: the modified beta-geometric/negative binomial distribution model.

Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of models for
customer base analysis", International Journal of Research in Marketing 24(3), 201-209, with
the conditional expectation of Wagner & Hoppe (2008); lifetimes' ``ModifiedBetaGeoFitter``.

Like the BG/NBD, but a customer may also drop out right after their *first* purchase (time 0),
so a customer without repeat purchases is not certainly alive. The likelihood (Batislam et al.;
lifetimes' implementation) is

    L = B(a, b+x+1)/B(a, b) G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
        + B(a+1, b+x)/B(a, b) G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x)),

i.e. the BG/NBD's with ``b + x`` shifted to ``b + x + 1`` and the second term present for every
customer. The shared implementation (likelihood, analytic gradient and predictions, with the
shift as a flag) lives in :mod:`custval.models.beta_geo`; the functions below are the MBG/NBD
versions of its private ``(params, arrays)`` functions, for the customer-value code.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from custval.models import beta_geo as _bg

__all__ = ["ModifiedBetaGeoModel"]

#: P(alive at T + t | frequency, recency, T): ``(params, frequency, recency, T, t=0)``
_probability_alive = partial(_bg._probability_alive, modified=True)
#: E[purchases in (T, T+t] | history]: ``(params, frequency, recency, T, t)``
_expected_purchases = partial(_bg._expected_purchases, modified=True)
#: E[repeat purchases in (0, t]] of a new customer: ``(params, t)``
_expected_purchases_new_customer = partial(_bg._expected_purchases_new_customer, modified=True)
#: P(X(t) = n) of a new customer: ``(params, n, t)``
_probability_of_purchases = partial(_bg._probability_of_purchases, modified=True)


class ModifiedBetaGeoModel(_bg._BetaGeoFamily):
    """MBG/NBD model of repeat purchasing in non-contractual settings.

    Batislam, Denizel & Filiztekin (2007): as the BG/NBD (purchase rate
    ``lambda ~ Gamma(r, alpha)``, drop-out probability ``p ~ Beta(a, b)`` after each purchase)
    except that customers may also drop out right after their first purchase. This removes the
    BG/NBD's assumption that every customer without repeat purchases is alive. Agrees with
    lifetimes' ``ModifiedBetaGeoFitter`` (likelihood, fitted parameters and predictions).

    Parameters
    ----------
    penalizer_coef, initial_params, tol, max_iter
        See :class:`custval.models._base.BaseModel`.

    Attributes
    ----------
    params_ : Series
        ``r``, ``alpha`` (in the summary's time unit), ``a``, ``b``.
    log_likelihood_, n_customers_, n_patterns_, variance_matrix_, freq_
        See :class:`custval.models._base.BaseModel`; ``summary``, ``aic`` and ``bic`` too.

    Notes
    -----
    Predictions: ``expected_purchases`` (Batislam et al. 2007, appendix; Wagner & Hoppe 2008),
    ``probability_alive`` (now, and at ``T + t``), ``probability_of_purchases`` and
    ``expected_purchases_new_customer``, with the same signatures and numerical treatment as
    :class:`custval.BetaGeoModel`.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import ModifiedBetaGeoModel
    >>> model = ModifiedBetaGeoModel.from_params(r=0.525, alpha=6.183, a=0.891, b=1.614,
    ...                                          freq="W")
    >>> customer = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [38.86]})
    >>> model.probability_alive(customer).round(2).tolist()
    [0.39]
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    _display_name: ClassVar[str] = "MBG/NBD model"
    _modified: ClassVar[bool] = True
