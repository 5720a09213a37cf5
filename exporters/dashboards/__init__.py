"""Grafana dashboards, generated from Python (generate.py), committed as JSON."""
