"""Shared pytest configuration. Keep this minimal; fixtures live in tests/fixtures/."""

pytest_plugins = ["tests.fixtures.postgres"]
