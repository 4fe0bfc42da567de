"""Record SGLang 0.5.23's `/metrics` exposition by running SGLang's own metric collectors on the CPU.

`sglang serve --enable-metrics` keeps every metric in prometheus_client's multiprocess mode: the launcher calls
`set_prometheus_multiproc_dir()`, each process (HTTP/tokenizer, scheduler, detokenizer) writes its own files, and
the HTTP server mounts `/metrics` with `add_prometheus_middleware()`, a `MultiProcessCollector` over those files.
This script lays the processes out as the server does on one GPU (tp=1, dp=1) and uses SGLang's code for every
metric: `prepare_server_args` and `publish` for the configuration, `SchedulerMetricsCollector.init_new`,
`RadixCacheMetricsCollector` (as `UnifiedRadixCache` makes it), `TokenizerMetricsCollector`, the cpu monitors,
the HTTP request-metrics middleware and the `/metrics` mount. What the engine does is decided by a small model in
this script (virtual time; Llama-3.1-8B-Instruct on one 24 GB L4: 37,632 KV tokens, chunked prefill 4096), and
its events reach SGLang's collectors through the calls that SGLang's scheduler (`metrics_reporter.py`,
`req_time_stats.py`) and tokenizer manager (`collect_metrics`, `abort_request`) make. The workload has short chat
requests sharing a system prompt (prefix-cache hits), one prompt chunked into three prefills, long generations on
the native /generate API, a structured-output request, a client that disconnects while streaming, a prompt longer
than the context (HTTP 400), a burst of long RAG prompts that fills the KV cache (a queue, evictions, a retraction,
a client that gives up while queued), health checks, and Prometheus scrapes. The scrape is taken while requests
are still running and waiting. The workload is seeded; only the pid labels, the order of the metric families and
the cpu-seconds counters of the monitor threads change from run to run.

Run it in a virtual environment of its own (no GPU, no model; about 7 GB: torch is SGLang's pin, a CUDA build that
runs on the CPU; the other packages are only what the imported modules need, not SGLang's full requirements):

    python3.11 -m venv /tmp/sglang-venv
    /tmp/sglang-venv/bin/pip install --no-deps sglang==0.5.23 apache-tvm-ffi==0.1.11
    /tmp/sglang-venv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/sglang-venv/bin/pip install prometheus_client msgspec fastapi uvicorn httpx psutil numpy pillow orjson \
        pybase64 requests packaging pyzmq setproctitle uvloop pydantic python-multipart tqdm regex xxhash zstandard \
        distro IPython dill aiohttp transformers==5.19.0 sentencepiece compressed-tensors gguf
    HF_HUB_OFFLINE=1 /tmp/sglang-venv/bin/python tests/sim/data/record_sglang.py tests/sim/data/sglang-0.5.23.prom
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import multiprocessing
import random
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request as HttpRequest  # module level: FastAPI resolves the handler's annotation here

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SERVER_ARGV = ["--model-path", "dummy", "--served-model-name", MODEL, "--enable-metrics", "--host", "127.0.0.1"]

# The deployment the engine model stands for.
KV_TOKENS = 37_632  # max_total_num_tokens of an 8B model (128 KiB per token) in what an L4 leaves after the weights
CONTEXT_LEN = 131_072
CHUNKED_PREFILL = 4096  # SGLang's default for a 24 GB GPU (memory_hook.py)
MAX_PREFILL_TOKENS = 16_384
CUDA_GRAPH_MAX_BS = 48
DECODE_LOG_INTERVAL = 40
FORCE_STREAM_INTERVAL = 50  # non-streaming requests get an output every 50 tokens (SGLANG_FORCE_STREAM_INTERVAL)
INIT_NEW_TOKEN_RATIO, MIN_NEW_TOKEN_RATIO, DECAY_STEPS = 0.7, 0.7 * 0.14, 600
SYSTEM_PROMPT = 1024
SCRAPE_AT = 90.0  # virtual seconds: the recorded scrape


@dataclass
class Request:
    """One request of the workload and what the engine model did with it."""

    rid: str
    arrival: float
    prompt: int
    output: int  # tokens generated before it stops (finish "stop") or hits max_tokens (finish "length")
    finish: str
    stream: bool
    endpoint: str = "/v1/chat/completions"
    chat: bool = True
    grammar: bool = False
    disconnect_after_tokens: int | None = None  # a streaming client that goes away
    give_up_at: float | None = None  # a client that gives up while queued
    rejected: bool = False  # longer than the context: the tokenizer refuses it (HTTP 400)
    cached: int = 0
    prefilled: int = 0
    generated: int = 0
    recomputed: int = 0  # tokens generated before a retraction, prefilled again as prompt
    retracted: bool = False
    wait_since: float = 0.0
    forwarded: bool = False
    prefill_done: float | None = None
    outputs: list[tuple[float, int]] = field(default_factory=list)
    finished_at: float | None = None
    finished_as: str | None = None
    last_forward_entry: float = 0.0

    @property
    def kv(self) -> int:
        return self.prefilled - self.cached + self.generated

    @property
    def completion(self) -> int:
        return self.generated + self.recomputed


def workload(rng: random.Random) -> list[Request]:
    reqs: list[Request] = []

    def add(**kw) -> Request:
        req = Request(rid=f"req-{len(reqs):03d}", **kw)
        reqs.append(req)
        return req

    t = 0.4
    while t < SCRAPE_AT:  # chat traffic all along
        max_tokens = rng.choice([256, 512, 1024])
        natural = int(rng.lognormvariate(4.9, 0.7))
        add(arrival=round(t, 3), prompt=SYSTEM_PROMPT + rng.randint(40, 900), output=min(natural, max_tokens),
            finish="length" if natural >= max_tokens else "stop", stream=rng.random() < 0.8)
        t += rng.expovariate(1 / 3.0)
    add(arrival=9.7, prompt=11_000, output=220, finish="stop", stream=False, chat=False)  # three chunks
    add(arrival=14.2, prompt=SYSTEM_PROMPT + 310, output=96, finish="stop", stream=False, grammar=True)
    add(arrival=31.5, prompt=SYSTEM_PROMPT + 420, output=400, finish="stop", stream=True, disconnect_after_tokens=40)
    for i in range(4):  # batch summaries that run to max_tokens=1024 on the native API
        add(arrival=36.0 + 0.3 * i, prompt=rng.randint(2500, 3500), output=1024, finish="length", stream=False,
            chat=False, endpoint="/generate")
    add(arrival=55.0, prompt=140_000, output=0, finish="abort", stream=False, chat=False, rejected=True)
    for i in range(7):  # a burst of long RAG prompts just before the scrape: a queue, KV pressure
        add(arrival=70.0 + 0.6 * i, prompt=rng.randint(4000, 7000), output=rng.randint(120, 300), finish="stop",
            stream=False, chat=False, give_up_at=78.0 if i == 6 else None)
    reqs.sort(key=lambda r: r.arrival)
    return [r for r in reqs if r.arrival < SCRAPE_AT]


class EngineModel:
    """Continuous batching in virtual time, FCFS, prefill first; emits the scheduler's metric calls."""

    def __init__(self, reqs: list[Request]):
        self.pending = deque(r for r in reqs if not r.rejected)
        self.waiting: list[Request] = []
        self.running: list[Request] = []
        self.chunked: Request | None = None
        self.evictable: deque[int] = deque()  # finished sequences left in the radix cache, oldest first
        self.system_prompt_cached = False
        self.new_token_ratio = INIT_NEW_TOKEN_RATIO
        self.calls: list[tuple[str, dict]] = []  # (SchedulerMetricsCollector method, kwargs)
        self.cache_calls: list[tuple[str, dict]] = []  # (RadixCacheMetricsCollector method, kwargs)
        self.t = 0.0
        self.decode_steps = 0
        self.tokens_since_log = 0
        self.last_decode_log = 0.0
        self.retracted_since_log = 0
        self.stats: dict[str, float] = {}
        self.last_gen_throughput = 0.0
        self.stage_seconds: dict[str, float] = {}
        self.idle_seconds = 0.0
        self.last_flush = 0.0

    # -- accounting -----------------------------------------------------------------------------------------------
    def used(self) -> int:
        active = [*self.running, *([self.chunked] if self.chunked else [])]
        shared = SYSTEM_PROMPT if any(r.chat and r.cached for r in active) else 0
        return shared + sum(r.kv for r in active)

    def free(self) -> int:
        return KV_TOKENS - self.used() - sum(self.evictable)

    def reserve(self, extra: int) -> bool:
        """Evict from the radix cache until `extra` tokens fit; False if they cannot."""
        if extra > KV_TOKENS - self.used():
            return False
        evicted = 0
        while self.free() < extra:
            evicted += self.evictable.popleft()
        if evicted:
            self.cache_calls.append(("observe_eviction_duration", {"duration_seconds": 0.0004 + evicted * 2.1e-7}))
            self.cache_calls.append(("increment_eviction_num_tokens", {"num_tokens": evicted}))
        return True

    def stage(self, **seconds: float) -> None:
        for name, value in seconds.items():
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + value

    def call(self, method: str, **kwargs) -> None:
        self.calls.append((method, kwargs))

    def log_stats(self, **owned: float) -> None:
        """The scheduler keeps one SchedulerStats: a prefill report sets cache_hit_rate and new_token_ratio, a
        decode report gen_throughput and decode_sum_seq_lens, both the queues and the pool (is_cuda_graph is never
        set in 0.5.23)."""
        used = self.used()
        self.stats.update(owned)
        self.stats.update({
            "num_running_reqs": len(self.running), "num_queue_reqs": len(self.waiting),
            "token_usage": used / KV_TOKENS, "full_token_usage": used / KV_TOKENS, "num_used_tokens": used,
            "kv_used_tokens": used, "kv_available_tokens": self.free(), "kv_evictable_tokens": sum(self.evictable),
            "num_retracted_reqs": self.retracted_since_log,
        })
        self.call("log_stats", stats=dict(self.stats))
        self.retracted_since_log = 0
        elapsed = self.t - self.last_flush
        self.call("increment_scheduler_idle_seconds", t=self.idle_seconds)
        self.call("increment_scheduler_process_cpu_seconds", t=elapsed * 0.97)
        for name, seconds in sorted(self.stage_seconds.items()):
            self.call("increment_scheduler_stage_seconds", stage=name, seconds=seconds)
        self.stage_seconds, self.idle_seconds, self.last_flush = {}, 0.0, self.t

    # -- the loop -------------------------------------------------------------------------------------------------
    def run(self) -> None:
        while self.t < SCRAPE_AT:
            self.receive()
            self.give_up()
            batch = self.next_prefill()
            if batch:
                self.prefill(batch)
            elif self.running:
                self.decode()
            elif self.waiting or self.chunked:
                raise RuntimeError(f"the engine model stalled at t={self.t:.3f}")
            else:
                gap = (self.pending[0].arrival if self.pending else SCRAPE_AT) - self.t
                self.idle_seconds += gap
                self.stage(idle=gap)
                self.t += gap

    def receive(self) -> None:
        while self.pending and self.pending[0].arrival <= self.t:
            req = self.pending.popleft()
            tokenized = req.arrival + 0.002 + req.prompt * 4e-7  # the tokenizer manager's share
            self.t = max(self.t, tokenized + 0.0006)
            req.wait_since = self.t
            self.call("observe_per_stage_req_latency", stage="request_process", latency=0.0004 + req.prompt * 3e-8)
            self.stage(recv_requests=0.0003, process_input_requests=0.0005)
            self.waiting.append(req)

    def give_up(self) -> None:
        for req in [r for r in self.waiting if r.give_up_at is not None and r.give_up_at <= self.t]:
            self.waiting.remove(req)
            self.finish(req, "abort")

    def next_prefill(self) -> list[tuple[Request, int]]:
        if self.chunked:  # the chunked request continues first, once its next chunk fits
            req = self.chunked
            chunk = min(CHUNKED_PREFILL, req.prompt - req.prefilled)
            return [(req, chunk)] if self.reserve(chunk) else []
        batch, budget = [], MAX_PREFILL_TOKENS
        for req in list(self.waiting):
            hit = SYSTEM_PROMPT if req.chat and self.system_prompt_cached and not req.prefilled else 0
            todo = req.prompt - max(req.prefilled, hit)
            reserved = sum(int((r.output - r.generated) * self.new_token_ratio) for r in self.running)
            need = min(todo, CHUNKED_PREFILL) + int(req.output * self.new_token_ratio)
            if todo > budget or not self.reserve(need + reserved):
                break
            if not req.prefilled:
                req.cached = req.prefilled = hit
            self.waiting.remove(req)
            batch.append((req, min(todo, CHUNKED_PREFILL)))
            budget -= todo
            if todo > CHUNKED_PREFILL:
                self.chunked = req
                break
        return batch

    def prefill(self, batch: list[tuple[Request, int]]) -> None:
        computed = sum(n for _, n in batch)
        hits = sum(r.cached for r, _ in batch if not r.forwarded)
        reprocessed = sum(n for r, n in batch if r.retracted)  # re-counts that the effective counter leaves out
        for req, _ in batch:
            if not req.forwarded:  # one queue-time sample per request, at its first forward
                req.forwarded = True
                self.call("observe_queue_time", latency=self.t - req.wait_since)
            if not req.last_forward_entry:  # the first forward, or the first after a retraction
                req.last_forward_entry = self.t
        cost = 0.012 + computed * 1.9e-4
        self.t += cost
        self.stage(get_next_batch_to_run=0.0009, run_batch=cost, process_batch_result=0.0007)
        for req, n in batch:
            req.prefilled += n
            if req.chat:
                self.system_prompt_cached = True
            if req.prefilled < req.prompt:
                self.call("observe_per_stage_req_latency", stage="chunked_prefill", latency=cost)
                continue
            if req is self.chunked:
                self.chunked = None
            if req.prefill_done is None:  # set_prefill_finished_time keeps the first one
                req.prefill_done = self.t
            self.call("observe_per_stage_req_latency", stage="prefill_forward", latency=self.t - req.last_forward_entry)
            req.generated = 1  # the prefill samples the first token
            self.emit(req)
            self.running.append(req)
        self.call("increment_prefill_cuda_graph_pass", value=False)
        self.call("increment_realtime_tokens", dp_cooperation_info=None, prefill_compute_tokens=computed,
                  prefill_cache_tokens=hits)
        self.call("increment_effective_prefill_tokens", input_tokens=computed - reprocessed, device_hit_tokens=hits,
                  host_hit_tokens=0, storage_hit_tokens=0)
        stale = self.t - self.last_decode_log > 30.0  # GEN_THROUGHPUT_STALENESS_SECONDS
        self.log_stats(cache_hit_rate=hits / (hits + computed), new_token_ratio=self.new_token_ratio,
                       gen_throughput=0.0 if stale else self.last_gen_throughput)

    def decode(self) -> None:
        if self.free() < len(self.running) and not self.reserve(len(self.running)):
            self.retract()
            if not self.running:
                return
        seq = sum(r.prefilled + r.generated for r in self.running)
        cost = 0.050 + 0.0004 * len(self.running) + seq * 4.4e-7
        self.t += cost
        self.stage(get_next_batch_to_run=0.0004, run_batch=cost, process_batch_result=0.0006)
        self.call("increment_decode_cuda_graph_pass", value=len(self.running) <= CUDA_GRAPH_MAX_BS)
        self.call("increment_realtime_tokens", dp_cooperation_info=None, decode_tokens=len(self.running))
        self.tokens_since_log += len(self.running)
        self.decode_steps += 1
        for req in list(self.running):
            req.generated += 1
            self.emit(req)
        decay = (INIT_NEW_TOKEN_RATIO - MIN_NEW_TOKEN_RATIO) / DECAY_STEPS
        self.new_token_ratio = max(MIN_NEW_TOKEN_RATIO, self.new_token_ratio - decay)
        if self.decode_steps % DECODE_LOG_INTERVAL == 0:
            self.last_gen_throughput = self.tokens_since_log / (self.t - self.last_decode_log)
            self.tokens_since_log, self.last_decode_log = 0, self.t
            self.log_stats(gen_throughput=self.last_gen_throughput,
                           decode_sum_seq_lens=sum(r.prefilled + r.generated for r in self.running))

    def retract(self) -> None:
        """Out of KV during decode: the request with the most prompt left goes back to the queue, recomputed later."""
        victim = max(self.running, key=lambda r: (r.prompt - r.cached, -r.generated))
        self.running.remove(victim)
        self.call("increment_retracted_reqs", num_retracted_reqs=1, num_retracted_input_tokens=victim.prompt,
                  num_retracted_output_tokens=victim.generated)
        self.retracted_since_log += 1
        victim.prompt += victim.generated  # what it generated is recomputed as prompt
        victim.output -= victim.generated
        victim.recomputed += victim.generated
        victim.retracted = True
        victim.generated = victim.prefilled = victim.cached = 0
        victim.last_forward_entry = 0.0
        self.waiting.insert(0, victim)
        self.new_token_ratio = INIT_NEW_TOKEN_RATIO

    def emit(self, req: Request) -> None:
        """What the detokenizer hands the tokenizer manager for this request after this step."""
        aborted = req.disconnect_after_tokens is not None and req.completion >= req.disconnect_after_tokens
        done = aborted or req.generated >= req.output
        if not aborted and (done or req.stream or req.completion % FORCE_STREAM_INTERVAL == 0):
            req.outputs.append((self.t, req.completion))
        if done:
            if req in self.running:
                self.running.remove(req)
            self.finish(req, "abort" if aborted else req.finish)

    def finish(self, req: Request, how: str) -> None:
        req.finished_at, req.finished_as = self.t, how
        if how == "abort":
            req.outputs.append((self.t, req.completion))
        if req.kv:
            self.evictable.append(req.kv)


