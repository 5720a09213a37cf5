"""Stand-ins for the vendors' systems and the national counterparts (lab only).

STAND-IN, not the vendor system. Self-contained: Python stdlib, aiohttp and psycopg 3 (all
from Debian 12 on the lab hosts), relative imports only, so the directory can be copied
anywhere on PYTHONPATH as `standins/`. The contract that probes and runbooks rely on is
docs/standins-contract.md.

Layers, each importing only those before it: `core` (errors, validation, logs: the base),
`config`, `db`, `tokens`, `faults`, `upstream` (outbound calls on aiohttp's client), `service`
(what a kind is written against: request, answers, routes, the Service base), the kinds
(`procedures`, `documents`, `lgsp`, `reporting`, `meetings`, `portal`, `national`), then `app`
(the shell on aiohttp's server) and `__main__`.
"""

__version__ = "0.1.0"
