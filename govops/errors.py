"""Errors a user meets: each names where the problem is and what was expected.

The CLI turns them into one clear line and an exit code; nothing below the CLI prints.
"""

from __future__ import annotations

from pathlib import Path


class GovopsError(Exception):
    """An operational failure (exit code 1)."""

    exit_code = 1


class InputError(GovopsError):
    """Bad input: names the file, the key path and what was expected (exit code 2)."""

    exit_code = 2

    def __init__(
        self,
        file: Path | str,
        key: str,
        expected: str,
        got: object = None,
        line: int | None = None,
    ) -> None:
        self.file = str(file)
        self.key = key or "(top level)"
        self.expected = expected
        self.got = got
        self.line = line
        where = f"{self.file}:{line}" if line else self.file
        message = f"{where}: {self.key}: expected {expected}"
        if got is not None:
            message += f", got {_short(got)}"
        super().__init__(message)


class InputErrors(InputError):
    """Several input errors found in one pass, reported together."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.file, first.key, first.expected, first.got, first.line)
        self.args = ("\n".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def _short(value: object, limit: int = 60) -> str:
    """The value as given, shortened, and without a secret it may hold (a URL's password)."""
    from govops.redact import redact_text

    text = redact_text(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
