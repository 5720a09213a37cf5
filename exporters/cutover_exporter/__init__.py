"""The cutover-progress exporter: the runbook engine's state as Prometheus metrics.

Step status per province, readiness checks done (N of the run's provinces, beside the
dispatch's figure), communes tested, seconds left to each deadline. Read at scrape time from
the engine's state store through its read API (`store.progress(run_id)`).
"""
