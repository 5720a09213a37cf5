"""The domain prober: synthetic transactions per province, the way citizens and officials work.

Multi-target exporter: `GET /probe?target=<province>&module=<module>` runs the module's checks
against that province's systems, concurrently, within the scrape's timeout, and answers with
the result as Prometheus metrics. Targets are the estate's provinces only.
"""

__version__ = "0.1.0"
