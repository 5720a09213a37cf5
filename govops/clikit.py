"""What every `govops` command group shares: one error wrapper, the --env option, consoles.

Kept out of govops/cli.py so that the groups living with their packages (cutover, lab,
monitoring, converge, plan) import it without importing the top-level CLI that registers them.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from govops.errors import GovopsError, InputError
from govops.paths import inventory_dir, repo_root
from govops.redact import redact_text
from govops.registry import load_estate
from govops.registry.estate import Estate

F = TypeVar("F", bound=Callable[..., Any])
# emoji=False: "file.yml:100: key" must not print as "file.yml💯 key".
out = Console(emoji=False)
err = Console(stderr=True, emoji=False)

# Programs the commands run; missing ones get an install hint instead of a traceback.
SYSTEM_TOOLS = ("podman", "debootstrap", "ssh", "ssh-keygen", "chroot", "promtool", "pulumi")


def fail(message: str, code: int) -> None:
    message = escape(redact_text(message))  # a file name may look like Rich markup: [x]
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """One clear message and the documented exit code instead of a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GovopsError as exc:
            fail(str(exc), exc.exit_code)
        except FileNotFoundError as exc:
            if exc.filename in SYSTEM_TOOLS:
                fail(f"{exc.filename} is not installed: run `make system-deps`", 1)
            raise
        return None

    return wrapper  # type: ignore[return-value]


def write_output(path: Path, text: str, option: str) -> None:
    """Write a command's output file (`-o`, `--out`), making its folders; a path that cannot
    be written is bad input naming the option (exit 2), not a traceback."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            path, option, "a file path that can be written", got=exc.strerror or str(exc)
        ) from None


ENV_PATTERN = r"[a-z][a-z0-9-]{0,30}"


def check_env(ctx: click.Context | None, param: click.Parameter | None, value: str) -> str:
    """--env names a folder of inventories/: a plain name (as an estate's `environment`), never
    a path (`../x`) nor anything a file system refuses (exit 2)."""
    if value is not None and not re.fullmatch(ENV_PATTERN, value):
        raise click.BadParameter(f"expected a name like lab or production, got {value!r}")
    return value


def env_option(default: str = "production") -> Callable[[F], F]:
    return click.option(
        "--env",
        "env",
        default=default,
        show_default=True,
        metavar="ENV",
        callback=check_env,
        help="Environment: the folder inventories/ENV/ holding estate.yml.",
    )


def open_estate(env: str) -> tuple[Path, Estate]:
    """The checkout's root and ENV's estate (from inventory_dir)."""
    path = inventory_dir(env) / "estate.yml"
    estate = load_estate(path)
    if os.environ.get("GOVOPS_INVENTORY") and estate.environment != env:
        raise InputError(path, "environment", f"{env!r} (GOVOPS_INVENTORY)", estate.environment)
    return repo_root(), estate
