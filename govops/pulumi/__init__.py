"""The Pulumi engine: the infra/ program for every stack of an environment, under mocks.

plan (stacks run in worker processes, counted and checked) → cli (`govops plan`). The stack
files themselves are rendered from the registry by govops/render/pulumi.py.
"""
