"""Options every `govops cutover` command shares (kept apart so that cli.py and
cli_operators.py both use them without importing each other)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def state_option(fn: F) -> F:
    return click.option(
        "--state",
        "state",
        envvar="GOVOPS_RUNBOOK_STATE",
        metavar="URL",
        default=None,
        help="State store: a SQLite file (default ${GOVOPS_CACHE:-~/.cache/govops}/runbook/"
        "state.sqlite3) or postgresql://… shared by many operators. Env: GOVOPS_RUNBOOK_STATE.",
    )(fn)


def as_option(fn: F) -> F:
    return click.option(
        "--as",
        "actor",
        metavar="NAME",
        default=None,
        help="Who, for the audit log (default: the OS user).",
    )(fn)
