"""Sesame: open, explainable nightly credit scoring."""

FACTORS = ("credit_history", "behavior_preference", "fulfillment_capacity", "identity_traits", "social_connections")

__version__ = "0.1.0"
