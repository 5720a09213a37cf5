"""Templating of runbook strings with a small, explicit set of variables (jinja2, strict).

The variable set is deliberately small so that the linter can name every unknown variable
with its file, line and key before a run starts, rather than an executor failing mid-wave.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

# Known before anything province-specific: settings are rendered with these.
RUN_VARS = frozenset({"env", "cache", "root"})
# Known for every province (clears, vars, preconditions).
PROVINCE_VARS = frozenset(
    {
        "env",
        "province",  # codename: ho_chi_minh
        "label",  # DNS label: ho-chi-minh
        "code",  # official two-digit code: "79"
        "name",  # Thành phố Hồ Chí Minh
        "domain",  # the estate's DNS domain, or ""
        "dot_domain",  # ".gov.example" or "" — append to a host label
        "counterparts",  # national counterparts' base URLs by id (portal, sso, napd, …)
        "communes",  # [{code, codename, name, type}, …]
        "commune_count",
        "agencies",  # [{code, name}, …]: the People's Committee's, then each commune's
        "run_id",
        "t0",
    }
)
# Known to actions, verifications and rollbacks.
ACTION_VARS = PROVINCE_VARS | {"idempotency_key", "attempt", "step"}
# Known to steps with `foreach: commune`.
FOREACH_VARS = frozenset({"commune"})

_ENV = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)


class TemplateError(ValueError):
    """A template that does not parse or names an unknown variable."""


@lru_cache(maxsize=4096)
def _compile(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


_PLAIN_VARIABLE = re.compile(
    r"(?<!\{)\{\{\s*(?P<expr>(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}"
)
# Words jinja reads as constants or operators, not variables: those go to its parser.
_KEYWORDS = frozenset(
    {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else"}
)


def _is_literal(text: str) -> bool:
    """No template syntax at all (`{` alone, as in JSON, is text to jinja too)."""
    return "{{" not in text and "{%" not in text and "{#" not in text


def variables_of(text: str) -> set[str]:
    """The variables `text` reads; raises TemplateError if it does not parse."""
    return set(_variables_of(text))


@lru_cache(maxsize=65536)
def _variables_of(text: str) -> frozenset[str]:
    if _is_literal(text):
        return frozenset()
    # The common case, `{{ name }}` or `{{ counterparts.napd }}` in text: no need for jinja's
    # parser (linting a 10,000-step runbook would spend most of its time there).
    found = list(_PLAIN_VARIABLE.finditer(text))
    words = {w for m in found for w in m["expr"].split(".")}
    if found and _KEYWORDS.isdisjoint(words) and _is_literal(_PLAIN_VARIABLE.sub("", text)):
        return frozenset(m["name"] for m in found)
    try:
        ast = _ENV.parse(text)
        return frozenset(jinja2.meta.find_undeclared_variables(ast))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"a valid template ({exc.message})") from None
    except RecursionError:  # `{{ ((((…)))) }}` nested beyond what jinja's parser recurses
        raise TemplateError("a template nested less deeply") from None


def render(text: str, context: Mapping[str, Any]) -> str:
    if "{" not in text:  # the common case: a literal, no need to touch jinja
        return text
    try:
        return _compile(text).render(context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {text!r}: {exc.message}") from None
    except Exception as exc:  # a syntax error, or an expression failing (`{{ 1 / 0 }}`)
        raise TemplateError(f"template {text!r}: {_why(exc)}") from None


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {exc}"


_SINGLE = re.compile(r"^\{\{(?P<expr>(?:(?!\{\{|\}\}).)+)\}\}$", re.DOTALL)


@lru_cache(maxsize=4096)
def _expression(text: str) -> Any:
    return _ENV.compile_expression(text, undefined_to_none=False)


def evaluate(text: str, context: Mapping[str, Any]) -> Any:
    """A string that is one `{{ expression }}` keeps the expression's type (a list of commune
    codes stays a list in a JSON body, a count stays a number); anything else renders as text."""
    match = _SINGLE.match(text.strip())
    if match is None:
        return render(text, context)
    try:
        value = _expression(match["expr"])(**context)
    except Exception as exc:  # a syntax error, or an expression failing (`{{ 1 / 0 }}`)
        raise TemplateError(f"template {text!r}: {_why(exc)}") from None
    if isinstance(value, jinja2.Undefined):
        raise TemplateError(f"template {text!r}: {value._undefined_message}")
    return value


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside `value` (dicts, lists); other scalars pass through."""
    if isinstance(value, str):
        return evaluate(value, context)
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, context) for v in value]
    return value


def strings_in(
    value: Any, path: tuple[str | int, ...] = (), templates_only: bool = False
) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string inside `value` with its key path (for linting templates with line numbers);
    `templates_only`: only those holding template syntax (the others read no variable)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    _strings(value, path, found, templates_only)
    return found


def _strings(
    value: Any,
    path: tuple[str | int, ...],
    found: list[tuple[tuple[str | int, ...], str]],
    templates_only: bool,
) -> None:
    # Called for every action of every step when linting: strings are checked in place, only
    # containers recurse, and a path is made only for a string that is kept.
    if isinstance(value, str):
        if not templates_only or "{" in value:
            found.append((path, value))
        return
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return
    for k, v in items:
        if isinstance(v, str):
            if not templates_only or "{" in v:
                found.append(((*path, k if isinstance(k, int) else str(k)), v))
        elif isinstance(v, dict | list | tuple):
            _strings(v, (*path, k if isinstance(k, int) else str(k)), found, templates_only)
