"""Metrics computed the way each field's reference computes them."""
