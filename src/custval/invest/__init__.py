"""Relationship investment: where spending on customers pays back.

* :func:`value_concentration`: how much of the expected value the top customers hold (shares,
  Lorenz curve, Gini) and which valuable customers are at risk.
* :func:`retention_roi`: expected incremental value of a retention action per customer
  (probability of losing the customer × effect × contribution at stake − cost), the ranked target
  list, the profit curve with its best budget and break-even point, and the sensitivity of the
  decision to the assumed effect.
* :func:`campaign_outcomes` and :func:`estimate_uplift`: outcomes of a randomized campaign and
  its average and individual effects (T- or X-learner, cross-fitted), next to the plain
  difference in means, with uplift deciles, an uplift (Qini) curve and honest power statements.
* :func:`campaign_payback`: whether a randomized campaign (or, labelled observational, a
  programme) paid back: incremental profit per contact against its cost, net return and ROI
  with 95% intervals, overall and by segment, and the sentence that says so.
* :func:`uplift_targeting`: whom to contact on measured response (predicted incremental profit
  above the cost), checked on held-out customers against random and churn-risk targeting.
* :func:`payback`: acquisition cost against cumulative contribution per channel or cohort, the
  payback period and CLV:CAC.
* :func:`relationship_effect`: the observational (propensity-weighted) effect of a programme such
  as loyalty membership, with a balance table, next to a randomized estimate where one exists.
* :func:`investment_plan`: per segment, invest / maintain / go transactional, with the numbers.

Every assumption (save rate, margin, cost, horizon, thresholds) is an argument and is repeated in
the result's ``assumptions``. Value tables carry their basis in ``attrs["value_basis"]``: a
contribution table is never multiplied by a margin again.
"""

from __future__ import annotations

from custval.invest._campaign import campaign_outcomes, history_features
from custval.invest._campaign_payback import CampaignPayback, campaign_payback
from custval.invest._concentration import ValueConcentration, value_concentration
from custval.invest._payback import PaybackResult, payback
from custval.invest._plan import RULES, InvestmentPlan, investment_plan
from custval.invest._relationship import RelationshipEffect, relationship_effect
from custval.invest._roi import RetentionROI, retention_roi
from custval.invest._targeting import UpliftTargeting, uplift_targeting
from custval.invest._uplift import UpliftResult, estimate_uplift

__all__ = [
    "RULES",
    "CampaignPayback",
    "InvestmentPlan",
    "PaybackResult",
    "RelationshipEffect",
    "RetentionROI",
    "UpliftResult",
    "UpliftTargeting",
    "ValueConcentration",
    "campaign_outcomes",
    "campaign_payback",
    "estimate_uplift",
    "history_features",
    "investment_plan",
    "payback",
    "relationship_effect",
    "retention_roi",
    "uplift_targeting",
    "value_concentration",
]
