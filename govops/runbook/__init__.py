"""The cutover engine: runbooks as data, run province by province in waves.

model (schema) → loader (+ lint) → scheduler (waves, rate control) → engine (one province's
steps: preconditions, action, verification, retries, rollback) → executors (ansible, fabric,
http, promql, manual, local, noop) → state (SQLite or PostgreSQL, append-only audit) →
progress (the read API) → report. `govops cutover …` (cli.py) is the thin front.
"""
