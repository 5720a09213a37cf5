"""The one redaction of the suite: what it prints, logs, stores or reports holds no secret.

Used wherever a URL, a connection string or a command line leaves the process: the state
store's printed URL and every row it writes (applied at its write boundary, so no caller can
forget), `cutover status --json`, the report, the CLI's messages and echo, log lines.

What is a secret here:

- the password of a URL's userinfo (`postgresql://alice:SECRET@db/x` → `alice:***@`); for
  http(s) a user alone is a token too (`https://TOKEN@host` → `***@`);
- the value of a query parameter, a `key=value` pair (PostgreSQL's conninfo, an environment
  assignment) or a `--long-option` whose name says it is one: password, passwd, pwd,
  sslpassword, secret, token (access_token, …), api_key / apikey, auth, credential,
  signature, private_key — case-insensitive (`?Password=`, `GOVOPS_PROMETHEUS_PASSWORD=`,
  `--client-secret X`);
- HTTP credentials headers: `Authorization: Bearer …`, `Proxy-Authorization`, `Cookie`,
  `X-Api-Key`, `X-Auth-Token`, written as `Name: value` or as a JSON/dict entry.

Not secrets, so kept for diagnosis: user names (but see http above), host names, paths —
`passfile=~/.pgpass` and `sslkey=/etc/…/key.pem` name where a secret is, not the secret.
Short options (`-p`) are left alone: `ssh -p 22` is a port, and nothing in the suite passes
a password with one.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

MASK = "***"

# A name (parameter, key, option, header) holds a secret if it contains one of these ...
_SECRET_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "credential",
    "signature",
    "privatekey",
    "cookie",
    "sessionid",
)
# ... or is made of words (split at _ - . and spaces) among which is one of these.
_SECRET_WORDS = frozenset({"pass", "pwd", "pw", "auth", "authorization"})
# Names that contain a secret word but hold none: where a secret is, or what kind it is.
_NOT_SECRET = re.compile(
    r"^(?:passfile|sslkey|sslcert|sslrootcert|sslcrl|auth[_-]?(?:method|type)|token[_-]?type|"
    r".*[_-](?:file|path|dir|url))$",
    re.IGNORECASE,
)
_HEADERS = (
    r"authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|"
    r"x-vault-token|private-token"
)

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s'\"<>`]+")
# key=value (conninfo, query strings, env assignments, --opt=value), the value plain or quoted.
_PAIR = re.compile(
    r"(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;'\"]+)"
)
# "password": "x" / 'token': 'x' (JSON, Python reprs).
_QUOTED_PAIR = re.compile(
    r"(?P<q>[\"'])(?P<key>[A-Za-z0-9_.-]+)(?P=q)(?P<sep>\s*:\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
)
# Authorization: Bearer x (header lines; the value runs to the end of the line or a quote).
_HEADER_LINE = re.compile(
    rf"(?P<key>\b(?:{_HEADERS}))(?P<sep>\s*:\s*)(?P<value>[^\r\n\"',}}]+)", re.IGNORECASE
)
# --password x (an option, then its value as the next word).
_OPTION_WORD = re.compile(
    r"(?P<key>(?<!\S)--[A-Za-z0-9][A-Za-z0-9_-]*)(?P<sep>\s+)(?P<value>[^\s-]\S*)"
)


def is_secret_name(name: str) -> bool:
    """Whether a parameter, key, option or header of this name holds a secret."""
    bare = name.strip().lstrip("-").lower()
    if not bare or _NOT_SECRET.match(bare):
        return False
    if re.fullmatch(_HEADERS, bare):
        return True
    squashed = re.sub(r"[^a-z0-9]", "", bare)
    if any(part in squashed for part in _SECRET_PARTS):
        return True
    return not _SECRET_WORDS.isdisjoint(re.split(r"[^a-z0-9]+", bare))


def redact_url(url: str) -> str:
    """`url` without the password of its userinfo and the values of secret query parameters."""
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
    except ValueError:  # not a URL urllib can read (e.g. a broken IPv6 literal): by pattern
        return _redact_pairs(_redact_userinfo(url))
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        if colon:
            userinfo = f"{user}:{MASK}"
        elif parts.scheme.lower() in ("http", "https"):
            userinfo = MASK  # https://TOKEN@host: the lone user is the credential
        netloc = f"{userinfo}@{hostport}"
    query = _redact_query(parts.query)
    fragment = _redact_query(parts.fragment) if "=" in parts.fragment else parts.fragment
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_query(query: str) -> str:
    """Secret parameters' values masked; the others left byte for byte as they were."""
    if not query:
        return query
    pieces = []
    for piece in re.split(r"([&;])", query):
        name, eq, _value = piece.partition("=")
        if eq and is_secret_name(urllib.parse.unquote_plus(name)):
            piece = f"{name}={MASK}"
        pieces.append(piece)
    return "".join(pieces)


