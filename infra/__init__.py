"""The Pulumi program: each province's estate on the government cloud (OpenStack).

`infra/__main__.py` is what `pulumi up` runs; everything else is importable without side
effects, so `govops plan` and the unit tests run the same program under Pulumi's mocks.
"""
