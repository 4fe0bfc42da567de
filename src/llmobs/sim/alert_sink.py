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
from urllib.parse import parse_qs, urlsplit

from llmobs.errors import ConfigError
from llmobs.sim.host import Listener, _Handler

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

    def _handler(self) -> type[_Handler]:
        sink = self

        class SinkHandler(_Handler):
            def do_GET(self) -> None:
                split = urlsplit(self.path)
                if split.path == "/-/healthy":
                    self.reply(HTTPStatus.OK, "OK\n", "text/plain")
                elif split.path == "/alerts":
                    since = parse_qs(split.query).get("since", ["0"])[-1]
                    try:
                        when = float(since)
                    except ValueError:
                        self.error(ConfigError("since", f"{since!r} is not a unix time", "give seconds since 1970"))
                        return
                    self.reply(HTTPStatus.OK, sink.since(when))
                else:
                    self.reply(HTTPStatus.NOT_FOUND, {"error": "GET /alerts"})

            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/alerts":
                    self.reply(HTTPStatus.NOT_FOUND, {"error": "POST /alerts"})
                    return
                try:
                    payload = self.read_json()
                except ConfigError as error:
                    self.error(error)
                    return
                if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
                    self.error(ConfigError("body", "not an Alertmanager webhook payload", "send {alerts: [...]}"))
                    return
                sink.record(payload)
                self.reply(HTTPStatus.OK, {"status": "recorded"})

            def do_DELETE(self) -> None:
                with sink._lock:
                    sink.notifications.clear()
                self.reply(HTTPStatus.OK, {"status": "cleared"})

        return SinkHandler
