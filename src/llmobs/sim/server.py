"""The simulators' HTTP side: a server whose going down also cuts kept-alive connections, a `Listener` that
can be stopped and started again (a process going down and back), and one JSON request handler that
dispatches (method, path) through a route table.

`http.server` is used on purpose: a simulated "down" must close the connection Prometheus reuses for its
scrapes, which needs the server's own list of open connections.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from llmobs.errors import ConfigError
from llmobs.sim.webconfig import WebConfig

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    """Keeps its open connections, so that going down also drops the keep-alive ones (Prometheus reuses
    its scrape connection: closing only the listening socket would leave the target up)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], web: WebConfig):
        super().__init__(address, handler)
        self.web = web
        if web.context is not None:  # the handshake runs on the request's thread, not the accepting one
            self.socket = web.context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that failed the TLS handshake or hung up is the client's business, not a traceback."""
        if isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            log.debug("%s: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class Listener:
    """An HTTP server on its own thread that can be stopped and started again (a process going down);
    `web` switches on TLS and basic auth (exporter-toolkit's web config, llmobs.sim.webconfig)."""

    def __init__(self, name: str, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 web: WebConfig | None = None):
        self.name, self.address, self.handler = name, address, handler
        self.web = web or WebConfig()
        self.server: _Server | None = None

    def start(self) -> None:
        if self.server is None:
            self.server = _Server(self.address, self.handler, self.web)
            threading.Thread(target=self.server.serve_forever, name=self.name, daemon=True).start()
            log.info("%s listening on %s:%d", self.name, self.address[0] or "*", self.address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server.drop_connections()
            self.server = None
            log.info("%s stopped", self.name)

    @property
    def up(self) -> bool:
        return self.server is not None


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes | str | dict | list | Iterator[bytes]  # an iterator: sent in chunks as it yields (a stream)
    content_type: str = "application/json"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]  # the last value of each parameter
    handler: JsonHandler

    def json(self) -> Any:
        """The body as JSON (an empty body is `{}`); a ConfigError when it is not JSON."""
        length = int(self.handler.headers.get("Content-Length") or 0)
        raw = self.handler.rfile.read(length) if length else b"{}"
        try:
            return json.loads(raw or b"{}")
        except json.JSONDecodeError as error:
            raise ConfigError("body", f"not JSON: {error}", "send a JSON object") from None


Route = Callable[[Request], Reply | None]  # None: no answer at all (the connection is closed)


def error_reply(error: ConfigError) -> Reply:
    """A refused request: 400 with the field, the problem and the fix (what `llmobs fault` prints)."""
    return Reply(HTTPStatus.BAD_REQUEST, {"error": str(error), "field": error.field, "problem": error.problem,
                                          "fix": error.fix})


class JsonHandler(BaseHTTPRequestHandler):
    """Dispatches each request to `routes[(method, path)]`, or to `not_found`; a ConfigError a route raises
    becomes a 400 that names the field and the fix."""

    protocol_version = "HTTP/1.1"
    server_version = "llmobs-sim"
    routes: ClassVar[dict[tuple[str, str], Route]] = {}
    not_found: ClassVar[Route]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def dispatch(self) -> None:
        web = getattr(self.server, "web", None)
        if web is not None and not web.authorized(self.headers.get("Authorization")):
            self.send(Reply(HTTPStatus.UNAUTHORIZED, "Unauthorized\n", "text/plain; charset=utf-8"),
                      {"WWW-Authenticate": "Basic"})
            return
        split = urlsplit(self.path)
        request = Request(self.command, split.path, {k: v[-1] for k, v in parse_qs(split.query).items()}, self)
        route = self.routes.get((self.command, split.path), type(self).not_found)
        try:
            reply = route(request)
        except ConfigError as error:
            reply = error_reply(error)
        if reply is None:
            self.close_connection = True
            return
        self.send(reply)

    def send(self, reply: Reply, headers: dict[str, str] | None = None) -> None:
        if isinstance(reply.body, Iterator):
            self.send_stream(reply.status, reply.body, reply.content_type)
            return
        body = json.dumps(reply.body, indent=1) if isinstance(reply.body, dict | list) else reply.body
        data = body.encode() if isinstance(body, str) else body
        self.send_response(reply.status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, status: int, chunks: Iterator[bytes], content_type: str) -> None:
        """A streamed answer, chunked transfer encoding, each chunk written when the iterator yields it."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client hung up mid-stream
            self.close_connection = True


def handler(name: str, routes: dict[tuple[str, str], Route], not_found: Route) -> type[JsonHandler]:
    """A JsonHandler class for `routes`; only their methods are served (others: 501, as http.server does)."""
    members: dict[str, Any] = {"routes": routes, "not_found": staticmethod(not_found)}
    members.update({f"do_{method}": JsonHandler.dispatch for method in {method for method, _ in routes}})
    return type(name, (JsonHandler,), members)