# -- scheduler and detokenizer processes ------------------------------------------------------------------------------
def scheduler_process(calls, cache_calls, replayed, stop) -> None:
    """`run_scheduler_process` on GPU 0: publish, the scheduler's and the radix cache's collectors, the startup
    constants, then the engine model's calls in order."""
    from sglang.srt.model_executor.graph_memory_usage import merge_graph_memory_usage
    from sglang.srt.observability.metrics_collector import (
        QueueCount,
        RadixCacheMetricsCollector,
        SchedulerMetricsCollector,
        SchedulerStats,
        radix_cache_metric_labels,
    )
    from sglang.srt.runtime_context import SpawnRanks, get_parallel, publish
    from sglang.srt.server_args import prepare_server_args

    server_args = prepare_server_args(SERVER_ARGV)
    publish(server_args, role="scheduler", ranks=SpawnRanks(world_rank=0, dp_rank=None, gpu_id=0))
    collector = SchedulerMetricsCollector.init_new(
        server_args=server_args, enable_priority_scheduling=False, enable_lora=False, enable_hierarchical_cache=False
    ).collector
    radix = RadixCacheMetricsCollector(labels=radix_cache_metric_labels("UnifiedRadixCache", get_parallel(), False))
    collector.emit_constants(
        max_total_num_tokens=KV_TOKENS, max_total_num_tokens_swa=None, weight_memory_usage_gb=14.99,
        kv_cache_memory_usage_gb=4.59, graph_memory_usage_gb=merge_graph_memory_usage({"decode": 0.38}),
        max_running_requests_under_SLO=None, page_size=1, num_pages=KV_TOKENS, context_len=CONTEXT_LEN,
        startup_available_gpu_memory_gb=21.64,
    )
    for method, kwargs in calls:
        if method == "log_stats":
            stats = dict(kwargs["stats"])
            for queue in ("num_running_reqs", "num_queue_reqs"):
                stats[queue] = QueueCount(total=stats[queue])
            collector.log_stats(SchedulerStats(**stats))
        else:
            getattr(collector, method)(**kwargs)
    for method, kwargs in cache_calls:
        getattr(radix, method)(**kwargs)
    replayed.set()
    stop.wait()


