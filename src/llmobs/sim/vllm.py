"""A vLLM V1 engine simulator: a request-level scheduler model behind vLLM's /metrics and OpenAI API.

Requests arrive from a traffic model (a rate that swings over `period_s`, log-normal prompt and output
lengths), wait in a FIFO queue, are admitted while the batch has room and the KV cache has blocks for
them, prefill at the GPU's compute speed and decode at a speed bound by memory bandwidth that slows as
the batch grows. When a growing request finds no free KV block the newest running request is preempted
and recomputed later, as vLLM's scheduler does. Every metric of the catalog's inference layer is
derived from that model, with vLLM's names, HELP, labels (model_name, engine), bucket boundaries and
`_created` series, as the real release serves them (tests/sim/test_vllm_upstream.py compares the page
with recordings of vLLM's own metrics code). `vllm_version` picks the release: 0.33.0, or 0.10.2, the
newest release that still served the old names vllm:gpu_cache_usage_perc and
vllm:time_per_output_token_seconds (beside their replacements), with only the metrics and finish
reasons 0.10.2 had. With a queue limit (0.33's --max-num-queued-reqs, or the queue-limit fault) the
engine refuses requests at admission with HTTP 503, counted only in vllm:admission_rejections_total.
The engine's load is what its GPUs' DCGM values follow.
"""

from __future__ import annotations

import bisect
import collections
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from prometheus_client.registry import Collector

from llmobs import catalog as catalog_mod
from llmobs import exposition
from llmobs.catalog import Catalog, GpuModel
from llmobs.errors import ConfigError
from llmobs.sim import sglang, trtllm
from llmobs.sim.dcgm import GpuLoad
from llmobs.sim.engine_page import CatalogPage, Flavour
from llmobs.sim.faults import Fault
from llmobs.sim.vllm_metrics import EngineCollector
from llmobs.sim.vllm_releases import (
    BLOCK_SIZE,
    CURRENT_RELEASE,
    GPU_MEMORY_UTILIZATION,
    RELEASES,
    request_token_buckets,
)

MAX_NUM_BATCHED_TOKENS = 2048    # token budget of one engine step (chunked prefill)
# The other engines the simulator imitates, each a page over this request model (llmobs.sim.engine_page).
FLAVOURS: dict[str, Flavour] = {flavour.engine: flavour for flavour in (sglang.FLAVOUR, trtllm.FLAVOUR)}
ENGINES = ("vllm", *FLAVOURS)
HANDLERS = (("/v1/chat/completions", 0.7), ("/v1/completions", 0.3))


@dataclass(frozen=True)
class EngineConfig:
    """One vLLM server: the model it serves, its port and GPUs, and the traffic it gets."""

    model: str
    port: int = 8000
    gpus: tuple[int, ...] = (0,)
    params_b: float = 8.0            # model size, billions of parameters (FP16 weights)
    rps: float = 2.0                 # mean request rate
    prompt_tokens: int = 1500        # mean prompt length
    output_tokens: int = 250         # mean output length
    max_tokens: int = 1024           # requested max_tokens; longer outputs finish with "length"
    max_num_seqs: int = 256
    max_model_len: int = 32768
    period_s: float = 900.0          # period of the request-rate swing
    vllm_version: str = CURRENT_RELEASE
    max_num_queued_reqs: int | None = None   # --max-num-queued-reqs: 503 at admission beyond it
    engine: str = "vllm"             # whose /metrics it serves: vllm, sglang or trtllm (FLAVOURS)
    api_key: str | None = None       # --api-key: the OpenAI API answers 401 without `Bearer <key>`


@dataclass
class Request:
    arrival: float
    prompt: int
    target: int                      # tokens it will generate
    max_tokens: int
    handler: str
    fails: bool = False
    admitted: float = 0.0
    cached: int = 0                  # prompt tokens found in the prefix cache
    first_token: float | None = None
    prefill_left: float = 0.0        # seconds of prefill still to run
    generated: int = 0
    fraction: float = 0.0            # carried partial token
    decode_seconds: float = 0.0      # time spent generating its tokens after the first
    preemptions: int = 0
    surge: bool = False              # sent by a kv-saturation surge; its clients give up when it ends
    api: bool = False                # came through the OpenAI API, whose handler counts the HTTP request

    def blocks(self) -> int:
        return math.ceil((self.prompt + self.generated) / BLOCK_SIZE)


