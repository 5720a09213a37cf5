"""The cutover's DNS switch: which records move, TTL planning, RFC 2136 updates with TSIG.

`records.py` is pure (the lab's zones, a province's moves, TTL plans, diffs); `update.py`
talks DNS (dnspython) to an authoritative server and a resolver; `state.py` keeps each
province's previous RRsets durably before anything changes; `cli.py` is `govops dns`.
"""
