"""Simulated shoppers (hidden tastes, histories) and the simulated A/B test."""
