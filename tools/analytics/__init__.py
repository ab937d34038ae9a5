"""Marketer analytics: RFM segments, value tiers (BG/NBD x Gamma-Gamma), churn scores with reasons, offers, customer
journeys and the funnel.
"""

from tools.analytics.journey import get_customer_journey, journey_funnel
from tools.analytics.offers import draft_retention_offer
from tools.analytics.profile import get_customer_profile
from tools.analytics.scores import score_churn
from tools.analytics.segments import lookup_segment, summarize_segments

__all__ = ["draft_retention_offer", "get_customer_journey", "get_customer_profile", "journey_funnel", "lookup_segment",
           "score_churn", "summarize_segments"]
