"""Streamed answers of the simulated OpenAI API (`stream: true`): server-sent events as vLLM's
serving_chat.py writes them, one `data: {chat.completion.chunk}` event per token, a usage chunk when
`stream_options.include_usage` asks, then `data: [DONE]`, paced by the engine's prefill and decode speed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StreamPlan:
    """What one streamed answer will say and how fast: `held` seconds before anything (a stall in front of
    the engine), `prefill` before the first token, `itl` between tokens."""

    ident: str
    model: str
    words: tuple[str, ...]
    finish: str
    prompt_tokens: int
    prefill: float
    itl: float
    usage: bool
    chat: bool = True
    held: float = 0.0


def _event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def events(plan: StreamPlan) -> Iterator[bytes]:
    """The SSE events of `plan`, each yielded when it is due."""
    created = int(time.time())
    base = {"id": plan.ident, "object": "chat.completion.chunk" if plan.chat else "text_completion",
            "created": created, "model": plan.model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish}
        choice.update({"delta": delta} if plan.chat else {"text": delta.get("content", "")})
        return _event({**base, "choices": [choice]})

    time.sleep(plan.held + plan.prefill)
    if plan.chat:
        yield chunk({"role": "assistant", "content": ""})
    for index, word in enumerate(plan.words):
        if index:
            time.sleep(plan.itl)
        last = index == len(plan.words) - 1
        yield chunk({"content": (" " if index else "") + word}, plan.finish if last else None)
    if plan.usage:
        yield _event({**base, "choices": [], "usage": {
            "prompt_tokens": plan.prompt_tokens, "completion_tokens": len(plan.words),
            "total_tokens": plan.prompt_tokens + len(plan.words)}})
    yield _event("[DONE]")
