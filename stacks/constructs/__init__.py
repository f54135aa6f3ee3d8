"""Reusable typed constructs of the Scones Unlimited app."""
