"""The policy pack: the estate's rules as plain checks, shared by the pack and the tests."""
