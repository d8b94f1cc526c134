"""Operator endpoints: /metrics, health, readiness, reload, the JSON API and the landing page,
and the HTTP server that answers its own errors as JSON."""