def detokenizer_process(monitoring, stop) -> None:
    from sglang.srt.observability.cpu_monitor import start_cpu_monitor_thread
    from sglang.srt.runtime_context import publish
    from sglang.srt.server_args import prepare_server_args

    publish(prepare_server_args(SERVER_ARGV), role="detokenizer")
    start_cpu_monitor_thread("detokenizer")
    monitoring.set()
    stop.wait()


# -- the HTTP/tokenizer process ---------------------------------------------------------------------------------------
def record_request(tokenizer, req: Request) -> None:
    """The tokenizer manager's metric calls for one request, in the order its outputs arrive."""
    labels = dict(tokenizer.labels)
    if req.disconnect_after_tokens is not None or req.give_up_at is not None:
        tokenizer.observe_one_aborted_request(tokenizer.labels)
    ttft_seen, last_time, last_tokens = False, 0.0, 0
    for index, (at, tokens) in enumerate(req.outputs):
        final = req.finished_at is not None and index == len(req.outputs) - 1
        if not ttft_seen:
            if not (final and req.finished_as == "abort"):
                first = at if req.stream else req.prefill_done
                tokenizer.observe_time_to_first_token(labels, first - req.arrival, stream=req.stream)
                ttft_seen, last_time, last_tokens = True, at, tokens
        else:
            tokenizer.observe_inter_token_latency(labels, at - last_time, tokens - last_tokens)
            if tokens != last_tokens:
                last_time, last_tokens = at, tokens
    if req.finished_at is None:
        return
    tpot = None
    if req.finished_as in ("stop", "length") and req.completion > 1:
        tpot = (req.finished_at - req.prefill_done) / (req.completion - 1)
    tokenizer.observe_one_finished_request(
        labels, req.prompt - req.recomputed, req.completion, req.cached, req.finished_at - req.arrival, req.grammar,
        {"device": req.cached, "host": 0}, is_streaming=req.stream, time_per_output_token=tpot,
    )


