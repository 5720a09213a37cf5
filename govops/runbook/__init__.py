"""The cutover engine: runbooks as data, run province by province in waves.

model (schema) → loader (+ lint) → scheduler (waves, rate control) → engine (the run: lease,
waves, interrupts) with stepping (a step: preconditions, action, verification, retries,
decisions), settling (steps left in flight, on resume), rollback and recording (fenced group
commit, audit) → executors (ansible, fabric, http, promql, manual, local, noop; process.py
holds a program at its gate until its pid is durable) → store (the interface) implemented by
sqlstore (SQLite or PostgreSQL, append-only audit), put together by state → progress (the read
API) → report. `govops cutover …` (cli.py, cli_operators.py) is the thin front.
"""
