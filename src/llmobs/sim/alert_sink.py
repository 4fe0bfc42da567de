"""A webhook receiver that records Alertmanager's notifications, for the lab and its tests.

  POST /alerts      Alertmanager's webhook payload; stored with the time it arrived (`received_at`)
  GET /alerts       every notification received, oldest first (?since=<unix time> for the newer ones)
  DELETE /alerts    forget them
  GET /-/healthy    liveness
It keeps the last MAX_NOTIFICATIONS in memory: a restart forgets them, as a chat channel would not.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from http import HTTPStatus
from typing import Any

from llmobs.errors import ConfigError
from llmobs.sim.server import JsonHandler, Listener, Reply, Request, handler

MAX_NOTIFICATIONS = 10000


class AlertSink:
    def __init__(self, address: tuple[str, int]):
        self._lock = threading.Lock()
        self.notifications: deque[dict[str, Any]] = deque(maxlen=MAX_NOTIFICATIONS)
        self.listener = Listener("alert-sink", address, self._handler())

    def record(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self.notifications.append({"received_at": time.time(), **payload})

    def since(self, when: float) -> list[dict[str, Any]]:
        with self._lock:
            return [n for n in self.notifications if n["received_at"] > when]

    def clear(self) -> None:
        with self._lock:
            self.notifications.clear()

    def _handler(self) -> type[JsonHandler]:
        return handler("SinkHandler", {
            ("GET", "/-/healthy"): lambda _: Reply(HTTPStatus.OK, "OK\n", "text/plain"),
            ("GET", "/alerts"): self._get,
            ("POST", "/alerts"): self._post,
            ("DELETE", "/alerts"): self._delete,
        }, lambda request: Reply(HTTPStatus.NOT_FOUND, {"error": f"{request.method} /alerts"}))

    def _get(self, request: Request) -> Reply:
        since = request.query.get("since", "0")
        try:
            when = float(since)
        except ValueError:
            raise ConfigError("since", f"{since!r} is not a unix time", "give seconds since 1970") from None
        return Reply(HTTPStatus.OK, self.since(when))

    def _post(self, request: Request) -> Reply:
        payload = request.json()
        if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
            raise ConfigError("body", "not an Alertmanager webhook payload", "send {alerts: [...]}")
        self.record(payload)
        return Reply(HTTPStatus.OK, {"status": "recorded"})

    def _delete(self, _request: Request) -> Reply:
        self.clear()
        return Reply(HTTPStatus.OK, {"status": "cleared"})
