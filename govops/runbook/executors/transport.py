"""How executors reach an estate over HTTP(S): the run's CA bundle, the inventory's addresses
instead of DNS when asked (`resolve: inventory`), no proxies, redirects on or off."""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.request
from collections.abc import Mapping
from typing import Any

from govops.runbook.executors.base import RunSettings


def opener(settings: RunSettings, follow: bool = True) -> urllib.request.OpenerDirector:
    context = ssl.create_default_context(
        cafile=str(settings.ca_bundle) if settings.ca_bundle else None
    )
    addresses = settings.addresses if settings.resolve == "inventory" else {}
    handlers: list[urllib.request.BaseHandler] = [
        _HTTPHandler(addresses),
        _HTTPSHandler(context, addresses),
        urllib.request.ProxyHandler({}),  # the estate's hosts are reached directly
    ]
    if not follow:
        handlers.append(_NoRedirect())
    return urllib.request.build_opener(*handlers)


def _route(conn: http.client.HTTPConnection, addresses: Mapping[str, str]) -> None:
    """Connect to the inventory's address for the host; the URL's name stays for TLS/Host."""
    if not addresses:
        return

    def create(address: tuple[str, int], timeout: Any = None, source: Any = None) -> socket.socket:
        host, port = address
        return socket.create_connection((addresses.get(host, host), port), timeout, source)

    conn._create_connection = create  # type: ignore[attr-defined]


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, addresses: Mapping[str, str]) -> None:
        super().__init__()
        self.addresses = addresses

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def factory(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            conn = http.client.HTTPConnection(host, **kwargs)
            _route(conn, self.addresses)
            return conn

        return self.do_open(factory, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, addresses: Mapping[str, str]) -> None:
        super().__init__(context=context)
        self.context = context
        self.addresses = addresses

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def factory(host: str, **kwargs: Any) -> http.client.HTTPSConnection:
            conn = http.client.HTTPSConnection(host, **kwargs)
            _route(conn, self.addresses)
            return conn

        return self.do_open(factory, req, context=self.context)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 30x is the answer