def build_app(tokenizer, reqs: dict[str, Request], release: asyncio.Event, arrived: asyncio.Queue):
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from sglang.srt.observability.http_request_metrics import (
        add_http_request_metrics_middleware,
        init_http_request_metrics,
    )
    from sglang.srt.utils.common import add_prometheus_middleware

    app = FastAPI()
    add_http_request_metrics_middleware(app)  # http_server.py registers it at import, it records once initialised
    init_http_request_metrics()
    add_prometheus_middleware(app)

    async def serve(http: HttpRequest):
        req = reqs[(await http.json())["rid"]]
        if req.rejected:
            return JSONResponse({"object": "error", "code": 400}, status_code=400)
        record_request(tokenizer, req)
        if req.finished_at is None:
            await arrived.put(req.rid)
        if req.stream:
            async def events():
                yield b"data: {}\n\n"
                if req.finished_at is None:
                    await release.wait()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        if req.finished_at is None:
            await release.wait()
        if req.finished_as == "abort":  # the disconnected client's ValueError becomes a 400 in serving_base.py
            return JSONResponse({"object": "error", "code": 400}, status_code=400)
        return JSONResponse({"rid": req.rid})

    app.post("/v1/chat/completions")(serve)
    app.post("/generate")(serve)
    app.get("/health")(lambda: Response(status_code=200))
    app.get("/v1/models")(lambda: JSONResponse({"object": "list", "data": [{"id": MODEL}]}))
    return app


