"""HS256 JWT-shaped access tokens for the stand-in single sign-on (pure functions)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: dict[str, Any], key: bytes) -> str:
    head = _b64(json.dumps(HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def verify(token: str, key: bytes, now: float) -> dict[str, Any]:
    """The claims of a token signed with key and not expired at `now`, else TokenError."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token")
    head, body, mac = parts
    expected = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    try:
        signature = _unb64(mac)
    except ValueError as exc:
        raise TokenError("malformed token") from exc
    if not hmac.compare_digest(signature, expected):
        raise TokenError("bad signature")
    try:
        header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise TokenError("malformed token") from exc
    if header != HEADER or not isinstance(claims, dict):
        raise TokenError("unexpected header")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now:
        raise TokenError("expired")
    return claims
