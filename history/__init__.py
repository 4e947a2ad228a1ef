"""Prediction history: every score recorded, outcomes loaded beside it, realised performance."""
