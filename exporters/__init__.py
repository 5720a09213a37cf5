"""govops' Prometheus side: the domain prober, the cutover-progress exporter, rules, dashboards.

`govops_prober` and `cutover_exporter` use relative imports and only the standard library plus
`prometheus_client` (and the prober Debian's `aiohttp`) at run time, so each directory can be
copied onto the monitoring host and run as `python3 -m govops_prober` without the rest of govops.
"""
