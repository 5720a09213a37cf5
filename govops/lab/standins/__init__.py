"""Stand-ins for the vendors' systems and the national counterparts (lab only).

STAND-IN, not the vendor system. Self-contained: Python stdlib + psycopg 3, relative imports
only, so the directory can be copied anywhere on PYTHONPATH as `standins/`. The contract that
probes and runbooks rely on is docs/standins-contract.md.
"""

__version__ = "0.1.0"