class Histogram:
    """Cumulative bucket counts with vLLM's boundaries; observe() takes a count, so one call can stand
    for the thousands of identical inter-token observations of a batch step."""

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float, count: int = 1) -> None:
        if count > 0:
            self.counts[bisect.bisect_left(self.bounds, value)] += count
            self.total += value * count

    def buckets(self) -> list[tuple[str, float]]:
        cumulative, out = 0, []
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            cumulative += count
            out.append((exposition.le_value(bound), cumulative))
        return out


def _lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)


class Engine:
    """The simulated engine. `tick()` advances it; `collect()` yields its /metrics families."""

    def __init__(self, config: EngineConfig, gpu: GpuModel, rng: random.Random, catalog: Catalog | None = None,
                 engine_index: str = exposition.ENGINE_INDEX):
        self.config, self.gpu, self.rng = config, gpu, rng
        self.catalog = catalog or catalog_mod.load()
        if config.vllm_version not in RELEASES:
            raise ConfigError(f"engines.{config.model}.vllm_version", f"{config.vllm_version!r} is not a release "
                              "the simulator imitates", f"use one of {', '.join(RELEASES)}")
        self.release = RELEASES[config.vllm_version]
        if config.engine not in ENGINES:
            raise ConfigError(f"engines.{config.model}.engine", f"{config.engine!r} is not an engine the simulator "
                              "imitates", f"use one of {', '.join(ENGINES)}")
        self.flavour = FLAVOURS.get(config.engine)
        if config.max_num_queued_reqs is not None and not self.release.admission_limits:
            raise ConfigError(f"engines.{config.model}.max_num_queued_reqs", f"vLLM {config.vllm_version} has no "
                              "--max-num-queued-reqs", f"drop it, or use vllm_version {CURRENT_RELEASE}")
        self.engine_index = engine_index
        tp = len(config.gpus)
        weights_gib = config.params_b * 2
        kv_gib = GPU_MEMORY_UTILIZATION * gpu.memory_mib / 1024 * tp - weights_gib - tp
        if kv_gib <= 0:
            raise ConfigError(f"engines.{config.model}", f"a {config.params_b:g}B model does not fit in {tp} x "
                              f"{gpu.model_name}", "give it more GPUs or a smaller params_b")
        kv_mib_per_token = 0.04 * config.params_b ** 0.55
        self.num_gpu_blocks = int(kv_gib * 1024 / kv_mib_per_token / BLOCK_SIZE)
        bandwidth = gpu.memory_bandwidth_gbps * 1e9 * tp * 0.7
        self.base_itl = max(0.005, weights_gib * 1.074e9 * (1 + 0.08 * (tp - 1)) / bandwidth)
        self.prefill_rate = gpu.fp16_tflops * 1e12 * tp * 0.5 / (2 * config.params_b * 1e9)
        self.phase = rng.uniform(0, 2 * math.pi)
        self._lock = threading.Lock()
        self.started = time.time()
        self._reset_state()

    def _reset_state(self) -> None:
        """A fresh server process: empty queues, zeroed counters."""
        fam = self.catalog.bucket_families
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.up = True
        self.tick_start = 0.0
        self.counters = {name: 0.0 for name in (
            "prompt_tokens", "generation_tokens", "num_preemptions", "prefix_cache_queries", "prefix_cache_hits")}
        self.admission_rejections = {"max_num_queued_reqs": 0, "max_num_queued_tokens": 0}
        self.finished: dict[str, int] = {}
        self.http: dict[tuple[str, str, str], int] = {}
        self.hist = {
            "ttft": Histogram(fam["time_to_first_token"]),
            "itl": Histogram(fam["inter_token_latency"]),
            "tpot": Histogram(fam["inter_token_latency"]),
            "e2e": Histogram(fam["request_latency"]),
            "queue": Histogram(fam["request_latency"]),
            "inference": Histogram(fam["request_latency"]),
            "prefill": Histogram(fam["request_latency"]),
            "decode": Histogram(fam["request_latency"]),
            "n": Histogram(fam["request_params_n"]),
            "iteration": Histogram(fam["iteration_tokens"]),
            "preemptions": Histogram(fam["request_num_preemptions"]),
        }
        tokens = request_token_buckets(self.config.max_model_len)
        for name in ("prompt", "generation", "max_generation", "max_tokens", "prefill_kv"):
            self.hist[name] = Histogram(tokens)
        if self.flavour:  # the same observations, in the other engine's buckets
            self.hist.update({signal: Histogram(fam[family]) for signal, family in self.flavour.buckets.items()})
        self.load = GpuLoad()

    # ------------------------------------------------------------------ traffic and scheduling
    def rate(self, now: float) -> float:
        swing = 1 + 0.3 * math.sin(2 * math.pi * now / self.config.period_s + self.phase)
        return self.config.rps * swing

    def itl(self, faults: dict[str, Fault]) -> float:
        batch_slowdown = 1 + 0.5 * len(self.running) / 64
        kv_pressure = 1 + 0.3 * max(0.0, self.kv_usage() - 0.8) / 0.2
        factor = faults["latency"].params["factor"] if "latency" in faults else 1.0
        return self.base_itl * batch_slowdown * kv_pressure * factor

    def kv_usage(self) -> float:
        return min(1.0, sum(r.blocks() for r in self.running) / self.num_gpu_blocks)

    def queue_limit(self, faults: dict[str, Fault] | None) -> int | None:
        if faults and "queue-limit" in faults:
            return int(faults["queue-limit"].params["max_queued"])
        return self.config.max_num_queued_reqs

    def require_admission_limits(self) -> None:
        if not self.release.admission_limits:
            raise ConfigError("fault", f"vLLM {self.release.version} (engine {self.config.model}) has no queue "
                              "limit", f"send queue-limit to an engine on vLLM {CURRENT_RELEASE}")

    def submit(self, now: float, prompt: int | None = None, max_tokens: int | None = None,
               handler: str | None = None, faults: dict[str, Fault] | None = None) -> Request | None:
        """A request arrives (from the traffic model or the OpenAI API). None: refused at admission (the
        queue is at its limit), answered 503 and counted only in vllm:admission_rejections_total."""
        c, rng = self.config, self.rng
        # A surge of long generations (e.g. a batch job asking for long answers) fills the KV cache.
        surge = faults["kv-saturation"].params["factor"] if faults and "kv-saturation" in faults else 1.0
        prompt_mean = c.prompt_tokens / surge
        prompt = min(prompt or max(1, round(_lognormal(rng, prompt_mean, 0.5))), c.max_model_len - 1)
        limit = max_tokens or round(c.max_tokens * surge)
        output = _lognormal(rng, c.output_tokens * surge, 0.7)
        target = min(max(1, round(output)), limit, c.max_model_len - prompt)
        if handler is None:
            handler = HANDLERS[0][0] if rng.random() < HANDLERS[0][1] else HANDLERS[1][0]
        ratio = faults["error-burst"].params["ratio"] if faults and "error-burst" in faults else 0.0
        request = Request(now, prompt, target, limit, handler, fails=rng.random() < ratio, surge=surge > 1,
                          api=max_tokens is not None)
        queue_limit = self.queue_limit(faults)
        with self._lock:
            # The queue it finds: what the last scheduling pass left waiting (arrivals of this tick
            # would mostly have been admitted before it came).
            if queue_limit is not None and sum(r.arrival < self.tick_start for r in self.waiting) >= queue_limit:
                self.admission_rejections["max_num_queued_reqs"] += 1
                if not request.api:
                    key = (handler, "POST", "5xx")
                    self.http[key] = self.http.get(key, 0) + 1
                return None
            self.waiting.append(request)
        return request

    def tick(self, now: float, dt: float, faults: dict[str, Fault]) -> None:
        """Advance the engine over [now, now + dt): arrivals, scheduling, prefill and decode."""
        if not self.up:
            self.load = GpuLoad()
            return
        surge = faults["kv-saturation"].params["factor"] / 2 if "kv-saturation" in faults else 1.0
        self.tick_start = now
        for _ in range(self._poisson(self.rate(now) * surge * dt)):
            self.submit(now + self.rng.uniform(0, dt), faults=faults)
        with self._lock:
            if "engine-stuck" in faults:
                # A hung collective spins the GPUs at 100 % while nothing moves.
                self.load = GpuLoad(busy=1.0, intensity=0.05, fb_fraction=GPU_MEMORY_UTILIZATION)
                return
            self._schedule(now, dt, faults)
            busy_time = self._run(now, dt, faults)
            # Blocks freed by finished or preempted requests go to the queue at once, as vLLM's
            # scheduler refills its batch every step; those requests start in the next interval.
            self._schedule(now + dt, 0.0, faults)
        batch = len(self.running)
        busy = min(1.0, busy_time / dt) if batch else 0.0
        intensity = batch / (batch + 24)
        nvlink = 4e9 * busy * intensity if len(self.config.gpus) > 1 else 0.0
        self.load = GpuLoad(busy=busy, intensity=intensity, fb_fraction=GPU_MEMORY_UTILIZATION,
                            nvlink_bytes_per_s=nvlink)

    def _poisson(self, mean: float) -> int:
        if mean <= 0:
            return 0
        if mean > 30:
            return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _schedule(self, now: float, dt: float, faults: dict[str, Fault]) -> None:
        """Admit queued requests that arrived before `now + dt` while the batch and the KV cache have room."""
        free = self.num_gpu_blocks - sum(r.blocks() for r in self.running)
        watermark = 0.01 * self.num_gpu_blocks
        factor = faults["latency"].params["factor"] if "latency" in faults else 1.0
        while self.waiting and len(self.running) < self.config.max_num_seqs:
            head = self.waiting[0]
            need = head.blocks()
            # New requests keep a watermark of free blocks; a preempted one resumes as soon as it fits.
            if head.arrival >= now + dt or need > free - (watermark if head.preemptions == 0 else 0):
                break
            self.waiting.popleft()
            free -= need
            if head.preemptions == 0:
                head.admitted = max(now, head.arrival)
                head.cached = min(head.prompt - 1, round(head.prompt * self.rng.uniform(0.2, 0.5)))
                self.counters["prefix_cache_queries"] += head.prompt
                self.counters["prefix_cache_hits"] += head.cached
                self.counters["prompt_tokens"] += head.prompt
            # A preempted request recomputes its prompt and what it had generated.
            head.prefill_left = (head.prompt + head.generated) / self.prefill_rate * factor
            self.running.append(head)

    def _run(self, now: float, dt: float, faults: dict[str, Fault]) -> float:
        itl = self.itl(faults)
        done: list[Request] = []
        busy_time = 0.0
        decoded = first_tokens = prefilled = 0
        for request in list(self.running):
            budget = dt - max(0.0, request.admitted - now)
            if request.prefill_left > 0:
                spent = min(budget, request.prefill_left)
                request.prefill_left -= spent
                budget -= spent
                busy_time = max(busy_time, spent)
                if request.prefill_left > 0:
                    continue
                if request.fails:
                    done.append(request)
                    continue
                # The step that ends a prefill computes the prompt (less its cached part, from 0.11;
                # 0.10 counted the whole prompt) or, after a preemption, the prompt and its output again.
                prefilled += request.prompt + request.generated - (request.cached * (not self.release.old_names))
                if request.first_token is None:
                    request.first_token = now + dt - budget
                    self.hist["ttft"].observe(request.first_token - request.arrival)
                    request.generated = 1
                    decoded += 1
                    first_tokens += 1
            tokens = budget / itl + request.fraction
            n = min(int(tokens), request.target - request.generated)
            request.fraction = tokens - int(tokens)
            request.generated += n
            request.decode_seconds += n * itl
            decoded += n
            busy_time = dt
            if request.generated >= request.target:
                done.append(request)
        # A first token ends a prefill; each later one ends an inter-token interval (n-1 per request).
        self.hist["itl"].observe(itl, decoded - first_tokens)
        self.counters["generation_tokens"] += decoded
        self._observe_steps(dt, itl, decoded, prefilled)
        self._preempt_if_full()
        for request in done:
            if request in self.running:
                self.running.remove(request)
            self._finish(request, now + dt)
        return busy_time

    def _observe_steps(self, dt: float, itl: float, decoded: int, prefilled: int) -> None:
        """vllm:iteration_tokens_total: tokens scheduled per engine step (prompt and generated tokens).
        Decode steps carry one token per running request; prefills add chunks of the token budget."""
        steps = max(int(dt / itl), math.ceil(prefilled / MAX_NUM_BATCHED_TOKENS))
        if not steps or not (decoded or prefilled):
            return
        share, extra = divmod(decoded, steps)
        per_step = collections.Counter()
        for step in range(steps):
            chunk = min(MAX_NUM_BATCHED_TOKENS, max(0, prefilled - step * MAX_NUM_BATCHED_TOKENS))
            per_step[share + (step < extra) + chunk] += 1
        per_step.pop(0, None)  # a step without tokens is no step
        for tokens, count in per_step.items():
            self.hist["iteration"].observe(tokens, count)

    def _preempt_if_full(self) -> None:
        while self.running and sum(r.blocks() for r in self.running) > self.num_gpu_blocks:
            victim = self.running.pop()
            victim.preemptions += 1
            victim.fraction = 0.0
            self.counters["num_preemptions"] += 1
            self.waiting.appendleft(victim)

    def _finish(self, request: Request, now: float, reason: str | None = None) -> None:
        if reason:
            status = "2xx"
        elif request.fails:
            # 0.10 had no "error" finish reason: the request that failed counts as aborted.
            reason, status = ("error" if "error" in self.release.finish_reasons else "abort"), "5xx"
        elif self.rng.random() < 0.004:
            reason, status = "abort", "2xx"
        else:
            reason, status = ("length" if request.generated >= request.max_tokens else "stop"), "2xx"
        self.finished[reason] = self.finished.get(reason, 0) + 1
        if not request.api:
            key = (request.handler, "POST", status)
            self.http[key] = self.http.get(key, 0) + 1
        first = request.first_token or now
        h = self.hist
        h["e2e"].observe(now - request.arrival)
        admitted = request.admitted or now
        h["queue"].observe(admitted - request.arrival)
        h["inference"].observe(now - admitted)
        h["prefill"].observe(first - admitted)
        h["decode"].observe(now - first)
        h["prompt"].observe(request.prompt)
        h["generation"].observe(request.generated)
        h["max_generation"].observe(request.max_tokens)
        h["max_tokens"].observe(request.max_tokens)
        h["n"].observe(1)
        # The mean of its own inter-token intervals: a finish is only known to the tick, which would inflate a
        # short answer's time per output token far past any real engine's.
        h["tpot"].observe(request.decode_seconds / (request.generated - 1) if request.generated > 1 else 0.0)
        h["preemptions"].observe(request.preemptions)
        h["prefill_kv"].observe(request.prompt - request.cached)

    # ------------------------------------------------------------------ lifecycle
    def end_surge(self, now: float) -> None:
        """The surge's clients time out: their queued and running requests are aborted."""
        with self._lock:
            aborted = [r for r in (*self.waiting, *self.running) if r.surge]
            self.waiting = deque(r for r in self.waiting if not r.surge)
            self.running = [r for r in self.running if not r.surge]
            for request in aborted:
                self._finish(request, now, reason="abort")

    def go_down(self) -> None:
        with self._lock:
            self.up = False
            self.load = GpuLoad()

    def restart(self) -> None:
        with self._lock:
            self._reset_state()
            self.started = time.time()

    def count_http(self, handler: str, method: str, status: str) -> None:
        with self._lock:
            key = (handler, method, status)
            self.http[key] = self.http.get(key, 0) + 1

    def state(self) -> dict:
        with self._lock:
            return {"model": self.config.model, "port": self.config.port, "gpus": list(self.config.gpus),
                    "up": self.up, "running": len(self.running), "waiting": len(self.waiting),
                    "kv_cache_usage": round(self.kv_usage(), 4), "num_gpu_blocks": self.num_gpu_blocks}

    # ------------------------------------------------------------------ /metrics
    def collector(self) -> Collector:
        return CatalogPage(self, self.flavour) if self.flavour else EngineCollector(self)

    @property
    def version(self) -> str:
        """The release of the engine whose page it serves."""
        return self.flavour.version if self.flavour else self.release.version


@dataclass
class Served:
    """What the OpenAI endpoints need from an engine."""

    engine: Engine
    created: int = field(default_factory=lambda: int(time.time()))

    def models(self) -> dict:
        c = self.engine.config
        return {"object": "list", "data": [{"id": c.model, "object": "model", "created": self.created,
                                            "owned_by": self.engine.flavour.owned_by if self.engine.flavour
                                            else "vllm", "root": c.model, "parent": None,
                                            "max_model_len": c.max_model_len}]}

    def version(self) -> dict:
        return {"version": self.engine.version}
