"""A static HTML readiness board rendered from Prometheus queries (`govops monitoring board`)."""
