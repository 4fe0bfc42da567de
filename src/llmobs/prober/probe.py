"""One probe: a streamed chat completion (`stream: true`, server-sent events) to one endpoint, timed on the
client: time to the first content chunk, the gaps between chunks, the total time, the tokens received and
whether the stream was well formed. Standard library only (http.client): reading the stream line by line is
what makes the first token's arrival measurable."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from llmobs.endpoints import HostEndpoint
from llmobs.prober_settings import ProberSettings

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Target:
    """An endpoint as the prober calls it; `api_key_file` is a path, the key is read for each probe."""

    endpoint: HostEndpoint
    url: str
    api_key_file: str | None = None

    @property
    def name(self) -> str:
        """How logs name the endpoint: model, instance and the URL called (never a key)."""
        return f"{self.endpoint.model} on {self.endpoint.instance} ({self.url})"


def targets(endpoints: tuple[HostEndpoint, ...], settings: ProberSettings) -> list[Target]:
    """The enabled endpoints, each at its client URL (default http://<instance>) with its key file."""
    result = []
    for endpoint in endpoints:
        override = settings.override_for(endpoint)
        if override.enabled:
            result.append(Target(endpoint, (override.url or f"http://{endpoint.instance}").rstrip("/"),
                                 override.api_key_file or settings.api_key_file))
    return result


@dataclass
class ProbeResult:
    result: str                       # one of conventions.PROBE_RESULTS
    status: int = 0                   # HTTP status, 0 without an answer
    ttft: float | None = None         # seconds from sending the request to the first content chunk
    gaps: list[float] = field(default_factory=list)   # seconds between consecutive content chunks
    duration: float = 0.0
    tokens: int = 0
    well_formed: bool = False
    detail: str = ""                  # why it failed, for the log (never the key)

    @property
    def success(self) -> bool:
        return self.result == "ok"


class _Stream:
    """What the SSE stream said so far."""

    def __init__(self, started: float):
        self.started, self.last = started, None
        self.ttft: float | None = None
        self.gaps: list[float] = []
        self.chunks = self.usage_tokens = 0
        self.finished = self.done = False
        self.problem = ""

    def line(self, raw: bytes, now: float) -> None:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text.startswith("data:"):
            return  # blank separators, comments and `event:` lines carry no data
        data = text[5:].strip()
        if data == "[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(data)
            choices = chunk.get("choices") or []
            usage = chunk.get("usage") or {}
        except (json.JSONDecodeError, AttributeError):
            self.problem = self.problem or f"a data line is not a JSON object: {data[:80]!r}"
            return
        if usage.get("completion_tokens") is not None:
            self.usage_tokens = int(usage["completion_tokens"])
        for choice in choices:
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("reasoning_content"):
                self._content(now)
            self.finished = self.finished or choice.get("finish_reason") is not None

    def _content(self, now: float) -> None:
        if self.ttft is None:
            self.ttft = now - self.started
        elif self.last is not None:
            self.gaps.append(now - self.last)
        self.last = now
        self.chunks += 1

    def verdict(self) -> str:
        """Why the stream is not a well-formed answer ("" when it is)."""
        if self.problem:
            return self.problem
        if not self.chunks:
            return "the answer has no content"
        if not (self.finished or self.done):
            return "the stream ended without a finish_reason or [DONE]"
        return ""


def _connection(url: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    if url.scheme == "https":
        return http.client.HTTPSConnection(url.hostname or "", url.port, timeout=timeout,
                                           context=ssl.create_default_context())
    return http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)


def _request(target: Target, settings: ProberSettings) -> tuple[bytes, dict[str, str], str]:
    body = {"model": target.endpoint.model, "messages": [{"role": "user", "content": settings.prompt}],
            "max_tokens": settings.max_tokens, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream",
               "User-Agent": "llmobs-endpoint-prober"}
    key = Path(target.api_key_file).read_text(encoding="utf-8").strip() if target.api_key_file else ""
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return json.dumps(body).encode(), headers, key


def probe(target: Target, settings: ProberSettings, timeout: float) -> ProbeResult:
    """Send one streamed chat completion and time its answer; never raises for what the endpoint does."""
    try:
        body, headers, key = _request(target, settings)
    except OSError as error:
        return ProbeResult("no_key", detail=f"cannot read the API key file {target.api_key_file}: {error.strerror}")
    result = _timed(target, body, headers, timeout)
    if key and key in result.detail:  # an endpoint that echoes the request's headers
        result.detail = result.detail.replace(key, "<api key>")
    return result


def _timed(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> ProbeResult:
    url = urllib.parse.urlsplit(target.url)
    started = time.perf_counter()
    deadline = started + timeout
    connection = _connection(url, timeout)
    try:
        connection.request("POST", url.path.rstrip("/") + CHAT_PATH, body, headers)
        response = connection.getresponse()
        if response.status != 200:
            return _refused(response, time.perf_counter() - started)
        stream = _Stream(started)
        while raw := _readline(response, connection, deadline):
            stream.line(raw, time.perf_counter())
    except TimeoutError:
        return ProbeResult("timeout", detail=f"no complete answer within {timeout:g}s",
                           duration=time.perf_counter() - started)
    except (OSError, http.client.HTTPException) as error:
        return ProbeResult("unreachable", detail=f"{type(error).__name__}: {error}",
                           duration=time.perf_counter() - started)
    finally:
        connection.close()
    problem = stream.verdict()
    return ProbeResult("malformed" if problem else "ok", 200, stream.ttft, stream.gaps,
                       time.perf_counter() - started, stream.usage_tokens or stream.chunks, not problem, problem)


def _readline(response: http.client.HTTPResponse, connection: http.client.HTTPConnection,
              deadline: float) -> bytes:
    """The next line of the stream, waiting no longer than the probe's deadline."""
    left = deadline - time.perf_counter()
    if left <= 0:
        raise TimeoutError
    if connection.sock is not None:
        connection.sock.settimeout(left)
    try:
        return response.readline()
    except TimeoutError:
        raise TimeoutError from None


def _refused(response: http.client.HTTPResponse, duration: float) -> ProbeResult:
    text = response.read(300).decode("utf-8", errors="replace").strip()
    result = "unauthorized" if response.status in (401, 403) else "http_error"
    hint = " (check the endpoint's API key file)" if result == "unauthorized" else ""
    return ProbeResult(result, response.status, duration=duration,
                       detail=f"HTTP {response.status}{hint}: {text[:200]}")
