"""MBG/CNBD-k: the modified beta-geometric / condensed negative binomial model.

Reutterer, Platzer & Schröder (2021), International Journal of Research in Marketing 38(1),
194-215; BTYDplus ``mbgcnbd.*``. As the BG/CNBD-k (:mod:`custval.models.bg_cnbd`, where the
shared likelihood, gradient and exact predictions live, with the shift ``m`` as a flag) but a
customer may also drop out right after their first purchase, as in the MBG/NBD: ``B(a, b+x)``
becomes ``B(a, b+x+1)`` and the drop-out term is present for every customer. With ``k = 1`` it
is the MBG/NBD (:class:`custval.ModifiedBetaGeoModel`).
"""

from __future__ import annotations

from typing import ClassVar

from custval.models.bg_cnbd import _CNBDFamily

__all__ = ["ModifiedBetaGeoCNBDModel"]


class ModifiedBetaGeoCNBDModel(_CNBDFamily):
    """MBG/CNBD-k model of regular repeat purchasing (Reutterer, Platzer & Schröder 2021).

    Erlang-k inter-purchase times with rate ``lambda ~ Gamma(r, alpha)`` while alive, and a
    drop-out probability ``p ~ Beta(a, b)`` after every purchase, the first one included, so a
    customer without repeat purchases is not certainly alive. ``k = 1`` is the MBG/NBD;
    ``k="auto"`` chooses ``k`` by likelihood. Same parameters, attributes and methods as
    :class:`custval.BetaGeoCNBDModel`.

    Parameters
    ----------
    k, k_max, penalizer_coef, initial_params, tol, max_iter
        As for :class:`custval.BetaGeoCNBDModel` (``k="auto"`` by default, which needs the
        summary's ``litt``).

    Attributes
    ----------
    params_, k_, k_log_likelihoods_, log_likelihood_, n_customers_, variance_matrix_, freq_
        As for :class:`custval.BetaGeoCNBDModel`.

    Examples
    --------
    >>> import pandas as pd
    >>> from custval import ModifiedBetaGeoCNBDModel
    >>> model = ModifiedBetaGeoCNBDModel.from_params(k=2, r=1.0, alpha=2.0, a=0.5, b=2.0)
    >>> customer = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [52.0]})
    >>> model.probability_alive(customer).round(3).tolist()
    [0.225]
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    _display_name: ClassVar[str] = "MBG/CNBD-k model"
    _modified: ClassVar[bool] = True
