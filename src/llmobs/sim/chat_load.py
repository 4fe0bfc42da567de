"""The lab's load generator for a real engine: OpenAI chat completions, one at a time, at a steady pace.

The lab's simulated engines make their own traffic; a real server (the lab's llama.cpp) needs requests
sent to it. Each request asks for a short answer, so a 2-core machine keeps up; while the server is down
(`llmobs fault stop llamacpp`) the failures are counted and the pace kept, so the traffic resumes by
itself when it is started again. The loop is bounded in time (`duration_s`) and stops by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from llmobs import http
from llmobs.errors import UnreachableError

log = logging.getLogger(__name__)
PROMPTS = ("hello", "the model and the engine", "metrics of the GPU server", "you and the llama")


@dataclass
class ChatLoad:
    url: str                       # the server's base URL, e.g. http://127.0.0.1:8080
    model: str                     # the name it serves (llama-server's --alias)
    interval_s: float = 2.0        # between the starts of two requests
    max_tokens: int = 24
    duration_s: float = 6 * 3600.0
    timeout_s: float = 30.0
    sent: int = 0
    answered: int = 0
    failed: int = 0
    stopped: threading.Event = field(default_factory=threading.Event)

    def body(self) -> dict:
        prompt = PROMPTS[self.sent % len(PROMPTS)]
        return {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.max_tokens}

    def send_one(self) -> bool:
        """One chat completion; True when the server answered it with a choice."""
        self.sent += 1
        try:
            answer = http.request(f"{self.url}/v1/chat/completions", "POST", self.body(), timeout=self.timeout_s,
                                  check=False)
        except UnreachableError as error:
            log.debug("no answer: %s", error)
            self.failed += 1
            return False
        if answer.status == 200 and (answer.json() or {}).get("choices"):
            self.answered += 1
            return True
        log.debug("answered %s: %s", answer.status, answer.body[:200])
        self.failed += 1
        return False

    def run(self) -> None:
        deadline = time.monotonic() + self.duration_s
        while not self.stopped.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            self.send_one()
            if self.sent % 100 == 0:
                log.info("%d sent, %d answered, %d failed", self.sent, self.answered, self.failed)
            self.stopped.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