async def serve_and_scrape(tokenizer, reqs: list[Request]) -> str:
    import httpx
    import uvicorn

    release, arrived = asyncio.Event(), asyncio.Queue()
    app = build_app(tokenizer, {r.rid: r for r in reqs}, release, arrived)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(8):
            await client.get("/health")
        for _ in range(2):
            await client.get("/v1/models")
        for _ in range(5):  # earlier Prometheus scrapes
            await client.get("/metrics")
        in_flight = []
        for req in reqs:
            call = client.post(req.endpoint, json={"rid": req.rid})
            if req.finished_at is None and not req.rejected:
                in_flight.append(asyncio.create_task(call))
                await asyncio.wait_for(arrived.get(), timeout=30)
            else:
                response = await call
                if response.status_code not in (200, 400):
                    raise RuntimeError(f"{req.endpoint} answered {response.status_code} for {req.rid}")
        body = (await client.get("/metrics")).text
        release.set()
        await asyncio.gather(*in_flight)
    server.should_exit = True
    await serving
    return body


def main(out: Path) -> None:
    from sglang.srt.utils.common import set_prometheus_multiproc_dir

    set_prometheus_multiproc_dir()  # before any prometheus_client import, as the launcher does
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from sglang.srt.observability.cpu_monitor import start_cpu_monitor_thread
    from sglang.srt.observability.metrics_collector import TokenizerMetricsCollector, tokenizer_metric_labels
    from sglang.srt.observability.startup_time import build_engine_startup_time, build_scheduler_startup_time
    from sglang.srt.runtime_context import get_observability, publish
    from sglang.srt.server_args import prepare_server_args

    reqs = workload(random.Random(23))
    engine = EngineModel(reqs)
    engine.run()

    spawn = multiprocessing.get_context("spawn")
    replayed, monitoring, stop = spawn.Event(), spawn.Event(), spawn.Event()
    children = [
        spawn.Process(target=scheduler_process, args=(engine.calls, engine.cache_calls, replayed, stop)),
        spawn.Process(target=detokenizer_process, args=(monitoring, stop)),
    ]
    for child in children:
        child.start()

    server_args = prepare_server_args(SERVER_ARGV)
    publish(server_args, role="tokenizer")
    observability = get_observability()
    tokenizer = TokenizerMetricsCollector(
        server_args=server_args, labels=tokenizer_metric_labels(),
        bucket_time_to_first_token=observability.bucket_time_to_first_token,
        bucket_e2e_request_latency=observability.bucket_e2e_request_latency,
        bucket_inter_token_latency=observability.bucket_inter_token_latency,
    )
    start_cpu_monitor_thread("tokenizer")
    scheduler_startup = build_scheduler_startup_time(
        target_load_weight=38.4, draft_load_weight=0.0, kv_cache_allocation=1.9, scheduler_e2e=61.2,
        target_cuda_graph={"decode": 9.7}, draft_cuda_graph=None,
    )
    tokenizer.emit_startup_time(build_engine_startup_time([scheduler_startup], tokenizer_e2e=66.8))
    if not (replayed.wait(timeout=300) and monitoring.wait(timeout=300)):
        raise SystemExit("the scheduler or detokenizer process did not get ready")
    time.sleep(5.5)  # the cpu monitors first report 5 s after they start
    body = asyncio.run(serve_and_scrape(tokenizer, reqs))
    stop.set()
    for child in children:
        child.join(timeout=30)

    versions = ", ".join(f"{pkg} {importlib.metadata.version(pkg)}" for pkg in ("sglang", "prometheus_client"))
    header = [
        f"# SGLang /metrics, recorded by tests/sim/data/record_sglang.py ({versions}): SGLang's own collectors",
        "# in multiprocess mode behind its /metrics mount, as `sglang serve --enable-metrics` serves them on one GPU,",
        f"# driven by a synthetic workload ({MODEL}, one L4; scraped at t={SCRAPE_AT:.0f} s of virtual time with",
        "# requests running and waiting). Everything below this header is the HTTP response body, verbatim.",
    ]
    out.write_text("\n".join(header) + "\n" + body)
    running = sum(1 for r in reqs if r.finished_at is None and not r.rejected and r.prefill_done is not None)
    print(f"{out}: {len(body.splitlines())} lines; {len(reqs)} requests, {running} running at the scrape, "
          f"{len(engine.waiting)} waiting", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("sglang-0.5.23.prom"))
