"""Drift, alert rules, Alertmanager routing and the Grafana dashboard."""