_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")


def _redact_userinfo(text: str) -> str:
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def _mask_value(match: re.Match[str]) -> str:
    if not is_secret_name(match["key"]):
        return match[0]
    value = match["value"]
    quote = value[0] if value[:1] in ("'", '"') and value[-1:] == value[:1] else ""
    key = f"{match['q']}{match['key']}{match['q']}" if "q" in match.groupdict() else match["key"]
    return f"{key}{match['sep']}{quote}{MASK}{quote}"


def _mask_header(match: re.Match[str]) -> str:
    return f"{match['key']}{match['sep']}{MASK}"


def _redact_pairs(text: str) -> str:
    text = _PAIR.sub(_mask_value, text)
    text = _QUOTED_PAIR.sub(_mask_value, text)
    text = _OPTION_WORD.sub(_mask_value, text)
    return _HEADER_LINE.sub(_mask_header, text)


def redact_dsn(dsn: str) -> str:
    """A PostgreSQL connection string, URL (`postgresql://…`) or conninfo (`host=… password=…`),
    without its passwords; read by psycopg's own parser when it can."""
    if "://" in dsn.split("=", 1)[0]:
        return redact_url(dsn)
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(dsn)
    except Exception:  # not installed, or not a conninfo psycopg reads: by pattern
        return _redact_pairs(dsn)
    if not any(is_secret_name(k) for k in params):
        return dsn
    masked = {k: (MASK if is_secret_name(k) else v) for k, v in params.items()}
    return make_conninfo(**{k: str(v) for k, v in masked.items() if v is not None})


def redact_text(text: str) -> str:
    """Free text (a message, a log line, a command line as one string, a report) with every
    secret above masked."""
    if not text:
        return text
    text = _URL.sub(lambda m: redact_url(m[0]), text)
    return _redact_pairs(text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line as a list: `--password X` and `--password=X` masked, URLs redacted."""
    result: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            result.append(MASK)
            mask_next = False
            continue
        if arg.startswith("--") and "=" not in arg and is_secret_name(arg):
            mask_next = True
            result.append(arg)
            continue
        result.append(redact_text(arg))
    return result


def redact(value: Any) -> Any:
    """Strings, and strings inside dicts and lists (a dict entry named like a secret is masked
    whole): for JSON output and stored structures."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (MASK if isinstance(k, str) and is_secret_name(k) and v else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def credentials_in_url(url: str) -> list[str]:
    """What in `url` is a credential: "userinfo", and the names of secret query parameters."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return ["userinfo"] if _USERINFO.search(url) else []
    found = ["userinfo"] if "@" in parts.netloc else []
    for piece in re.split(r"[&;]", parts.query):
        name = urllib.parse.unquote_plus(piece.partition("=")[0])
        if name and is_secret_name(name):
            found.append(name)
    return found


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (its arguments merged in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redact_logs(logger: logging.Logger | None = None) -> None:
    """Redact every line the handlers of `logger` (default: the root logger) write."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
