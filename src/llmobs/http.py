"""The kit's one HTTP client (standard library only): JSON in and out, an error status as `HttpError`,
and a service that does not answer as `UnreachableError`. The CLI, the lab's reload, the fault commands,
the dashboards' live checks and the tests talk to Prometheus, Alertmanager and the simulators through it."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from llmobs.errors import UnreachableError

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = ""

    def json(self) -> Any:
        """The body as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class HttpError(Exception):
    """The service answered with an error status; `response` is its answer."""

    def __init__(self, url: str, response: Response):
        self.url, self.response = url, response
        super().__init__(f"{url} answered HTTP {response.status}: {response.text.strip()[:500]}")


def url(base: str, path: str, params: dict[str, Any] | None = None) -> str:
    """`base` + `path`, with `params` as its query string."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    return f"{base.rstrip('/')}/{path.lstrip('/')}{query}"


def request(target: str, method: str = "GET", body: Any = None, *, timeout: float = DEFAULT_TIMEOUT_S,
            check: bool = True, hint: str = "is it running?") -> Response:
    """Send `body` (JSON, unless bytes) to `target`. An error status raises HttpError when `check`;
    no answer raises UnreachableError, with `hint` saying what to look at."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {} if body is None or isinstance(body, bytes) else {"Content-Type": "application/json"}
    if method in ("POST", "PUT") and data is None:
        data = b""
    prepared = urllib.request.Request(target, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as answer:
            return Response(answer.status, answer.read(), answer.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as error:
        response = Response(error.code, error.read(), error.headers.get("Content-Type", "") if error.headers else "")
        if check:
            raise HttpError(target, response) from None
        return response
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UnreachableError(target, str(reason), hint) from None


def get_json(target: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
    return request(target, timeout=timeout).json()


def call_json(target: str, method: str = "GET", body: Any = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
    """The JSON answer of `method target` with a JSON `body`."""
    return request(target, method, body, timeout=timeout).json()
